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

from support import need, unique_id, wait_for_status


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


# -- oom_score_adj in a container with a user namespace (dockerd --userns-remap) ---------------

@pytest.fixture
def userns_bundle(busybox_rootfs):
    """make(args, oom_score_adj): a bundle with a new user namespace mapping the container's
    ids 0-65535 to 100000-165535. It lives in a directory every user may traverse (the
    container's root, host uid 100000, must reach its rootfs), removed afterwards."""
    made = []

    def make(args, oom_score_adj):
        from pyrunc.containerd.runtime import spec as runtime_spec
        top = tempfile.mkdtemp(prefix="pyrunc-userns-", dir="/tmp")
        made.append(top)
        os.chmod(top, 0o755)
        subprocess.run(["cp", "-a", busybox_rootfs, os.path.join(top, "rootfs")], check=True)
        subprocess.run(["chown", "-R", "100000:100000", os.path.join(top, "rootfs")],
                       check=True)
        spec = runtime_spec.example_spec(args=list(args), terminal=False)
        spec["linux"]["namespaces"].append({"type": "user"})
        spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        spec["process"]["oomScoreAdj"] = oom_score_adj
        runtime_spec.write_spec(top, spec)
        return top

    yield make
    for top in made:
        shutil.rmtree(top, ignore_errors=True)


def _has_cap_sys_resource():
    with open("/proc/self/status") as f:
        eff = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    return bool(eff >> 24 & 1)


@pytest.mark.parametrize("score", [0, 500, -300])
def test_oom_score_adj_with_a_user_namespace(runtime, userns_bundle, score):
    """The score is written from the initial user namespace (runc: before the init enters
    its user namespace), so every value works, and the container sees it."""
    if score < 0 and not _has_cap_sys_resource():
        pytest.skip("lowering oom_score_adj needs CAP_SYS_RESOURCE, which this machine's "
                    "root lacks")
    bundle = userns_bundle(["cat", "/proc/self/oom_score_adj"], score)
    r = runtime("run", "--bundle", bundle, unique_id(), check=False)
    assert (r.returncode, r.stdout.strip()) == (0, str(score)), r.stderr


def test_oom_score_adj_of_exec_with_a_user_namespace(runtime, userns_bundle):
    """A process ``exec`` starts gets the container's score, set before it joins the
    container's user namespace, as the init's is."""
    bundle = userns_bundle(["sleep", "100"], 200)
    cid = unique_id()
    runtime("run", "-d", "--bundle", bundle, cid)
    try:
        r = runtime("exec", cid, "cat", "/proc/self/oom_score_adj", check=False)
        assert (r.returncode, r.stdout.strip()) == (0, "200"), r.stderr
    finally:
        runtime("delete", "--force", cid, check=False)


# -- a state root shared with runc --------------------------------------------------------------

@pytest.mark.peer
def test_a_root_shared_with_runc(pyrunc, make_bundle):
    """dockerd gives every runtime one state root (EXEC-ROOT/runtime-runc/moby), so a node that
    moves from runc to pyrunc has both runtimes' containers in it. runc's container is not
    pyrunc's: list shows only pyrunc's and succeeds; state names the file and the reason."""
    runc = need("runc")
    theirs, ours = unique_id(), unique_id()
    subprocess.run([runc, "--root", pyrunc.root, "run", "-d", "--bundle",
                    make_bundle(["sleep", "100"]), theirs], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        pyrunc("run", "-d", "--bundle", make_bundle(["sleep", "100"]), ours)
        listed = pyrunc("list", "-q")
        assert listed.stdout.split() == [ours]
        assert json.loads(pyrunc("list", "-f", "json").stdout)[0]["id"] == ours
        r = pyrunc("state", theirs, check=False)
        assert r.returncode == 1
        assert "not a pyrunc state" in r.stderr and theirs in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        runc_state = subprocess.run([runc, "--root", pyrunc.root, "state", theirs],
                                    capture_output=True, text=True, check=True)
        assert json.loads(runc_state.stdout)["status"] == "running"    # untouched
    finally:
        subprocess.run([runc, "--root", pyrunc.root, "delete", "--force", theirs],
                       capture_output=True)
