"""Container lifecycle through the library, with pyrunc and runc as the runtime: every state
is checked against the kernel (/proc, cgroups) or against what the process says inside."""
import os
import signal
import time

import pytest

from pyrunc import errors
from pyrunc.engine import Engine


def _cgroup_dir(pid, controller):
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            _, names, path = line.rstrip("\n").split(":", 2)
            if controller in names.split(","):
                return "/sys/fs/cgroup/%s%s" % (controller, path)
    raise AssertionError("no %s cgroup for %d" % (controller, pid))


def _proc_state(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def _alive(pid):
    try:
        return _proc_state(pid) != "Z"
    except FileNotFoundError:
        return False


def test_run_to_exit_code_and_output(engine, runtime, run_container):
    cid, code, out, err = run_container(engine, ["sh", "-c", "echo out; echo err >&2; exit 3"],
                                        runtime)
    assert (code, out, err) == (3, "out\n", "err\n")
    state = engine.containers.inspect(cid)["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 3
    assert not state["Running"] and state["Pid"] == 0
    assert state["FinishedAt"] >= state["StartedAt"] > "2000"


def test_config_seen_inside(engine, runtime, run_container):
    cid, code, out, _ = run_container(
        engine, ["sh", "-c", "hostname; pwd; echo $FOO; id -u; id -g; cat /etc/hostname"],
        runtime, Hostname="box1", Env=["FOO=bar"], WorkingDir="/tmp", User="65534:65534")
    assert code == 0
    assert out.split("\n")[:6] == ["box1", "/tmp", "bar", "65534", "65534", "box1"]
    c = engine.containers.inspect(cid)
    assert c["Config"]["Hostname"] == "box1"
    assert "FOO=bar" in c["Config"]["Env"]
    # the image's PATH is kept under the request's Env
    assert any(e.startswith("PATH=") for e in c["Config"]["Env"])


def test_default_hostname_is_short_id_and_hosts_file(engine, runtime, run_container):
    cid, code, out, _ = run_container(engine, ["sh", "-c", "hostname; cat /etc/hosts"], runtime)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == cid[:12]
    assert "127.0.0.1\tlocalhost" in lines
    assert any(line.split()[-1] == cid[:12] for line in lines[1:])


def test_running_state_matches_kernel(engine, runtime):
    cs = engine.containers
    cid = cs.create({"Image": "busybox", "Cmd": ["sleep", "60"]}, {"Runtime": runtime})["Id"]
    assert cs.inspect(cid)["State"]["Status"] == "created"
    cs.start(cid)
    st = cs.inspect(cid)["State"]
    assert st["Status"] == "running" and st["Running"]
    pid = st["Pid"]
    deadline = time.monotonic() + 5      # the runtime's init execs the command just after start
    while time.monotonic() < deadline:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")[:2]
        if argv == [b"sleep", b"60"]:
            break
        time.sleep(0.01)
    assert argv == [b"sleep", b"60"]
    assert os.path.exists("/proc/%d/root/bin/busybox" % pid)
    cs.kill(cid, "KILL")
    st = cs.inspect(cid)["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 137
    assert not _alive(pid)


def test_stop_escalates_to_sigkill_after_timeout(engine, runtime):
    cs = engine.containers
    # sleep as PID 1 has no handler for SIGTERM, so the kernel ignores it: stop must KILL
    cid = cs.create({"Image": "busybox", "Cmd": ["sleep", "60"]}, {"Runtime": runtime})["Id"]
    cs.start(cid)
    t0 = time.monotonic()
    cs.stop(cid, timeout=1)
    elapsed = time.monotonic() - t0
    st = cs.inspect(cid)["State"]
    assert st["ExitCode"] == 137 and st["Status"] == "exited"
    assert 0.9 <= elapsed < 8
    assert cs.get(cid).record["HasBeenManuallyStopped"]


def test_stop_signal_from_config(engine, runtime):
    cs = engine.containers
    cid = cs.create({"Image": "busybox", "StopSignal": "SIGUSR1",
                     "Cmd": ["sh", "-c", "trap 'exit 42' USR1; while :; do sleep 0.1; done"]},
                    {"Runtime": runtime})["Id"]
    cs.start(cid)
    time.sleep(0.3)
    cs.stop(cid, timeout=10)
    assert cs.inspect(cid)["State"]["ExitCode"] == 42


def test_kill_with_signal(engine, runtime):
    cs = engine.containers
    cid = cs.create({"Image": "busybox",
                     "Cmd": ["sh", "-c", "trap 'exit 7' HUP; while :; do sleep 0.1; done"]},
                    {"Runtime": runtime})["Id"]
    cs.start(cid)
    time.sleep(0.3)
    cs.kill(cid, "HUP")
    assert cs.wait(cid, timeout=10)["StatusCode"] == 7
    with pytest.raises(errors.Conflict, match="is not running"):
        cs.kill(cid, signal.SIGKILL)
    with pytest.raises(errors.InvalidArgument, match="Invalid signal"):
        cs.kill(cid, "NOPE")


def test_pause_unpause_freezes_the_cgroup(engine, runtime):
    cs = engine.containers
    cid = cs.create({"Image": "busybox", "Cmd": ["sleep", "60"]}, {"Runtime": runtime})["Id"]
    cs.start(cid)
    pid = cs.inspect(cid)["State"]["Pid"]
    freezer = os.path.join(_cgroup_dir(pid, "freezer"), "freezer.state")
    cs.pause(cid)
    st = cs.inspect(cid)["State"]
    assert st["Status"] == "paused" and st["Paused"] and st["Running"]
    with open(freezer) as f:
        assert f.read().strip() == "FROZEN"
    with pytest.raises(errors.Conflict, match="already paused"):
        cs.pause(cid)
    with pytest.raises(errors.Conflict, match="unpause the container before exec"):
        cs.exec_create(cid, {"Cmd": ["true"]})
    with pytest.raises(errors.Conflict, match="You cannot remove a paused container"):
        cs.remove(cid)
    cs.unpause(cid)
    with open(freezer) as f:
        assert f.read().strip() == "THAWED"
    assert cs.inspect(cid)["State"]["Status"] == "running"
    with pytest.raises(errors.Conflict, match="is not paused"):
        cs.unpause(cid)


def test_restart_and_start_again(engine, runtime):
    cs = engine.containers
    cid = cs.create({"Image": "busybox", "Cmd": ["sleep", "60"]}, {"Runtime": runtime})["Id"]
    cs.start(cid)
    pid1 = cs.inspect(cid)["State"]["Pid"]
    cs.restart(cid, timeout=0)
    st = cs.inspect(cid)["State"]
    assert st["Running"] and st["Pid"] != pid1 and not _alive(pid1)
    cs.stop(cid, timeout=0)
    since = time.time()
    cs.stop(cid)                # stopped already: nothing happens, no event (docker's 304)
    assert [e for e in engine.events.query(since=since, until=time.time() + 1)
            if e["Actor"]["ID"] == cid] == []
    cs.start(cid)
    assert cs.inspect(cid)["State"]["Running"]


def test_wait_conditions(engine, runtime):
    cs = engine.containers
    cid = cs.create({"Image": "busybox", "Cmd": ["sh", "-c", "sleep 0.5; exit 5"]},
                    {"Runtime": runtime})["Id"]
    # not-running on a created container answers at once (its exit code is 0)
    assert cs.wait(cid, timeout=1) == {"StatusCode": 0, "Error": None}
    cs.start(cid)
    assert cs.wait(cid, "next-exit", timeout=20)["StatusCode"] == 5
    assert cs.wait(cid, "not-running", timeout=1)["StatusCode"] == 5
    with pytest.raises(TimeoutError):
        cs.wait(cid, "next-exit", timeout=0.3)
    with pytest.raises(errors.InvalidArgument):
        cs.wait(cid, "whenever")
    cs.remove(cid)
    with pytest.raises(errors.NotFound, match="No such container"):
        cs.wait(cid, "removed", timeout=1)


def test_remove_running_refused_with_docker_text(engine, runtime, leftovers):
    cs = engine.containers
    cid = cs.create({"Image": "busybox", "Cmd": ["sleep", "60"]}, {"Runtime": runtime})["Id"]
    cs.start(cid)
    pid = cs.inspect(cid)["State"]["Pid"]
    with pytest.raises(errors.Conflict) as e:
        cs.remove(cid)
    assert str(e.value) == ("You cannot remove a running container %s. Stop the container "
                            "before attempting removal or force remove" % cid)
    assert cs.inspect(cid)["State"]["Running"]
    cs.remove(cid, force=True)
    assert not _alive(pid)
    with pytest.raises(errors.NotFound, match="No such container: %s" % cid):
        cs.inspect(cid)
    assert leftovers(engine, cid) == []


def test_new_engine_sees_same_containers_and_states(engine, runtime):
    cs = engine.containers
    running = cs.create({"Image": "busybox", "Cmd": ["sleep", "60"]}, {"Runtime": runtime},
                        name="keeps-running")["Id"]
    exits = cs.create({"Image": "busybox", "Cmd": ["sh", "-c", "sleep 0.3; exit 9"]},
                      {"Runtime": runtime}, name="exits-later")["Id"]
    created = cs.create({"Image": "busybox", "Cmd": ["true"]}, {"Runtime": runtime})["Id"]
    cs.start(running)
    cs.start(exits)
    pid = cs.inspect(running)["State"]["Pid"]
    other = Engine(engine.root).containers
    time.sleep(1.0)           # "exits-later" exits with nobody watching
    assert other.inspect("keeps-running")["State"]["Pid"] == pid
    st = other.inspect("exits-later")["State"]
    assert (st["Status"], st["ExitCode"]) == ("exited", 9)
    assert other.inspect(created)["State"]["Status"] == "created"
    assert {c["Id"] for c in other.list(all=True)} >= {running, exits, created}
    other.stop(running, timeout=0)
    assert cs.inspect(running)["State"]["ExitCode"] == 137


def test_exec_records(engine, runtime):
    cs = engine.containers
    cid = cs.create({"Image": "busybox", "Cmd": ["sleep", "60"], "Env": ["A=1"]},
                    {"Runtime": runtime})["Id"]
    cs.start(cid)
    eid = cs.exec_create(cid, {"Cmd": ["sh", "-c", "echo $A $B; id -u; exit 4"],
                               "Env": ["B=2"], "User": "65534"})
    assert len(eid) == 64
    before = cs.exec_inspect(eid)
    assert (before["Running"], before["ExitCode"], before["ContainerID"]) == (False, None, cid)
    proc = cs.exec_start(eid)
    out = b""
    while True:
        stream, data = proc.attachment.read(timeout=10)
        if stream is None:
            break
        if stream == 1:
            out += data
    proc.wait(timeout=10)
    assert out == b"1 2\n65534\n"
    after = cs.exec_inspect(eid)
    assert (after["Running"], after["ExitCode"]) == (False, 4)
    assert after["ProcessConfig"]["entrypoint"] == "sh"
    # a detached exec that keeps running shows its pid, in the container's cgroup
    eid2 = cs.exec_create(cid, {"Cmd": ["sleep", "30"]})
    cs.exec_start(eid2, detach=True)
    info = cs.exec_inspect(eid2)
    assert info["Running"] and info["Pid"] > 0
    assert _cgroup_dir(info["Pid"], "memory") == _cgroup_dir(cs.inspect(cid)["State"]["Pid"],
                                                             "memory")
    assert cs.inspect(cid)["ExecIDs"] == [eid2]
    cs.stop(cid, timeout=0)
    assert cs.exec_inspect(eid2)["Running"] is False
    with pytest.raises(errors.NotFound, match="No such exec instance"):
        cs.exec_inspect("0" * 64)


def test_top_lists_container_processes(engine, runtime):
    cs = engine.containers
    cid = cs.create({"Image": "busybox", "Cmd": ["sh", "-c", "sleep 60 & sleep 61"]},
                    {"Runtime": runtime})["Id"]
    cs.start(cid)
    time.sleep(0.3)
    top = cs.top(cid)
    assert top["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    cmds = sorted(p[7] for p in top["Processes"])
    assert "sleep 60" in cmds and "sleep 61" in cmds
    pids = {int(p[1]) for p in top["Processes"]}
    assert cs.inspect(cid)["State"]["Pid"] in pids
    # the host's ps with docker's options, rows limited to the container's pids
    custom = cs.top(cid, "-o pid,comm")
    assert custom["Titles"] == ["PID", "COMMAND"]
    assert {int(p[0]) for p in custom["Processes"]} == pids


def test_stats_from_cgroups(engine, runtime):
    cs = engine.containers
    cid = cs.create({"Image": "busybox", "Cmd": ["sleep", "60"]},
                    {"Runtime": runtime})["Id"]
    cs.start(cid)
    doc = cs.stats(cid)
    pid = cs.inspect(cid)["State"]["Pid"]
    assert doc["id"] == cid and doc["name"] == cs.inspect(cid)["Name"]
    assert doc["pids_stats"]["current"] >= 1
    with open(os.path.join(_cgroup_dir(pid, "memory"), "memory.usage_in_bytes")) as f:
        kernel = int(f.read())
    assert 0 < doc["memory_stats"]["usage"] <= kernel * 4
    assert doc["cpu_stats"]["system_cpu_usage"] > 0
    stream = cs.stats(cid, stream=True)
    first, second = next(stream), next(stream)
    assert second["precpu_stats"] == first["cpu_stats"]
    cs.stop(cid, timeout=0)
    assert cs.stats(cid)["read"] == "0001-01-01T00:00:00Z"


def test_update_memory_limit_reaches_the_cgroup(engine, runtime):
    cs = engine.containers
    cid = cs.create({"Image": "busybox", "Cmd": ["sleep", "60"]},
                    {"Runtime": runtime})["Id"]
    cs.start(cid)
    pid = cs.inspect(cid)["State"]["Pid"]
    assert cs.update(cid, {"Memory": 64 * 2**20, "MemorySwap": 128 * 2**20,
                           "RestartPolicy": {"Name": "on-failure",
                                             "MaximumRetryCount": 2}}) == {"Warnings": []}
    with open(os.path.join(_cgroup_dir(pid, "memory"), "memory.limit_in_bytes")) as f:
        assert int(f.read()) == 64 * 2**20
    hc = cs.inspect(cid)["HostConfig"]
    assert hc["Memory"] == 64 * 2**20
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    with pytest.raises(errors.InvalidArgument, match="cannot be updated"):
        cs.update(cid, {"Privileged": True})
    with pytest.raises(errors.InvalidArgument, match="memoryswap"):
        cs.update(cid, {"Memory": 256 * 2**20})


def test_logs_and_attach(engine, runtime):
    cs = engine.containers
    cid = cs.create({"Image": "busybox",
                     "Cmd": ["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done"]},
                    {"Runtime": runtime})["Id"]
    cs.start(cid)
    attachment = cs.attach(cid)
    followed = [m.line for m in cs.logs(cid, follow=True)]
    assert followed == [b"line1\n", b"line2\n", b"line3\n"]
    assert [m.line for m in cs.logs(cid, tail=1)] == [b"line3\n"]
    got = b""
    while True:
        stream, data = attachment.read(timeout=10)
        if stream is None:
            break
        if stream == 1:
            got += data
    assert b"line3\n" in got
    with pytest.raises(errors.Conflict, match="stopped container"):
        cs.attach(cid)


def test_log_driver_none(engine, runtime):
    cs = engine.containers
    cid = cs.create({"Image": "busybox", "Cmd": ["echo", "hidden"]},
                    {"Runtime": runtime, "LogConfig": {"Type": "none"}})["Id"]
    cs.start(cid)
    assert cs.wait(cid, timeout=10)["StatusCode"] == 0
    assert not os.path.exists(cs.get(cid).log_path)
    with pytest.raises(errors.FailedPrecondition, match="does not support reading"):
        list(cs.logs(cid))


def test_auto_remove(engine, runtime, leftovers):
    cs = engine.containers
    vol_before = {v["Name"] for v in engine.volumes.list()["Volumes"]}
    cid = cs.create({"Image": "busybox", "Cmd": ["sh", "-c", "exit 6"],
                     "Volumes": {"/data": {}}},
                    {"Runtime": runtime, "AutoRemove": True})["Id"]
    cs.start(cid)
    assert cs.wait(cid, "removed", timeout=20)["StatusCode"] == 6
    with pytest.raises(errors.NotFound):
        cs.inspect(cid)
    assert leftovers(engine, cid) == []
    # --rm removes the anonymous volume of the image's (here the request's) VOLUME too
    assert {v["Name"] for v in engine.volumes.list()["Volumes"]} == vol_before


def test_kill_and_stop_a_paused_container(engine, runtime):
    cs = engine.containers
    for action in ("kill", "stop"):
        cid = cs.create({"Image": "busybox", "Cmd": ["sleep", "60"]},
                        {"Runtime": runtime})["Id"]
        cs.start(cid)
        pid = cs.inspect(cid)["State"]["Pid"]
        cs.pause(cid)
        if action == "kill":
            cs.kill(cid)
        else:
            cs.stop(cid, timeout=1)
        st = cs.inspect(cid)["State"]
        assert (st["Status"], st["ExitCode"], st["Paused"]) == ("exited", 137, False)
        assert not _alive(pid)


def test_exec_user_name_from_another_engine(engine, runtime):
    """An exec's user name is looked up in the container's root as its process sees it,
    also from an Engine object in another process's mount namespace."""
    cs = engine.containers
    cid = cs.create({"Image": "busybox", "Cmd": ["sleep", "60"]}, {"Runtime": runtime})["Id"]
    cs.start(cid)
    other = Engine(engine.root).containers
    eid = other.exec_create(cid, {"Cmd": ["sh", "-c", "id -un; echo $HOME"], "User": "nobody"})
    proc = other.exec_start(eid, detach=True)
    assert proc.wait(timeout=10).status == 0
    assert other.exec_inspect(eid)["ExitCode"] == 0
    with open("/proc/%d/root/etc/passwd" % cs.inspect(cid)["State"]["Pid"]) as f:
        home = next(line for line in f if line.startswith("nobody:")).split(":")[5]
    assert proc.output()[0] == "nobody\n%s\n" % home


def test_tty_and_stdin(engine, runtime):
    cs = engine.containers
    cid = cs.create({"Image": "busybox", "Cmd": ["sh", "-c", "tty; read line; echo got $line"],
                     "Tty": True, "OpenStdin": True}, {"Runtime": runtime})["Id"]
    cs.start(cid)
    # the input goes once tty has written (its line is in the log): the terminal echoes the
    # input at once, ahead of any output the process has yet to write
    deadline = time.monotonic() + 20
    while b"/dev/pts/" not in b"".join(m.line for m in cs.logs(cid)):
        assert time.monotonic() < deadline, "tty wrote nothing in 20 s"
        time.sleep(0.02)
    with cs.attach(cid) as attachment:
        attachment.write(b"hello\n")
        out = b""
        while b"got hello" not in out:
            stream, data = attachment.read(timeout=10)
            if stream is None:
                break
            out += data if stream == 1 else b""
    assert cs.wait(cid, timeout=10)["StatusCode"] == 0
    text = b"".join(m.line for m in cs.logs(cid)).decode()
    assert text.startswith("/dev/pts/")          # a terminal, as the process sees it
    assert "got hello" in text


def test_exec_root_is_remembered(engine):
    """A later Engine on the root, not told the exec root, uses the one its containers'
    tasks are under (else it would see every running container as gone)."""
    assert Engine(engine.root).exec_root == engine.exec_root


def test_native_snapshotter(tmp_path, exec_root, runtime, run_container, leftovers):
    """The copying snapshotter (no overlayfs) runs containers the same way."""
    eng = Engine(str(tmp_path / "native"), exec_root=exec_root, snapshotter="native")
    eng.load_builtin("busybox")
    assert eng.images.snapshotter.name == "native"
    try:
        cid, code, out, _ = run_container(eng, ["sh", "-c", "echo x > /new; cat /new"],
                                          runtime)
        assert (code, out) == (0, "x\n")
        assert eng.containers.inspect(cid)["GraphDriver"]["Name"] == "native"
        eng.containers.remove(cid)
        assert leftovers(eng, cid) == []
    finally:
        for c in eng.containers.store.all():
            eng.containers.remove(c.id, force=True)
