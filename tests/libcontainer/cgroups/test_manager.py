"""The shared suite every cgroup backend passes: each resource checked for its effect on plain
forked processes in the cgroup. It runs against the backend this host has (cgroup v1 here;
cgroup v2 through tests/vm)."""
import errno
import json
import os
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pyrunc.errors import InvalidArgument, Unavailable
from pyrunc.libcontainer import cgroups

MB = 1 << 20


def _sleep_forever(child):
    time.sleep(60)


def _cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])     # utime + stime


def _burn(seconds):
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n


def test_apply_places_the_process_and_destroy_removes_the_cgroup(cgroup, spawn):
    child = spawn(cgroup, _sleep_forever)
    assert cgroup.pids() == [child.pid]
    with open("/proc/%d/cgroup" % child.pid) as f:
        own = f.read()
    for controller, directory in cgroup.paths().items():
        assert os.path.isdir(directory)
        if controller in ("", "memory"):
            key = "0::" if controller == "" else ":memory:"
            line = next(x for x in own.splitlines() if key in x)
            assert directory.endswith(line.split(":", 2)[2])
    child.kill()
    cgroup.destroy()
    assert not any(os.path.exists(d) for d in cgroup.paths().values())


def test_a_new_process_joins_the_cgroup_by_itself(cgroup, driver):
    """join(): the native core's first child puts itself in every hierarchy (cloned into the
    cgroup2 directory, "0" written into each v1 tasks file), and the init it clones is there.
    Not with systemd: its scope is a unit only systemd makes, started with its first pid."""
    from pyrunc.libcontainer.plan import Plan
    from pyrunc.libcontainer.process import spawn_init
    join = cgroup.join()
    if driver == "systemd":
        assert join is None, "the systemd driver must leave the scope to systemd (apply)"
        return
    assert join is not None, "%s driver: join() gives no Join" % type(cgroup).__name__
    cgroup.create()
    plan = Plan(container_id="test", bundle="/", rootfs="", args=["/bin/sleep", "60"],
                env=["PATH=/usr/bin:/bin"])
    pid = spawn_init(plan, exec_fifo_fd=-1, cgroup=join)
    try:
        assert cgroup.pids() == [pid]
        for directory in set(cgroup.paths().values()):
            with open(os.path.join(directory, "cgroup.procs")) as f:
                assert f.read().split() == [str(pid)], directory
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def test_apply_again_adds_a_process(cgroup, spawn):
    first = spawn(cgroup, _sleep_forever)
    second = spawn(cgroup, _sleep_forever)     # as exec joins a running container
    assert cgroup.pids() == sorted([first.pid, second.pid])


def test_state_round_trips_through_json(cgroup, spawn):
    child = spawn(cgroup, _sleep_forever)
    loaded = cgroups.load_manager(json.loads(json.dumps(cgroup.to_state())))
    assert loaded.version == cgroup.version
    assert loaded.paths() == cgroup.paths()
    assert loaded.pids() == [child.pid]


def test_memory_limit_oom_kills_and_is_reported(cgroup, spawn):
    def hog(child):
        data = b"x" * (256 * MB)         # written, so really allocated
        child.send(b"survived %d" % len(data))

    spawn(cgroup, _sleep_forever)        # keeps the cgroup (a systemd scope) after the kill
    child = spawn(cgroup, hog, start=False)
    cgroup.set({"memory": {"limit": 32 * MB}})
    with cgroup.oom_events() as events:
        child.start()
        status, _ = child.wait()
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9, status
        assert child.output() == b""
        assert events.poll(5) >= 1
    assert cgroup.stats()["memory"]["usage"]["limit"] == 32 * MB


def test_pids_limit_makes_fork_fail(cgroup, spawn):
    def forker(child):
        kids = []
        for _ in range(10):
            try:
                pid = os.fork()
            except BlockingIOError:
                break
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            kids.append(pid)
        child.send(b"%d" % len(kids))
        for pid in kids:
            os.kill(pid, 9)
            os.waitpid(pid, 0)

    child = spawn(cgroup, forker, start=False)
    cgroup.set({"pids": {"limit": 4}})
    child.start()
    child.wait()
    assert child.output() == b"3"              # the limit counts the forker itself


