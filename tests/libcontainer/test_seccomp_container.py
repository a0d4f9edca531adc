"""Seccomp in real containers: pyrunc and runc run the same bundles and must agree."""
import array
import errno
import fcntl
import json
import os
import select
import socket
import struct
import subprocess
import tempfile
import time

import pytest

from support import need, unique_id

pytestmark = pytest.mark.usefixtures("private_mount_ns")

SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100   # _IOWR('!', 0, struct seccomp_notif)
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101   # _IOWR('!', 1, struct seccomp_notif_resp)


class Runtime:
    def __init__(self, name, binary, root):
        self.name, self.binary, self.root = name, binary, root

    def cmd(self, *args):
        return [self.binary, "--root", self.root] + list(args)

    def run(self, bundle, timeout=30):
        """``run`` in the foreground: (exit status, stdout, stderr)."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run(self.cmd("run", "--bundle", bundle, unique_id("sc")),
                                  stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                  timeout=timeout)
            out.seek(0)
            err.seek(0)
            return proc.returncode, out.read().decode(), err.read().decode()

    def cleanup(self):
        if os.path.isdir(self.root):
            for cid in os.listdir(self.root):
                subprocess.run(self.cmd("delete", "--force", cid), capture_output=True)


@pytest.fixture(params=["pyrunc", "runc"])
def runtime(request, tmp_path, pyrunc_bin):
    binary = pyrunc_bin if request.param == "pyrunc" else need("runc")
    rt = Runtime(request.param, binary, str(tmp_path / ("state-" + request.param)))
    yield rt
    rt.cleanup()


@pytest.fixture
def seccomp_bundle(make_bundle):
    def make(script, seccomp):
        def change(spec):
            spec["mounts"] = [m for m in spec["mounts"] if m["type"] != "cgroup"]
            spec["linux"]["seccomp"] = seccomp
        return make_bundle(("sh", "-c", script), mutate=change)
    return make


def allow_but(*rules, **extra):
    return dict({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": list(rules)}, **extra)


def test_denied_syscall_returns_the_configured_errno(runtime, seccomp_bundle):
    bundle = seccomp_bundle("mkdir /tmp/x; echo rc=$?; rmdir /tmp; echo rc=$?", allow_but(
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV}))
    status, out, err = runtime.run(bundle)
    assert status == 0, err
    assert out == "rc=1\nrc=1\n"
    assert "Invalid cross-device link" in err and "Read-only file system" in err


def test_kill_process_ends_the_container_with_sigsys(runtime, seccomp_bundle):
    bundle = seccomp_bundle("echo before; mkdir /tmp/x; echo after", allow_but(
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}))
    status, out, err = runtime.run(bundle)
    # the shell forks mkdir: the child dies of SIGSYS, the shell reports 128+31 and goes on
    assert (status, out) == (0, "before\nafter\n"), err


def test_argument_conditions(runtime, seccomp_bundle):
    # kill(pid, 0) is refused; kill(pid, SIGCONT) is not.
    bundle = seccomp_bundle("kill -0 $$; echo zero=$?; kill -CONT $$; echo cont=$?", allow_but(
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV,
         "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]}))
    status, out, err = runtime.run(bundle)
    assert (status, out) == (0, "zero=1\ncont=0\n"), err


def test_refusing_default_with_an_allow_list(runtime, seccomp_bundle):
    # docker's shape: refuse by default, allow a long list (here: all but mkdir and mkdirat)
    from pyrunc.libcontainer import seccomp
    allowed = [n for n in seccomp.syscall_names() if n not in ("mkdir", "mkdirat")]
    bundle = seccomp_bundle("echo hi; mkdir /tmp/x; echo rc=$?", {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]})
    status, out, err = runtime.run(bundle)
    assert (status, out) == (0, "hi\nrc=1\n"), err
    assert "Operation not permitted" in err


def test_unknown_syscall_names_are_skipped(runtime, seccomp_bundle):
    bundle = seccomp_bundle("mkdir /tmp/x; echo rc=$?", allow_but(
        {"names": ["no_such_syscall", "mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}))
    status, out, err = runtime.run(bundle)
    assert (status, out) == (0, "rc=1\n"), err
    assert "Operation not permitted" in err


def test_notify_hands_the_listener_to_the_agent(runtime, seccomp_bundle, tmp_path):
    listener = str(tmp_path / "agent.sock")
    bundle = seccomp_bundle("mkdir /tmp/x; echo rc=$?", allow_but(
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"},
        listenerPath=listener, listenerMetadata="who=test"))
    agent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    agent.bind(listener)
    agent.listen(1)
    agent.settimeout(15)
    cid = unique_id("sn")
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    proc = subprocess.Popen(runtime.cmd("run", "--bundle", bundle, cid),
                            stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    notify_fd = None
    answered = 0
    try:
        deadline = time.monotonic() + 15
        while not select.select([agent], [], [], 0.1)[0]:
            assert proc.poll() is None, "the runtime exited without contacting the agent"
            assert time.monotonic() < deadline, "the runtime did not contact the agent"
        conn, _ = agent.accept()
        fds = array.array("i")
        msg, ancdata, _flags, _ = conn.recvmsg(65536, socket.CMSG_SPACE(fds.itemsize))
        conn.close()
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
        notify_fd = fds[0]
        doc = json.loads(msg)
        assert doc["fds"] == ["seccompFd"] and doc["metadata"] == "who=test"
        assert doc["state"]["id"] == cid and doc["state"]["bundle"] == bundle
        assert doc["pid"] > 0 and "ociVersion" in doc
        while proc.poll() is None:
            ready, _, _ = select.select([notify_fd], [], [], 0.2)
            if not ready:
                continue
            notif = bytearray(80)
            try:
                fcntl.ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_RECV, notif, True)
            except OSError as e:
                if e.errno == errno.ENOENT:   # every process of the filter has gone
                    break
                raise
            nid = struct.unpack_from("=Q", notif)[0]
            resp = bytearray(struct.pack("=QqiI", nid, 0, -errno.EXDEV, 0))
            fcntl.ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_SEND, resp, True)
            answered += 1
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        agent.close()
        if notify_fd is not None:
            os.close(notify_fd)
    out.seek(0)
    err.seek(0)
    stdout, stderr = out.read().decode(), err.read().decode()
    assert proc.returncode == 0, stderr
    assert answered == 1 and stdout == "rc=1\n"
    assert "Invalid cross-device link" in stderr
