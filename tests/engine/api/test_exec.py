"""The exec router driven by the docker CLIs and SDK: exit codes as the shell sees them, docker's
codes for a process that cannot start, stdin, a terminal in a real pty (its size set by the
CLI's resize), detached execs, and what a hostile client sends to exec create/start."""
import json
import os
import signal
import socket
import struct
import time

import pytest

from .conftest import DOCKER_CLIS
from .test_containers import daemon_for_module, pty_run

pytestmark = pytest.mark.usefixtures("private_mount_ns")


@pytest.fixture(scope="module")
def d(mirror, tmp_path_factory):
    with daemon_for_module(tmp_path_factory.mktemp("exec"), mirror) as daemon:
        daemon.docker("pull", "busybox")
        daemon.docker("run", "-d", "--name", "box", "busybox", "sleep", "100000")
        yield daemon


def test_exit_codes(d, cli):
    r = d.docker("exec", "box", "echo", "hi", cli=cli)
    assert r.stdout == "hi\n"
    r = d.docker("exec", "box", "sh", "-c", "echo out; echo err >&2; exit 5", cli=cli,
                 check=False)
    assert (r.returncode, r.stdout, r.stderr) == (5, "out\n", "err\n")


def test_cannot_start_codes(d, cli):
    r = d.docker("exec", "box", "nosuchcmd", cli=cli, check=False)
    assert r.returncode == 127
    assert "nosuchcmd" in r.stdout + r.stderr and "not found" in r.stdout + r.stderr
    r = d.docker("exec", "box", "/etc/passwd", cli=cli, check=False)
    assert r.returncode == 126
    r = d.docker("exec", "-u", "nosuchuser", "box", "true", cli=cli, check=False)
    assert r.returncode == 126
    assert "unable to find user nosuchuser" in r.stdout + r.stderr


def test_user_workdir_env(d, cli):
    r = d.docker("exec", "-u", "1234:5678", "-w", "/tmp", "-e", "FOO=bar", "box", "sh", "-c",
                 "id -u; id -g; pwd; echo $FOO", cli=cli)
    assert r.stdout.split() == ["1234", "5678", "/tmp", "bar"]


def test_stdin(d, cli):
    r = d.docker("exec", "-i", "box", "cat", input="through exec\n", cli=cli)
    assert r.stdout == "through exec\n"
    data = "x" * (3 << 20)
    r = d.docker("exec", "-i", "box", "wc", "-c", input=data, cli=cli)
    assert r.stdout.strip() == str(len(data))


def test_tty_in_pty(d, cli):
    out, code = pty_run([DOCKER_CLIS[cli], "exec", "-it", "box", "sh"], d.env(),
                        [b"tty; stty size; echo $((6*7))\r", b"exit 3\r"], rows=33, cols=91)
    assert code == 3
    assert b"/dev/pts/" in out and b"33 91" in out and b"42" in out


def test_detached(d, cli):
    d.docker("exec", "-d", "box", "sh", "-c", "sleep 0.3; echo done > /tmp/detached", cli=cli)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = d.docker("exec", "box", "cat", "/tmp/detached", check=False)
        if r.returncode == 0:
            break
        time.sleep(0.1)
    assert r.stdout == "done\n"


def test_inspect_and_sdk(d):
    client = d.client()
    try:
        box = client.containers.get("box")
        r = box.exec_run(["sh", "-c", "echo x; echo y >&2; exit 4"], demux=True)
        assert r.exit_code == 4 and r.output == (b"x\n", b"y\n")
        exec_id = client.api.exec_create("box", ["sleep", "1000"])["Id"]
        client.api.exec_start(exec_id, detach=True)
        doc = client.api.exec_inspect(exec_id)
        assert doc["Running"] is True and doc["ExitCode"] is None and doc["Pid"] > 0
        with open("/proc/%d/cmdline" % doc["Pid"], "rb") as f:      # the host's view
            assert f.read() == b"sleep\x001000\x00"
        assert doc["ContainerID"] == box.id
        os.kill(doc["Pid"], signal.SIGTERM)
        deadline = time.monotonic() + 10
        while client.api.exec_inspect(exec_id)["Running"] and time.monotonic() < deadline:
            time.sleep(0.1)
        doc = client.api.exec_inspect(exec_id)
        assert doc["Running"] is False and doc["ExitCode"] == 143
    finally:
        client.close()


