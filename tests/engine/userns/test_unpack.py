"""Layers unpacked for a remapped root: every owner on disk is the container's shifted by the
mapping (read back with lstat), ids outside the map refuse the layer and leave nothing, and
an image store belongs to one mapping."""
import io
import os
import sys

import pytest

from pyrunc.engine.idmap import IDMap, IDRange
from pyrunc.engine.images import ImageService, build_builtin
from pyrunc.engine.images.importer import ingest_layer
from pyrunc.engine.layers import LayerError, apply_layer
from pyrunc.engine.snapshots.mount import mount_all, unmount
from pyrunc.errors import FailedPrecondition

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "layers"))
from tarbuild import entry, make_tar  # noqa: E402

UID, GID = 300000, 400000
MAP = IDMap([IDRange(0, UID, 65536)], [IDRange(0, GID, 65536)], "u", "g")
# two ranges: container ids 65536... go to a second host range
SPLIT = IDMap([IDRange(0, UID, 65536), IDRange(65536, 900000, 1000)],
              [IDRange(0, GID, 70000)], "u", "g")


def owners(root, names):
    return {n: (os.lstat(os.path.join(root, n)).st_uid, os.lstat(os.path.join(root, n)).st_gid)
            for n in names}


LAYER = [
    entry("etc", "dir", uid=0, gid=0),
    entry("etc/passwd", data=b"root:x:0:0::/:/bin/sh\n"),
    entry("home/u/file", data=b"x", uid=1000, gid=1001),     # home, home/u: implicit parents
    entry("home/u/link", "symlink", linkname="/nowhere", uid=1000, gid=1000),
    entry("home/u/hard", "link", linkname="home/u/file"),
    entry("nobody", data=b"", uid=65534, gid=65534),
    entry("fifo", "fifo", uid=5, gid=6),
    entry("dev/null", "char", dev=(1, 3), mode=0o666),
]


def test_apply_shifts_every_owner(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    apply_layer(io.BytesIO(make_tar(LAYER)), str(root), idmap=MAP)
    assert owners(str(root), ["", "etc", "etc/passwd", "home", "home/u", "home/u/file",
                              "home/u/link", "home/u/hard", "nobody", "fifo", "dev/null"]) == {
        "": (UID, GID), "etc": (UID, GID), "etc/passwd": (UID, GID),
        "home": (UID, GID), "home/u": (UID, GID),
        "home/u/file": (UID + 1000, GID + 1001), "home/u/link": (UID + 1000, GID + 1000),
        "home/u/hard": (UID + 1000, GID + 1001), "nobody": (UID + 65534, GID + 65534),
        "fifo": (UID + 5, GID + 6), "dev/null": (UID, GID)}


def test_without_a_map_owners_are_the_layers(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    apply_layer(io.BytesIO(make_tar(LAYER)), str(root))
    assert owners(str(root), ["", "home/u/file", "nobody"]) == {
        "": (0, 0), "home/u/file": (1000, 1001), "nobody": (65534, 65534)}


def test_ids_past_the_first_range(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    apply_layer(io.BytesIO(make_tar([entry("a", uid=65536 + 999, gid=69999)])), str(root),
                idmap=SPLIT)
    assert owners(str(root), ["a"]) == {"a": (900999, GID + 69999)}


@pytest.mark.parametrize("uid, gid, what", [(65536, 0, "uid 65536"), (0, 65536, "gid 65536"),
                                            (2 ** 32 - 2, 0, "uid 4294967294")])
def test_an_id_outside_the_map_refuses_the_layer(tmp_path, uid, gid, what):
    root = tmp_path / "root"
    root.mkdir()
    layer = make_tar([entry("ok"), entry("bad/file", uid=uid, gid=gid)])
    with pytest.raises(LayerError, match="layer: bad/file: userns-remap: container %s cannot "
                                         "be mapped" % what):
        apply_layer(io.BytesIO(layer), str(root), idmap=MAP)


def test_overlay_parents_made_for_a_member_keep_the_lower_owner(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    lower.mkdir()
    upper.mkdir()
    apply_layer(io.BytesIO(make_tar([entry("d", "dir", uid=7, gid=8)])), str(lower),
                whiteouts="overlay", idmap=MAP)
    apply_layer(io.BytesIO(make_tar([entry("d/f", uid=9, gid=9), entry("n/f")])), str(upper),
                whiteouts="overlay", lowers=[str(lower)], idmap=MAP)
    # d copied up from the lower (already shifted, not shifted twice); n made as root's
    assert owners(str(upper), ["", "d", "d/f", "n"]) == {
        "": (UID, GID), "d": (UID + 7, GID + 8), "d/f": (UID + 9, GID + 9), "n": (UID, GID)}


@pytest.fixture(params=["overlayfs", "native"])
def remapped_svc(request, tmp_path, private_mount_ns):
    return ImageService(str(tmp_path / MAP.dir_name / "image"), request.param, idmap=MAP)


def test_a_remapped_store_unpacks_shifted_and_prepares_a_root_of_its_root(remapped_svc,
                                                                        tmp_path):
    build_builtin(remapped_svc, "busybox")
    target = tmp_path / "rootfs"
    target.mkdir()
    mount_all(remapped_svc.prepare_rootfs("c1", "busybox:latest"), str(target))
    try:
        assert owners(str(target), ["", "bin", "bin/busybox", "bin/sh", "etc/passwd", "tmp"]) \
            == {n: (UID, GID) for n in ["", "bin", "bin/busybox", "bin/sh", "etc/passwd", "tmp"]}
    finally:
        unmount(str(target))
    # the container's writable root directory too
    assert os.stat(remapped_svc.snapshotter.writable_dir("c1")).st_uid == UID


def test_a_store_is_for_one_mapping(remapped_svc, tmp_path):
    build_builtin(remapped_svc, "busybox")
    root = remapped_svc.root
    other = IDMap([IDRange(0, 500000, 65536)], [IDRange(0, 500000, 65536)])
    with pytest.raises(FailedPrecondition, match="unpacked for remapped root 300000.400000, "
                                                 "not for no userns-remap"):
        ImageService(root)
    with pytest.raises(FailedPrecondition, match="unpacked for remapped root 300000.400000, "
                                                 "not for remapped root 500000.500000"):
        ImageService(root, idmap=other)
    assert ImageService(root, idmap=MAP).images()        # the same mapping: fine
    plain = ImageService(str(tmp_path / "plain"), remapped_svc.snapshotter.name)
    build_builtin(plain, "busybox")
    for backend in ("overlayfs", "native"):       # the other backend has no snapshot yet
        with pytest.raises(FailedPrecondition, match="unpacked for no userns-remap, not for "
                                                     "remapped root 300000.400000"):
            ImageService(plain.root, backend, idmap=MAP)
    assert not os.path.exists(os.path.join(plain.root, "remapped-root"))


def test_a_layer_outside_the_map_leaves_no_snapshot(remapped_svc):
    layer = make_tar([entry("etc/passwd", data=b"x"), entry("big", uid=100000, gid=0)])
    with remapped_svc.holding_gc():
        desc, diff_id, _ = ingest_layer(remapped_svc.content, io.BytesIO(layer))
    config = {"architecture": "amd64", "os": "linux", "config": {},
              "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    with pytest.raises(LayerError, match="big: userns-remap: container uid 100000"):
        remapped_svc.put_image(config, [desc], ["bad:latest"])
    assert list(remapped_svc.snapshotter.walk()) == []
    assert remapped_svc.images() == []
