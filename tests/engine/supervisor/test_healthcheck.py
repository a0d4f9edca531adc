"""Health checks on real busybox containers: the probe's verdict is driven by files the test
changes inside the container, its timeout by a probe that sleeps (checked in /proc)."""
import os
import time

from pyrunc import errors
from pyrunc.engine.supervisor import Supervisor
from pyrunc.libcontainer import timestamps

MS = 1_000_000


def _create(engine, cmd, healthcheck, runtime="pyrunc", **config):
    return engine.containers.create(dict(config, Image="busybox", Cmd=list(cmd),
                                         Healthcheck=healthcheck), {"Runtime": runtime})["Id"]


def _exec(engine, cid, argv):
    exec_id = engine.containers.exec_create(cid, {"Cmd": argv})
    engine.containers.exec_start(exec_id, detach=True).wait(10)


def _health(engine, cid):
    return engine.containers.inspect(cid)["State"].get("Health") or {}


def _health_events(engine, cid):
    return [e["Action"] for e in engine.events.query(until=time.time() + 1)
            if e.get("Type") == "container" and e["Actor"]["ID"] == cid
            and e["Action"].startswith("health_status")]


def test_healthy_then_unhealthy_when_the_file_goes(engine, supervisor, until, runtime):
    cid = _create(engine, ["sh", "-c", "touch /tmp/ok; exec sleep 1000"],
                  {"Test": ["CMD-SHELL", "test -e /tmp/ok && echo fine"],
                   "Interval": 200 * MS, "Timeout": 5000 * MS, "Retries": 2}, runtime)
    supervisor.start()
    engine.containers.start(cid)
    assert until(lambda: _health(engine, cid).get("Status") == "healthy", what="healthy")
    h = _health(engine, cid)
    assert h["FailingStreak"] == 0
    assert h["Log"][-1]["ExitCode"] == 0 and h["Log"][-1]["Output"] == "fine\n"
    assert timestamps.parse_ns(h["Log"][-1]["End"]) >= timestamps.parse_ns(h["Log"][-1]["Start"])
    ps = engine.containers.list(filters={"id": [cid]})
    assert ps[0]["Status"].endswith("(healthy)")
    _exec(engine, cid, ["rm", "/tmp/ok"])
    until(lambda: _health(engine, cid).get("Status") == "unhealthy", what="unhealthy")
    h = _health(engine, cid)
    assert h["FailingStreak"] >= 2
    assert h["Log"][-1]["ExitCode"] == 1 and h["Log"][-1]["Output"] == ""
    assert len(h["Log"]) <= 5
    until(lambda: len(h := _health(engine, cid)["Log"]) == 5 and h, what="5 log entries")
    time.sleep(0.5)
    assert len(_health(engine, cid)["Log"]) == 5
    _exec(engine, cid, ["touch", "/tmp/ok"])
    until(lambda: _health(engine, cid).get("Status") == "healthy", what="healthy again")
    assert _health_events(engine, cid)[:3] == ["health_status: healthy",
                                                "health_status: unhealthy",
                                                "health_status: healthy"]
    engine.containers.stop(cid, timeout=0)
    assert _health(engine, cid)["Status"] == "unhealthy"     # dockerd's after a stop


def test_cmd_form_and_exec_events(engine, supervisor, until):
    cid = _create(engine, ["sleep", "1000"], {"Test": ["CMD", "cat", "/etc/hostname"],
                                              "Interval": 100 * MS})
    supervisor.start()
    engine.containers.start(cid)
    until(lambda: _health(engine, cid).get("Status") == "healthy", what="healthy")
    h = _health(engine, cid)
    assert h["Log"][0]["Output"] == cid[:12] + "\n"
    actions = [e["Action"] for e in engine.events.query(until=time.time() + 1)
               if e.get("Type") == "container" and e["Actor"]["ID"] == cid]
    assert "exec_start: cat /etc/hostname" in actions and "exec_die" in actions
    until(lambda: len(_health(engine, cid)["Log"]) >= 4, what="4 probes")
    supervisor.stop()
    # dockerd keeps no exec of a probe: none left in the container's records or its task's
    execs = os.path.join(engine.root, "containers", cid, "execs")
    assert not os.listdir(execs)
    assert not [n for n in os.listdir(os.path.join(engine.exec_root, "tasks", cid))
                if n.startswith("exec-")]


