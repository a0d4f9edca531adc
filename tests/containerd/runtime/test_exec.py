"""``pyrunc exec`` side by side with runc on the same busybox containers."""
import json
import os
import signal
import socket
import subprocess
import time

import pytest
from hypothesis import given, strategies as st

from pyrunc.containerd.runtime.exec import EXEC_FLAGS, process_from_flags
from pyrunc.containerd.runtime.flags import parse
from pyrunc.errors import InvalidArgument
from support import unique_id


@pytest.fixture
def container(runtime, make_bundle):
    """A running busybox container (its init sleeps); its id."""
    cid = unique_id("exec")
    runtime("run", "--detach", "--bundle", make_bundle(["sleep", "100"]), cid)
    return cid


def init_pid(runtime, cid):
    return json.loads(runtime("state", cid).stdout)["pid"]


def test_exit_status_and_output(runtime, container):
    r = runtime("exec", container, "sh", "-c", "echo out; echo err >&2; exit 7", check=False)
    assert (r.returncode, r.stdout, r.stderr) == (7, "out\n", "err\n")
    r = runtime("exec", container, "sh", "-c", "kill -KILL $$", check=False)
    assert r.returncode == 128 + signal.SIGKILL


def test_flags_over_the_config_process(runtime, container):
    r = runtime("exec", "-e", "A=1", "-e", "A=2", "--cwd", "/tmp", "-u", "1000:1000",
                "-g", "10", "-g", "20", "--cap", "CAP_SYS_ADMIN", container,
                "sh", "-c", "echo $A $TERM; pwd; id; grep -E '^Cap(Bnd|Prm)|NoNewPrivs' "
                            "/proc/self/status; ls -h /")
    lines = r.stdout.splitlines()
    assert lines[:3] == ["2 xterm", "/tmp", "uid=1000 gid=1000 groups=10,20"]
    # the config's CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE and CAP_SYS_ADMIN bound
    assert lines[3].split() == ["CapPrm:", "0000000000000000"]   # uid 1000 after execve
    assert lines[4].split() == ["CapBnd:", "0000000020200420"]
    assert lines[5].split() == ["NoNewPrivs:", "1"]
    assert "bin" in lines[6:]          # "ls -h" is the command's flag, not exec's
    r = runtime("exec", "-u", "1000", "--no-new-privs=false", container,
                "sh", "-c", "id -u; id -g; grep NoNewPrivs /proc/self/status")
    assert r.stdout.split() == ["1000", "0", "NoNewPrivs:", "0"]


def test_process_file(runtime, container, tmp_path):
    path = tmp_path / "process.json"
    path.write_text(json.dumps({
        "args": ["sh", "-c", "echo $X; pwd; id -u"], "cwd": "/etc",
        "env": ["PATH=/bin", "X=from-file"],
        "user": {"uid": 65534, "gid": 65534}}))
    r = runtime("exec", "--process", str(path), "-e", "X=ignored", container)
    assert r.stdout.split() == ["from-file", "/etc", "65534"]
    path.write_text(json.dumps({"args": [], "cwd": "/", "user": {"uid": 0, "gid": 0}}))
    r = runtime("exec", "--process", str(path), container, check=False)
    assert r.returncode != 0
    if runtime.name == "pyrunc":
        assert (r.returncode, r.stderr) == (2, "pyrunc: process.json: args: must be a "
                                               "non-empty array\n")


def test_detach_with_pid_file_in_the_containers_namespaces_and_cgroup(runtime, container,
                                                                     tmp_path):
    pid_file = str(tmp_path / "exec.pid")
    r = runtime("exec", "-d", "--pid-file", pid_file, container, "sleep", "100")
    assert r.stdout == ""
    pid = int(open(pid_file).read())
    init = init_pid(runtime, container)
    assert open("/proc/%d/cmdline" % pid).read() == "sleep\0" "100\0"
    for ns in ("pid", "net", "ipc", "uts", "mnt"):
        assert os.readlink("/proc/%d/ns/%s" % (pid, ns)) == \
            os.readlink("/proc/%d/ns/%s" % (init, ns))
    assert open("/proc/%d/cgroup" % pid).read() == open("/proc/%d/cgroup" % init).read()
    ps = runtime("ps", "--format", "json", container).stdout
    assert pid in json.loads(ps)


