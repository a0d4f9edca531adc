"""Collecting the exit status: once the container has exited the manager collects it and the
shim exits (no shim per stopped container); state, wait and logs are then answered from the
state directory's files, also by a new manager process, and delete runs the runtime's delete."""
import json
import os
import subprocess
import sys

import pytest

from pyrunc import errors
from pyrunc.containerd.tasks import RUNNING, STOPPED

from .conftest import leftover_cgroups, new_id
from .test_restart import wait_for

READ_BACK = r"""
import json, sys
from pyrunc.containerd.tasks import TaskManager
task = TaskManager(sys.argv[1], runtime=sys.argv[2]).get(sys.argv[3])
st, ex = task.state(), task.wait(timeout=5)
print(json.dumps({"status": st.status, "exit_status": st.exit_status, "exited_at": st.exited_at,
                  "shim_pid": st.shim_pid, "wait": [ex.status, ex.exited_at],
                  "logs": [[e.stream, e.text] for e in task.logs()]}))
"""


def parent_of(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def vanished(pid):
    """Gone from /proc altogether: exited and reaped (not a zombie left to anyone)."""
    return not os.path.exists("/proc/%d" % pid)


def runtime_state_ids(manager):
    base = os.path.join(manager.root, "runtime")
    return [cid for name in os.listdir(base) for cid in os.listdir(os.path.join(base, name))]


def test_wait_collects_and_the_shim_exits(manager, bundle):
    cid = new_id()
    task = manager.create(cid, bundle(["sh", "-c", "echo out; echo err >&2; sleep 0.3; exit 5"]))
    task.start()
    st = task.state()
    assert st.status == RUNNING
    shim = st.shim_pid
    assert parent_of(shim) != os.getpid()        # double-forked: never the manager's child
    with pytest.raises(errors.FailedPrecondition):
        task.client.call("collect")              # not before the exit
    exit_status = task.wait(timeout=20)
    assert exit_status.status == 5
    wait_for(lambda: vanished(shim), timeout=10)
    names = set(os.listdir(task.state_dir))
    assert "exit" in names and not {"shim.sock", "shim.pid"} & names
    assert cid in runtime_state_ids(manager)     # the runtime's delete waits for the engine

    out = subprocess.run([sys.executable, "-c", READ_BACK, manager.root, manager.runtime, cid],
                         capture_output=True, text=True, check=True).stdout
    seen = json.loads(out)
    assert (seen["status"], seen["exit_status"], seen["shim_pid"]) == (STOPPED, 5, None)
    assert seen["wait"] == [5, exit_status.exited_at] and seen["exited_at"] == exit_status.exited_at
    assert seen["logs"] == [["stdout", "out\n"], ["stderr", "err\n"]]

    assert task.delete().status == 5
    assert not os.path.exists(task.state_dir)
    assert cid not in runtime_state_ids(manager)
    assert not os.path.exists(os.path.join(manager.locks_dir, cid))
    assert leftover_cgroups([cid]) == []
    assert [e["type"] for _, e in manager.events() if e["id"] == cid] == [
        "create", "start", "exit", "delete"]


def test_state_collects_and_delete_from_a_new_process(manager, bundle):
    cid = new_id()
    task = manager.create(cid, bundle(["sh", "-c", "echo bye; exit 2"]))
    shim = task.state().shim_pid
    task.start()
    wait_for(lambda: task.state().status == STOPPED)
    wait_for(lambda: vanished(shim), timeout=10)
    st = task.state()
    assert (st.status, st.exit_status, st.shim_pid) == (STOPPED, 2, None)
    assert [e.text for e in task.logs()] == ["bye\n"]
    script = ("import sys; from pyrunc.containerd.tasks import TaskManager; "
              "print(TaskManager(sys.argv[1], runtime=sys.argv[2]).get(sys.argv[3])"
              ".delete().status)")
    out = subprocess.run([sys.executable, "-c", script, manager.root, manager.runtime, cid],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "2"
    assert not os.path.exists(task.state_dir)
    assert cid not in runtime_state_ids(manager)
    assert leftover_cgroups([cid]) == []
    with pytest.raises(errors.NotFound):
        manager.get(cid)
