"""The lifecycle of one task, the same suite for every runtime with runc's command line."""
import os
import signal
import time

import pytest

from pyrunc import errors
from pyrunc.containerd.shim.client import STDERR, STDOUT
from pyrunc.containerd.tasks import CREATED, PAUSED, RUNNING, STOPPED

from .conftest import leftover_cgroups, new_id, runtime_path


def event_types(manager, cid):
    return [e["type"] for _, e in manager.events() if e["id"] == cid]


def test_create_start_wait_delete(manager, bundle):
    cid = new_id()
    task = manager.create(cid, bundle(["sh", "-c", "echo out; echo err >&2; exit 3"]))
    st = task.state()
    assert st.status == CREATED and st.pid > 0 and st.exit_status is None
    assert os.path.exists("/proc/%d" % st.pid)
    task.start()
    exit_status = task.wait(timeout=20)
    assert exit_status.status == 3 and exit_status.exited_at.endswith("Z")
    st = task.state()
    assert st.status == STOPPED and st.exit_status == 3
    logs = task.logs()
    assert [(e.stream, e.text) for e in logs] == [("stdout", "out\n"), ("stderr", "err\n")]
    assert all(e.time.endswith("Z") and "T" in e.time for e in logs)
    assert task.delete().status == 3
    assert not os.path.exists(task.state_dir)
    with pytest.raises(errors.NotFound):
        manager.get(cid)
    assert event_types(manager, cid) == ["create", "start", "exit", "delete"]
    assert leftover_cgroups([cid]) == []


def test_kill_and_signals(manager, bundle):
    trap = manager.create(new_id("trap"), bundle(
        ["sh", "-c", "trap 'exit 7' TERM; echo ready; while true; do sleep 0.1; done"]))
    trap.start()
    deadline = time.monotonic() + 10
    while not trap.logs() and time.monotonic() < deadline:
        time.sleep(0.02)
    trap.kill(signal.SIGTERM)
    assert trap.wait(timeout=20).status == 7
    hard = manager.create(new_id("kill"), bundle(["sleep", "1000"]))
    hard.start()
    assert hard.state().status == RUNNING
    hard.kill(signal.SIGKILL)
    assert hard.wait(timeout=20).status == 128 + signal.SIGKILL
    with pytest.raises(errors.FailedPrecondition):
        hard.kill(signal.SIGKILL)


def test_delete_running_needs_force(manager, bundle):
    task = manager.create(new_id(), bundle(["sleep", "1000"]))
    task.start()
    with pytest.raises(errors.FailedPrecondition, match="is running"):
        task.delete()
    assert task.delete(force=True).status == 128 + signal.SIGKILL


def test_delete_created_task(manager, bundle):
    task = manager.create(new_id(), bundle(["true"]))
    pid = task.state().pid
    task.delete()
    assert not os.path.exists("/proc/%d" % pid) or open("/proc/%d/stat" % pid).read().split()[2] == "Z"


def test_pause_resume(manager, bundle):
    task = manager.create(new_id(), bundle(["sleep", "1000"]))
    task.start()
    task.pause()
    assert task.state().status == PAUSED
    with pytest.raises(errors.FailedPrecondition):
        task.pause()
    task.resume()
    assert task.state().status == RUNNING
    task.pause()
    assert task.delete(force=True).status == 128 + signal.SIGKILL
    assert event_types(manager, task.id)[:5] == ["create", "start", "pause", "resume", "pause"]


def test_exec_and_pids(manager, bundle):
    task = manager.create(new_id(), bundle(["sleep", "1000"]))
    with pytest.raises(errors.FailedPrecondition):
        task.exec("early", ["true"])
    task.start()
    proc = task.exec("e1", ["sh", "-c", "echo from exec; echo oops >&2; exit 5"])
    assert proc.pid > 0
    assert proc.wait(timeout=20).status == 5
    assert proc.output() == ("from exec\n", "oops\n")
    assert proc.wait().status == 5        # the record outlives the shim's memory of it
    with pytest.raises(errors.InvalidArgument):
        task.exec("bad id", ["true"])
    with pytest.raises(errors.PyruncError, match="nosuchbinary"):
        task.exec("e2", ["/nosuchbinary"]).wait(timeout=20)
    pids = task.pids()
    assert task.state().pid in pids
    types = event_types(manager, task.id)
    assert "exec-start" in types and "exec-exit" in types


def test_exec_attached_with_stdin_and_tty(manager, bundle):
    task = manager.create(new_id(), bundle(["sleep", "1000"]))
    task.start()
    piped = task.exec("cat", ["sh", "-c", "cat; exit 2"], stdin=True, attach=True)
    piped.attachment.write(b"to exec\n")
    piped.attachment.close_stdin()
    out, status = piped.attachment.read_all(timeout=20)
    assert (out[STDOUT], status) == (b"to exec\n", 2)
    assert piped.wait(timeout=20).status == 2
    assert piped.output() == ("to exec\n", "")

    tty = task.exec("tty", ["sh", "-c", "read a; stty size; echo got $a"], tty=True,
                    stdin=True, attach=True)
    tty.resize(90, 20)
    tty.attachment.write(b"hello\n")
    out, status = tty.attachment.read_all(timeout=20)
    text = out[STDOUT].decode().replace("\r", "")
    assert status == 0 and "20 90\n" in text and "got hello\n" in text
    with pytest.raises(errors.FailedPrecondition):
        tty.resize(80, 25)
    with pytest.raises(errors.NotFound):
        task.client.call("attach", "nosuchexec")


