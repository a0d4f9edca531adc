"""AutoRemove (docker run --rm), waits and the "die" event through the library.

The exit codes come from the shell inside the container (``exit N``), the leftovers from the
kernel's mount table and the engine's directories; several threads and several Engine objects
on one root race as the daemon's requests and the supervisor do.
"""
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from pyrunc import errors
from pyrunc.engine import Engine

pytestmark = pytest.mark.usefixtures("private_mount_ns")

ROUNDS = 12


def _die_events(engine, cid):
    return [e for e in engine.events.query(filters={"container": [cid], "event": ["die"]})]


def _in_threads(*fns):
    """Run each fn in a thread of its own; their results (or exceptions) in order."""
    results = [None] * len(fns)

    def run(i, fn):
        try:
            results[i] = fn()
        except BaseException as e:      # reported by the caller
            results[i] = e
    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a waiter did not return in 60 s"
    return results


def test_rm_waiters_get_the_exit_code_under_races(engine, engine_root, exec_root, leftovers,
                                                  tmp_path):
    """Waiters of every condition, on this Engine and on another one over the same root (as
    another process), while readers collect the exit and remove the container: each gets the
    code the shell exited with, every round. The shell exits once the waiters are about to
    wait (a file in a bind mount), as the CLI's wait comes before the exit."""
    other = Engine(engine_root, exec_root=exec_root)
    for n in range(ROUNDS):
        code = 3 + n % 5
        go = tmp_path / ("go%d" % n)
        go.mkdir()
        cid = engine.containers.create(
            {"Image": "busybox",
             "Cmd": ["sh", "-c", "until [ -e /go/now ]; do sleep 0.01; done; exit %d" % code]},
            {"AutoRemove": True, "Binds": ["%s:/go" % go]})["Id"]
        started = threading.Event()
        waiting = threading.Barrier(5)      # the four waiters and this thread

        def waiter(svc, condition):
            def fn():
                started.wait(10)
                waiting.wait(10)
                return svc.wait(cid, condition=condition, timeout=30)["StatusCode"]
            return fn

        def reader(svc):
            def fn():
                started.wait(10)
                deadline = time.monotonic() + 30    # reads are cheap: bounded by time
                while time.monotonic() < deadline:
                    try:
                        svc.get(cid)
                    except errors.NotFound:
                        return "gone"
                return "still there"
            return fn

        fns = [waiter(engine.containers, "removed"), waiter(other.containers, "removed"),
               waiter(engine.containers, "not-running"), waiter(other.containers, "removed"),
               reader(engine.containers), reader(other.containers)]
        # the waiters find it before it starts, as the CLI's wait comes before its start
        results = []
        t = threading.Thread(target=lambda: results.extend(_in_threads(*fns)))
        t.start()
        engine.containers.start(cid)
        started.set()
        waiting.wait(10)
        (go / "now").touch()
        t.join(90)
        assert results[:4] == [code] * 4, "round %d: %r" % (n, results)
        assert results[4:] == ["gone", "gone"], results
        assert engine.containers.store.load(cid) is None
        assert leftovers(engine, cid) == []
        dies = _die_events(engine, cid)
        assert [e["Actor"]["Attributes"]["exitCode"] for e in dies] == [str(code)]


def test_wait_removed_after_another_engine_collected_it(engine, engine_root, exec_root):
    """The exit is collected and the container removed by another Engine before this one
    waits again: the wait still answers the shell's code, not a stale 0."""
    other = Engine(engine_root, exec_root=exec_root)
    cid = engine.containers.create({"Image": "busybox", "Cmd": ["sh", "-c", "exit 7"]},
                                   {"AutoRemove": True})["Id"]
    engine.containers.start(cid)
    engine.tasks.get(cid).wait(30)          # exited, not collected by anyone yet
    with pytest.raises(errors.NotFound):
        other.containers.inspect(cid)       # collects it, so removes it
    assert engine.containers.removed_exit(cid) == {"StatusCode": 7, "Error": None}
    assert engine.containers.removed_exit("f" * 64) is None
    assert engine.containers.removed_exit("../../etc/passwd") is None


