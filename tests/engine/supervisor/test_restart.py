"""Restart policies on real busybox containers: each run is counted by what the container's
process itself wrote (its log), the back-off by the times of docker's events."""
import json
import os
import time

from pyrunc import errors
from pyrunc.engine.supervisor import Supervisor
from pyrunc.libcontainer import timestamps


def _create(engine, cmd, policy, count=0, runtime="pyrunc", **config):
    hc = {"RestartPolicy": {"Name": policy, "MaximumRetryCount": count}, "Runtime": runtime}
    return engine.containers.create(dict(config, Image="busybox", Cmd=list(cmd)), hc)["Id"]


def _runs(engine, cid):
    """How many times the container's process ran: the lines it logged."""
    return sum(1 for m in engine.containers.logs(cid) if m.line == b"run\n")


def _events(engine, cid, action):
    return [e for e in engine.events.query(until=time.time() + 1)
            if e.get("Type") == "container" and e["Actor"]["ID"] == cid
            and e["Action"] == action]


def _settled(engine, cid):
    state = engine.containers.inspect(cid)["State"]
    return state if state["Status"] == "exited" and not state["Restarting"] else None


def test_on_failure_restarts_exactly_n_times(engine, supervisor, until, runtime):
    cid = _create(engine, ["sh", "-c", "echo run; exit 3"], "on-failure", 2, runtime)
    supervisor.start()
    engine.containers.start(cid)
    until(lambda: engine.containers.inspect(cid)["RestartCount"] == 2, what="2 restarts")
    state = until(lambda: _settled(engine, cid), what="final exit")
    time.sleep(1.5)             # a third restart would come 400 ms after the last exit
    info = engine.containers.inspect(cid)
    assert info["RestartCount"] == 2
    assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 3
    assert state["ExitCode"] == 3
    assert _runs(engine, cid) == 3
    starts = _events(engine, cid, "start")
    dies = _events(engine, cid, "die")
    assert len(starts) == 3 and len(dies) == 3
    assert all(d["Actor"]["Attributes"]["exitCode"] == "3" for d in dies)
    # docker's back-off: 100 ms before the first restart, 200 ms before the second
    gaps = [(starts[i + 1]["timeNano"] - dies[i]["timeNano"]) / 1e9 for i in range(2)]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2, gaps


def test_on_failure_does_not_restart_success(engine, supervisor, until):
    cid = _create(engine, ["sh", "-c", "echo run; exit 0"], "on-failure", 5)
    supervisor.start()
    engine.containers.start(cid)
    until(lambda: _settled(engine, cid), what="exit")
    time.sleep(1.2)
    assert engine.containers.inspect(cid)["RestartCount"] == 0
    assert _runs(engine, cid) == 1


def test_always_restarts_and_a_user_stop_ends_it(engine, supervisor, until):
    cid = _create(engine, ["sh", "-c", "echo run; exit 0"], "always")
    supervisor.start()
    engine.containers.start(cid)
    seen_restarting = []

    def three():
        state = engine.containers.inspect(cid)
        if state["State"]["Restarting"]:
            seen_restarting.append(state["State"])
        return state["RestartCount"] >= 3
    until(three, interval=0.01, what="3 restarts")
    assert seen_restarting, "State.Restarting never seen"
    st = seen_restarting[0]
    assert st["Status"] == "restarting" and st["Running"] and st["Pid"] == 0
    engine.containers.stop(cid, timeout=1)
    state = until(lambda: _settled(engine, cid), what="stopped")
    count = engine.containers.inspect(cid)["RestartCount"]
    runs = _runs(engine, cid)
    time.sleep(2)
    assert engine.containers.inspect(cid)["RestartCount"] == count
    # a stop during the back-off cancels a restart already counted (docker counts it too)
    assert _runs(engine, cid) == runs and count <= runs <= count + 1
    assert state["ExitCode"] == 0


