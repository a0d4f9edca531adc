"""The pyrunc command's lifecycle, run side by side with runc on the same bundles.

Every test is parametrized over the runtime: what runc does here is the expected behaviour.
"""
import json
import os
import signal
import subprocess
import time

import pytest

from support import unique_id, wait_for_status


def test_create_start_state_kill_delete(runtime, make_bundle):
    bundle = make_bundle(["sleep", "100"])
    cid = unique_id()
    pid_file = os.path.join(bundle, "pid")
    runtime("create", "--bundle", bundle, "--pid-file", pid_file, cid)
    state = json.loads(runtime("state", cid).stdout)
    assert state["status"] == "created"
    assert state["id"] == cid and state["bundle"] == bundle
    assert state["rootfs"] == os.path.join(bundle, "rootfs")
    assert int(open(pid_file).read()) == state["pid"] > 0
    # The init waits for start: it has not exec'd sleep yet.
    assert "sleep" not in open("/proc/%d/cmdline" % state["pid"]).read()

    runtime("start", cid)
    assert json.loads(runtime("state", cid).stdout)["status"] == "running"
    deadline = time.monotonic() + 5
    while "sleep" not in open("/proc/%d/cmdline" % state["pid"]).read():
        assert time.monotonic() < deadline
        time.sleep(0.01)

    runtime("kill", cid, "KILL")
    wait_for_status(runtime, cid, "stopped")
    runtime("delete", cid)
    r = runtime("state", cid, check=False)
    assert r.returncode != 0 and "does not exist" in r.stderr
    assert not os.path.exists(os.path.join(runtime.root, cid))


def test_run_exit_status_and_output(runtime, make_bundle):
    bundle = make_bundle(["sh", "-c", "echo out; echo err >&2; exit 7"])
    r = runtime("run", "--bundle", bundle, unique_id(), check=False)
    assert (r.returncode, r.stdout, r.stderr) == (7, "out\n", "err\n")
    assert os.listdir(runtime.root) == []


