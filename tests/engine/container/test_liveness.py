"""Reads that know a task runs without asking its shim, listings that re-read only what
changed, and waits that another process's start or removal ends.

Oracles: the kernel (a pidfd turns readable once the process it names has exited; SIGKILL's
status is 128 + 9), a shim stopped with SIGSTOP (a request to it gets no answer while it is
stopped), and a second process on the same root making the changes.
"""
import os
import select
import signal
import subprocess
import sys
import threading
import time

import pytest

from pyrunc.engine import Engine

pytestmark = pytest.mark.usefixtures("private_mount_ns")


def _sleeper(engine, runtime="pyrunc", **host_config):
    cs = engine.containers
    cid = cs.create({"Image": "busybox", "Cmd": ["sleep", "1000"]},
                    dict(host_config, Runtime=runtime, NetworkMode="none"))["Id"]
    cs.start(cid)
    return cid


def _rows(engine, **kw):
    return {row["Id"]: row for row in engine.containers.list(**kw)}


def _await_exit(pid):
    """Until the process ``pid`` has exited (the kernel's word: its pidfd turns readable)."""
    fd = os.pidfd_open(pid)
    try:
        select.select([fd], [], [], 30)
    finally:
        os.close(fd)


def test_a_process_killed_outside_is_listed_exited_with_its_code(engine, runtime):
    cid = _sleeper(engine, runtime)
    other = _sleeper(engine, runtime)
    assert {cid, other} <= set(_rows(engine))
    pid = engine.containers.inspect(cid)["State"]["Pid"]
    fd = os.pidfd_open(pid)
    try:
        signal.pidfd_send_signal(fd, signal.SIGKILL)
        select.select([fd], [], [], 30)
    finally:
        os.close(fd)
    running = _rows(engine)
    assert cid not in running and other in running
    row = _rows(engine, all=True)[cid]
    assert row["State"] == "exited" and row["Status"].startswith("Exited (137) ")
    assert engine.containers.inspect(cid)["State"]["ExitCode"] == 137
    assert engine.containers.inspect(other)["State"]["Running"] is True


def test_a_container_that_exits_by_itself_is_listed_exited(engine):
    cs = engine.containers
    cid = cs.create({"Image": "busybox", "Cmd": ["sh", "-c", "read x; exit 7"],
                     "OpenStdin": True}, {"NetworkMode": "none"})["Id"]
    cs.start(cid)
    pid = cs.inspect(cid)["State"]["Pid"]
    assert _rows(engine)[cid]["State"] == "running"
    attachment = cs.attach(cid)
    fd = os.pidfd_open(pid)
    try:
        attachment.write(b"go\n")
        select.select([fd], [], [], 30)         # the kernel's word: it has exited
    finally:
        os.close(fd)
        attachment.close()
    assert cid not in _rows(engine)
    assert _rows(engine, all=True)[cid]["Status"].startswith("Exited (7) ")


def test_listing_and_inspect_need_no_answer_from_the_shim(engine):
    """A stopped shim answers nothing: the list and the inspect of its running container
    come from /proc and the record."""
    cs = engine.containers
    cid = _sleeper(engine)
    shim = cs.get(cid).task().state().shim_pid
    done = {}

    def read():
        done["list"] = _rows(engine, all=True)
        done["inspect"] = cs.inspect(cid)["State"]

    os.kill(shim, signal.SIGSTOP)
    try:
        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(20)          # a request to the stopped shim would wait out its 30 s timeout
        assert "inspect" in done, "the reads waited for the stopped shim"
    finally:
        os.kill(shim, signal.SIGCONT)
    assert done["list"][cid]["State"] == "running"
    assert done["inspect"]["Running"] is True and done["inspect"]["Pid"] > 0


def test_a_container_whose_shim_died_is_listed_exited_and_its_process_ends(engine):
    """The shim is the init's parent: killed, it leaves a container nobody logs or reaps,
    which a read ends (its exit status unknown: 255) instead of listing it as running."""
    cs = engine.containers
    cid = _sleeper(engine)
    other = _sleeper(engine)
    pid = cs.inspect(cid)["State"]["Pid"]
    shim = cs.get(cid).task().state().shim_pid
    init = os.pidfd_open(pid)
    try:
        os.kill(shim, signal.SIGKILL)
        _await_exit(shim)
        rows = _rows(engine, all=True)
        assert rows[cid]["State"] == "exited" and rows[cid]["Status"].startswith("Exited (255) ")
        assert rows[other]["State"] == "running"
        assert select.select([init], [], [], 30)[0] == [init]     # the init is gone too
    finally:
        os.close(init)


