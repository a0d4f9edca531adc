"""containerd's own runc shim (io.containerd.runc.v2) drives pyrunc, as it drives runc.

ctr runs on a private containerd (fixture ``containerd``) with ``--runc-binary`` pointing at the
runtime under test and ``--rootfs`` at a busybox rootfs, so no image is involved.
"""
import subprocess
import time

import pytest

from support import unique_id


@pytest.fixture(params=["pyrunc", "runc"])
def runc_binary(request, pyrunc_bin):
    return pyrunc_bin if request.param == "pyrunc" else "runc"


def test_run_output_and_exit_code(containerd, runc_binary, busybox_rootfs):
    cid = unique_id("ctr")
    r = containerd("run", "--rm", "--runc-binary", runc_binary, "--rootfs", busybox_rootfs, cid,
                   "/bin/sh", "-c", "echo hello from $(cat /proc/self/cgroup | wc -l); exit 3",
                   check=False)
    assert r.returncode == 3, r.stderr
    assert r.stdout.startswith("hello from ")


def test_detached_task_lifecycle(containerd, runc_binary, busybox_rootfs):
    cid = unique_id("ctr")
    containerd("run", "-d", "--runc-binary", runc_binary, "--rootfs", busybox_rootfs, cid,
               "/bin/sleep", "100")
    try:
        tasks = containerd("tasks", "ls").stdout
        line = next(line for line in tasks.splitlines() if line.startswith(cid))
        assert line.split()[2] == "RUNNING"
        pid = int(line.split()[1])
        assert open("/proc/%d/cmdline" % pid).read().startswith("/bin/sleep")
        containerd("tasks", "kill", "-s", "SIGKILL", cid)
        deadline = time.monotonic() + 10
        while "STOPPED" not in containerd("tasks", "ls").stdout:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        r = containerd("tasks", "delete", cid)
        # ctr reports the exit status of the SIGKILLed task: 128 + 9
        assert "exit with non-zero exit code 137" in r.stderr, r.stderr
    finally:
        containerd("tasks", "delete", "-f", cid, check=False)
        containerd("containers", "delete", cid, check=False)


def test_create_failure_is_reported(containerd, runc_binary, busybox_rootfs):
    cid = unique_id("ctr")
    r = containerd("run", "--rm", "--runc-binary", runc_binary, "--rootfs", busybox_rootfs, cid,
                   "/no/such/binary", check=False)
    containerd("containers", "delete", cid, check=False)
    assert r.returncode != 0
    assert "/no/such/binary" in r.stderr


def test_stdin_and_tty(containerd, runc_binary, busybox_rootfs):
    cid = unique_id("ctr")
    r = subprocess.run(
        ["script", "-qec", "ctr --address %s --namespace pyrunc-test run --rm -t "
         "--runc-binary %s --rootfs %s %s /bin/sh -c 'tty; exit 5'"
         % (containerd.address, runc_binary, busybox_rootfs, cid), "/dev/null"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert "/dev/pts/0" in r.stdout, r.stdout + r.stderr


def test_pause_resume_metrics(containerd, runc_binary, busybox_rootfs):
    cid = unique_id("ctr")
    containerd("run", "-d", "--runc-binary", runc_binary, "--rootfs", busybox_rootfs, cid,
               "/bin/sleep", "100")
    try:
        containerd("tasks", "pause", cid)
        assert " PAUSED" in containerd("tasks", "ls").stdout
        containerd("tasks", "resume", cid)
        assert " RUNNING" in containerd("tasks", "ls").stdout
        metrics = containerd("tasks", "metrics", "--format", "json", cid).stdout
        assert '"pids"' in metrics.lower()
    finally:
        containerd("tasks", "kill", "-s", "SIGKILL", cid, check=False)
        deadline = time.monotonic() + 10
        while "RUNNING" in containerd("tasks", "ls").stdout and time.monotonic() < deadline:
            time.sleep(0.05)
        containerd("tasks", "delete", "-f", cid, check=False)
        containerd("containers", "delete", cid, check=False)
