"""SIGKILL of the process running the supervisor, while containers run and exit: a new one
finds every container, sees the exits that happened meanwhile with their codes, resumes the
policies, and nothing runs twice (counted from what the containers' processes wrote)."""
import os
import signal
import subprocess
import sys
import time

import pytest

from pyrunc.engine.supervisor import Supervisor
from pyrunc.libcontainer import timestamps


@pytest.fixture
def spawn(engine):
    """spawn() -> a process running ``python -m pyrunc.engine.supervisor`` on the engine's
    root; every one still running is SIGKILLed (by pid) at teardown."""
    procs = []

    def start(*extra):
        p = subprocess.Popen([sys.executable, "-m", "pyrunc.engine.supervisor", "--root",
                              engine.root, "--exec-root", engine.exec_root, *extra],
                             stderr=subprocess.PIPE, text=True)
        procs.append(p)
        return p
    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()
        p.stderr.close()


def _holds_lock(engine):
    try:
        s = Supervisor(engine)
        s.run_once()
        s.stop()
        return False
    except Exception:
        return True


def _wait_locked(engine, until):
    until(lambda: _holds_lock(engine), timeout=20, what="the supervisor lock taken")


def _create(engine, cmd, policy, count=0):
    hc = {"RestartPolicy": {"Name": policy, "MaximumRetryCount": count}}
    return engine.containers.create({"Image": "busybox", "Cmd": cmd}, hc)["Id"]


def _runs(engine, cid):
    return sum(1 for m in engine.containers.logs(cid) if m.line == b"run\n")


def _events(engine, cid, action):
    return [e for e in engine.events.query(until=time.time() + 1)
            if e.get("Type") == "container" and e["Actor"]["ID"] == cid
            and e["Action"] == action]


def _settled(engine, cid):
    st = engine.containers.inspect(cid)["State"]
    return st["Status"] == "exited" and not st["Restarting"]


def test_sigkill_at_any_moment_nothing_runs_twice(engine, spawn, until):
    cid = _create(engine, ["sh", "-c", "echo run; sleep 0.2; exit 5"], "on-failure", 4)
    engine.containers.start(cid)
    for delay in (0.15, 0.45, 0.3, 0.05, 0.6, 0.25):
        p = spawn()
        time.sleep(delay)
        p.kill()                                # SIGKILL
        p.wait()
        time.sleep(0.1)                          # no supervisor for a moment
    final = spawn()
    until(lambda: _settled(engine, cid) and
          engine.containers.inspect(cid)["RestartCount"] == 4, timeout=60,
          what="4 restarts and the final exit")
    time.sleep(1.5)                              # a 5th restart would come 1.6 s later at most
    info = engine.containers.inspect(cid)
    assert info["RestartCount"] == 4
    assert info["State"]["ExitCode"] == 5 and info["State"]["Status"] == "exited"
    assert _runs(engine, cid) == 5
    # the container service emits "die" after it has recorded the exit: a supervisor killed
    # in between loses that event (not the exit), so up to one per kill may be missing
    dies = _events(engine, cid, "die")
    assert 1 <= len(dies) <= 5
    assert {d["Actor"]["Attributes"]["exitCode"] for d in dies} == {"5"}
    assert 1 <= len(_events(engine, cid, "start")) <= 5
    assert final.poll() is None
    final.send_signal(signal.SIGTERM)           # a clean stop on SIGTERM
    assert final.wait(20) == 0


def test_exit_while_no_supervisor_runs(engine, spawn, until):
    first = spawn()
    _wait_locked(engine, until)
    second = spawn()                            # refused while the first holds the root
    assert second.wait(30) == 5
    assert "another supervisor is running" in second.stderr.read()
    first.kill()
    first.wait()
    a = _create(engine, ["sh", "-c", "echo run; sleep 0.5; exit 9"], "on-failure", 1)
    b = _create(engine, ["sh", "-c", "echo run; exec sleep 1000"], "always")
    c = _create(engine, ["sh", "-c", "echo run; sleep 0.5; exit 4"], "no")
    for cid in (a, b, c):
        engine.containers.start(cid)
    pid_b = engine.containers.inspect(b)["State"]["Pid"]
    time.sleep(1.5)                             # a and c exit with nobody watching
    spawn()
    until(lambda: engine.containers.inspect(a)["RestartCount"] == 1 and _settled(engine, a),
          timeout=30, what="a restarted once")
    sa = engine.containers.inspect(a)["State"]
    history = [(e["Action"], e["Actor"]["Attributes"].get("exitCode"), e["timeNano"])
               for e in engine.events.query(until=time.time() + 1)
               if e.get("Type") == "container" and e["Actor"]["ID"] == a]
    lines = [(m.line, m.time_ns) for m in engine.containers.logs(a)]
    assert sa["ExitCode"] == 9 and _runs(engine, a) == 2, (history, lines)
    # "die" follows the recorded exit once the service has torn the run down
    until(lambda: len(_events(engine, a, "die")) >= 2, what="the second die event")
    assert [d["Actor"]["Attributes"]["exitCode"] for d in _events(engine, a, "die")] == \
        ["9", "9"], (history, lines)
    # the running one was found and left alone: same process, never restarted
    sb = engine.containers.inspect(b)
    assert sb["State"]["Pid"] == pid_b and sb["RestartCount"] == 0 and _runs(engine, b) == 1
    with open("/proc/%d/cmdline" % pid_b, "rb") as f:
        assert f.read() == b"sleep\x001000\x00"
    sc = engine.containers.inspect(c)
    assert sc["State"]["ExitCode"] == 4 and sc["RestartCount"] == 0 and _runs(engine, c) == 1


def test_health_checks_resume_after_a_kill(engine, spawn, until):
    hcheck = {"Test": ["CMD-SHELL", "test -e /tmp/ok"], "Interval": 100_000_000, "Retries": 2}
    cid = engine.containers.create({"Image": "busybox", "Healthcheck": hcheck,
                                    "Cmd": ["sh", "-c", "touch /tmp/ok; exec sleep 1000"]})["Id"]
    engine.containers.start(cid)
    first = spawn()

    def health():
        return engine.containers.inspect(cid)["State"].get("Health") or {}
    until(lambda: health().get("Status") == "healthy", what="healthy")
    first.kill()
    first.wait()
    last = timestamps.parse_ns(health()["Log"][-1]["Start"])
    spawn()
    seen = set()

    def probed_again():
        h = health()
        seen.add(h["Status"])
        return timestamps.parse_ns(h["Log"][-1]["Start"]) > last
    until(probed_again, what="a probe by the new supervisor")
    time.sleep(0.5)
    seen.add(health()["Status"])
    assert seen == {"healthy"}          # resumed, not reset to "starting"
    exec_id = engine.containers.exec_create(cid, {"Cmd": ["rm", "/tmp/ok"]})
    engine.containers.exec_start(exec_id, detach=True).wait(10)
    until(lambda: health().get("Status") == "unhealthy", what="unhealthy")