def test_a_listed_status_moves_with_the_clock_while_the_record_stays(engine):
    cid = _sleeper(engine)
    first = _rows(engine)[cid]
    time.sleep(2.2)             # at least two whole seconds more: another Status text
    second = _rows(engine)[cid]
    assert first["Status"].startswith("Up ") and second["Status"].startswith("Up ")
    assert first["Status"] != second["Status"]
    assert {k: v for k, v in first.items() if k != "Status"} == \
        {k: v for k, v in second.items() if k != "Status"}


def test_listing_sees_what_another_engine_changed(engine, engine_root, exec_root):
    cs = engine.containers
    cid = _sleeper(engine)
    gone = cs.create({"Image": "busybox", "Cmd": ["true"]}, {"NetworkMode": "none"})["Id"]
    assert {cid, gone} <= set(_rows(engine, all=True))     # read once: remembered
    other = Engine(engine_root, exec_root=exec_root).containers
    other.rename(cid, "renamed-elsewhere")
    other.remove(gone)
    new = other.create({"Image": "busybox", "Cmd": ["true"]}, {"NetworkMode": "none"},
                       name="made-elsewhere")["Id"]
    other.kill(cid, "KILL")
    rows = _rows(engine, all=True)
    assert gone not in rows
    assert rows[new]["Names"] == ["/made-elsewhere"] and rows[new]["State"] == "created"
    assert rows[cid]["Names"] == ["/renamed-elsewhere"]
    assert rows[cid]["Status"].startswith("Exited (137) ")


_OTHER = r"""
import sys
from pyrunc.engine import Engine
root, exec_root, action, cid = sys.argv[1:5]
cs = Engine(root, exec_root=exec_root).containers
sys.stdin.readline()
if action == "start":
    cs.start(cid)
else:
    cs.remove(cid, force=True)
"""


def _in_other_process(engine_root, exec_root, action, cid, waiting):
    """Run ``action`` on ``cid`` from another process once ``waiting`` (a thread) waits."""
    p = subprocess.Popen([sys.executable, "-c", _OTHER, engine_root, exec_root, action, cid],
                         stdin=subprocess.PIPE, text=True)
    waiting.start()
    p.communicate("go\n", timeout=60)
    assert p.returncode == 0


@pytest.mark.parametrize("condition", ["removed", "next-exit", "not-running"])
def test_waits_end_on_another_process_start(engine, engine_root, exec_root, condition):
    cs = engine.containers
    hc = {"NetworkMode": "none", "AutoRemove": condition == "removed"}
    cid = cs.create({"Image": "busybox", "Cmd": ["sh", "-c", "exit 5"]}, hc)["Id"]
    result = {}
    waiting = threading.Thread(target=lambda: result.update(
        cs.wait(cid, condition=condition, timeout=30)), daemon=True)
    if condition == "not-running":          # it is not running: answered at once
        assert cs.wait(cid, condition=condition, timeout=30)["StatusCode"] == 0
    _in_other_process(engine_root, exec_root, "start", cid, waiting)
    waiting.join(60)
    if condition == "not-running":
        assert result["StatusCode"] in (0, 5)   # before or after the other's start
        return
    assert result == {"StatusCode": 5, "Error": None}
    if condition == "removed":
        assert cs.store.load(cid) is None


def test_wait_removed_ends_on_another_process_removal(engine, engine_root, exec_root):
    cs = engine.containers
    cid = _sleeper(engine)
    result = {}
    waiting = threading.Thread(target=lambda: result.update(
        cs.wait(cid, condition="removed", timeout=30)), daemon=True)
    _in_other_process(engine_root, exec_root, "remove", cid, waiting)
    waiting.join(60)
    assert result == {"StatusCode": 137, "Error": None}
    assert cid not in _rows(engine, all=True)


def test_wait_removed_wakes_on_this_process_start_and_exit(engine):
    """docker run --rm's order: the wait for the removal comes before the start."""
    cs = engine.containers
    for code in (0, 3):
        cid = cs.create({"Image": "busybox", "Cmd": ["sh", "-c", "exit %d" % code]},
                        {"NetworkMode": "none", "AutoRemove": True})["Id"]
        result = {}
        waiting = threading.Thread(target=lambda: result.update(
            cs.wait(cid, condition="removed", timeout=30)), daemon=True)
        waiting.start()
        cs.start(cid)
        waiting.join(60)
        assert result == {"StatusCode": code, "Error": None}
        assert cs.store.load(cid) is None and not os.path.exists(os.path.join(
            cs.store.root, cid))
