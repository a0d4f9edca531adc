"""The engine's parent cgroup (/pyrunc) does not outlive its containers."""
import glob
import os


def _parents():
    return [p for p in glob.glob("/sys/fs/cgroup/pyrunc") + glob.glob("/sys/fs/cgroup/*/pyrunc")
            if os.path.isdir(p)]


def test_the_parent_cgroup_goes_with_the_last_container(fresh_engine):
    fresh_engine.load_builtin("busybox")
    c = fresh_engine.containers
    cid = c.create({"Image": "busybox", "Cmd": ["sleep", "60"]})["Id"]
    c.start(cid)
    assert any(os.path.isdir(os.path.join(p, cid)) for p in _parents())
    c.remove(cid, force=True)
    # a parent may stay only while it still holds some (other test's) container
    for parent in _parents():
        children = [d for d in os.listdir(parent) if os.path.isdir(os.path.join(parent, d))]
        assert children, "%s left empty" % parent
