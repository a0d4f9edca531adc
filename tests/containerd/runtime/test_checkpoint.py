"""checkpoint/restore through CRIU, side by side with runc. Where CRIU runs (tests/vm: Debian's
kernel), a checkpointed container is restored and carries on from where it was; where it cannot
(this host's newer kernel), the failure is one clear line and the container is left as it was."""
import json
import os
import subprocess
import time

import pytest

from support import unique_id, wait_for_status

pytestmark = pytest.mark.peer       # CRIU (and runc beside pyrunc)

COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /dev/shm/count; sleep 0.02; done"


def _criu_works():
    try:
        return subprocess.run(["criu", "check"], capture_output=True, timeout=30).returncode == 0
    except FileNotFoundError:
        return False


def test_checkpoint_failure_leaves_the_container_running(runtime, make_bundle, tmp_path):
    cid = unique_id()
    os.close(_with_pipes(runtime, "run", "-d", "--bundle", make_bundle(["sleep", "100"]), cid))
    image = tmp_path / "img"
    image.write_text("a file, not a directory")
    r = runtime("checkpoint", "--image-path", str(image), cid, check=False)
    assert r.returncode != 0
    if runtime.name == "pyrunc":
        assert len(r.stderr.splitlines()) == 1
        if _criu_works():
            assert r.returncode == 1
            assert r.stderr.startswith("pyrunc: checkpoint: create image directory %s: " % image)
        else:
            assert r.returncode == 7
            assert r.stderr.startswith("pyrunc: checkpoint: CRIU cannot run on this host: ")
    assert json.loads(runtime("state", cid).stdout)["status"] == "running"
    runtime("delete", "-f", cid)


def test_restore_needs_a_new_id(pyrunc, make_bundle):
    cid = unique_id()
    pyrunc("run", "-d", "--bundle", make_bundle(["sleep", "100"]), cid)
    r = pyrunc("restore", "--image-path", "/nonexistent", cid, check=False)
    assert r.returncode == 4 and "already exists" in r.stderr
    pyrunc("delete", "-f", cid)


def test_checkpoint_of_a_stopped_container(pyrunc, make_bundle):
    cid = unique_id()
    pyrunc("run", "--keep", "--bundle", make_bundle(["true"]), cid)
    r = pyrunc("checkpoint", cid, check=False)
    assert r.returncode == 6 and "not running" in r.stderr
    pyrunc("delete", cid)


def _count(runtime, cid):
    """The counter's value, 0 before it is first written. The shell truncates the file before it
    writes the next number, so an empty read is that moment: read again."""
    for _ in range(20):
        r = runtime("exec", cid, "cat", "/dev/shm/count", check=False)
        if r.returncode != 0:
            assert "No such file" in r.stderr, "%s exec: %s" % (runtime.name, r.stderr)
            return 0                            # not written yet
        if r.stdout.strip().isdigit():
            return int(r.stdout)
        time.sleep(0.01)
    return 0


def _with_pipes(runtime, *args):
    """Run a command whose container keeps its stdout and stderr (a pipe, as engines give
    one); returns the pipe's read end (the caller closes it)."""
    r, w = os.pipe()
    try:
        proc = subprocess.run(runtime.cmd(*args), stdin=subprocess.DEVNULL, stdout=w,
                              stderr=w, timeout=60)
    finally:
        os.close(w)
    if proc.returncode != 0:
        os.set_blocking(r, False)
        message = os.read(r, 65536).decode()
        os.close(r)
        raise AssertionError("%s %s failed (%d): %s" % (runtime.name, " ".join(args),
                                                       proc.returncode, message))
    return r


def _counting(runtime, make_bundle, at_least):
    """A container counting in /dev/shm/count, started with pipes for stdio."""
    if not _criu_works():
        pytest.skip("CRIU cannot run on this kernel")
    cid = unique_id()
    bundle = make_bundle(["sh", "-c", COUNTER])
    os.close(_with_pipes(runtime, "run", "-d", "--bundle", bundle, cid))
    deadline = time.monotonic() + 20
    while _count(runtime, cid) < at_least:
        assert time.monotonic() < deadline, "the counter did not reach %d" % at_least
        time.sleep(0.05)
    return cid, bundle


