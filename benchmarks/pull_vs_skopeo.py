"""Pull of a multi-layer ~200 MB image from a loopback registry: pyrunc against ``skopeo copy``.

A docker-registry (distribution) is started on a free loopback port with a temp storage dir;
an image of random-data layers is generated and pushed by pyrunc. Each round pulls it into a
fresh store with both clients, interleaved, whole process and wall clock:

* pyrunc: ``fetch`` (pull's download half) into a fresh content store (blobs downloaded
  concurrently and verified);
* skopeo: ``skopeo copy docker://... oci:<dir>`` (an OCI layout, also verified).

With ``--unpack`` a third row times the whole ``pull`` into an image service (download,
then each layer unpacked into its snapshot as it arrives), for scale: skopeo does not unpack.

Prints medians and the ratio to skopeo. Run as root:

    .venv/bin/python benchmarks/pull_vs_skopeo.py [-n 5] [--layers 4] [--layer-mb 50] [--unpack]
"""
import argparse
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

REGISTRY = "/usr/bin/docker-registry"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_registry(work):
    port = free_port()
    config = os.path.join(work, "registry.yml")
    with open(config, "w") as f:
        f.write("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                "storage:\n  filesystem:\n    rootdirectory: %s\n"
                "http:\n  addr: 127.0.0.1:%d\n" % (os.path.join(work, "storage"), port))
    proc = subprocess.Popen([REGISTRY, "serve", config], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                sys.exit("docker-registry did not start")
            time.sleep(0.05)


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def build_and_push(store_root, name, layers, layer_mb):
    """An image of ``layers`` uncompressed tar layers of random data, pushed as ``name``."""
    from pyrunc.engine.content import ContentStore, digest_bytes
    from pyrunc.engine.distribution import push
    from pyrunc.engine.registry import RegistryService, mediatypes
    store = ContentStore(store_root)
    descs, diff_ids = [], []
    for n in range(layers):
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            data = os.urandom(layer_mb * 1000 * 1000)
            info = tarfile.TarInfo("data/layer%d.bin" % n)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        blob = raw.getvalue()
        digest = store.put(blob)
        descs.append({"mediaType": mediatypes.OCI_LAYER, "digest": digest, "size": len(blob)})
        diff_ids.append(digest_bytes(blob))
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST,
                           "config": {"mediaType": mediatypes.OCI_CONFIG,
                                      "digest": store.put(config), "size": len(config)},
                           "layers": descs}).encode()
    with RegistryService() as registries:
        push(name, store, registries, store.put(manifest))
    return sum(d["size"] for d in descs)


PULL_ONCE = """
import sys
from pyrunc.engine.content import ContentStore
from pyrunc.engine.distribution import fetch
from pyrunc.engine.registry import RegistryService
with RegistryService() as registries:
    fetch(sys.argv[1], ContentStore(sys.argv[2]), registries)
"""


PULL_UNPACK_ONCE = """
import sys
from pyrunc.engine.distribution import pull
from pyrunc.engine.images import ImageService
from pyrunc.engine.registry import RegistryService
with RegistryService() as registries:
    pull(sys.argv[1], ImageService(sys.argv[2]), registries)
"""


def timed(cmd):
    start = time.perf_counter()
    result = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit("%s failed: %s" % (cmd[0], result.stderr.decode().strip()))
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--layer-mb", type=int, default=50)
    parser.add_argument("--unpack", action="store_true",
                        help="also time a full pull with unpacking into snapshots")
    args = parser.parse_args()
    for tool in (REGISTRY, shutil.which("skopeo")):
        if not tool or not os.path.exists(tool):
            sys.exit("needs docker-registry and skopeo")
    work = tempfile.mkdtemp(prefix="bench-pull-")
    proc = None
    try:
        proc, port = start_registry(work)
        name = "127.0.0.1:%d/bench/big:latest" % port
        total = build_and_push(os.path.join(work, "source"), name, args.layers, args.layer_mb)
        ours = {"pyrunc": [sys.executable, "-c", PULL_ONCE, name]}
        if args.unpack:
            ours["pyrunc+unpack"] = [sys.executable, "-c", PULL_UNPACK_ONCE, name]
        times = {tool: [] for tool in ours}
        times["skopeo"] = []
        for i in range(-1, args.n):          # one warm-up round, not counted
            for tool, cmd in ours.items():
                target = os.path.join(work, "%s-%d" % (tool, i))
                elapsed = timed(cmd + [target])
                shutil.rmtree(target)
                if i >= 0:
                    times[tool].append(elapsed)
            target = os.path.join(work, "skopeo-%d" % i)
            elapsed = timed(["skopeo", "copy", "-q", "--src-tls-verify=false",
                             "docker://" + name, "oci:%s:latest" % target])
            shutil.rmtree(target)
            if i >= 0:
                times["skopeo"].append(elapsed)
        base = statistics.median(times["skopeo"])
        print("pull of %d layers, %.1f MB, loopback registry, %d rounds, interleaved"
              % (args.layers, total / 1e6, args.n))
        for tool, values in times.items():
            median = statistics.median(values)
            print("%-14s median %.3f s  (%.0f MB/s)  ratio to skopeo %.2f"
                  % (tool, median, total / 1e6 / median, median / base))
    finally:
        if proc is not None:
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
