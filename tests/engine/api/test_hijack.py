"""The server's hijack and stream machinery (what attach, exec, logs and events stand on),
served in-process on a unix socket with test routes, and spoken to with raw sockets."""
import json
import socket
import threading
import time

import pytest

from pyrunc.engine.api import httputils, server


def echo(req):
    """Hijack, then echo every byte back until the client half-closes."""
    conn = req.hijack()
    while True:
        data = conn.recv(4096)
        if not data:
            break
        conn.sendall(data.upper())
    conn.sendall(b"BYE")
    conn.close_write()


class Forever:
    def __init__(self):
        self.closed = threading.Event()

    def handler(self, req):
        def items():
            try:
                n = 0
                while True:
                    n += 1
                    yield {"n": n}
                    time.sleep(0.01)
            finally:
                self.closed.set()
        return httputils.stream(items())


class Background:
    """A Producer whose work emits until its emit raises (the client left)."""

    def __init__(self):
        self.ended = threading.Event()
        self.error = None

    def handler(self, req):
        def work(emit):
            try:
                while True:
                    emit({"tick": time.time()})
                    time.sleep(0.01)
            except BaseException as e:
                self.error = e
                raise
            finally:
                self.ended.set()
        return httputils.stream(httputils.progress_stream(httputils.Producer(work).first()))


@pytest.fixture
def api(tmp_path):
    forever = Forever()
    background = Background()
    routes = [server.Route("GET", "/background", background.handler),server.Route("POST", "/echo", echo),
              server.Route("GET", "/forever", forever.handler),
              server.Route("GET", "/progress", lambda req: httputils.stream(
                  httputils.progress_stream(_progress_items())))]
    s = server.APIServer(routes)
    path = str(tmp_path / "api.sock")
    s.listen_unix(path, group=None)
    s.start()
    s.forever = forever
    s.background = background
    s.path = path
    yield s
    s.stop()


def _progress_items():
    from pyrunc.errors import NotFound
    yield {"status": "Pulling"}
    raise NotFound("manifest unknown")


def connect(path):
    c = socket.socket(socket.AF_UNIX)
    c.settimeout(10)
    c.connect(path)
    return c


def read_head(c):
    data = b""
    while b"\r\n\r\n" not in data:
        piece = c.recv(1)
        if not piece:
            break
        data += piece
    return data


def read_all(c):
    out = b""
    while True:
        piece = c.recv(4096)
        if not piece:
            return out
        out += piece


def test_upgrade_tcp_and_pipelined_stdin(api):
    c = connect(api.path)
    # the client's first stdin bytes arrive in the same packet as the request
    c.sendall(b"POST /v1.43/echo HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\n"
              b"Upgrade: tcp\r\nContent-Length: 0\r\n\r\nearly ")
    head = read_head(c)
    assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
    assert b"Content-Type: application/vnd.docker.raw-stream\r\n" in head
    assert b"Upgrade: tcp\r\n" in head
    c.sendall(b"late")
    c.shutdown(socket.SHUT_WR)
    assert read_all(c) == b"EARLY LATEBYE"
    c.close()


def test_hijack_without_upgrade(api):
    c = connect(api.path)
    c.sendall(b"POST /echo HTTP/1.1\r\nHost: d\r\n\r\nabc")
    head = read_head(c)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"application/vnd.docker.raw-stream" in head
    c.shutdown(socket.SHUT_WR)
    assert read_all(c) == b"ABCBYE"
    c.close()


def test_read_timeout_only_before_hijack(api, monkeypatch):
    monkeypatch.setattr(server._Handler, "timeout", 0.5)
    idle = connect(api.path)
    idle.sendall(b"POST /echo HTTP/1.1\r\n")       # a slow client: dropped after the timeout
    t0 = time.monotonic()
    assert read_all(idle) == b""
    assert time.monotonic() - t0 < 5
    idle.close()
    c = connect(api.path)
    c.sendall(b"POST /echo HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
    read_head(c)
    time.sleep(1.5)          # three read timeouts: a hijacked connection has none
    c.sendall(b"x")
    assert c.recv(10) == b"X"
    c.close()


def test_stream_closed_when_client_leaves(api):
    c = connect(api.path)
    c.sendall(b"GET /forever HTTP/1.1\r\nHost: d\r\n\r\n")
    head = read_head(c)
    assert b"Transfer-Encoding: chunked" in head
    size = int(c.recv(64).split(b"\r\n")[0], 16)
    assert size > 0
    c.close()
    assert api.forever.closed.wait(10), "the stream's iterator was not closed"


def test_error_during_progress_is_the_last_line(api):
    c = connect(api.path)
    c.sendall(b"GET /progress HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
    data = read_all(c)
    c.close()
    body = data.split(b"\r\n\r\n", 1)[1]
    lines = [json.loads(x) for x in body.split(b"\r\n") if x.startswith(b"{")]
    assert lines == [{"status": "Pulling"},
                     {"errorDetail": {"message": "manifest unknown"},
                      "error": "manifest unknown"}]
    assert body.endswith(b"0\r\n\r\n")


def test_stalled_clients_hold_only_themselves(api):
    stalled = [connect(api.path) for _ in range(50)]
    for s in stalled:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: d\r\n")   # headers never finished
    t0 = time.monotonic()
    c = connect(api.path)
    c.sendall(b"POST /echo HTTP/1.1\r\nHost: d\r\n\r\nok")
    read_head(c)
    c.shutdown(socket.SHUT_WR)
    assert read_all(c) == b"OKBYE"
    assert time.monotonic() - t0 < 2
    for s in stalled:
        s.close()


def test_background_work_ends_when_client_leaves(api):
    c = connect(api.path)
    c.sendall(b"GET /background HTTP/1.1\r\nHost: d\r\n\r\n")
    read_head(c)
    assert b"tick" in c.recv(256)
    c.close()
    assert api.background.ended.wait(10), "the producer's work kept running"
    assert api.background.error is not None
