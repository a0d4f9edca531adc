"""checkpoint/restore through CRIU, side by side with runc. Where CRIU runs (tests/vm: Debian's
kernel), a checkpointed container is restored and carries on from where it was; where it cannot
(this host's newer kernel), the failure is one clear line and the container is left as it was."""
import json
import os
import select
import subprocess
import time

import pytest

from support import unique_id, wait_for_status

pytestmark = pytest.mark.peer       # CRIU (and runc beside pyrunc)

# The init waits while a child counts: a shell running `echo $i > FILE` has its stdout on FILE
# for that moment (the original kept on descriptor 10), so a write to the init's /proc/1/fd/1
# would land in the counter's file now and then; the waiting init's stdio never moves.
COUNTER = "(i=0; while true; do i=$((i+1)); echo $i > /dev/shm/count; sleep 0.02; done) & wait"


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


def _log_tail(log, lines=25):
    try:
        with open(log, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return "(no CRIU log: %s)" % e


def _criu(runtime, log, *args):
    """A checkpoint or restore; a failure says what CRIU's ``log`` ends with."""
    r = runtime(*args, check=False, timeout=120)
    assert r.returncode == 0, "%s %s failed (%d): %s\nthe end of %s:\n%s" % (
        runtime.name, " ".join(args), r.returncode, r.stderr, log, _log_tail(log))
    return r


def _with_pipes(runtime, *args, log=None):
    """Run a command whose container keeps its stdout and stderr (a pipe, as engines give
    one); returns the pipe's read end (the caller closes it). A failure carries the end of
    CRIU's ``log`` if there is one."""
    r, w = os.pipe()
    try:
        proc = subprocess.run(runtime.cmd(*args), stdin=subprocess.DEVNULL, stdout=w,
                              stderr=w, timeout=120)
    finally:
        os.close(w)
    if proc.returncode != 0:
        os.set_blocking(r, False)
        message = os.read(r, 65536).decode()
        os.close(r)
        raise AssertionError("%s %s failed (%d): %s%s" % (
            runtime.name, " ".join(args), proc.returncode, message,
            "\nthe end of %s:\n%s" % (log, _log_tail(log)) if log else ""))
    return r


def _counting(runtime, make_bundle, at_least):
    """A container counting in /dev/shm/count, started with pipes for stdio."""
    if not _criu_works():
        pytest.skip("CRIU cannot run on this kernel")
    cid = unique_id()
    bundle = make_bundle(["sh", "-c", COUNTER])
    os.close(_with_pipes(runtime, "run", "-d", "--bundle", bundle, cid))
    deadline = time.monotonic() + 90            # emulated VMs under load are slow
    while _count(runtime, cid) < at_least:
        assert time.monotonic() < deadline, "the counter did not reach %d" % at_least
        time.sleep(0.05)
    return cid, bundle


def test_restored_container_carries_on_where_it_was(runtime, make_bundle, tmp_path):
    cid, bundle = _counting(runtime, make_bundle, 30)
    image, work = tmp_path / "image", tmp_path / "work"
    _criu(runtime, work / "dump.log", "checkpoint", "--image-path", str(image), "--work-path",
          str(work), cid)
    assert runtime("state", cid, check=False).returncode != 0      # deleted, as runc does
    assert (work / "dump.log").exists()
    out = _with_pipes(runtime, "restore", "-d", "--image-path", str(image), "--bundle",
                      bundle, cid, log=image / "restore.log")
    try:
        state = json.loads(runtime("state", cid).stdout)
        assert state["status"] == "running"
        # the shell's own counter went on: a fresh start would count from 1 again
        assert _count(runtime, cid) >= 30
        with open("/proc/%d/cgroup" % state["pid"]) as f:
            assert cid in f.read()                      # in the new container's cgroup
        # the restored init writes to the stdout the restore was given
        runtime("exec", cid, "sh", "-c", "echo restored > /proc/1/fd/1")
        assert _read(out, 20, runtime, state["pid"], image) == b"restored\n"
    finally:
        os.close(out)
    runtime("delete", "--force", cid)


def test_restore_reconnects_the_stdio_the_container_was_given(runtime, make_bundle, tmp_path):
    """The init moved its stdout (to a file in the container, the pipe kept on descriptor 3)
    before the checkpoint: the pipe it was given is still what the restore reconnects. A
    runtime that took the init's descriptors 0-2 at checkpoint time would find a regular
    file there (runc records them at start)."""
    if not _criu_works():
        pytest.skip("CRIU cannot run on this kernel")
    cid = unique_id()
    bundle = make_bundle(["sh", "-c", "exec 3>&1 >/dev/shm/out; echo moved; "
                                      "while true; do sleep 0.05; done"])
    os.close(_with_pipes(runtime, "run", "-d", "--bundle", bundle, cid))
    deadline = time.monotonic() + 90
    while runtime("exec", cid, "cat", "/dev/shm/out", check=False).stdout != "moved\n":
        assert time.monotonic() < deadline, "the init did not move its stdout"
        time.sleep(0.05)
    image = tmp_path / "image"
    _criu(runtime, image / "dump.log", "checkpoint", "--image-path", str(image), cid)
    out = _with_pipes(runtime, "restore", "-d", "--image-path", str(image), "--bundle",
                      bundle, cid, log=image / "restore.log")
    try:
        pid = json.loads(runtime("state", cid).stdout)["pid"]
        assert os.readlink("/proc/%d/fd/3" % pid) == "pipe:[%d]" % os.fstat(out).st_ino
        runtime("exec", cid, "sh", "-c", "echo restored > /proc/1/fd/3")
        assert _read(out, 20, runtime, pid, image) == b"restored\n"
        assert runtime("exec", cid, "cat", "/dev/shm/out").stdout == "moved\n"
    finally:
        os.close(out)
    runtime("delete", "--force", cid)


def _read(fd, timeout, runtime, pid, image):
    """What the restored init wrote to ``fd`` within ``timeout`` seconds; a failure says where
    the init's stdio leads instead, and the end of CRIU's restore log."""
    if select.select([fd], [], [], timeout)[0]:
        return os.read(fd, 100)
    links = []
    for n in range(4):
        try:
            links.append("%d -> %s" % (n, os.readlink("/proc/%d/fd/%d" % (pid, n))))
        except OSError as e:
            links.append("%d: %s" % (n, e.strerror))
    raise AssertionError("%s: nothing on the restore's stdout (pipe:[%d]) in %ds; the restored "
                         "init's descriptors: %s; restore.log ends:\n%s"
                         % (runtime.name, os.fstat(fd).st_ino, timeout, ", ".join(links),
                            _log_tail(image / "restore.log")))


def test_restore_in_the_foreground_returns_the_exit_code(pyrunc, make_bundle, tmp_path):
    cid, bundle = _counting(pyrunc, make_bundle, 5)
    pyrunc("checkpoint", "--image-path", str(tmp_path / "image"), cid)
    restore = subprocess.Popen(pyrunc.cmd("restore", "--image-path", str(tmp_path / "image"),
                                          "--bundle", bundle, cid),
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        wait_for_status(pyrunc, cid, "running", timeout=60)    # CRIU is slow when emulated
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


def test_descriptor_keys_name_what_the_kernel_shows(tmp_path):
    """The keys a container's stdio is recorded under at create (what CRIU calls the files):
    checked against fstat and mountinfo, not against the code that makes them."""
    from pyrunc.libcontainer.descriptors import descriptor_keys
    r, w = os.pipe()
    regular = os.open(tmp_path / "file", os.O_WRONLY | os.O_CREAT, 0o600)
    null = os.open("/dev/null", os.O_RDONLY)
    closed = os.dup(null)
    os.close(closed)
    try:
        keys = descriptor_keys([w, regular, null, closed])
        with open("/proc/self/mountinfo") as f:
            dev_mounts = [int(line.split()[0]) for line in f if line.split()[4] == "/dev"]
        assert keys[0] == "pipe:[%d]" % os.fstat(w).st_ino
        assert keys[1] == str(tmp_path / "file")
        assert keys[2] == "file[%x:%x]" % (dev_mounts[-1], os.stat("/dev/null").st_ino)
        assert keys[3] == ""
    finally:
        for fd in (r, w, regular, null):
            os.close(fd)
