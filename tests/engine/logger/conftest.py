"""Real containers for the log tests: busybox bundles (pyrunc.engine.busybox, through the
suite's make_bundle) run by a TaskManager whose shim writes the json-file log; every task is
deleted and the root checked empty at teardown."""
import os
import uuid

import pytest

from pyrunc.containerd.shim.client import shim_binary
from pyrunc.containerd.tasks import TaskManager


def new_id():
    return "logt-%s" % uuid.uuid4().hex[:12]


@pytest.fixture
def manager(tmp_path, private_mount_ns):
    try:
        shim_binary()
    except Exception as e:      # noqa: BLE001 - a missing shim is a broken install
        pytest.fail(str(e))
    root = str(tmp_path / "tasks-root")
    mgr = TaskManager(root, runtime="pyrunc")
    yield mgr
    ids = []
    for task in mgr.list():
        ids.append(task.id)
        task.delete(force=True)
    assert os.listdir(os.path.join(root, "tasks")) == []
    leftovers = [os.path.join(base, cid) for base in _cgroup_dirs() for cid in ids
                 if os.path.exists(os.path.join(base, cid))]
    assert leftovers == []


def _cgroup_dirs():
    top = "/sys/fs/cgroup"
    dirs = [top]
    for name in os.listdir(top):
        path = os.path.join(top, name)
        if os.path.isdir(path) and not os.path.islink(path):
            dirs.append(path)
    return dirs


@pytest.fixture
def bundle(make_bundle):
    def make(args):
        def change(spec):
            spec["mounts"] = [m for m in spec["mounts"] if m["type"] != "cgroup"]
        return make_bundle(args, mutate=change)
    return make