def test_cpu_quota_caps_cpu_time(cgroup, spawn):
    spawn(cgroup, _sleep_forever)        # keeps the cgroup (a systemd scope) afterwards
    child = spawn(cgroup, lambda c: _burn(1.5) and 0, start=False)
    cgroup.set({"cpu": {"quota": 20000, "period": 100000}})
    child.start()
    status, rusage = child.wait()
    used = rusage.ru_utime + rusage.ru_stime
    assert os.WIFEXITED(status)
    assert used < 0.6, "%.2fs of CPU in 1.5s under a 20%% quota" % used
    assert cgroup.stats()["cpu"]["throttling"]["throttledPeriods"] > 0


def test_denied_device_cannot_be_opened(cgroup, spawn):
    def opener(child):
        for path in ("/dev/null", "/dev/zero"):
            try:
                os.close(os.open(path, os.O_RDONLY))
                child.send(b"%s ok\n" % path.encode())
            except OSError as e:
                child.send(b"%s %d\n" % (path.encode(), e.errno))

    child = spawn(cgroup, opener, start=False)
    cgroup.set({"devices": [{"allow": True, "access": "rwm"},
                            {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]})
    child.start()
    child.wait()
    assert child.output().decode().split("\n")[:2] == ["/dev/null %d" % errno.EPERM, "/dev/zero ok"]


def test_freeze_stops_the_processes_and_thaw_resumes_them(cgroup, spawn):
    child = spawn(cgroup, lambda c: _burn(60) and 0)
    time.sleep(0.1)
    cgroup.freeze()
    assert cgroup.freezer_state() == "FROZEN"
    before = _cpu_ticks(child.pid)
    time.sleep(0.3)
    assert _cpu_ticks(child.pid) == before
    cgroup.thaw()
    assert cgroup.freezer_state() == "THAWED"
    time.sleep(0.3)
    assert _cpu_ticks(child.pid) > before


def test_stats_report_usage_in_runcs_shape(cgroup, spawn):
    def worker(child):
        data = b"y" * (8 * MB)
        _burn(0.3)
        child.send(b"ready")
        time.sleep(60)
        return len(data) and 0

    child = spawn(cgroup, worker, start=False)
    cgroup.set({"pids": {"limit": 50}, "memory": {"limit": 256 * MB}})
    child.start()
    assert os.read(child._out_r, 5) == b"ready"
    stats = json.loads(json.dumps(cgroup.stats()))
    assert stats["cpu"]["usage"]["total"] > 100_000_000          # ns
    assert stats["cpu"]["usage"]["user"] + stats["cpu"]["usage"]["kernel"] > 0
    assert stats["memory"]["usage"]["usage"] >= 8 * MB
    assert stats["memory"]["usage"]["limit"] == 256 * MB
    assert "cache" in stats["memory"] or stats["memory"]["raw"]
    assert stats["pids"] == {"current": 1, "limit": 50}


def test_update_changes_limits_in_place(cgroup, spawn):
    def forker(child):
        kids = []
        while len(kids) < 20:
            try:
                pid = os.fork()
            except BlockingIOError:
                break
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            kids.append(pid)
        child.send(b"%d" % len(kids))
        for pid in kids:
            os.kill(pid, 9)
            os.waitpid(pid, 0)

    child = spawn(cgroup, forker, start=False)
    cgroup.set({"pids": {"limit": 2}, "memory": {"limit": 64 * MB}})
    cgroup.set({"pids": {"limit": 6}, "memory": {"limit": 128 * MB}})
    assert cgroup.stats()["memory"]["usage"]["limit"] == 128 * MB
    child.start()
    child.wait()
    assert child.output() == b"5"


def test_memory_limit_below_usage_is_refused_clearly(cgroup, spawn):
    def holder(child):
        data = b"z" * (64 * MB)
        child.send(b"held")
        time.sleep(60)
        return len(data) and 0

    child = spawn(cgroup, holder)
    assert os.read(child._out_r, 4) == b"held"
    with pytest.raises(InvalidArgument) as err:
        cgroup.set({"memory": {"limit": 8 * MB}})
    assert str(err.value).startswith("linux.resources.memory.limit: 8388608 bytes is below the ")
    assert "the container already uses" in str(err.value)
    assert os.waitpid(child.pid, os.WNOHANG) == (0, 0)     # still alive


def test_absent_controller_is_unavailable(cgroup, spawn):
    spawn(cgroup, _sleep_forever)
    if "net_cls" not in cgroup.paths():     # this host, and every cgroup v2 host
        resources, name = {"network": {"classID": 0x100001}}, "net_cls"
    else:                                   # a legacy host with the usual controllers
        assert "rdma" not in cgroup.paths()
        resources, name = {"rdma": {"mlx5_0": {"hcaHandles": 1}}}, "rdma"
    with pytest.raises(Unavailable, match='^cgroup controller "%s" is not available' % name):
        cgroup.set(resources)


def test_malformed_value_names_the_field_and_writes_nothing(cgroup, spawn):
    spawn(cgroup, _sleep_forever)
    before = cgroup.stats()["pids"].get("limit", 0)      # systemd sets a default TasksMax
    with pytest.raises(InvalidArgument) as err:
        cgroup.set({"pids": {"limit": 7}, "memory": {"limit": "1g"}})
    assert str(err.value) == "linux.resources.memory.limit: must be an integer, not a string"
    assert cgroup.stats()["pids"].get("limit", 0) == before != 7


def test_systemd_driver_is_a_clear_error_without_systemd():
    if os.path.isdir("/run/systemd/system"):
        pytest.skip("systemd runs here")    # tests/vm runs the suite under systemd instead
    with pytest.raises(Unavailable, match="^systemd cgroup driver: systemd is not running"):
        cgroups.new_manager("/x", "x", systemd=True)


def test_mount_steps_show_the_containers_cgroup(cgroup, spawn):
    spawn(cgroup, _sleep_forever)
    steps = cgroup.mount_steps("/sys/fs/cgroup", 0x1, cgroupns=False)
    sources = {s.source for s in steps if s.kind == "mount"}
    if cgroup.version == 2:
        assert [s.source for s in steps] == [cgroup.paths()[""]]
        ns_steps = cgroup.mount_steps("/sys/fs/cgroup", 0, cgroupns=True)
        assert [(s.kind, s.fstype) for s in ns_steps] == [("mount", "cgroup2")]
        return
    assert steps[0].fstype == "tmpfs" and steps[0].destination == "/sys/fs/cgroup"
    for controller in ("memory", "pids", "devices", "freezer"):
        assert cgroup.paths()[controller] in sources
    assert steps[-1].flags & 0x20 and steps[-1].flags & 0x1        # remounted read-only
    ns_steps = cgroup.mount_steps("/sys/fs/cgroup", 0, cgroupns=True)
    mounted = {c for s in ns_steps if s.fstype == "cgroup" for c in s.data.split(",")}
    assert mounted >= {"memory", "pids", "cpu"}          # cpu alone, or with cpuacct


def test_start_failure_names_the_memory_limit_after_an_oom_kill(cgroup, spawn):
    spawn(cgroup, _sleep_forever)        # keeps the cgroup (a systemd scope) after the kill
    child = spawn(cgroup, lambda c: len(b"x" * (64 * MB)) and 0, start=False)
    cgroup.set({"memory": {"limit": 16 * MB}})
    assert cgroup.start_failure() is None
    child.start()
    child.wait()
    assert cgroup.start_failure() == (
        "the memory limit (linux.resources.memory.limit = 16777216 bytes) is too low for the "
        "container to start: its init was OOM-killed")


def test_start_failure_names_the_pids_limit_after_a_failed_fork(cgroup, spawn):
    def fork_once(child):
        try:
            pid = os.fork()
        except BlockingIOError:
            return 3
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)

    spawn(cgroup, _sleep_forever)        # keeps the cgroup (a systemd scope) afterwards
    child = spawn(cgroup, fork_once, start=False)
    cgroup.set({"pids": {"limit": 2}})
    child.start()
    status, _ = child.wait()
    assert os.WEXITSTATUS(status) == 3
    assert cgroup.start_failure() == (
        "the pids limit (linux.resources.pids.limit = 2) is too low for the container to start: "
        "fork failed")


