"""pydocker's own HTTP/1.1 client (pyrunc.cli.client.Response) on what a daemon, or something
posing as one, sends: each framing (Content-Length, chunked, to the end of the connection)
gives the body, and malformed answers end in one line and exit 1, never a traceback."""
import pytest

from .conftest import Target
from .test_hostile import Garbage

PING = b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\n"
ONE = b'[{"Id":"%s","Names":["/web"],"Image":"busybox","Command":"sh","Created":0,' \
      b'"Ports":[],"Status":"Up 1 second","State":"running"}]' % (b"a" * 64)


def chunked(body, size=7):
    return b"".join(b"%x;ext=1\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
                    for i in range(0, len(body), size)) + b"0\r\nTrailer: x\r\n\r\n"


@pytest.mark.parametrize("reply", [
    PING + b"Content-Length: %d\r\n\r\n%s" % (len(ONE), ONE),
    PING + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(ONE),
    PING + b"Connection: close\r\n\r\n" + ONE,
], ids=["content-length", "chunked", "to-the-end"])
def test_framings_give_the_body(tmp_path, reply):
    path = str(tmp_path / "d.sock")
    g = Garbage(path, reply)
    try:
        r = Target("unix://" + path, str(tmp_path / "cfg")).pydocker("ps", "-q", "--no-trunc")
        assert (r.code, r.out, r.err) == (0, "a" * 64 + "\n", ""), r
    finally:
        g.sock.close()


@pytest.mark.parametrize("reply", [
    PING + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n[]\r\n0\r\n\r\n",
    PING + b"Transfer-Encoding: chunked\r\n\r\n-5\r\n[]\r\n0\r\n\r\n",
    PING + b"Transfer-Encoding: chunked\r\n\r\n2\r\n[]XX0\r\n\r\n",
    PING + b"Transfer-Encoding: chunked\r\n\r\n10\r\n[]",
    PING + b"Content-Length: 100\r\n\r\n[]",
    PING + b"Content-Length: -1\r\n\r\n[]",
    PING + b"X: " + b"y" * 70000 + b"\r\n\r\n[]",
    PING + b"".join(b"X%d: y\r\n" % i for i in range(200)) + b"\r\n[]",
    PING + b"no colon here\r\n\r\n[]",
    b"HTTP/1.1 2000 OK\r\n\r\n",
    b"HTTP/2 200 OK\r\n\r\n",
], ids=["bad-chunk-size", "negative-chunk", "chunk-without-crlf", "truncated-chunk",
        "truncated-length", "negative-length", "long-header", "many-headers", "bad-header",
        "bad-status", "not-http1"])
def test_malformed_answers_are_one_line(tmp_path, reply):
    path = str(tmp_path / "g.sock")
    g = Garbage(path, reply)
    try:
        r = Target("unix://" + path, str(tmp_path / "cfg")).pydocker("ps")
        assert r.code == 1, r
        assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1, r
        assert r.err.startswith("pydocker: "), r
    finally:
        g.sock.close()
