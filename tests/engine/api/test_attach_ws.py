"""``GET /containers/{id}/attach/ws``: attach over a websocket, as dockerd serves it.

The client is written here from RFC 6455 (the docker SDK's ``attach_socket(ws=True)`` needs the
websocket-client package and a TCP daemon): its handshake checks Sec-WebSocket-Accept against
the RFC's own worked example and its formula, it masks every frame with a random key, and it
reads the server's frames as the RFC lays them out. Containers are made with the docker CLI and
their side is checked from outside (what the process echoes, its exit code, docker inspect).
Hostile clients: bad handshakes (400/426 before anything is taken), unmasked, oversized,
reserved and malformed frames (the connection closed with the RFC's code, the container and the
daemon unharmed). The frame parser itself is driven with hypothesis over a socket pair.
"""
import base64
import hashlib
import json
import os
import socket
import struct
import threading

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pyrunc.engine.api import httputils, websocket

pytestmark = pytest.mark.usefixtures("private_mount_ns")

RFC_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"       # RFC 6455, section 1.3


class WSClient:
    """A websocket client over the daemon's unix socket (RFC 6455 sections 4.1 and 5)."""

    def __init__(self, sock_path, path, *, key=None, headers=None, raw_request=None):
        self.key = key or base64.b64encode(os.urandom(16)).decode()
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(20)
        self.sock.connect(sock_path)
        if raw_request is None:
            lines = ["GET %s HTTP/1.1" % path, "Host: localhost"]
            given_headers = {"Upgrade": "websocket", "Connection": "Upgrade",
                             "Sec-WebSocket-Key": self.key, "Sec-WebSocket-Version": "13"}
            given_headers.update(headers or {})
            lines += ["%s: %s" % kv for kv in given_headers.items() if kv[1] is not None]
            raw_request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self.sock.sendall(raw_request)
        self.buf = b""
        head = self._until(b"\r\n\r\n")
        status_line, *header_lines = head.decode().split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()

    def _until(self, marker):
        while marker not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; got %r" % self.buf)
            self.buf += chunk
        head, _, self.buf = self.buf.partition(marker)
        return head

    def body(self):
        """The body of a refused handshake (its Content-Length)."""
        n = int(self.headers.get("content-length", "0"))
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        return self.buf[:n]

    def expected_accept(self):
        return base64.b64encode(hashlib.sha1(self.key.encode() + RFC_GUID).digest()).decode()

    def send_frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0, length=None):
        first = (0x80 if fin else 0) | rsv << 4 | opcode
        n = len(payload) if length is None else length
        bit = 0x80 if mask else 0
        if n < 126:
            head = bytes([first, bit | n])
        elif n < 65536:
            head = bytes([first, bit | 126]) + struct.pack(">H", n)
        else:
            head = bytes([first, bit | 127]) + struct.pack(">Q", n)
        if mask:
            key = os.urandom(4)
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            head += key
        self.sock.sendall(head + payload)

    def send_text(self, text):
        self.send_frame(0x1, text.encode())

    def _exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed mid-frame")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self):
        """(fin, opcode, payload) of the server's next frame; server frames are unmasked."""
        b0, b1 = self._exact(2)
        assert b1 & 0x80 == 0, "a server frame is masked"
        assert b0 & 0x70 == 0, "reserved bits set by the server"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._exact(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._exact(8))[0]
        return bool(b0 & 0x80), b0 & 0x0F, self._exact(n)

    def read_until_close(self):
        """Every data frame's (opcode, payload) up to the close frame; (frames, close code)."""
        frames = []
        while True:
            fin, op, payload = self.recv_frame()
            if op == 0x8:
                code = struct.unpack(">H", payload[:2])[0] if payload else None
                return frames, code
            frames.append((op, payload))

    def at_eof(self):
        """Whether the server closed the connection (nothing more comes)."""
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True

    def close(self):
        self.sock.close()