def test_exec_in_stopped_container(d):
    d.docker("create", "--name", "stopped", "busybox", "true")
    try:
        r = d.docker("exec", "stopped", "true", check=False)
        assert r.returncode == 1 and "is not running" in r.stderr
    finally:
        d.docker("rm", "stopped")


def test_hostile_create_and_start(d):
    bad_bodies = [b"not json", b"[]", b'{"Cmd": "sh"}', b'{"Cmd": []}', b'{"Cmd": [1]}',
                  b'{"Cmd": ["true"], "Env": ["NOEQUALS"]}',
                  b'{"Cmd": ["true"], "DetachKeys": "ctrl-xx"}',
                  b'{"Cmd": ["true"], "User": 5}']
    for body in bad_bodies:
        status, _, out = d.request("POST", "/containers/box/exec", body=body,
                                   headers={"Content-Type": "application/json"})
        assert status == 400, body
        message = json.loads(out)["message"]
        assert "\n" not in message and message, body
    status, _, out = d.request("POST", "/containers/nosuch/exec", body=b'{"Cmd": ["true"]}')
    assert status == 404 and json.loads(out)["message"] == "No such container: nosuch"
    for exec_id in ("nosuch", "0" * 64, "A" * 64, "%2e%2e"):
        status, _, out = d.request("POST", "/exec/%s/start" % exec_id, body=b"{}")
        assert status == 404, exec_id
        assert json.loads(out)["message"].startswith("No such exec instance"), exec_id
    status, _, out = d.request("POST", "/containers/box/exec", body=b'{"Cmd": ["true"]}')
    exec_id = json.loads(out)["Id"]
    for body in (b'{"Detach": "yes"}', b'{"Tty": 1}', b'{"ConsoleSize": [1]}',
                 b'{"ConsoleSize": [-1, 5]}', b"[1]"):
        status, _, out = d.request("POST", "/exec/%s/start" % exec_id, body=body)
        assert status == 400, body
    for q in ("h=abc&w=3", "h=-1&w=5", "h=70000&w=5", "w=5"):
        status, _, _ = d.request("POST", "/exec/%s/resize?%s" % (exec_id, q))
        assert status == 400, q
    status, _, _ = d.request("POST", "/exec/%s/start" % exec_id, body=b'{"Detach": true}')
    assert status == 200
    status, _, out = d.request("POST", "/exec/%s/start" % exec_id, body=b'{"Detach": true}')
    assert status == 409


def test_raw_hijack_framing(d):
    """exec start over a raw socket: 101 with docker's headers, stdout and stderr framed."""
    status, _, out = d.request("POST", "/v1.43/containers/box/exec", body=json.dumps(
        {"Cmd": ["sh", "-c", "cat; echo E >&2"], "AttachStdin": True, "AttachStdout": True,
         "AttachStderr": True}).encode(), headers={"Content-Type": "application/json"})
    exec_id = json.loads(out)["Id"]
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(d.sock)
    body = b"{}"
    s.sendall(b"POST /v1.43/exec/%s/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\n"
              b"Upgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
              % (exec_id.encode(), len(body), body))
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
    assert b"Content-Type: application/vnd.docker.multiplexed-stream" in head
    s.sendall(b"in\x00\xff")
    s.shutdown(socket.SHUT_WR)          # stdin ends: the exec's stdin is closed
    data = b""
    while True:
        piece = s.recv(65536)
        if not piece:
            break
        data += piece
    s.close()
    frames = []
    while data:
        stream, size = struct.unpack(">BxxxI", data[:8])
        frames.append((stream, data[8:8 + size]))
        data = data[8 + size:]
    assert b"".join(p for st, p in frames if st == 1) == b"in\x00\xff"
    assert b"".join(p for st, p in frames if st == 2) == b"E\n"
    status, _, out = d.request("GET", "/exec/%s/json" % exec_id)
    assert json.loads(out)["ExitCode"] == 0