@pytest.fixture
def block_device(tmp_path):
    """(path, major, minor) of a disk this process may read: a whole virtio/SCSI disk when one
    can be opened (the VM's null disk), else a loop device over a temp file (removed after)."""
    import shutil
    import subprocess
    for name in sorted(os.listdir("/sys/block")):
        if name.startswith(("vd", "sd", "nvme", "xvd")):
            try:
                os.close(os.open("/dev/" + name, os.O_RDONLY))
            except OSError:
                continue
            with open("/sys/block/%s/dev" % name) as f:
                major, minor = (int(x) for x in f.read().split(":"))
            yield "/dev/" + name, major, minor
            return
    if not shutil.which("losetup"):
        pytest.skip("no readable disk and no losetup")
    backing = tmp_path / "disk.img"
    with open(backing, "wb") as f:
        f.truncate(16 * MB)
    loop = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True,
                          text=True, check=True).stdout.strip()
    try:
        st = os.stat(loop)
        yield loop, os.major(st.st_rdev), os.minor(st.st_rdev)
    finally:
        subprocess.run(["losetup", "-d", loop], check=True)


def test_read_throttle_slows_direct_reads(cgroup, spawn, block_device):
    import mmap
    path, major, minor = block_device
    rate, total = 2 * MB, 6 * MB

    def reader(child):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        buf = mmap.mmap(-1, 64 * 1024)
        start = time.monotonic()
        done = 0
        while done < total:
            done += os.preadv(fd, [buf], done)
        child.send(b"%.3f" % (time.monotonic() - start))

    spawn(cgroup, _sleep_forever)        # keeps the cgroup (a systemd scope) afterwards
    child = spawn(cgroup, reader, start=False)
    cgroup.set({"blockIO": {"throttleReadBpsDevice": [{"major": major, "minor": minor,
                                                        "rate": rate}]}})
    child.start()
    child.wait()
    elapsed = float(child.output())
    assert elapsed > 1.5, "read %d bytes in %.2fs under a %d B/s limit" % (total, elapsed, rate)
    reads = [e for e in cgroup.stats()["blkio"]["ioServiceBytesRecursive"]
             if (e.get("major", 0), e.get("minor", 0), e.get("op")) == (major, minor, "Read")]
    assert reads and reads[0]["value"] >= total