def test_accept_key_is_the_rfcs_example():
    # RFC 6455 section 1.3: the key "dGhlIHNhbXBsZSBub25jZQ==" is answered with this
    assert websocket.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, mirror, private_mount_ns):
    from .conftest import Daemon
    d = Daemon(tmp_path_factory.mktemp("ws"), [], mirror.url)
    try:
        d.start()
        d.docker("pull", "busybox")
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def echoer(daemon):
    """A running container echoing each stdin line to stdout (out:) and stderr (err:)."""
    cid = daemon.docker("run", "-d", "-i", "busybox", "sh", "-c",
                        'while read l; do echo "out:$l"; echo "err:$l" >&2; done').stdout.strip()
    yield cid
    daemon.docker("rm", "-f", cid, check=False)


def _running(daemon, cid):
    return daemon.docker("inspect", "--format", "{{.State.Running}}", cid).stdout.strip()


def _collect(ws, want, limit=50):
    """Data frames until the concatenated payloads contain every string of ``want``."""
    got = []
    while not all(w in b"".join(p for _, p in got) for w in want) and len(got) < limit:
        fin, op, payload = ws.recv_frame()
        assert fin and op in (0x1, 0x2), (op, payload)
        got.append((op, payload))
    return got


def test_handshake_and_stdio_both_ways(daemon, echoer):
    ws = WSClient(daemon.sock, "/containers/%s/attach/ws?stdin=1&stdout=1&stderr=1&stream=1"
                  % echoer)
    try:
        assert ws.status == 101
        assert ws.headers["upgrade"].lower() == "websocket"
        assert "upgrade" in ws.headers["connection"].lower()
        assert ws.headers["sec-websocket-accept"] == ws.expected_accept()
        ws.send_text("hello\n")
        got = _collect(ws, [b"out:hello\n", b"err:hello\n"])
        # API 1.28 and later: binary frames; stdout and stderr never multiplexed
        assert {op for op, _ in got} == {0x2}
        assert sorted(p for _, p in got) == [b"err:hello\n", b"out:hello\n"]
        # a message in fragments, with a ping between them: answered, the data joined
        ws.send_frame(0x2, b"fra", fin=False)
        ws.send_frame(0x9, b"are you there")
        ws.send_frame(0x0, b"gments\n", fin=True)
        fin, op, payload = ws.recv_frame()
        assert (fin, op, payload) == (True, 0xA, b"are you there")
        got = _collect(ws, [b"out:fragments\n"])
        assert b"out:fragments\n" in b"".join(p for _, p in got)
        # the client closes: its code is echoed, the connection ends, the container runs on
        ws.send_frame(0x8, struct.pack(">H", 1000) + b"bye")
        frames, code = ws.read_until_close()
        assert code == 1000
        assert ws.at_eof()
    finally:
        ws.close()
    assert _running(daemon, echoer) == "true"


def test_stream_choice_and_old_api_text_frames(daemon, echoer):
    ws = WSClient(daemon.sock, "/v1.27/containers/%s/attach/ws?stdin=1&stdout=1&stream=1"
                  % echoer)
    try:
        assert ws.status == 101
        ws.send_text("one\n")
        ws.send_text("two\n")
        got = _collect(ws, [b"out:one\n", b"out:two\n"])
        assert {op for op, _ in got} == {0x1}          # text frames before API 1.28
        assert b"err:" not in b"".join(p for _, p in got)
    finally:
        ws.close()


def test_logs_then_close(daemon):
    cid = daemon.docker("run", "-d", "busybox", "sh", "-c",
                        "echo first; echo second >&2").stdout.strip()
    try:
        assert daemon.docker("wait", cid).stdout.strip() == "0"
        ws = WSClient(daemon.sock, "/containers/%s/attach/ws?logs=1&stdout=1&stderr=1" % cid)
        try:
            assert ws.status == 101
            frames, code = ws.read_until_close()
            assert code == 1000
            assert sorted(p for _, p in frames) == [b"first\n", b"second\n"]
            assert ws.at_eof()
        finally:
            ws.close()
        # stdout only
        ws = WSClient(daemon.sock, "/containers/%s/attach/ws?logs=1&stdout=1" % cid)
        try:
            frames, code = ws.read_until_close()
            assert [p for _, p in frames] == [b"first\n"] and code == 1000
        finally:
            ws.close()
    finally:
        daemon.docker("rm", "-f", cid)