def test_rm_start_failure_removes_and_answers_127(engine, leftovers):
    """A process that cannot start: start fails with docker's reason, the container goes at
    once (nothing left), the waiter of its removal gets 127 and returns."""
    cs = engine.containers
    cid = cs.create({"Image": "busybox", "Cmd": ["nosuchcmd"]}, {"AutoRemove": True})["Id"]
    got = []
    t = threading.Thread(target=lambda: got.append(cs.wait(cid, "removed", timeout=30)))
    t.start()
    with pytest.raises(errors.InvalidArgument, match="nosuchcmd"):
        cs.start(cid)
    t.join(30)
    assert got == [{"StatusCode": 127, "Error": None}]
    assert cs.store.load(cid) is None
    assert leftovers(engine, cid) == []
    assert cs.list(all=True, filters={"id": [cid]}) == []


def test_rm_removed_when_stopped(engine, leftovers):
    cs = engine.containers
    cid = cs.create({"Image": "busybox", "Cmd": ["sleep", "60"]}, {"AutoRemove": True})["Id"]
    cs.start(cid)
    cs.stop(cid, timeout=0)
    assert cs.store.load(cid) is None
    assert cs.removed_exit(cid)["StatusCode"] == 137      # SIGKILL: 128 + 9
    assert leftovers(engine, cid) == []


def test_not_removed_without_autoremove(engine):
    cs = engine.containers
    cid = cs.create({"Image": "busybox", "Cmd": ["sh", "-c", "exit 4"]})["Id"]
    cs.start(cid)
    assert cs.wait(cid, timeout=30)["StatusCode"] == 4
    assert cs.inspect(cid)["State"]["ExitCode"] == 4
    with pytest.raises(TimeoutError):
        cs.wait(cid, "removed", timeout=0.3)


_CRASH = r"""
import os, signal, sys
from pyrunc.engine import Engine
from pyrunc.engine.container.service import ContainerService
root, exec_root, cid, where = sys.argv[1:]
emit = ContainerService._emit
def kill_self(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
def emit_then_die(self, c, action, extra=None):
    emit(self, c, action, extra)
    if action == "die":
        kill_self()
if where == "before-teardown":
    ContainerService._teardown = kill_self
else:
    ContainerService._emit = emit_then_die
Engine(root, exec_root=exec_root).containers.get(cid)
"""


@pytest.mark.parametrize("where", ["before-teardown", "after-die"])
def test_die_event_survives_a_crash(engine, engine_root, exec_root, where):
    """The process collecting an exit is SIGKILLed after recording it (before the teardown,
    or after emitting "die"): the next reader finishes the teardown and the "die" event is
    in the log exactly once, with the shell's code."""
    cs = engine.containers
    cid = cs.create({"Image": "busybox", "Cmd": ["sh", "-c", "exit 5"]})["Id"]
    cs.start(cid)
    engine.tasks.get(cid).wait(30)
    r = subprocess.run([sys.executable, "-c", _CRASH, engine_root, exec_root, cid, where],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == -signal.SIGKILL, r.stderr
    record = cs.store.load(cid).record
    assert record["State"]["Status"] == "exited" and record["State"]["ExitCode"] == 5
    assert len(_die_events(engine, cid)) == (0 if where == "before-teardown" else 1)
    rootfs = os.path.join(cs.store.root, cid)
    if where == "before-teardown":      # the crash left the root filesystem mounted
        with open("/proc/self/mountinfo") as f:
            assert any(rootfs in line.split()[4] for line in f)
    st = cs.inspect(cid)["State"]
    assert (st["Status"], st["ExitCode"]) == ("exited", 5)
    dies = _die_events(engine, cid)
    assert [e["Actor"]["Attributes"]["exitCode"] for e in dies] == ["5"]
    cs.inspect(cid)
    assert len(_die_events(engine, cid)) == 1
    with open("/proc/self/mountinfo") as f:
        assert not any(rootfs in line.split()[4] for line in f)
    with pytest.raises(errors.NotFound):
        engine.tasks.get(cid)


def test_list_after_an_uncollected_exit_omits_it(engine, leftovers):
    """docker ps -a right after a --rm container exited: the listing collects the exit,
    removes the container and does not show it."""
    cs = engine.containers
    cid = cs.create({"Image": "busybox", "Cmd": ["true"]}, {"AutoRemove": True})["Id"]
    cs.start(cid)
    engine.tasks.get(cid).wait(30)
    assert [c["Id"] for c in cs.list(all=True) if c["Id"] == cid] == []
    assert leftovers(engine, cid) == []