def test_probe_past_its_timeout_is_killed(engine, supervisor, until, runtime):
    cid = _create(engine, ["sleep", "1000"],
                  {"Test": ["CMD-SHELL", "echo started; sleep 77"], "Interval": 100 * MS,
                   "Timeout": 2500 * MS, "Retries": 1}, runtime)
    supervisor.start()
    engine.containers.start(cid)
    until(lambda: _health(engine, cid).get("Status") == "unhealthy", what="unhealthy")
    entry = _health(engine, cid)["Log"][0]
    assert entry["ExitCode"] == -1
    assert entry["Output"] == "Health check exceeded timeout (2.5s): started\n"
    took = timestamps.parse_ns(entry["End"]) - timestamps.parse_ns(entry["Start"])
    assert 2500 * MS <= took < 15000 * MS
    supervisor.stop()
    pid = engine.containers.inspect(cid)["State"]["Pid"]
    # no "sleep 77" left in the container's pid namespace (the kernel's view)
    ns = os.readlink("/proc/%d/ns/pid" % pid)
    cmdlines = []
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink("/proc/%s/ns/pid" % p) == ns:
                with open("/proc/%s/cmdline" % p, "rb") as f:
                    cmdlines.append(f.read())
        except (FileNotFoundError, PermissionError):     # gone, or not ours to read
            continue
    assert b"sleep\x001000\x00" in cmdlines
    assert not any(b"sleep\x0077" in c for c in cmdlines), cmdlines


def test_output_kept_to_4096_bytes(engine, supervisor, until):
    cid = _create(engine, ["sleep", "1000"],
                  {"Test": ["CMD-SHELL", "head -c 5000 /dev/zero | tr '\\000' x; exit 2"],
                   "Interval": 100 * MS, "Retries": 1})
    supervisor.start()
    engine.containers.start(cid)
    until(lambda: _health(engine, cid).get("Status") == "unhealthy", what="unhealthy")
    entry = _health(engine, cid)["Log"][0]
    assert entry["ExitCode"] == 2
    assert entry["Output"] == "x" * 4096 + "..."


def test_start_period_keeps_starting(engine, supervisor, until):
    cid = _create(engine, ["sleep", "1000"],
                  {"Test": ["CMD", "false"], "Interval": 100 * MS, "Retries": 1,
                   "StartPeriod": 60_000 * MS, "StartInterval": 100 * MS})
    supervisor.start()
    engine.containers.start(cid)
    until(lambda: len(_health(engine, cid).get("Log") or []) >= 3, what="3 probes")
    h = _health(engine, cid)
    assert h["Status"] == "starting" and h["FailingStreak"] == 0


def test_none_and_no_healthcheck(engine, supervisor):
    a = _create(engine, ["sleep", "1000"], {"Test": ["NONE"]})
    supervisor.start()
    engine.containers.start(a)
    time.sleep(1.5)
    assert "Health" not in engine.containers.inspect(a)["State"]


def test_bad_healthcheck_refused_at_create(engine):
    before = set(engine.containers.store.ids())
    for hcheck, message in [
            ({"Test": ["CMD", "true"], "Interval": 10}, "Interval in Healthcheck cannot be "
                                                        "less than 1ms"),
            ({"Test": ["CMD", "true"], "Retries": -1}, "Retries in Healthcheck cannot be "
                                                       "negative"),
            ({"Test": "true"}, "Healthcheck: Test must be an array of strings")]:
        try:
            _create(engine, ["true"], hcheck)
        except errors.InvalidArgument as e:
            assert str(e) == message
        else:
            raise AssertionError("accepted %r" % hcheck)
    assert set(engine.containers.store.ids()) == before


def test_run_once_probes(engine, until):
    cid = _create(engine, ["sleep", "1000"], {"Test": ["CMD", "true"], "Interval": MS})
    engine.containers.start(cid)
    sup = Supervisor(engine)
    try:
        sup.run_once()              # the monitor starts: status starting
        assert _health(engine, cid)["Status"] == "starting"
        time.sleep(0.01)
        sup.run_once()              # the first probe, after the interval
        assert _health(engine, cid)["Status"] == "healthy"
    finally:
        sup.stop()
