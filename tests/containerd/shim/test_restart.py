"""Containers outlive the manager: start 50, SIGKILL the manager, a new one finds them all."""
import json
import os
import signal
import subprocess
import sys
import time

from pyrunc.containerd.tasks import RUNNING, STOPPED, TaskManager

from .conftest import new_id

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "driver.py")
COUNT = 50
LINES = 300


def start_driver(manager, *args):
    """driver.py on ``manager``'s root, runtime and create path."""
    runtime = manager.runtime + ("+warm" if manager.create_server is not None else "")
    proc = subprocess.Popen([sys.executable, DRIVER, manager.root, runtime] + list(args),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "go"
    return proc


def make_bundles(directory, rootfs, count):
    """Bundles sharing one read-only rootfs; even ones exit with a code, odd ones keep running
    and write more lines after the manager is gone."""
    from pyrunc.containerd.runtime import spec as runtime_spec
    expected = {}
    for i in range(count):
        cid = new_id("r%02d" % i)
        lines = "i=0; while [ $i -lt %d ]; do echo %s line $i; i=$((i+1)); done; " % (LINES, cid)
        if i % 2 == 0:
            code = i + 1
            script = lines + "exit %d" % code
        else:
            code = None
            script = lines + "sleep 0.5; echo %s late >&2; sleep 1000" % cid
        spec = runtime_spec.example_spec(args=["sh", "-c", script], terminal=False)
        spec["root"]["path"] = rootfs
        spec["mounts"] = [m for m in spec["mounts"] if m["type"] != "cgroup"]
        path = os.path.join(directory, cid)
        os.mkdir(path)
        runtime_spec.write_spec(path, spec)
        expected[cid] = code
    return expected


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_fifty_containers_survive_a_killed_manager(manager, busybox_rootfs, tmp_path):
    bundles_dir = tmp_path / "bundles"
    bundles_dir.mkdir()
    expected = make_bundles(str(bundles_dir), busybox_rootfs, COUNT)
    driver = start_driver(manager, "start-many", str(bundles_dir))
    try:
        assert driver.stdout.readline().strip() == "done"
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()

    fresh = TaskManager(manager.root, runtime=manager.runtime)
    tasks = {t.id: t for t in fresh.list()}
    assert sorted(tasks) == sorted(expected)
    for cid, code in expected.items():
        task = tasks[cid]
        if code is None:
            assert task.state().status == RUNNING
            wait_for(lambda: len(task.logs()) == LINES + 1)
        else:
            result = task.wait(timeout=30)
            assert result.status == code
            st = task.state()
            assert (st.status, st.exit_status) == (STOPPED, code)
        logs = task.logs()
        assert [e.text for e in logs[:LINES]] == ["%s line %d\n" % (cid, i) for i in range(LINES)]
        assert all(e.stream == "stdout" for e in logs[:LINES])
        if code is None:
            assert (logs[-1].stream, logs[-1].text) == ("stderr", "%s late\n" % cid)

    # the event log holds what the dead manager did; a reader resumes from an offset
    events = list(fresh.events())
    offset = events[-1][0]
    for kind in ("create", "start"):
        assert sorted(e["id"] for _, e in events if e["type"] == kind) == sorted(expected)
    running = [cid for cid, code in expected.items() if code is None]
    for cid in running:
        tasks[cid].kill(signal.SIGKILL)
    for cid in running:
        assert tasks[cid].wait(timeout=30).status == 128 + signal.SIGKILL
    later = [e for _, e in fresh.events(since=offset, follow=True, timeout=0.5)]
    assert sorted(e["id"] for e in later if e["type"] == "exit") == sorted(running)
    assert all(e["exit_status"] == 137 for e in later if e["type"] == "exit")
    for task in tasks.values():
        task.delete()
    assert fresh.list() == []
    with open(fresh.event_log.path) as f:
        assert sum(json.loads(line)["type"] == "delete" for line in f) == COUNT