def test_user_kill_is_not_restarted(engine, supervisor):
    cid = _create(engine, ["sleep", "1000"], "always")
    supervisor.start()
    engine.containers.start(cid)
    pid = engine.containers.inspect(cid)["State"]["Pid"]
    engine.containers.kill(cid)
    assert not os.path.exists("/proc/%d/cmdline" % pid) or \
        open("/proc/%d/stat" % pid).read().split(")")[1].split()[0] == "Z"
    time.sleep(1.5)
    info = engine.containers.inspect(cid)
    assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 137
    assert info["RestartCount"] == 0


def test_backoff_doubles(engine, supervisor, until):
    # unless-stopped restarts a clean exit; the process exits 0 after 0 s
    cid = _create(engine, ["sh", "-c", "echo run"], "unless-stopped")
    supervisor.start()
    engine.containers.start(cid)
    until(lambda: len(_events(engine, cid, "start")) >= 5, what="4 restarts")
    dies = _events(engine, cid, "die")
    starts = _events(engine, cid, "start")
    gaps = [(starts[i + 1]["timeNano"] - dies[i]["timeNano"]) / 1e9 for i in range(4)]
    # the delays double: 0.1, 0.2, 0.4, 0.8 s (each gap at least its delay)
    for gap, delay in zip(gaps, (0.1, 0.2, 0.4, 0.8)):
        assert gap >= delay, gaps
    assert gaps[3] < 0.8 + 10, gaps        # not a longer back-off (loose: a busy machine)
    engine.containers.stop(cid, timeout=1)


def test_boot_always_vs_unless_stopped(engine):
    a = _create(engine, ["sleep", "1000"], "always")
    u = _create(engine, ["sleep", "1000"], "unless-stopped")
    for cid in (a, u):
        engine.containers.start(cid)
        engine.containers.stop(cid, timeout=0)
    sup = Supervisor(engine)                    # a resuming supervisor leaves both stopped
    sup.run_once()
    assert engine.containers.inspect(a)["State"]["Status"] == "exited"
    sup.stop()
    boot = Supervisor(engine, boot=True)        # the daemon starting: always comes back
    try:
        boot.run_once()
        boot.run_once()
        sa = engine.containers.inspect(a)["State"]
        su = engine.containers.inspect(u)["State"]
        assert sa["Status"] == "running" and sa["Pid"] > 0
        with open("/proc/%d/cmdline" % sa["Pid"], "rb") as f:
            assert f.read() == b"sleep\x001000\x00"
        assert su["Status"] == "exited"
    finally:
        boot.stop()


def test_second_supervisor_refused(engine, supervisor):
    supervisor.start()
    other = Supervisor(engine)
    try:
        other.start()
    except errors.Conflict as e:
        assert "another supervisor is running" in str(e)
    else:
        raise AssertionError("two supervisors ran on one root")
    finally:
        other.stop()


def test_policy_messages_at_create(engine):
    for hc, message in [
            ({"RestartPolicy": {"Name": "sometimes"}},
             "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', "
             "'on-failure', or 'unless-stopped'"),
            ({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}},
             "invalid restart policy: maximum retry count can only be used with 'on-failure'"),
            ({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": "3"}},
             "invalid restart policy: MaximumRetryCount must be an integer"),
            ({"AutoRemove": True, "RestartPolicy": {"Name": "always"}},
             "can't create 'AutoRemove' container with restart policy")]:
        before = set(engine.containers.store.ids())
        try:
            engine.containers.create({"Image": "busybox", "Cmd": ["true"]}, hc)
        except errors.InvalidArgument as e:
            assert str(e) == message
        else:
            raise AssertionError("accepted %r" % hc)
        assert set(engine.containers.store.ids()) == before


def test_event_times_are_ordered(engine, supervisor, until):
    cid = _create(engine, ["sh", "-c", "echo run; exit 1"], "on-failure", 1)
    supervisor.start()
    engine.containers.start(cid)
    until(lambda: _settled(engine, cid) and engine.containers.inspect(cid)["RestartCount"] == 1,
          what="1 restart")
    until(lambda: len(_events(engine, cid, "die")) == 2, what="the second die event")
    actions = [e["Action"] for e in engine.events.query(until=time.time() + 1)
               if e.get("Type") == "container" and e["Actor"]["ID"] == cid]
    assert actions[:5] == ["create", "start", "die", "start", "die"]
    info = engine.containers.inspect(cid)
    assert timestamps.parse_ns(info["State"]["FinishedAt"]) >= \
        timestamps.parse_ns(info["State"]["StartedAt"])


