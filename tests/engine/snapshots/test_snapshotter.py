"""One suite for every snapshotter backend: the same behaviour over overlayfs and copying."""
import io
import os
import stat

import pytest

from engine.layers.tarbuild import entry, make_tar
from pyrunc.engine.layers import apply_layer
from pyrunc.engine.snapshots import ACTIVE, COMMITTED, VIEW, open_snapshotter
from pyrunc.engine.snapshots.mount import mount_all, unmount
from pyrunc.errors import AlreadyExists, FailedPrecondition, NotFound

pytestmark = pytest.mark.usefixtures("private_mount_ns")


@pytest.fixture(params=["overlayfs", "native"])
def sn(request, tmp_path):
    return open_snapshotter(str(tmp_path / "snapshots"), request.param)


@pytest.fixture
def mounted(tmp_path):
    """mounted(mounts) -> a directory with the mounts on it, unmounted after the test."""
    targets = []

    def mount(mounts):
        target = tmp_path / ("mnt%d" % len(targets))
        target.mkdir()
        mount_all(mounts, str(target))
        targets.append(str(target))
        return target

    yield mount
    for t in reversed(targets):
        unmount(t)


def layer(sn, name, parent, entries):
    key = "extract-" + name
    sn.prepare(key, parent)
    apply_layer(io.BytesIO(make_tar(entries)), sn.writable_dir(key), whiteouts=sn.whiteouts,
                lowers=sn.lower_dirs(key))
    sn.commit(name, key)
    return name


def base_chain(sn):
    layer(sn, "l1", None, [entry("bin", "dir"), entry("bin/sh", data=b"sh", mode=0o755),
                           entry("etc", "dir"), entry("etc/passwd", data=b"root"),
                           entry("etc/old", data=b"old"), entry("var", "dir"),
                           entry("var/cache", "dir"), entry("var/cache/x", data=b"x")])
    layer(sn, "l2", "l1", [entry("etc/.wh.old"), entry("var/cache/.wh..wh..opq"),
                           entry("var/cache/y", data=b"y"), entry("etc/new", data=b"new")])


def test_prepare_commit_chain_merged_view(sn, mounted):
    base_chain(sn)
    root = mounted(sn.prepare("c1", "l2"))
    assert sorted(os.listdir(root / "etc")) == ["new", "passwd"]
    assert os.listdir(root / "var/cache") == ["y"]
    assert (root / "bin/sh").read_bytes() == b"sh"
    (root / "etc/written").write_text("w")          # writable
    (root / "bin/sh").unlink()
    assert sn.stat("c1").kind == ACTIVE and sn.stat("c1").parent == "l2"
    assert sn.stat("l2").kind == COMMITTED and sn.stat("l2").parent == "l1"


def test_view_is_read_only(sn, mounted):
    base_chain(sn)
    root = mounted(sn.view("v", "l2"))
    assert sn.stat("v").kind == VIEW
    assert sorted(os.listdir(root / "etc")) == ["new", "passwd"]
    with pytest.raises(OSError) as e:
        (root / "etc/x").write_text("x")
    assert e.value.errno == 30      # EROFS
    with pytest.raises(FailedPrecondition, match="not active"):
        sn.commit("nope", "v")


def test_mounts_again_and_empty_active(sn, mounted):
    root = mounted(sn.prepare("empty"))
    assert os.listdir(root) == []
    (root / "f").write_text("1")
    again = mounted(sn.mounts("empty"))
    assert (again / "f").read_text() == "1"


def test_errors(sn):
    base_chain(sn)
    sn.prepare("a", "l2")
    with pytest.raises(AlreadyExists, match="snapshot a: already exists"):
        sn.prepare("a", "l2")
    with pytest.raises(NotFound, match="snapshot nosuch: not found"):
        sn.prepare("b", "nosuch")
    with pytest.raises(FailedPrecondition, match="parent a is not committed"):
        sn.prepare("b", "a")
    with pytest.raises(FailedPrecondition, match="snapshot l2: cannot remove: it has 1 child"):
        sn.remove("l2")
    with pytest.raises(AlreadyExists):
        sn.commit("l1", "a")
    with pytest.raises(FailedPrecondition, match="committed snapshots cannot be mounted"):
        sn.mounts("l1")
    with pytest.raises(NotFound):
        sn.remove("nosuch")