def test_hugepage_limit_is_set_or_clearly_unavailable(cgroup, spawn):
    spawn(cgroup, _sleep_forever)
    try:
        cgroup.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MB}]})
    except Unavailable as e:
        # v1 here has no hugetlb hierarchy; systemd does not delegate hugetlb to its units
        assert cgroup.version == 1 or cgroup.driver == "systemd"
        assert str(e) == 'cgroup controller "hugetlb" is not available on this host'
        return
    directory = cgroup.paths().get("hugetlb") or cgroup.paths()[""]
    name = "hugetlb.2MB.max" if cgroup.version == 2 else "hugetlb.2MB.limit_in_bytes"
    with open(os.path.join(directory, name)) as f:
        assert int(f.read()) == 4 * MB
    assert cgroup.stats()["hugetlb"]["2MB"]["failcnt"] == 0


def test_updating_device_rules_never_denies_in_between(cgroup, spawn):
    """A running process opens /dev/null in a loop while the rules are re-set (the same, then
    one more device allowed): not one open may fail."""
    rules = [{"allow": False, "access": "rwm"},
             {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]

    def opener(child):
        failures = 0
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            try:
                os.close(os.open("/dev/null", os.O_RDONLY))
            except OSError:
                failures += 1
        child.send(b"%d" % failures)

    child = spawn(cgroup, opener, start=False)
    cgroup.set({"devices": rules})
    child.start()
    for _ in range(20):
        cgroup.set({"devices": rules})
        cgroup.set({"devices": rules + [{"allow": True, "type": "c", "major": 1, "minor": 5,
                                         "access": "rwm"}]})
    child.wait()
    assert child.output() == b"0"


def test_oom_events_end_when_the_cgroup_goes(cgroup, spawn):
    keeper = spawn(cgroup, _sleep_forever)
    with cgroup.oom_events() as events:
        assert events.poll(0.05) == 0
        keeper.kill()
        cgroup.destroy()
        assert events.poll(5) is None
        assert list(events) == []


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["freeze", "thaw"]), min_size=1, max_size=4))
def test_freezer_state_follows_the_last_operation(cgroup, spawn, operations):
    if not cgroup.pids():
        spawn(cgroup, _sleep_forever)
    for op in operations:
        getattr(cgroup, op)()
        assert cgroup.freezer_state() == ("FROZEN" if op == "freeze" else "THAWED")
    cgroup.thaw()


def test_event_stream_reports_stats_and_oom_kills(cgroup, spawn):
    from pyrunc.libcontainer.cgroups import events
    spawn(cgroup, _sleep_forever)        # keeps the cgroup (a systemd scope) after the kill
    hog = spawn(cgroup, lambda c: len(b"x" * (256 * MB)) and 0, start=False)
    cgroup.set({"memory": {"limit": 32 * MB}})
    seen = []
    for event in events.stream(cgroup, interval=0.2):
        seen.append(event)
        if len(seen) == 1:
            hog.start()
        if event["type"] == "oom" or len(seen) > 50:
            break
    assert seen[0]["type"] == "stats" and seen[0]["id"] == "test"
    assert seen[0]["data"]["memory"]["usage"]["limit"] == 32 * MB
    assert seen[-1] == {"type": "oom", "id": "test"}
