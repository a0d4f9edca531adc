import hashlib
import json
import os
import signal
import subprocess
import sys

import pytest
from hypothesis import given, strategies as st

from pyrunc.engine.content import ContentStore, collect, digest_bytes, parse_digest
from pyrunc.errors import InvalidArgument, NotFound, Unavailable


@pytest.fixture
def cs(tmp_path):
    return ContentStore(str(tmp_path / "content"))


def test_write_commit_read(cs):
    data = b"hello content" * 1000
    digest = digest_bytes(data)
    w = cs.writer("ref-1", expected_size=len(data))
    w.write(data[:100])
    w.write(data[100:])
    assert w.offset == len(data)
    assert w.commit(digest, len(data)) == digest
    assert cs.exists(digest)
    assert cs.info(digest) == (digest, len(data))
    assert cs.read(digest) == data
    with cs.open(digest) as f:
        assert f.read(5) == b"hello"
    assert [i.digest for i in cs.walk()] == [digest]
    assert list(cs.ingests()) == []
    cs.delete(digest)
    assert not cs.exists(digest)
    with pytest.raises(NotFound, match="content sha256:.*not found"):
        cs.info(digest)


@pytest.mark.parametrize("size_delta,digest_ok,match", [
    (1, True, "size mismatch"), (0, False, "digest mismatch")])
def test_mismatch_removes_ingest(cs, size_delta, digest_ok, match):
    data = b"abc"
    digest = digest_bytes(data) if digest_ok else digest_bytes(b"other")
    w = cs.writer("bad")
    w.write(data)
    with pytest.raises(InvalidArgument, match=match):
        w.commit(digest, len(data) + size_delta)
    assert list(cs.walk()) == []
    assert os.listdir(os.path.join(cs.root, "ingest")) == []


def test_write_past_expected_size_refused(cs):
    w = cs.writer("r", expected_size=2)
    with pytest.raises(InvalidArgument, match="more than the expected 2 bytes"):
        w.write(b"abc")
    w.abort()


def test_killed_writer_leaves_no_blob_and_resumes(cs):
    data = os.urandom(3 << 20)
    digest = digest_bytes(data)
    script = (
        "import sys, time\n"
        "from pyrunc.engine.content import ContentStore\n"
        "w = ContentStore(sys.argv[1]).writer('layer-x')\n"
        "w.write(sys.stdin.buffer.read(1 << 20))\n"
        "print('written', flush=True)\n"
        "time.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-c", script, cs.root], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    p.stdin.write(data[:1 << 20])
    p.stdin.close()
    assert p.stdout.readline().strip() == b"written"
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not cs.exists(digest)
    assert list(cs.walk()) == []
    assert list(cs.ingests()) == [("layer-x", 1 << 20)]
    w = cs.writer("layer-x")
    assert w.offset == 1 << 20
    w.write(data[w.offset:])
    assert w.commit(digest, len(data)) == digest
    assert cs.read(digest) == data
    assert list(cs.ingests()) == []


def test_second_writer_for_same_ref_is_refused(cs):
    w = cs.writer("same")
    with pytest.raises(Unavailable, match="locked"):
        cs.writer("same")
    w.abort()
    cs.writer("same").abort()


def test_commit_of_existing_blob_is_idempotent(cs):
    d = cs.put(b"x")
    w = cs.writer("again")
    w.write(b"x")
    assert w.commit(d, 1) == d
    assert [i.digest for i in cs.walk()] == [d]


def test_gc_keeps_reachable_and_leased(cs):
    layer = cs.put(b"layer")
    config = cs.put(b'{"rootfs":{}}')
    orphan = cs.put(b"orphan")
    leased = cs.put(b"leased")
    manifest = cs.put(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"digest": config, "size": 1},
        "layers": [{"digest": layer, "size": 5}]}).encode())
    index = cs.put(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"digest": manifest, "size": 1}]}).encode())
    with cs.lease() as lease:
        lease.add(leased)
        deleted, freed = collect(cs, [index])
        assert deleted == [orphan] and freed == len(b"orphan")
        assert cs.exists(leased)
    deleted, _ = collect(cs, [index])
    assert deleted == [leased]
    assert {i.digest for i in cs.walk()} == {index, manifest, config, layer}


@pytest.mark.parametrize("bad", ["sha256:xyz", "md5:" + "0" * 32, "sha256:" + "a" * 63, "", None,
                                 "SHA256:" + "a" * 64])
def test_bad_digest(cs, bad):
    with pytest.raises(InvalidArgument, match="invalid digest"):
        cs.exists(bad)


@given(st.binary(max_size=256))
def test_digest_round_trip(data):
    d = digest_bytes(data)
    assert parse_digest(d) == ("sha256", hashlib.sha256(data).hexdigest())


def test_full_disk_is_a_clear_error(tmp_path, private_mount_ns):
    import subprocess
    from pyrunc.errors import SystemFailure
    root = tmp_path / "small"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(root)], check=True)
    try:
        cs = ContentStore(str(root))
        w = cs.writer("big")
        with pytest.raises(SystemFailure, match="content ingest 'big': write: no space left"):
            w.write(b"x" * (1 << 20))
        w.abort()
        assert list(cs.walk()) == [] and list(cs.ingests()) == []
    finally:
        subprocess.run(["umount", str(root)], check=True)


def test_concurrent_puts_of_the_same_blob(cs):
    import threading
    data = os.urandom(5 << 20)
    errors, digests = [], []

    def put():
        try:
            digests.append(ContentStore(cs.root).put(data))
        except Exception as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=put) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert set(digests) == {digest_bytes(data)}
    assert cs.read(digest_bytes(data)) == data
    assert list(cs.ingests()) == []


def test_collect_removes_ingests_nobody_holds(cs):
    held = cs.writer("held")
    held.write(b"12345")
    left = cs.writer("left")
    left.write(b"678")
    left.close()                             # no writer any more
    deleted, freed = collect(cs, [])
    assert deleted == [] and freed == 3
    assert list(cs.ingests()) == [("held", 5)]
    assert held.commit() == digest_bytes(b"12345")
    fresh = cs.writer("left")
    assert fresh.offset == 0
    fresh.abort()


def test_a_released_or_abandoned_lease_holds_nothing(cs):
    blob = cs.put(b"leased")
    lease = cs.lease()
    lease.add(blob)
    lease.add_snapshot("sha256:" + "1" * 64)
    assert cs.live_leases() == ({blob}, {"sha256:" + "1" * 64})
    # a lease file nobody holds (its holder died) is dropped by the next look
    with open(os.path.join(cs.root, "leases", "dead"), "w") as f:
        f.write("content %s\n" % digest_bytes(b"other"))
    assert cs.live_leases() == ({blob}, {"sha256:" + "1" * 64})
    assert sorted(os.listdir(os.path.join(cs.root, "leases"))) == [lease.id]
    lease.release()
    assert cs.live_leases() == (set(), set())
    with pytest.raises(InvalidArgument, match="released"):
        lease.add(blob)
    assert collect(cs, [])[0] == [blob]


def test_collect_removes_an_ingest_left_without_its_lock_file(cs):
    w = cs.writer("crashed-early")
    w.write(b"x")
    w.close()
    os.unlink(os.path.join(w.dir, "lock"))   # as if killed before making it
    collect(cs, [])
    assert list(cs.ingests()) == [] and os.listdir(os.path.join(cs.root, "ingest")) == []