def test_update_and_stats(manager, bundle):
    task = manager.create(new_id(), bundle(["sleep", "1000"]))
    task.start()
    task.update({"memory": {"limit": 64 * 1024 * 1024}, "pids": {"limit": 50}})
    stats = task.stats()
    assert stats["memory"]["limit"] == 64 * 1024 * 1024
    assert stats["memory"]["usage"] > 0
    assert stats["pids"] == {"current": 1, "limit": 50}
    assert stats["cpu"]["usage_ns"] >= 0


def test_oom_kill_is_recorded(manager, bundle):
    def limit(spec):
        spec["linux"]["resources"]["memory"] = {"limit": 16 * 1024 * 1024}
    task = manager.create(new_id(), bundle(["tail", "/dev/zero"], mutate=limit))
    task.start()
    result = task.wait(timeout=60)
    assert result.status == 128 + signal.SIGKILL
    assert result.oom_killed and task.state().oom_killed
    assert "oom" in event_types(manager, task.id)


def test_terminal_resize_and_attach(manager, bundle):
    task = manager.create(new_id(), bundle(
        ["sh", "-c", "read line; stty size; echo got $line; exit 4"], terminal=True),
        terminal=True)
    task.resize(100, 30)
    with task.attach() as attached:
        task.start()
        attached.write(b"hi there\n")
        out, status = attached.read_all(timeout=20)
    assert status == 4
    text = out[STDOUT].decode().replace("\r", "")
    assert "30 100\n" in text and "got hi there\n" in text
    assert task.wait(timeout=20).status == 4
    logged = "".join(e.text for e in task.logs()).replace("\r", "")
    assert "30 100\n" in logged and all(e.stream == "stdout" for e in task.logs())
    with pytest.raises(errors.FailedPrecondition):
        task.resize(80, 25)


def test_attach_stdin_pipe(manager, bundle):
    task = manager.create(new_id(), bundle(["sh", "-c", "cat; echo done >&2"]), stdin=True)
    task.start()
    with task.attach() as attached:
        attached.write(b"line one\nline two\n")
        attached.close_stdin()
        out, status = attached.read_all(timeout=20)
    assert status == 0
    assert out[STDOUT] == b"line one\nline two\n" and out[STDERR] == b"done\n"
    assert [e.text for e in task.logs()] == ["line one\n", "line two\n", "done\n"]
    with pytest.raises(errors.FailedPrecondition):
        task.attach()


def test_log_rotation(manager, bundle):
    script = "i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); done"
    task = manager.create(new_id(), bundle(["sh", "-c", script]), log_max_size=4096,
                          log_max_file=3)
    task.start()
    assert task.wait(timeout=30).status == 0
    log = task.meta()["log"]
    base = os.path.basename(log)
    names = sorted(n for n in os.listdir(os.path.dirname(log)) if n.startswith(base))
    assert names == [base, base + ".1", base + ".2"]
    for name in names:
        assert os.path.getsize(os.path.join(os.path.dirname(log), name)) <= 4096
    texts = [e.text for e in task.logs()]
    first = int(texts[0][5:])
    assert first > 0 and texts == ["line-%d\n" % i for i in range(first, 400)]


def test_long_lines_are_split(manager, bundle):
    task = manager.create(new_id(), bundle(
        ["sh", "-c", "head -c 40000 /dev/zero | tr '\\0' x; echo; printf 'no newline'"]))
    task.start()
    assert task.wait(timeout=30).status == 0
    # Docker's json-file splits at 16 KiB; only the last piece of a line carries the newline
    assert [e.text for e in task.logs()] == [
        "x" * 16384, "x" * 16384, "x" * (40000 - 2 * 16384) + "\n", "no newline"]


def test_bad_input_is_rejected_cleanly(manager, bundle, tmp_path):
    good = bundle(["true"])
    with pytest.raises(errors.InvalidArgument, match="container id"):
        manager.create("bad/id", good)
    with pytest.raises(errors.NotFound, match="config.json"):
        manager.create(new_id(), str(tmp_path / "nowhere"))
    with pytest.raises(errors.NotFound, match="directory not found"):
        manager.create(new_id(), good, log_path=str(tmp_path / "nowhere" / "log.json"))
    with pytest.raises(errors.InvalidArgument, match="max-file"):
        manager.create(new_id(), good, log_max_file=0)
    with pytest.raises(errors.Unavailable, match="runtime nosuchruntime"):
        manager.create(new_id(), good, runtime="nosuchruntime")
    with pytest.raises(errors.NotFound):
        manager.get(new_id())
    cid = new_id()
    task = manager.create(cid, good)
    with pytest.raises(errors.AlreadyExists, match="already exists"):
        manager.create(cid, good)
    task.start()
    with pytest.raises(errors.FailedPrecondition, match="not created"):
        task.start()
    task.wait(timeout=20)
    task.delete()


def test_runtime_failure_leaves_nothing(manager, bundle):
    cid = new_id()
    broken = bundle(["true"], mutate=lambda s: s["process"].update(cwd="relative"))
    with pytest.raises(errors.PyruncError) as info:
        manager.create(cid, broken)
    message = str(info.value)
    assert message.startswith("container %s: runtime create failed: " % cid)
    assert "\n" not in message and "level=error" not in message
    assert manager.list() == []
    state = os.path.join(manager.root, "runtime", os.path.basename(runtime_path(
        manager.runtime)))
    assert os.listdir(state) == []
    assert leftover_cgroups([cid]) == []
    # an executable that does not exist fails at create, at start or at exit, by runtime
    try:
        task = manager.create(cid, bundle(["/nosuchbinary"]))
    except errors.PyruncError as e:
        assert "nosuchbinary" in str(e)
    else:
        try:
            task.start()
        except errors.PyruncError as e:
            assert "nosuchbinary" in str(e)
        else:
            assert task.wait(timeout=20).status != 0
        task.delete(force=True)
    assert os.listdir(state) == []