def test_output_end_closes_and_stdin_once(daemon):
    """A StdinOnce container's stdin closes with the websocket: cat ends, exit 0; the
    server sends its close when the output ends."""
    client = daemon.client()
    try:
        # the SDK's low-level create sets StdinOnce with OpenStdin when not detached
        c = client.containers.get(client.api.create_container("busybox", ["cat"],
                                                              stdin_open=True)["Id"])
        assert c.attrs["Config"]["StdinOnce"] is True
        try:
            ws = WSClient(daemon.sock, "/containers/%s/attach/ws?stdin=1&stdout=1&stream=1"
                          % c.id)
            try:
                assert ws.status == 101
                c.start()
                ws.send_text("through cat\n")
                got = _collect(ws, [b"through cat\n"])
                assert b"".join(p for _, p in got) == b"through cat\n"
                ws.send_frame(0x8, struct.pack(">H", 1001))
                fin, op, payload = ws.recv_frame()
                assert op == 0x8 and struct.unpack(">H", payload[:2])[0] == 1001
            finally:
                ws.close()
            assert c.wait(timeout=30)["StatusCode"] == 0
        finally:
            c.remove(force=True)
        # the output ends (the process exits): the server's close 1000, then the end
        c = client.containers.create("busybox", ["sh", "-c", "sleep 1; echo done"])
        try:
            ws = WSClient(daemon.sock, "/containers/%s/attach/ws?stdout=1&stream=1" % c.id)
            try:
                c.start()
                frames, code = ws.read_until_close()
                assert b"".join(p for _, p in frames) == b"done\n" and code == 1000
                assert ws.at_eof()
            finally:
                ws.close()
        finally:
            c.remove(force=True)
    finally:
        client.close()


def test_terminal_and_detach_keys(daemon):
    """A container with a terminal: its bytes as they are, and the detach keys (here
    ctrl-x,x) end the session with a close while the container runs on."""
    cid = daemon.docker("run", "-dit", "busybox", "sh").stdout.strip()
    try:
        ws = WSClient(daemon.sock, "/containers/%s/attach/ws?stdin=1&stdout=1&stream=1"
                      "&detachKeys=ctrl-x,x" % cid)
        try:
            assert ws.status == 101
            ws.send_text("echo $((6*7))\n")
            got = _collect(ws, [b"42\r\n"])
            assert b"42\r\n" in b"".join(p for _, p in got)   # the terminal's CRLF
            ws.send_frame(0x2, b"\x18x")
            frames, code = ws.read_until_close()
            assert code == 1000 and ws.at_eof()
        finally:
            ws.close()
        assert _running(daemon, cid) == "true"
    finally:
        daemon.docker("rm", "-f", cid)


@pytest.mark.parametrize("headers, status, message", [
    ({"Sec-WebSocket-Key": "not base64!"}, 400, "Sec-WebSocket-Key: must be 16 bytes"),
    ({"Sec-WebSocket-Key": base64.b64encode(b"x" * 15).decode()}, 400,
     "Sec-WebSocket-Key: must be 16 bytes"),
    ({"Sec-WebSocket-Key": base64.b64encode(b"x" * 17).decode()}, 400,
     "Sec-WebSocket-Key: must be 16 bytes"),
    ({"Sec-WebSocket-Key": None}, 400, "Sec-WebSocket-Key: exactly one is required"),
    ({"Sec-WebSocket-Key": "\u00e9t\u00e9"}, 400, "Sec-WebSocket-Key: must be 16 bytes"),
    ({"Upgrade": None}, 400, "Upgrade: must be websocket"),
    ({"Upgrade": "tcp"}, 400, "Upgrade: must be websocket"),
    ({"Connection": "keep-alive"}, 400, "Connection: must include Upgrade"),
    ({"Sec-WebSocket-Version": "8"}, 426, "Sec-WebSocket-Version: only 13 is supported"),
    ({"Sec-WebSocket-Version": None}, 426, "Sec-WebSocket-Version: only 13 is supported"),
    ({"Content-Length": "4"}, 400, "the request must have no body"),
    ({"Transfer-Encoding": "chunked"}, 400, "the request must have no body"),
])
def test_bad_handshakes_are_refused(daemon, echoer, headers, status, message):
    ws = WSClient(daemon.sock, "/containers/%s/attach/ws?stdin=1&stdout=1&stream=1" % echoer,
                  headers=headers)
    try:
        assert ws.status == status
        assert "sec-websocket-accept" not in ws.headers
        assert message in json.loads(ws.body())["message"]
        if status == 426:
            assert ws.headers["sec-websocket-version"] == "13"
    finally:
        ws.close()
    assert _running(daemon, echoer) == "true"
    assert daemon.request("GET", "/_ping")[0] == 200


