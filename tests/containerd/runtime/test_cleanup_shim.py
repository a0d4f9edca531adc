"""containerd's runc shim cleaning up after itself (``containerd-shim-runc-v2 ... delete``).

When a shim is gone (dockerd or containerd stopped while containers run, a shim killed),
containerd runs the shim binary once more with the action ``delete`` in the task's bundle
directory. That process reads the runtime's name (``runtime``) and options (``options.json``:
its state root is ``<root>/<namespace>``) and calls ``<runtime> --root R --log BUNDLE/log.json
--log-format json delete --force ID``, then unmounts the rootfs and answers containerd.

Here the shim's delete action is run by hand on both runtimes, the way containerd runs it; what
runc leaves is the expected result. The shim's own warnings are not compared: containerd 1.6's
delete action reaps its children in a signal loop while go-runc waits for the same child, and
when the loop wins, go-runc reports "exit status 255" for a runtime that exited 0 (seen with
runc and crun too). What the runtime itself says is in its --log file.
"""
import json
import os
import shutil
import subprocess
import time

import pytest

from support import exited, need, unique_id, wait_for_status

pytestmark = pytest.mark.peer

SHIM = "containerd-shim-runc-v2"


def _shim_delete(runtime, cid, tmp_path):
    """Run the shim's delete action for ``cid`` the way containerd does; the bundle directory
    it works in (named ``cid``, holding ``runtime`` and ``options.json``) is returned too."""
    shim = need(SHIM)
    parent, namespace = os.path.split(runtime.root)
    task_dir = tmp_path / "tasks" / namespace / cid
    task_dir.mkdir(parents=True)
    (task_dir / "runtime").write_text(runtime.binary)
    (task_dir / "options.json").write_text(json.dumps({"root": parent}))
    r = subprocess.run([shim, "-namespace", namespace, "-id", cid,
                        "-address", str(tmp_path / "no-containerd.sock"), "delete"],
                       cwd=str(task_dir), capture_output=True, timeout=60)
    return r, task_dir


def _runtime_errors(task_dir):
    """The error lines the runtime wrote to its --log during the shim's delete."""
    path = task_dir / "log.json"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [entry for entry in lines if entry.get("level") in ("error", "fatal")]


def test_shim_cleanup_removes_a_running_container(runtime, make_bundle, tmp_path):
    """The shim died with its container running: its cleanup kills and removes the container."""
    bundle = make_bundle(["sleep", "1000"])
    cid = unique_id("shimdel")
    runtime("create", "--bundle", bundle, cid)
    runtime("start", cid)
    wait_for_status(runtime, cid, "running")
    pid = json.loads(runtime("state", cid).stdout)["pid"]
    with open("/proc/%d/cgroup" % pid) as f:     # the container's pids cgroup (v1 here)
        cgroup = next(line.split(":", 2)[2] for line in f.read().splitlines()
                      if line.split(":")[1] == "pids")
    cgroup_dir = "/sys/fs/cgroup/pids" + cgroup
    assert os.path.isdir(cgroup_dir)

    r, task_dir = _shim_delete(runtime, cid, tmp_path)

    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout, "the shim's delete action answered nothing"
    assert _runtime_errors(task_dir) == []
    deadline = time.monotonic() + 10
    while not exited(pid):
        assert time.monotonic() < deadline, "the container's init %d outlived the cleanup" % pid
        time.sleep(0.02)
    state = runtime("state", cid, check=False)
    assert state.returncode != 0 and "does not exist" in state.stderr
    assert not os.path.exists(os.path.join(runtime.root, cid))
    assert not os.path.exists(cgroup_dir)


@pytest.mark.parametrize("root_exists", [True, False], ids=["empty-root", "no-root"])
def test_shim_cleanup_of_a_container_already_gone(runtime, tmp_path, root_exists):
    """The usual case when dockerd stops its containers first: the runtime's state is already
    deleted (or its whole root is gone with the daemon's run directory). The runtime must
    succeed silently: no error in its log, no state left under the root."""
    if root_exists:
        os.makedirs(runtime.root, exist_ok=True)
    else:
        shutil.rmtree(runtime.root, ignore_errors=True)
    cid = unique_id("shimdel")

    r, task_dir = _shim_delete(runtime, cid, tmp_path)

    assert r.returncode == 0, r.stderr.decode()
    assert _runtime_errors(task_dir) == []
    log = task_dir / "log.json"
    assert not log.exists() or log.read_text() == ""
    # runc makes a missing root (empty, 0700) as every command of it does; pyrunc leaves it out
    assert not os.path.exists(runtime.root) or os.listdir(runtime.root) == []

