"""Container.exec: another process in a real running container."""
import os
import signal
import socket

import pytest
from hypothesis import given, strategies as st

from pyrunc import errors
from pyrunc.libcontainer.container import Factory, _last_wins
from support import unique_id

pytestmark = pytest.mark.usefixtures("private_mount_ns")

PROCESS = {"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0},
           "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]}


@pytest.fixture
def factory(tmp_path):
    f = Factory(root=str(tmp_path / "state"))
    yield f
    for c in f.list():
        c.destroy(force=True)


@pytest.fixture
def running(factory, make_bundle):
    """A started busybox container whose init sleeps."""
    def make(mutate=None):
        c = factory.create(unique_id("exec"), make_bundle(["sleep", "100"], mutate=mutate))
        c.start()
        return c
    return make


def run(container, **process):
    """Exec ``process`` (PROCESS changed), wait; (exit code, output)."""
    r, w = os.pipe()
    try:
        pid = container.exec(dict(PROCESS, **process), stdio=(0, w, w))
    finally:
        os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), out


def test_joins_namespaces_and_cgroup(running):
    c = running()
    r, w = os.pipe()
    pid = c.exec(dict(PROCESS, args=["sh", "-c", "read x; true"]), stdio=(r, 1, 2))
    try:
        for ns in ("pid", "net", "ipc", "uts", "mnt"):
            assert os.readlink("/proc/%d/ns/%s" % (pid, ns)) == \
                os.readlink("/proc/%d/ns/%s" % (c.pid, ns))
        assert open("/proc/%d/cgroup" % pid).read() == open("/proc/%d/cgroup" % c.pid).read()
        assert pid in c.manager.pids()
    finally:
        os.close(w)
        os.close(r)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def test_process_attributes(running):
    c = running()
    status, out = run(c, args=["sh", "-c", "id; pwd; echo $A $HOME; umask; "
                                           "grep -E 'CapBnd|NoNewPrivs' /proc/self/status; "
                                           "ulimit -n; exit 3"],
                      cwd="/tmp", env=PROCESS["env"] + ["A=1", "A=2"],
                      user={"uid": 1000, "gid": 1000, "additionalGids": [10, 20],
                            "umask": 0o027},
                      capabilities={"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                                    "permitted": ["CAP_KILL"]},
                      noNewPrivileges=True,
                      rlimits=[{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}])
    lines = out.splitlines()
    assert status == 3, out
    assert lines[:4] == ["uid=1000 gid=1000 groups=10,20", "/tmp", "2 /", "0027"]
    assert int(lines[4].split()[1], 16) == 1 << 5      # CAP_KILL (5) only; exec as uid 1000 clears the effective set
    assert lines[5].split() == ["NoNewPrivs:", "1"]
    assert lines[6] == "100"


def test_home_from_the_containers_passwd(running):
    c = running()
    assert run(c, args=["sh", "-c", "echo $HOME"])[1] == "/root\n"


def test_bad_process_is_refused_and_nothing_runs(running):
    c = running()
    before = c.manager.pids()
    with pytest.raises(errors.InvalidArgument, match=r"^process\.json: args: must be a "
                                                     r"non-empty array$"):
        c.exec(dict(PROCESS, args=[]))
    with pytest.raises(errors.InvalidArgument, match=r"^process\.json: cwd: "):
        c.exec(dict(PROCESS, cwd="tmp"))
    with pytest.raises(errors.InvalidArgument, match=r"^process\.json: env\[0\]: invalid "):
        c.exec(dict(PROCESS, env=["NOEQUALS"]))
    with pytest.raises(errors.InvalidArgument,
                       match=r"^config\.json: process\.capabilities\.bounding\[0\]: unknown"):
        c.exec(dict(PROCESS, capabilities={"bounding": ["CAP_NOPE"]}), source="config.json",
               json_path="process")
    with pytest.raises(errors.InvalidArgument, match="process.json: terminal: needs a console"):
        c.exec(dict(PROCESS, terminal=True))
    with pytest.raises(errors.SystemFailure, match="executable file not found"):
        c.exec(dict(PROCESS, args=["nosuch"]))
    with pytest.raises(errors.InvalidArgument, match="--preserve-fds"):
        c.exec(PROCESS, preserve_fds=-1)
    with pytest.raises(errors.Unavailable,
                       match="^process.json: apparmorProfile: not supported by pyrunc$"):
        c.exec(dict(PROCESS, apparmorProfile="docker-default"))
    assert c.manager.pids() == before


def test_stopped_and_paused(running):
    c = running()
    c.pause()
    with pytest.raises(errors.FailedPrecondition,
                       match=r"^cannot exec in a paused container \(use --ignore-paused"):
        c.exec(PROCESS)
    # It joins the frozen cgroup once set up, and runs on after resume (a process quicker
    # than that join could finish before it: this one sleeps).
    pid = c.exec(dict(PROCESS, args=["sleep", "0.5"]), ignore_paused=True)
    try:
        assert pid in c.manager.pids()
        assert c.status == "paused"
        assert os.waitpid(pid, os.WNOHANG) == (0, 0)
    finally:
        c.resume()
    assert os.waitpid(pid, 0)[1] == 0
    c.signal(signal.SIGKILL)
    c.wait()
    with pytest.raises(errors.FailedPrecondition, match="^cannot exec in a stopped container$"):
        c.exec(PROCESS)


def test_exec_into_a_created_container(factory, make_bundle):
    c = factory.create(unique_id("exec"), make_bundle(["sleep", "100"]))
    status, out = run(c, args=["sh", "-c", "echo $$"])
    assert status == 0 and int(out) > 1       # in the container's pid namespace
    assert c.status == "created"


def test_seccomp_of_the_container_applies(running):
    def deny_mkdir(spec):
        spec["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                          "errnoRet": 1}]}
    c = running(deny_mkdir)
    status, out = run(c, args=["sh", "-c", "mkdir /tmp/x 2>&1; echo $?"])
    assert out.splitlines()[-1] == "1"
    assert "not permitted" in out


def test_pid_file_and_terminal(running, tmp_path):
    c = running()
    pid_file = str(tmp_path / "exec.pid")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path = str(tmp_path / "console.sock")
    listener.bind(path)
    listener.listen(1)
    try:
        pid = c.exec(dict(PROCESS, args=["tty"], terminal=True), console_socket=path,
                     pid_file=pid_file)
        conn, _ = listener.accept()
        _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
        conn.close()
        out = b""
        with os.fdopen(fds[0], "rb", buffering=0) as master:
            while True:
                try:
                    chunk = master.read(4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
        assert os.waitpid(pid, 0)[1] == 0
        assert out.decode().strip().startswith("/dev/pts/")
        assert int(open(pid_file).read()) == pid
    finally:
        listener.close()
    with pytest.raises(errors.InvalidArgument, match="no terminal"):
        c.exec(PROCESS, console_socket=path)


@given(st.lists(st.tuples(st.sampled_from("ABC"), st.text("xyz=", max_size=3)), max_size=8))
def test_last_wins(pairs):
    env = ["%s=%s" % p for p in pairs]
    out = _last_wins(env)
    assert len(out) == len({n for n, _ in pairs})
    last = {n: "%s=%s" % (n, v) for n, v in pairs}
    assert sorted(out) == sorted(last.values())
    assert [e.partition("=")[0] for e in out] == list(dict.fromkeys(n for n, _ in pairs))


@pytest.mark.parametrize("no_new_keyring", [False, True])
def test_session_keyring_of_the_container(factory, make_bundle, no_new_keyring):
    """The container's "_ses.<id>" keyring is seen from an exec'd process (which joins it:
    plan.session_keyring comes from the state); with no_new_keyring there is none."""
    def show_keys(spec):
        spec["linux"]["maskedPaths"].remove("/proc/keys")
    cid = unique_id("exec")
    c = factory.create(cid, make_bundle(["sleep", "100"], mutate=show_keys),
                       no_new_keyring=no_new_keyring)
    c.start()
    status, out = run(c, args=["sh", "-c", "grep -c ' _ses.%s: ' /proc/keys; true" % cid])
    assert out.strip() == ("0" if no_new_keyring else "1")
