"""What a user (or a script fed hostile input) hands pydocker: bad run options end in one line
naming the flag and the reason, exit 125, and no container is left behind; a daemon that
answers garbage gives one line too."""
import socket
import threading

import pytest

from .conftest import Target

BAD_RUN = [
    (["-p", "80:abc"], "-p, --publish"), (["-p", "1:2:3:4"], "-p, --publish"),
    (["--mount", "type=bind,bogus=1,target=/x"], "--mount"), (["--mount", "source=x"], "--mount"),
    (["--env-file", "/nonexistent/env"], "/nonexistent/env"), (["--ulimit", "nofile=a:b"],
                                                              "--ulimit"),
    (["--restart", "sometimes"], "restart policy"), (["--health-interval", "soon"], "soon"),
    (["--cpus", "lots"], "--cpus"), (["-m", "12q"], "-m, --memory"),
    (["--shm-size", "-1"], "--shm-size"), (["--pull", "maybe"], "pull option"),
    (["--rm", "--restart", "always"], "Conflicting options"),
]


@pytest.mark.parametrize("flags,word", BAD_RUN, ids=lambda x: " ".join(x) if isinstance(
    x, list) else x)
def test_bad_run_options(pyd, flags, word):
    r = pyd.pydocker("run", *flags, "busybox", "true")
    assert r.code == 125, r
    assert word in r.err and "Traceback" not in r.err, r
    assert pyd.pydocker("ps", "-aq").out == ""


def test_bad_format_is_one_line(pyd):
    for fmt in ("{{.Nope", "{{json}}", "{{range .X}}", "{{printf \"%d\" .Names}}",
                "{{index .Names 5}}", "{{.Names.Deeper.Still}}"):
        r = pyd.pydocker("ps", "-a", "--format", fmt)
        assert "Traceback" not in r.err, (fmt, r)
        assert r.code in (0, 1, 125), (fmt, r)


class Garbage:
    """A unix socket server answering every request with ``reply``."""

    def __init__(self, path, reply):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(path)
        self.sock.listen(8)
        self.reply = reply
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                c.recv(65536)
                c.sendall(self.reply)
            except OSError:
                pass
            c.close()


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 5\r\n\r\n[{]}\n",
    b"HTTP/1.1 500 Oops\r\nContent-Length: 3\r\n\r\n\xff\xfe\x00",
    b"not http at all\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 9\r\n\r\n[{\"Id\":3}]",
    b"",
])
def test_garbage_daemon(tmp_path, reply):
    path = str(tmp_path / "g.sock")
    g = Garbage(path, reply)
    try:
        t = Target("unix://" + path, str(tmp_path / "cfg"))
        r = t.pydocker("ps")
        assert r.code != 0, r
        assert "Traceback" not in r.err, r
        assert len(r.err.strip().splitlines()) <= 2, r
    finally:
        g.sock.close()
