"""Memory per running container and time to start N containers: our shim vs containerd's.

    sudo .venv/bin/python benchmarks/shim_memory.py [--count 100]

Side A: pyrunc's TaskManager + pyrunc-shim driving runc (one Python process, in-process API).
Side B: containerd 1.6 (started here on a private socket, root and state in a temp dir) with
``ctr run -d --rootfs`` per container, i.e. containerd-shim-runc-v2 driving runc.
Both run ``sleep`` from the same busybox rootfs. Prints medians of the RSS and PSS of each
container's shim, the median time per container start and the total, and the ratios. Runs
itself inside a private mount namespace.
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def memory_of(pid):
    """(RSS, PSS) in KiB from smaps_rollup."""
    values = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if parts[0] in ("Rss:", "Pss:"):
                values[parts[0][:-1]] = int(parts[1])
    return values["Rss"], values["Pss"]


def make_bundles(work, count):
    from pyrunc.containerd.runtime import spec as runtime_spec
    from pyrunc.engine import busybox
    rootfs = os.path.join(work, "rootfs")
    busybox.make_rootfs(rootfs)
    paths = []
    for i in range(count):
        path = os.path.join(work, "bundles", "bench-%03d" % i)
        os.makedirs(path)
        spec = runtime_spec.example_spec(args=["sleep", "100000"], terminal=False)
        spec["root"]["path"] = rootfs
        runtime_spec.write_spec(path, spec)
        paths.append(path)
    return rootfs, paths


def bench_pyrunc(work, bundle_paths, runtime):
    from pyrunc.containerd.tasks import TaskManager
    manager = TaskManager(os.path.join(work, "pyrunc-root"), runtime=runtime)
    prefix = "shimbench-%d-" % os.getpid()
    times, tasks = [], []
    total = time.perf_counter()
    try:
        for path in bundle_paths:
            t0 = time.perf_counter()
            task = manager.create(prefix + os.path.basename(path), path)
            task.start()
            times.append(time.perf_counter() - t0)
            tasks.append(task)
        total = time.perf_counter() - total
        mem = [memory_of(t.state().shim_pid) for t in tasks]
    finally:
        for task in manager.list():
            task.delete(force=True)
    return times, total, mem


NAMESPACE = "pyrunc-shim-bench"
CONTAINERD_CONFIG = """version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{address}"
[ttrpc]
  address = "{address}.ttrpc"
"""


def bench_containerd(work, rootfs, count):
    base = os.path.join(work, "containerd")
    os.makedirs(base)
    address = os.path.join(base, "containerd.sock")
    config = os.path.join(base, "config.toml")
    with open(config, "w") as f:
        f.write(CONTAINERD_CONFIG.format(root=base + "/root", state=base + "/state",
                                         address=address))
    log = open(os.path.join(base, "containerd.log"), "w")
    daemon = subprocess.Popen(["containerd", "--config", config], stdout=log, stderr=log)
    ctr = ["ctr", "--address", address, "--namespace", NAMESPACE]
    ids = ["bench-%03d" % i for i in range(count)]
    try:
        deadline = time.monotonic() + 20
        while subprocess.run(ctr + ["version"], capture_output=True).returncode:
            if time.monotonic() > deadline or daemon.poll() is not None:
                raise SystemExit("containerd did not start; see %s" % log.name)
            time.sleep(0.1)
        times = []
        total = time.perf_counter()
        for cid in ids:
            t0 = time.perf_counter()
            proc = subprocess.run(ctr + ["run", "-d", "--rootfs", rootfs, cid, "/bin/sleep",
                                         "100000"], capture_output=True, text=True)
            if proc.returncode:
                raise SystemExit("ctr run %s: %s" % (cid, proc.stderr.strip()))
            times.append(time.perf_counter() - t0)
        total = time.perf_counter() - total
        shims = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open("/proc/%s/cmdline" % entry, "rb") as f:
                        argv = f.read().split(b"\0")
                except OSError:
                    continue
                if argv[0].endswith(b"containerd-shim-runc-v2") and address.encode() in argv:
                    shims.append(int(entry))
        mem = [memory_of(pid) for pid in shims]
    finally:
        for cid in ids:
            subprocess.run(ctr + ["task", "kill", "-s", "SIGKILL", cid], capture_output=True)
        for cid in ids:
            for _ in range(50):
                if subprocess.run(ctr + ["task", "rm", "-f", cid],
                                  capture_output=True).returncode == 0:
                    break
                if b"not found" in subprocess.run(ctr + ["task", "ls", "-q"],
                                                  capture_output=True).stdout:
                    break
                time.sleep(0.05)
            subprocess.run(ctr + ["container", "rm", cid], capture_output=True)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        log.close()
        for controller in os.listdir("/sys/fs/cgroup"):    # containerd's /NAMESPACE parents
            try:
                os.rmdir(os.path.join("/sys/fs/cgroup", controller, NAMESPACE))
            except OSError:
                pass
    return times, total, mem


def report(name, times, total, mem):
    rss = statistics.median(m[0] for m in mem)
    pss = statistics.median(m[1] for m in mem)
    per = statistics.median(times) * 1000
    print("%-34s shims=%3d  RSS median %6.0f KiB  PSS median %6.0f KiB  "
          "start median %6.1f ms  total %6.2f s" % (name, len(mem), rss, pss, per, total))
    return rss, pss, per, total


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--runtime", default="runc", help="runtime for the pyrunc side")
    args = p.parse_args()
    if os.environ.get("SHIM_BENCH_IN_NS") != "1":
        env = dict(os.environ, SHIM_BENCH_IN_NS="1")
        os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private", sys.executable]
                   + sys.argv, env)
    work = tempfile.mkdtemp(prefix="shim-bench-")
    try:
        rootfs, bundle_paths = make_bundles(work, args.count)
        ours = report("pyrunc-shim + %s" % args.runtime,
                      *bench_pyrunc(work, bundle_paths, args.runtime))
        theirs = report("containerd-shim-runc-v2 + runc", *bench_containerd(work, rootfs,
                                                                             args.count))
        print("ratio ours/containerd: RSS %.2f  PSS %.2f  start median %.2f  total %.2f"
              % tuple(a / b for a, b in zip(ours, theirs)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