def test_preserve_fds(runtime, container, tmp_path):
    path = tmp_path / "passed"
    path.write_text("through fd 3\n")

    def with_fd3(*args):    # the runtime started with the file open as its fd 3
        return subprocess.run(["sh", "-c", 'exec 3<"$0"; exec "$@"', str(path)] +
                              runtime.cmd(*args), capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    r = with_fd3("exec", "--preserve-fds", "1", container, "sh", "-c", "cat <&3")
    assert (r.returncode, r.stdout) == (0, "through fd 3\n"), r.stderr
    r = with_fd3("exec", container, "sh", "-c", "cat <&3")
    assert r.returncode != 0 and r.stdout == ""


def test_tty_with_a_console_socket(runtime, container, tmp_path):
    path = str(tmp_path / "console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    listener.settimeout(20)
    try:
        runtime("exec", "-d", "-t", "--console-socket", path, container,
                "sh", "-c", "tty; stty size")
        conn, _ = listener.accept()
        _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
        conn.close()
    finally:
        listener.close()
    out = b""
    with os.fdopen(fds[0], "rb", buffering=0) as master:
        while True:
            try:
                chunk = master.read(4096)
            except OSError:        # EIO: the process has exited
                break
            if not chunk:
                break
            out += chunk
    lines = out.decode().replace("\r", "").split("\n")
    assert lines[0].startswith("/dev/pts/"), out


def test_tty_proxied_in_the_foreground(runtime, container):
    cmd = " ".join(runtime.cmd("exec", "-t", container, "sh", "-c", "'tty; exit 5'"))
    r = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    assert "/dev/pts/" in r.stdout, r.stdout + r.stderr
    assert r.returncode == 5


def test_signals_are_forwarded(runtime, container):
    proc = subprocess.Popen(runtime.cmd("exec", container, "sh", "-c",
                                        "trap 'echo got-term; exit 3' TERM; echo ready; "
                                        "while true; do sleep 0.05; done"),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        assert (proc.returncode, out) == (3, "got-term\n")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_paused_container(runtime, container):
    runtime("pause", container)
    try:
        r = runtime("exec", container, "true", check=False)
        assert r.returncode != 0
        assert "cannot exec in a paused container (use --ignore-paused to override)" in r.stderr
        if runtime.name == "runc":
            return   # runc 1.1 hangs with --ignore-paused: its setns init freezes mid-setup
        r = runtime("exec", "-d", "--ignore-paused", container, "sleep", "0.5")
        assert json.loads(runtime("state", container).stdout)["status"] == "paused"
    finally:
        runtime("resume", container)


def test_stopped_container(runtime, container):
    runtime("kill", container, "KILL")
    deadline = time.monotonic() + 10
    while json.loads(runtime("state", container).stdout)["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    r = runtime("exec", container, "true", check=False)
    assert r.returncode != 0
    if runtime.name == "pyrunc":       # runc fails opening the gone init's namespaces
        assert (r.returncode, r.stderr) == (6, "pyrunc: cannot exec in a stopped container\n")


@pytest.mark.parametrize("args, pyrunc_error", [
    ([], "exec: process args cannot be empty"),
    (["nosuch"], "exec nosuch: executable file not found in $PATH"),
    (["-u", "abc", "true"], "--user: uid 'abc': must be a number from 0 to 4294967295"),
    (["-g", "-1", "true"], "--additional-gids: gid '-1': must be a number from 0 to "
                           "4294967295"),
    (["--cwd", "tmp", "true"], "--cwd tmp: must be an absolute path"),
    (["--apparmor", "x", "true"], "--apparmor: not supported by pyrunc"),
])
def test_bad_input(runtime, container, args, pyrunc_error):
    if args and args[0] in ("-u", "-g", "--cwd", "--apparmor"):
        r = runtime("exec", args[0], args[1], container, *args[2:], check=False)
    else:
        r = runtime("exec", container, *args, check=False)
    if runtime.name == "runc" and args[:1] in (["--cwd"], ["--apparmor"]):
        return     # runc passes these on and fails (or not) later
    assert r.returncode != 0
    if runtime.name == "pyrunc":
        assert r.stderr.splitlines()[0] == "pyrunc: " + pyrunc_error
    assert os.path.exists("/proc/%d" % init_pid(runtime, container))


def test_unknown_container(runtime):
    r = runtime("exec", "nosuch-container", "true", check=False)
    assert r.returncode != 0 and "does not exist" in r.stderr


@pytest.fixture(params=["pyrunc", "runc"])
def runc_binary(request, pyrunc_bin):
    return pyrunc_bin if request.param == "pyrunc" else "runc"


def test_ctr_task_exec(containerd, runc_binary, busybox_rootfs):
    cid = unique_id("ctr")
    containerd("run", "-d", "--runc-binary", runc_binary, "--rootfs", busybox_rootfs, cid,
               "/bin/sleep", "100")
    try:
        r = containerd("task", "exec", "--exec-id", "x1", cid, "/bin/sh", "-c",
                       "cat /proc/1/cmdline; exit 5", check=False)
        assert r.returncode == 5, r.stderr
        assert r.stdout == "/bin/sleep\0" "100\0"      # in the container's pid namespace
        r = containerd("task", "exec", "--exec-id", "x2", cid, "/no/such", check=False)
        assert r.returncode != 0 and "/no/such" in r.stderr
    finally:
        containerd("tasks", "kill", "-s", "SIGKILL", cid, check=False)
        deadline = time.monotonic() + 10
        while "RUNNING" in containerd("tasks", "ls", check=False).stdout.split() and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        containerd("tasks", "delete", "-f", cid, check=False)
        containerd("containers", "delete", cid, check=False)


# -- the flags laid over the config's process (no container needed) --------------------------

BASE = {"args": ["sleep", "1"], "cwd": "/", "env": ["PATH=/bin"], "terminal": True,
        "consoleSize": {"height": 1, "width": 1}, "noNewPrivileges": True,
        "user": {"uid": 0, "gid": 5, "additionalGids": [7]},
        "capabilities": {"bounding": ["CAP_KILL"], "ambient": ["CAP_KILL"]}}
NAMES = st.text("ABCxyz_", min_size=1, max_size=4)
IDS = st.integers(0, 2 ** 32 - 1)


@given(env=st.lists(st.tuples(NAMES, st.text("ab=", max_size=3)), max_size=4),
       uid=st.none() | IDS, gid=st.none() | IDS, gids=st.lists(IDS, max_size=3),
       caps=st.lists(st.sampled_from(["CAP_SYS_ADMIN", "CAP_CHOWN"]), max_size=2),
       tty=st.booleans(), nnp=st.sampled_from([None, True, False]))
def test_flags_over_a_process(env, uid, gid, gids, caps, tty, nnp):
    argv = []
    for name, value in env:
        argv += ["-e", "%s=%s" % (name, value)]
    if uid is not None:
        argv += ["-u", str(uid) if gid is None else "%d:%d" % (uid, gid)]
    for g in gids:
        argv += ["-g", str(g)]
    for c in caps:
        argv += ["--cap", c]
    argv += ["-t"] if tty else []
    argv += [] if nnp is None else ["--no-new-privs=%s" % str(nnp).lower()]
    flags, args = parse(EXEC_FLAGS, argv + ["cid", "sh", "-c", "x"], "exec", interleave=False)
    assert args == ["cid", "sh", "-c", "x"]
    saved = repr(BASE)
    p = process_from_flags(BASE, args[1:], flags)
    assert repr(BASE) == saved                        # the base is left alone
    assert p["args"] == ["sh", "-c", "x"] and "consoleSize" not in p
    assert p["env"] == ["PATH=/bin"] + ["%s=%s" % e for e in env]
    assert p["user"]["uid"] == (0 if uid is None else uid)
    assert p["user"]["gid"] == (5 if uid is None or gid is None else gid)
    assert p["user"]["additionalGids"] == [7] + gids
    assert p["terminal"] is tty
    assert p["noNewPrivileges"] is (True if nnp is None else nnp)
    assert p["capabilities"]["bounding"] == ["CAP_KILL"] + caps
    assert p["capabilities"].get("effective", []) == p["capabilities"].get("permitted", []) \
        == caps
    assert p["capabilities"]["ambient"] == ["CAP_KILL"]     # runc 1.1: not inheritable/ambient


@given(st.text(max_size=12))
def test_user_flag_is_checked(text):
    flags, _ = parse(EXEC_FLAGS, ["-u", text, "cid", "true"], "exec", interleave=False)
    uid, _, gid = text.partition(":")
    ok = all(s.isascii() and s.isdigit() and int(s) < 2 ** 32 for s in
             ([uid, gid] if ":" in text else [uid]))
    try:
        p = process_from_flags(BASE, ["true"], flags)
    except InvalidArgument as e:
        assert not ok and str(e).startswith("--user: ")
    else:
        if text == "":          # runc too: an empty --user leaves the process's user
            assert p["user"] == BASE["user"]
        else:
            assert ok and p["user"]["uid"] == int(uid)
