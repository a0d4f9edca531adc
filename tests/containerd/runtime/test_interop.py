"""What engines (containerd's shim, dockerd) rely on from a runc-compatible runtime.

Each test runs pyrunc and runc side by side on the same bundle: runc's behaviour is the oracle.
"""
import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from support import unique_id, wait_for_status


# -- delete --force of a container that does not exist -----------------------------------------

def test_force_delete_of_a_missing_container_succeeds_silently(runtime, tmp_path):
    """containerd's shim deletes with --force and expects success when the container is gone:
    runc exits 0 and prints nothing (without --force it is an error)."""
    log = tmp_path / "log.json"
    r = runtime("--log", str(log), "--log-format", "json", "delete", "--force", unique_id(),
                check=False)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert not log.exists() or log.read_text() == ""
    r = runtime("delete", unique_id(), check=False)
    assert r.returncode != 0 and "does not exist" in r.stderr
    r = runtime("delete", "--force", "../bad", check=False)
    assert r.returncode != 0


# -- SIGKILL to a paused container ----------------------------------------------------------------

def _cgroup_v1_freezer():
    with open("/proc/self/cgroup") as f:
        return any(line.split(":")[1] == "freezer" for line in f)


@pytest.mark.parametrize("kill_args", [["KILL"], ["SIGKILL"], ["--all", "KILL"]],
                         ids=["init", "init-signame", "all"])
def test_sigkill_to_a_paused_container_stops_it(runtime, make_bundle, kill_args):
    """On cgroup v1 a frozen task does not die of SIGKILL until thawed: runc thaws it."""
    bundle = make_bundle(["sh", "-c", "sleep 100 & sleep 100"])
    cid = unique_id()
    runtime("run", "-d", "--bundle", bundle, cid)
    try:
        runtime("pause", cid)
        wait_for_status(runtime, cid, "paused")
        if kill_args[0] == "--all":
            runtime("kill", "--all", cid, kill_args[1])
        else:
            runtime("kill", cid, kill_args[0])
        wait_for_status(runtime, cid, "stopped")
        runtime("delete", cid)
    finally:
        runtime("delete", "--force", cid, check=False)


def test_this_host_has_a_v1_freezer():
    """The test above is about cgroup v1's freezer, which this host mounts; say so if not."""
    if not _cgroup_v1_freezer():
        pytest.skip("no cgroup v1 freezer hierarchy on this host")


@pytest.fixture(params=["pyrunc", "runc"])
def runc_binary(request, pyrunc_bin):
    return pyrunc_bin if request.param == "pyrunc" else "runc"


def _task_status(ctr, cid):
    for line in ctr("tasks", "ls").stdout.splitlines():
        if line.split()[:1] == [cid]:
            return line.split()[2]
    return None


def test_ctr_sigkill_to_a_paused_task_stops_it(containerd, runc_binary, busybox_rootfs):
    """``ctr task kill -s SIGKILL`` on a paused task (containerd's shim: ``kill ID 9``)."""
    cid = unique_id("ctr")
    containerd("run", "-d", "--runc-binary", runc_binary, "--rootfs", busybox_rootfs, cid,
               "/bin/sleep", "100")
    try:
        containerd("tasks", "pause", cid)
        assert _task_status(containerd, cid) == "PAUSED"
        containerd("tasks", "kill", "-s", "SIGKILL", cid)
        deadline = time.monotonic() + 10
        while _task_status(containerd, cid) != "STOPPED":
            assert time.monotonic() < deadline, "task still %s" % _task_status(containerd, cid)
            time.sleep(0.05)
    finally:
        containerd("tasks", "delete", "-f", cid, check=False)
        containerd("containers", "delete", cid, check=False)


# -- warnings go to the --log file only -------------------------------------------------------

@pytest.mark.parametrize("log_format", ["text", "json"])
def test_warnings_go_only_to_the_log(runtime, make_bundle, tmp_path, log_format):
    """A warning (the deprecated kernel memory limit) must not reach the container's stderr,
    which is what ``docker logs`` shows: with --log, runc writes it to the log only."""
    def mutate(spec):
        spec["linux"]["resources"] = {"memory": {"kernel": 64 << 20}}
    bundle = make_bundle(["sh", "-c", "echo out; echo err >&2"], mutate=mutate)
    log = tmp_path / "log"
    r = runtime("--log", str(log), "--log-format", log_format, "run", "--bundle", bundle,
                unique_id())
    assert (r.stdout, r.stderr) == ("out\n", "err\n")
    text = log.read_text()
    assert "kernel" in text.lower()
    lines = text.splitlines()
    if log_format == "json":
        levels = [json.loads(line)["level"] for line in lines]
    else:
        levels = [line.split("level=")[1].split()[0] for line in lines]
    assert "warning" in levels
    # without --log, the warning is on stderr, where else could it go
    r = runtime("run", "--bundle", bundle, unique_id())
    assert "kernel" in r.stderr.lower() and "out\n" == r.stdout