def test_two_keys_and_unknown_container(daemon, echoer):
    key = base64.b64encode(os.urandom(16)).decode()
    raw = ("GET /containers/%s/attach/ws?stdout=1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n"
           "Sec-WebSocket-Key: %s\r\n\r\n" % (echoer, key, key)).encode()
    ws = WSClient(daemon.sock, None, raw_request=raw)
    try:
        assert ws.status == 400
        assert "exactly one" in json.loads(ws.body())["message"]
    finally:
        ws.close()
    ws = WSClient(daemon.sock, "/containers/nosuchcontainer/attach/ws?stdout=1")
    try:
        assert ws.status == 404
        assert json.loads(ws.body())["message"] == "No such container: nosuchcontainer"
    finally:
        ws.close()


def _hostile(ws):
    """Send a frame that breaks the protocol (length 0 payload unless given)."""
    return {
        "unmasked": lambda: ws.send_frame(0x1, b"hi\n", mask=False),
        "oversized": lambda: ws.send_frame(0x2, b"", length=1 << 40),
        "length top bit": lambda: ws.send_frame(0x2, b"", length=1 << 63),
        "just over the limit": lambda: ws.send_frame(0x2, b"", length=websocket.MAX_FRAME + 1),
        "reserved opcode": lambda: ws.send_frame(0x3, b"x"),
        "reserved control opcode": lambda: ws.send_frame(0xB, b"x"),
        "rsv bit": lambda: ws.send_frame(0x1, b"x", rsv=4),
        "long ping": lambda: ws.send_frame(0x9, b"p" * 126),
        "fragmented ping": lambda: ws.send_frame(0x9, b"p", fin=False),
        "lone continuation": lambda: ws.send_frame(0x0, b"x"),
        "message inside message": lambda: (ws.send_frame(0x1, b"", fin=False),
                                           ws.send_frame(0x2, b"b")),
        "not utf-8": lambda: ws.send_frame(0x1, b"\xff\xfe\n"),
        "utf-8 cut at the end": lambda: ws.send_frame(0x1, "\u00e9".encode()[:1]),
        "one-byte close": lambda: ws.send_frame(0x8, b"\x03"),
        "close code 1005": lambda: ws.send_frame(0x8, struct.pack(">H", 1005)),
        "close code 999": lambda: ws.send_frame(0x8, struct.pack(">H", 999)),
        "close reason not utf-8": lambda: ws.send_frame(0x8, struct.pack(">H", 1000) + b"\xff"),
    }


HOSTILE = {"unmasked": 1002, "oversized": 1009, "length top bit": 1002,
           "just over the limit": 1009, "reserved opcode": 1002,
           "reserved control opcode": 1002, "rsv bit": 1002, "long ping": 1002,
           "fragmented ping": 1002, "lone continuation": 1002,
           "message inside message": 1002, "not utf-8": 1007, "utf-8 cut at the end": 1007,
           "one-byte close": 1002, "close code 1005": 1002, "close code 999": 1002,
           "close reason not utf-8": 1007}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_frames_close_the_connection(daemon, echoer, kind):
    ws = WSClient(daemon.sock, "/containers/%s/attach/ws?stdin=1&stdout=1&stream=1" % echoer)
    try:
        assert ws.status == 101
        _hostile(ws)[kind]()
        frames, code = ws.read_until_close()
        assert code == HOSTILE[kind]
        assert ws.at_eof()
        # nothing of a refused frame reached the process
        assert all(b"out:" not in p for _, p in frames)
    finally:
        ws.close()
    assert _running(daemon, echoer) == "true"
    # the container's stdin still works for the next client
    ws = WSClient(daemon.sock, "/containers/%s/attach/ws?stdin=1&stdout=1&stream=1" % echoer)
    try:
        ws.send_text("after\n")
        assert b"out:after\n" in b"".join(p for _, p in _collect(ws, [b"out:after\n"]))
    finally:
        ws.close()


