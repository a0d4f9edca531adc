"""A running container swaps a directory of its tree for a symbolic link to a host directory,
in a loop, while the daemon writes that tree as a layer (the snapshotter's diff, write_tree):
the layer never holds the host file's content (the class of docker cp's CVE-2018-15664).

The oracle is the host file's content, a random token written by the test: it may appear in a
layer only if the daemon followed the container's link out of its tree. The container's own
decoy file of the same name must be seen, so the walk did meet the directory in its window.
"""
import io
import os
import tarfile
import time

import pytest

from pyrunc.engine import Engine
from pyrunc.engine.layers import write_tree

pytestmark = pytest.mark.usefixtures("private_mount_ns")

SWAPPER = ('mkdir -p /w; while :; do rm -rf /w/d; mkdir /w/d; echo decoy > /w/d/secret; '
           'rm -rf /w/d; ln -s "$HOSTDIR" /w/d; done')
SECONDS = 12


@pytest.fixture(params=["overlayfs", "native"])
def racing(request, tmp_path, exec_root):
    engine = Engine(str(tmp_path / "root"), exec_root=exec_root, snapshotter=request.param)
    if engine.images.snapshotter.name != request.param:
        pytest.skip("the %s snapshotter is not available here" % request.param)
    engine.load_builtin("busybox")
    hostdir = tmp_path / "hostdir"
    hostdir.mkdir()
    token = "HOST-SECRET-%s" % os.urandom(12).hex()
    (hostdir / "secret").write_text(token + "\n")
    cid = engine.containers.create({"Image": "busybox", "Cmd": ["sh", "-c", SWAPPER],
                                    "Env": ["HOSTDIR=%s" % hostdir]})["Id"]
    try:
        engine.containers.start(cid)
        yield engine, cid, token
    finally:
        engine.containers.remove(cid, force=True)


def _members(data):
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
        for m in tar:
            f = tar.extractfile(m) if m.isfile() else None
            out[m.name] = f.read() if f is not None else None
    return out


def test_layer_of_a_racing_container_never_holds_the_host_file(racing):
    engine, cid, token = racing
    snapshotter = engine.images.snapshotter
    key = engine.containers.get(cid).snapshot_key
    upper = snapshotter.writable_dir(key)
    decoys = rounds = 0
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        for write in (lambda out: snapshotter.diff(key, out),
                      lambda out: write_tree(upper, out)):
            buf = io.BytesIO()
            write(buf)
            data = buf.getvalue()
            assert token.encode() not in data, "the host file was read into the layer"
            members = _members(data)
            if members.get("w/d/secret") == b"decoy\n":
                decoys += 1
            rounds += 1
        assert engine.containers.inspect(cid)["State"]["Running"]
    print("%d layers written, %d with the container's file in its window" % (rounds, decoys))
    assert decoys > 0, "the walk never met the directory: the race was not exercised"