def test_restored_container_carries_on_where_it_was(runtime, make_bundle, tmp_path):
    cid, bundle = _counting(runtime, make_bundle, 30)
    image = tmp_path / "image"
    runtime("checkpoint", "--image-path", str(image), "--work-path", str(tmp_path / "work"), cid)
    assert runtime("state", cid, check=False).returncode != 0      # deleted, as runc does
    assert (tmp_path / "work" / "dump.log").exists()
    out = _with_pipes(runtime, "restore", "-d", "--image-path", str(image), "--bundle",
                      bundle, cid)
    try:
        state = json.loads(runtime("state", cid).stdout)
        assert state["status"] == "running"
        # the shell's own counter went on: a fresh start would count from 1 again
        assert _count(runtime, cid) >= 30
        with open("/proc/%d/cgroup" % state["pid"]) as f:
            assert cid in f.read()                      # in the new container's cgroup
        # the restored init writes to the stdout the restore was given
        runtime("exec", cid, "sh", "-c", "echo restored > /proc/1/fd/1")
        assert os.read(out, 100) == b"restored\n"
    finally:
        os.close(out)
    runtime("delete", "--force", cid)


def test_restore_in_the_foreground_returns_the_exit_code(pyrunc, make_bundle, tmp_path):
    cid, bundle = _counting(pyrunc, make_bundle, 5)
    pyrunc("checkpoint", "--image-path", str(tmp_path / "image"), cid)
    restore = subprocess.Popen(pyrunc.cmd("restore", "--image-path", str(tmp_path / "image"),
                                          "--bundle", bundle, cid),
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        wait_for_status(pyrunc, cid, "running")
        pyrunc("kill", cid, "KILL")
        assert restore.wait(timeout=20) == 137            # killed by SIGKILL, as run reports
    finally:
        if restore.poll() is None:
            restore.kill()
            restore.wait()
    assert pyrunc("state", cid, check=False).returncode == 3     # deleted when it ended


def test_regular_file_stdio_is_refused_before_criu_runs(pyrunc, make_bundle, tmp_path):
    if not _criu_works():
        pytest.skip("CRIU cannot run on this kernel")
    cid = unique_id()
    pyrunc("run", "-d", "--bundle", make_bundle(["sleep", "100"]), cid)   # stdio: files
    r = pyrunc("checkpoint", "--image-path", str(tmp_path / "image"), cid, check=False)
    assert r.returncode == 7 and len(r.stderr.splitlines()) == 1
    assert "is a regular file" in r.stderr
    assert json.loads(pyrunc("state", cid).stdout)["status"] == "running"
    pyrunc("delete", "-f", cid)


def test_checkpoint_leave_running(runtime, make_bundle, tmp_path):
    cid, _ = _counting(runtime, make_bundle, 5)
    runtime("checkpoint", "--leave-running", "--image-path", str(tmp_path / "image"), cid)
    assert json.loads(runtime("state", cid).stdout)["status"] == "running"
    before = _count(runtime, cid)
    time.sleep(0.3)
    assert _count(runtime, cid) > before
    assert (tmp_path / "image" / "descriptors.json").exists()
    runtime("delete", "--force", cid)


def test_restore_from_a_directory_without_a_checkpoint(pyrunc, make_bundle, tmp_path):
    if not _criu_works():
        pytest.skip("CRIU cannot run on this kernel")
    os.mkdir(tmp_path / "empty")
    cid = unique_id()
    r = pyrunc("restore", "-d", "--image-path", str(tmp_path / "empty"), "--bundle",
               make_bundle(["true"]), cid, check=False)
    assert r.returncode == 3 and "not a checkpoint" in r.stderr
    assert len(r.stderr.splitlines()) == 1
    assert pyrunc("state", cid, check=False).returncode == 3      # nothing left behind


def test_unsupported_checkpoint_flags_are_named(pyrunc, make_bundle):
    cid = unique_id()
    pyrunc("run", "-d", "--bundle", make_bundle(["sleep", "100"]), cid)
    r = pyrunc("checkpoint", "--lazy-pages", cid, check=False)
    assert r.returncode == 7
    assert r.stderr == "pyrunc: checkpoint: --lazy-pages is not supported by pyrunc\n"
    pyrunc("delete", "-f", cid)
