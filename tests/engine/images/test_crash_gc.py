"""Garbage collection after writers die: real processes stopped and SIGKILLed mid-operation.

What a live writer holds (an extraction snapshot, an ingest, a lease) survives collection;
what a killed one left behind is collected by the next gc().
"""
import fcntl
import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from engine.layers.tarbuild import entry, make_tar
from pyrunc.engine.images import ImageService
from pyrunc.engine.images.unpack import chain_ids
from pyrunc.engine.content import digest_bytes


def child(code, *args):
    """A Python process running ``code`` (with ``args`` as sys.argv[1:])."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)] + list(args),
                            stdout=subprocess.PIPE, text=True)


def kill(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    proc.stdout.close()


def wait_for(predicate, proc, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, "the child exited early (%s)" % proc.returncode
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def extracting(svc):
    return [i.name for i in svc.snapshotter.walk() if i.name.startswith("extract-")]


def many_files_image(svc, count=8000):
    """An image whose one layer takes a while to extract (many small files)."""
    plain = make_tar([entry("d%02d/f%05d" % (i % 50, i), data=b"x" * 64) for i in range(count)])
    layer = gzip.compress(plain, 1, mtime=0)
    digest = svc.content.put(layer)
    manifest = {"layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": digest, "size": len(layer)}]}
    config = {"architecture": "amd64", "os": "linux",
              "rootfs": {"type": "layers", "diff_ids": [digest_bytes(plain)]}}
    return manifest, config


def stop_mid_extraction(proc, svc):
    """SIGSTOP the child once its extraction snapshot exists, outside the snapshotter's
    metadata lock (so this process can still read the metadata)."""
    wait_for(lambda: extracting(svc), proc)
    while True:
        os.kill(proc.pid, signal.SIGSTOP)
        fd = os.open(os.path.join(svc.snapshotter.root, "lock"), os.O_RDWR | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            os.kill(proc.pid, signal.SIGCONT)
            time.sleep(0.001)
        finally:
            os.close(fd)


UNPACK = """
    import json, sys
    from pyrunc.engine.images import ImageService, unpack
    svc = ImageService(sys.argv[1], snapshotter=sys.argv[4])
    unpack(svc.content, svc.snapshotter, json.loads(sys.argv[2]), json.loads(sys.argv[3]))
    print("done", flush=True)
"""


@pytest.mark.parametrize("backend", ["overlayfs", "native"])
def test_extraction_of_a_killed_unpack_is_collected_a_live_one_is_not(tmp_path,
                                                                      private_mount_ns,
                                                                      backend):
    svc = ImageService(str(tmp_path / "engine"), snapshotter=backend)
    manifest, config = many_files_image(svc)
    lease = svc.content.lease()              # the layer's blob stays for the second unpack
    lease.add(manifest["layers"][0]["digest"])
    chain, = chain_ids(config["rootfs"]["diff_ids"])
    before = set(os.listdir(os.path.join(svc.snapshotter.root, "snapshots")))
    proc = child(UNPACK, svc.root, json.dumps(manifest), json.dumps(config), backend)
    try:
        # stop the unpacker mid-extraction: alive, its lock held, its snapshot half written
        stop_mid_extraction(proc, svc)
        key, = extracting(svc)
        assert key.endswith(" " + chain)
        svc.gc()
        assert extracting(svc) == [key], "gc removed a live extraction"
        # killed now: nobody holds the lock, the next collection removes what it left
        proc.kill()
        proc.wait(10)
        svc.gc()
        assert extracting(svc) == []
        assert [i.name for i in svc.snapshotter.walk()] == []
        assert set(os.listdir(os.path.join(svc.snapshotter.root, "snapshots"))) == before
        assert os.listdir(os.path.join(svc.snapshotter.root, "extracting")) == []
    finally:
        kill(proc)
    # and the layer unpacks again, whole, the next time
    svc.unpack(manifest, config)
    assert svc.snapshotter.stat(chain).kind == "committed"
    lease.release()


def test_an_unpack_killed_inside_holding_gc_is_collected(tmp_path, private_mount_ns):
    """The usual path (ImageService.add holds gc off): the kill releases the hold too."""
    svc = ImageService(str(tmp_path / "engine"))
    manifest, config = many_files_image(svc)
    proc = child("""
        import json, sys
        from pyrunc.engine.images import ImageService
        svc = ImageService(sys.argv[1])
        config = json.dumps(json.loads(sys.argv[3])).encode()
        manifest = dict(json.loads(sys.argv[2]), schemaVersion=2,
                        config={"digest": svc.content.put(config), "size": len(config)})
        svc.add(svc.content.put(json.dumps(manifest).encode()), ["killed:1"])
    """, svc.root, json.dumps(manifest), json.dumps(config))
    try:
        stop_mid_extraction(proc, svc)
        proc.kill()
        proc.wait(10)
    finally:
        kill(proc)
    svc.gc()                                 # does not wait: the dead hold is gone
    assert list(svc.snapshotter.walk()) == []
    assert list(svc.content.walk()) == []


INGEST = """
    import sys, time
    from pyrunc.engine.content import ContentStore
    cs = ContentStore(sys.argv[1])
    w = cs.writer("pull-" + sys.argv[2], sys.argv[2], 4 << 20)
    w.write(b"\\0" * (1 << 20))
    lease = cs.lease()
    lease.add(sys.argv[3])
    lease.add_snapshot("sha256:" + "0" * 64)
    print("ready", flush=True)
    time.sleep(60)
"""


def test_ingest_and_lease_of_a_killed_writer_are_collected(tmp_path, private_mount_ns):
    svc = ImageService(str(tmp_path / "engine"))
    target = digest_bytes(b"\0" * (4 << 20))
    held = svc.content.put(b"held by the child's lease")
    proc = child(INGEST, svc.content.root, target, held)
    try:
        assert proc.stdout.readline() == "ready\n"
        # alive: its ingest and what its lease names are kept
        svc.gc()
        assert list(svc.content.ingests()) == [("pull-" + target, 1 << 20)]
        assert svc.content.exists(held)
        assert len(os.listdir(os.path.join(svc.content.root, "leases"))) == 1
        proc.kill()
        proc.wait(10)
        svc.gc()
        assert list(svc.content.ingests()) == []
        assert os.listdir(os.path.join(svc.content.root, "ingest")) == []
        assert not svc.content.exists(held)
        assert os.listdir(os.path.join(svc.content.root, "leases")) == []
    finally:
        kill(proc)


def test_a_closed_ingest_resumes_until_the_next_gc(tmp_path):
    svc = ImageService(str(tmp_path / "engine"))
    w = svc.content.writer("resumable")
    w.write(b"first half")
    w.close()
    again = svc.content.writer("resumable")
    assert again.offset == len(b"first half")
    svc.gc()                                 # held by the open writer: kept
    assert list(svc.content.ingests()) == [("resumable", len(b"first half"))]
    again.close()
    svc.gc()
    assert list(svc.content.ingests()) == []
    # a writer of the same ref after the collection starts from nothing
    fresh = svc.content.writer("resumable")
    assert fresh.offset == 0
    fresh.abort()