def test_run_killed_by_signal(runtime, make_bundle):
    cid = unique_id()
    proc = subprocess.Popen(runtime.cmd("run", "--bundle", make_bundle(["sleep", "100"]), cid),
                            stdin=subprocess.DEVNULL)
    try:
        wait_for_status(runtime, cid, "running")
        runtime("kill", cid, "KILL")
        assert proc.wait(timeout=10) == 128 + signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_forwards_signals(runtime, make_bundle):
    bundle = make_bundle(["sh", "-c", "trap 'echo got-term; exit 3' TERM; "
                                      "echo ready; while true; do sleep 0.05; done"])
    proc = subprocess.Popen(runtime.cmd("run", "--bundle", bundle, unique_id()),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert (proc.returncode, out) == (3, "got-term\n")


def test_run_detach_and_keep(runtime, make_bundle):
    bundle = make_bundle(["sleep", "100"])
    cid = unique_id()
    runtime("run", "--detach", "--bundle", bundle, cid)
    assert json.loads(runtime("state", cid).stdout)["status"] == "running"
    runtime("delete", "--force", cid)

    bundle = make_bundle(["true"])
    runtime("run", "--keep", "--bundle", bundle, cid)
    assert json.loads(runtime("state", cid).stdout)["status"] == "stopped"
    runtime("delete", cid)


def test_list_formats(runtime, make_bundle):
    ids = sorted(unique_id() for _ in range(2))
    for cid in ids:
        runtime("create", "--bundle", make_bundle(["sleep", "100"]), cid)
    assert runtime("list", "-q").stdout.split() == ids
    listed = json.loads(runtime("list", "--format", "json").stdout)
    assert [s["id"] for s in listed] == ids and {s["status"] for s in listed} == {"created"}
    table = runtime("list").stdout.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert [line.split()[0] for line in table[1:]] == ids
    # Go's tabwriter as runc sets it up: minimum width 12, padding 3.
    assert table[0].index("PID") == max(12, max(len(i) for i in ids) + 3)
    for cid in ids:
        runtime("delete", "--force", cid)


def test_kill_all_and_signal_names(runtime, make_bundle):
    bundle = make_bundle(["sh", "-c", "sleep 100 & sleep 100 & wait"])
    cid = unique_id()
    runtime("run", "-d", "--bundle", bundle, cid)
    runtime("kill", "--all", cid, "9")
    wait_for_status(runtime, cid, "stopped")
    r = runtime("kill", cid, "NOPE", check=False)
    assert r.returncode != 0 and "unknown signal" in r.stderr
    runtime("delete", cid)


def test_start_twice_is_an_error(runtime, make_bundle):
    cid = unique_id()
    runtime("run", "-d", "--bundle", make_bundle(["sleep", "100"]), cid)
    r = runtime("start", cid, check=False)
    assert r.returncode != 0
    runtime("delete", "-f", cid)


def test_delete_running_needs_force(runtime, make_bundle):
    cid = unique_id()
    runtime("run", "-d", "--bundle", make_bundle(["sleep", "100"]), cid)
    r = runtime("delete", cid, check=False)
    assert r.returncode != 0 and "running" in r.stderr
    runtime("delete", "--force", cid)
    assert runtime("list", "-q").stdout == ""


def test_duplicate_id(runtime, make_bundle):
    cid = unique_id()
    runtime("create", "--bundle", make_bundle(["true"]), cid)
    r = runtime("create", "--bundle", make_bundle(["true"]), cid, check=False)
    assert r.returncode != 0 and "already exists" in r.stderr
    runtime("delete", "-f", cid)


@pytest.mark.parametrize("args,words", [
    (["state", "nope"], "does not exist"),
    (["start", "nope"], "does not exist"),
    (["kill", "nope"], "does not exist"),
    (["delete", "nope"], "does not exist"),
])
def test_missing_container(runtime, args, words):
    r = runtime(*args, check=False)
    assert r.returncode != 0 and words in r.stderr


def test_missing_bundle_leaves_nothing(runtime, tmp_path):
    r = runtime("create", "--bundle", str(tmp_path / "nope"), unique_id(), check=False)
    assert r.returncode != 0
    assert not os.path.isdir(runtime.root) or os.listdir(runtime.root) == []


def test_spec(runtime, tmp_path):
    d = tmp_path / runtime.name
    d.mkdir()
    runtime("spec", "--bundle", str(d))
    spec = json.loads((d / "config.json").read_text())
    assert spec["process"]["args"] == ["sh"] and spec["root"]["path"] == "rootfs"
    r = runtime("spec", "--bundle", str(d), check=False)
    assert r.returncode != 0 and "exists" in r.stderr
    (d / "config.json").unlink()
    runtime("spec", "--rootless", "--bundle", str(d))
    spec = json.loads((d / "config.json").read_text())
    assert {"type": "user"} in spec["linux"]["namespaces"]


def test_features_shape(runtime):
    feats = json.loads(runtime("features").stdout)
    assert {"ociVersionMin", "ociVersionMax", "hooks", "mountOptions", "linux"} <= set(feats)
    assert "createContainer" in feats["hooks"]
    linux = feats["linux"]
    assert {"namespaces", "capabilities", "cgroup", "seccomp"} <= set(linux)
    assert "CAP_SYS_ADMIN" in linux["capabilities"]


def test_delete_removes_what_a_create_killed_before_its_state_left(runtime):
    cid = unique_id()
    os.makedirs(os.path.join(runtime.root, cid))     # as a create SIGKILLed right after mkdir
    runtime("delete", "--force", cid)
    assert not os.path.exists(os.path.join(runtime.root, cid))
    r = runtime("delete", cid, check=False)
    assert r.returncode != 0 and "does not exist" in r.stderr
