"""The background runner of the VM tests (support.BackgroundVMs, started by tests/conftest.py):
results handed to the right test, and nothing left behind when the session ends early (-x, an
interrupt) or a run outlives its bound: no process of the run (qemu under timeout(1) is in a
process group of its own), no VM directory."""
import glob
import os
import subprocess
import time

import pytest

import support


def _session_left(sid):
    return support._session_pids(sid)


def _qemu_in(sid):
    qemu = support.pids_by_argv(lambda argv: argv[0].endswith(b"qemu-system-x86_64"))
    return [p for p in _session_left(sid) if p in qemu]


def test_results_go_to_their_commands_in_order():
    vms = support.BackgroundVMs()
    jobs = [("first", ["sh", "-c", "echo one; echo err >&2; exit 3"], 30),
            ("second", ["sh", "-c", "echo two"], 30)]
    vms.start(jobs)
    try:
        second = vms.take(jobs[1][1], 30)
        first = vms.take(jobs[0][1], 30)
    finally:
        vms.stop()
    assert (first.returncode, first.stdout, first.stderr) == (3, "one\n", "err\n")
    assert (second.returncode, second.stdout) == (0, "two\n")
    assert [name for name, seconds in vms.seconds] == ["first", "second"]
    # taken once: asked again (the retry of a timed-out VM), it runs now, in the foreground
    again = vms.take(jobs[1][1], 30)
    assert again.stdout == "two\n"


def test_runs_are_niced_unless_a_test_waits_for_them():
    show = ["sh", "-c", "sleep 2; cut -d' ' -f19 /proc/$$/stat"]   # the shell's nice value
    first, second = show + ["first"], show + ["second"]
    vms = support.BackgroundVMs()
    vms.start([("first", first, 30), ("second", second, 30)])
    try:
        assert vms.take(first, 30).stdout == "0\n"      # waited for from its start
        deadline = time.monotonic() + 30
        while len(vms.seconds) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert vms.take(second, 30).stdout == "19\n"    # ended before anyone waited
    finally:
        vms.stop()


def test_stop_ends_every_process_of_the_run_under_way(tmp_path):
    mark = tmp_path / "started"
    # timeout(1) puts itself and its child in a process group of their own, as run-v2-vm.sh's
    cmd = ["sh", "-c", "timeout 300 sleep 300 & touch %s; wait" % mark]
    vms = support.BackgroundVMs()
    vms.start([("sleeper", cmd, 300), ("second", ["touch", str(tmp_path / "second")], 30)])
    deadline = time.monotonic() + 30
    while not mark.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mark.exists()
    sid = vms._running
    assert sid is not None
    groups = {os.getpgid(p) for p in _session_left(sid)}
    assert len(groups) == 2                         # sh's, and timeout's with sleep
    vms.stop()
    assert _session_left(sid) == []
    assert not (tmp_path / "second").exists()     # the next run never started


def test_a_run_past_its_bound_raises_timeout_and_leaves_nothing():
    started = []
    cmd = ["sh", "-c", "timeout 300 sleep 300 & wait"]
    with pytest.raises(subprocess.TimeoutExpired):
        support.run_vm(cmd, 1, started=started.append)
    assert len(started) == 1 and _session_left(started[0]) == []


def test_a_vm_ended_early_leaves_no_qemu_virtiofsd_or_directory():
    run = support.need_vm()
    before = set(glob.glob("/tmp/pyrunc-v2vm.*"))
    vms = support.BackgroundVMs()
    cmd = [run, "-t", "300", "--", "sleep", "300"]
    vms.start([("vm", cmd, 360)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (vms._running and _qemu_in(vms._running)):
        time.sleep(0.2)
    sid = vms._running
    assert sid and _qemu_in(sid), "no qemu started within 60 s"
    vms.stop()
    assert _session_left(sid) == []
    assert set(glob.glob("/tmp/pyrunc-v2vm.*")) == before