def test_stop_or_kill_during_the_backoff_cancels_the_restart(engine):
    sup = Supervisor(engine)
    try:
        for how in ("stop", "kill"):
            cid = _create(engine, ["sh", "-c", "echo run; exit 1"], "always")
            engine.containers.start(cid)
            assert engine.containers.wait(cid, timeout=30)["StatusCode"] == 1
            sup.run_once()                      # judged: restarting, due in 100 ms
            st = engine.containers.inspect(cid)["State"]
            assert st["Status"] == "restarting" and st["Restarting"] and st["Running"]
            assert engine.containers.inspect(cid)["RestartCount"] == 1
            if how == "stop":
                engine.containers.stop(cid, timeout=1)
            else:
                engine.containers.kill(cid)
            st = engine.containers.inspect(cid)["State"]
            assert st["Status"] == "exited" and not st["Restarting"] and not st["Running"]
            assert st["ExitCode"] == 1          # the exit it had
            time.sleep(0.3)
            sup.run_once()
            sup.run_once()
            assert engine.containers.inspect(cid)["State"]["Status"] == "exited"
            assert _runs(engine, cid) == 1, how
    finally:
        sup.stop()


def test_a_bad_record_does_not_stop_the_others(engine, supervisor, until):
    bad = _create(engine, ["sleep", "1000"], "no")
    engine.containers.start(bad)
    path = os.path.join(engine.root, "containers", bad, "config.v2.json")
    with open(path) as f:
        record = json.load(f)
    record["Config"]["Healthcheck"] = {"Test": ["CMD-SHELL", 5], "Interval": "1s"}
    with open(path, "w") as f:
        json.dump(record, f)
    with open(engine.tasks.event_log.path, "a") as f:
        f.write("not json\n")
    good = _create(engine, ["sh", "-c", "echo run; exit 2"], "on-failure", 1)
    supervisor.start()
    engine.containers.start(good)
    until(lambda: engine.containers.inspect(good)["RestartCount"] == 1 and
          _settled(engine, good), what="the good one restarted")
    assert _runs(engine, good) == 2
    assert "Health" not in engine.containers.inspect(bad)["State"]
    assert supervisor._thread.is_alive()


def test_a_restart_that_cannot_start_gives_up(engine, supervisor, until):
    # the first run removes the shell its restart would need: the restart fails with 127
    cid = _create(engine, ["sh", "-c", "echo run; rm /bin/sh; exit 1"], "on-failure", 3)
    supervisor.start()
    engine.containers.start(cid)
    until(lambda: engine.containers.inspect(cid)["RestartCount"] == 1 and
          _settled(engine, cid), what="the failed restart")
    time.sleep(1.5)
    info = engine.containers.inspect(cid)
    assert info["RestartCount"] == 1 and info["State"]["Status"] == "exited"
    assert info["State"]["ExitCode"] == 127, info["State"]
    assert "sh" in info["State"]["Error"]
    assert _runs(engine, cid) == 1


def test_update_changes_the_policy_of_a_running_container(engine, supervisor, until):
    cid = _create(engine, ["sh", "-c", "echo run; sleep 1; exit 6"], "no")
    supervisor.start()
    engine.containers.start(cid)
    try:
        engine.containers.update(cid, {"RestartPolicy": {"Name": "always",
                                                         "MaximumRetryCount": 1}})
    except errors.InvalidArgument as e:
        assert str(e) == ("invalid restart policy: maximum retry count can only be used with "
                          "'on-failure'")
    else:
        raise AssertionError("accepted a retry count with always")
    engine.containers.update(cid, {"RestartPolicy": {"Name": "on-failure",
                                                     "MaximumRetryCount": 1}})
    assert engine.containers.inspect(cid)["HostConfig"]["RestartPolicy"] == {
        "Name": "on-failure", "MaximumRetryCount": 1}
    until(lambda: engine.containers.inspect(cid)["RestartCount"] == 1 and
          _settled(engine, cid), what="one restart")
    assert _runs(engine, cid) == 2