def test_client_vanishing_mid_frame(daemon, echoer):
    ws = WSClient(daemon.sock, "/containers/%s/attach/ws?stdin=1&stdout=1&stream=1" % echoer)
    ws.sock.sendall(bytes([0x82, 0xFE]) + struct.pack(">H", 1000) + os.urandom(4) + b"x" * 10)
    ws.close()
    assert _running(daemon, echoer) == "true"
    assert daemon.request("GET", "/_ping")[0] == 200


# ---------------------------------------------------------------------------- the parser

class _Pair:
    """A WebSocket over one end of a socket pair; the test writes frames to the other."""

    def __init__(self, deliver=True):
        self.server, self.client = socket.socketpair()
        self.server.settimeout(10)
        self.client.settimeout(10)
        self.ws = websocket.WebSocket(httputils.Hijacked(self.server,
                                                         self.server.makefile("rb")),
                                      deliver=deliver)

    def feed(self, wire):
        """Everything recv gives while ``wire`` is written (by a thread) and the input then
        closed."""
        def write():
            try:
                self.client.sendall(wire)
                self.client.shutdown(socket.SHUT_WR)
            except OSError:
                pass                # the server ended the connection first
        writer = threading.Thread(target=write)
        writer.start()
        out = b""
        try:
            while True:
                data = self.ws.recv()
                if not data:
                    return out
                out += data
        finally:
            writer.join()

    def server_frames(self):
        data = b""
        self.client.settimeout(0.5)
        try:
            while True:
                chunk = self.client.recv(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pass
        return data

    def close(self):
        self.server.close()
        self.client.close()


def _client_frame(opcode, payload, fin, key):
    return websocket.frame(opcode, payload, fin=fin, mask=key)


def _server_frames(out):
    """(opcode, payload) of the frames the server wrote (unmasked, short control frames)."""
    frames = []
    while out:
        assert out[0] & 0x70 == 0 and out[1] & 0x80 == 0, out[:2]
        n = out[1] & 0x7F
        assert n <= 125
        frames.append((out[0] & 0x0F, out[2:2 + n]))
        out = out[2 + n:]
    return frames


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=st.lists(st.tuples(st.sampled_from([0x1, 0x2]), st.binary(max_size=3000),
                                   st.integers(1, 4)), max_size=5),
       pings=st.lists(st.binary(max_size=125), max_size=3), data=st.data())
def test_parser_joins_fragments_and_answers_pings(messages, pings, data):
    """Any split of any messages into masked fragments, pings between them: recv gives
    exactly the payloads in order, each ping is answered with its payload."""
    pair = _Pair()
    try:
        wire, want, sent_pings = b"", b"", []
        for opcode, payload, parts in messages:
            if opcode == 0x1:
                payload = payload.decode("latin-1").encode("utf-8")
            want += payload
            cuts = sorted(data.draw(st.lists(st.integers(0, len(payload)), min_size=parts - 1,
                                             max_size=parts - 1)))
            pieces = [payload[a:b] for a, b in zip([0] + cuts, cuts + [len(payload)])]
            for i, piece in enumerate(pieces):
                wire += _client_frame(opcode if i == 0 else 0x0, piece,
                                      i == len(pieces) - 1, os.urandom(4))
                if len(sent_pings) < len(pings):
                    sent_pings.append(pings[len(sent_pings)])
                    wire += _client_frame(0x9, sent_pings[-1], True, os.urandom(4))
        assert pair.feed(wire) == want
        assert _server_frames(pair.server_frames()) == [(0xA, p) for p in sent_pings]
    finally:
        pair.close()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_parser_survives_any_bytes(raw):
    """Whatever a client sends, recv returns data or b"" (never raises, never hangs once
    the input ends) and anything the server writes back is well-formed frames."""
    pair = _Pair()
    try:
        pair.feed(raw)
        frames = _server_frames(pair.server_frames())
        assert all(op in (0x8, 0xA) for op, _ in frames)
        # at most one close, and nothing after it
        closes = [i for i, (op, _) in enumerate(frames) if op == 0x8]
        assert closes in ([], [len(frames) - 1])
    finally:
        pair.close()