def test_remove_and_walk(sn):
    base_chain(sn)
    sn.prepare("a", "l2", labels={"k": "v"})
    assert [(i.name, i.kind) for i in sn.walk()] == [("l1", COMMITTED), ("l2", COMMITTED),
                                                   ("a", ACTIVE)]
    assert sn.stat("a").labels == {"k": "v"}
    for key in ("a", "l2", "l1"):
        sn.remove(key)
    assert list(sn.walk()) == []
    assert os.listdir(os.path.join(sn.root, "snapshots")) == []


def test_usage(sn):
    layer(sn, "big", None, [entry("f", data=b"x" * 100_000), entry("g", data=b"y")])
    u = sn.usage("big")
    assert u.size >= 100_000 and u.inodes == 3


def test_metadata_persists(sn):
    base_chain(sn)
    again = type(sn)(sn.root)
    assert [i.name for i in again.walk()] == ["l1", "l2"]
    assert again.lower_dirs("l2") == sn.lower_dirs("l2")


def test_unpacked_metadata_survives_commit(sn, mounted):
    layer(sn, "m", None, [entry("d", "dir", mode=0o710, uid=7, gid=8),
                          entry("d/f", data=b"f", mode=0o640, uid=9, gid=10),
                          entry("d/h", "link", linkname="d/f")])
    root = mounted(sn.view("v", "m"))
    st = os.lstat(root / "d/f")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_nlink) == (0o640, 9, 10, 2)
    st = os.lstat(root / "d")
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o710, 7)


def tree(path):
    out = {}
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            body = open(p, "rb").read() if stat.S_ISREG(st.st_mode) else \
                os.readlink(p) if stat.S_ISLNK(st.st_mode) else None
            out[os.path.relpath(p, path)] = (st.st_mode, st.st_uid, body)
    return out


def test_diff_of_changes_made_through_the_mount(sn, mounted, tmp_path):
    """What a container changes, written by diff() and applied over the parent, gives the
    container's tree again (the basis of docker commit)."""
    base_chain(sn)
    root = mounted(sn.prepare("c", "l2"))
    (root / "etc/passwd").write_text("changed")
    (root / "etc/new").unlink()
    import shutil
    shutil.rmtree(root / "var/cache")
    (root / "var/cache").write_text("now a file")
    (root / "bin/sh").chmod(0o700)
    (root / "opt/app").mkdir(parents=True)
    (root / "opt/app/run").write_text("run")
    os.symlink("run", root / "opt/app/link")
    expected = tree(root)
    buf = io.BytesIO()
    sn.diff("c", buf)
    sn.prepare("replay", "l2")
    apply_layer(io.BytesIO(buf.getvalue()), sn.writable_dir("replay"), whiteouts=sn.whiteouts,
                lowers=sn.lower_dirs("replay"))
    again = mounted(sn.mounts("replay"))
    assert tree(again) == expected


REMOVE = """
import sys
from pyrunc.engine.snapshots import open_snapshotter
open_snapshotter(sys.argv[1], sys.argv[2]).remove("big")
"""


def test_a_remove_killed_midway_is_finished_by_remove_and_cleanup(sn):
    """A real process SIGKILLed while deleting a snapshot's files: the record survives and
    removes again; cleanup() deletes the half-deleted directory."""
    import subprocess
    import sys
    import time
    sn.prepare("big", None)
    apply_layer(io.BytesIO(make_tar([entry("d%02d/f%04d" % (i % 40, i), data=b"")
                                     for i in range(8000)])), sn.writable_dir("big"))
    base = os.path.join(sn.root, "snapshots")
    proc = subprocess.Popen([sys.executable, "-c", REMOVE, os.path.dirname(sn.root), sn.name])
    try:
        deadline = time.monotonic() + 20
        while not any(n.startswith("rm-") for n in os.listdir(base)):
            assert proc.poll() is None, "the remove finished before it could be killed"
            assert time.monotonic() < deadline
        proc.kill()
    finally:
        proc.wait(10)
    assert [i.name for i in sn.walk()] == ["big"]      # the record is still there
    sn.remove("big")
    assert [n for n in os.listdir(base)] != []          # the half-deleted files are too
    assert sn.cleanup() and os.listdir(base) == []
    assert sn.cleanup() == []
