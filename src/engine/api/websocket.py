"""WebSockets (RFC 6455) on the Engine API's connections: dockerd's ``/containers/{id}/attach/ws``.

The handshake (section 4.2): a GET with ``Upgrade: websocket``, ``Connection: Upgrade``,
``Sec-WebSocket-Version: 13`` and a ``Sec-WebSocket-Key`` of 16 bytes in base64 is answered
``101 Switching Protocols`` with ``Sec-WebSocket-Accept``; anything else is refused before the
connection is taken (400, or 426 naming the version spoken). No subprotocol, no extension.

Then frames (section 5): the client's must be masked; their payloads come out of
:meth:`WebSocket.recv` as a byte stream (text and binary messages alike, fragmented or not);
pings are answered, pongs ignored. What is sent goes out as one unmasked frame per write,
binary (text for API versions before 1.28, as dockerd does). A client frame that breaks the
protocol (unmasked, reserved bits or opcodes, a control frame fragmented or over 125 bytes, a
continuation without a message, a 64-bit length with its top bit set) ends the connection with
close code 1002; a frame longer than MAX_FRAME with 1009; a text message that is not UTF-8
with 1007. A close frame from the client is answered with its code, and the connection ends;
``close_write`` sends the server's own close (1000) when the output ends.
"""
from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import logging
import socket
import struct
import threading

from pyrunc.engine.api import httputils
from pyrunc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
VERSION = "13"
# The longest frame a client may send: golang.org/x/net/websocket's DefaultMaxPayloadBytes,
# which dockerd's attach uses. Payloads are passed on as they arrive, never held whole.
MAX_FRAME = 32 << 20
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
NORMAL, PROTOCOL_ERROR, INVALID_DATA, TOO_BIG = 1000, 1002, 1007, 1009
# Close codes a peer may send (RFC 6455 7.4 and the IANA registry; 3000-4999 for others).
_SENDABLE = frozenset(range(1000, 1004)) | frozenset(range(1007, 1015))

log = logging.getLogger("pydockerd")


class HandshakeError(InvalidArgument):
    """A request that is not a websocket handshake this server speaks."""

    def __init__(self, message: str, status: int = 400,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__("websocket handshake: " + message)
        self.http_status = status
        self.headers = dict(headers or {})

    def response(self) -> httputils.Response:
        """The refusal: docker's JSON error body with the status and headers."""
        status, body = httputils.error_body(self)
        return httputils.Response(status, body, "application/json", self.headers)


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (RFC 6455 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + GUID).digest()).decode()


def _tokens(headers: Any, name: str) -> list[str]:
    """The comma-separated tokens of every ``name`` header, lowercased."""
    out: list[str] = []
    for value in headers.get_all(name) or []:
        out += [t.strip().lower() for t in value.split(",") if t.strip()]
    return out


def check_handshake(headers: Any) -> str:
    """The Sec-WebSocket-Accept value for a valid opening handshake's ``headers``;
    HandshakeError naming the header and what is wrong otherwise."""
    if headers.get("Transfer-Encoding") or (headers.get("Content-Length") or "0").strip() != "0":
        raise HandshakeError("the request must have no body")
    if "websocket" not in _tokens(headers, "Upgrade"):
        raise HandshakeError("Upgrade: must be websocket")
    if "upgrade" not in _tokens(headers, "Connection"):
        raise HandshakeError("Connection: must include Upgrade")
    versions = headers.get_all("Sec-WebSocket-Version") or []
    if [v.strip() for v in versions] != [VERSION]:
        raise HandshakeError("Sec-WebSocket-Version: only %s is supported" % VERSION, 426,
                             {"Sec-WebSocket-Version": VERSION})
    keys = headers.get_all("Sec-WebSocket-Key") or []
    if len(keys) != 1:
        raise HandshakeError("Sec-WebSocket-Key: exactly one is required")
    key = keys[0].strip()
    try:
        nonce = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        nonce = b""
    if len(nonce) != 16:
        raise HandshakeError("Sec-WebSocket-Key: must be 16 bytes in base64")
    return accept_key(key)


def upgrade(req: httputils.Request, accept: str, *, binary: bool = True,
            deliver: bool = True) -> WebSocket:
    """Answer the handshake (101 with ``accept``) and take the connection over, as
    ``Request.hijack`` does for docker's raw streams; the handler then returns None."""
    handler = req._connection
    head = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
            "Sec-WebSocket-Accept: " + accept]
    handler.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode())
    handler.wfile.flush()
    handler.connection.settimeout(None)
    handler.close_connection = True
    handler._started = True             # nothing HTTP is written on this connection any more
    req.hijacked = httputils.Hijacked(handler.connection, handler.rfile)
    return WebSocket(req.hijacked, binary=binary, deliver=deliver)


def unmask(data: bytes, mask: bytes, offset: int = 0) -> bytes:
    """``data`` XORed with the 4-byte ``mask``, starting ``offset`` bytes into the payload."""
    if not data:
        return b""
    turn = offset % 4
    key = mask[turn:] + mask[:turn]
    n = len(data)
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def frame(opcode: int, payload: bytes = b"", fin: bool = True,
          mask: bytes | None = None) -> bytes:
    """One frame: the server's (unmasked), or a client's with ``mask``."""
    first = (0x80 if fin else 0) | opcode
    bit = 0x80 if mask is not None else 0
    n = len(payload)
    if n < 126:
        head = struct.pack(">BB", first, bit | n)
    elif n < 1 << 16:
        head = struct.pack(">BBH", first, bit | 126, n)
    else:
        head = struct.pack(">BBQ", first, bit | 127, n)
    if mask is None:
        return head + payload
    return head + mask + unmask(payload, mask)


class _Failed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class WebSocket:
    """The server's end of one websocket over a hijacked connection, with the interface of
    ``httputils.Hijacked`` (recv, sendall, close_write, sock) so an attach session drives it.

    ``deliver``: whether recv returns the client's payloads (False: they are read and
    dropped, recv returns only at the connection's end). ``binary``: the frame type sent."""

    def __init__(self, conn: httputils.Hijacked, *, binary: bool = True,
                 deliver: bool = True, max_frame: int = MAX_FRAME) -> None:
        self.conn = conn
        self.sock = conn.sock
        self.binary = binary
        self.deliver = deliver
        self.max_frame = max_frame
        self.close_code: int | None = None      # the client's, once it sent a close
        self._buf = bytearray()
        self._send_lock = threading.Lock()
        self._close_sent = False
        self._ended = False
        self._message: int | None = None        # opcode of the message being received
        self._text: Any = None                  # its UTF-8 decoder, for a text message
        self._left = 0                          # payload bytes of the current frame to read
        self._fin = True
        self._mask = b""
        self._offset = 0

    # --- sending ---
    def sendall(self, data: bytes) -> None:
        """``data`` as one data frame; OSError once the connection is closing."""
        self._send(BINARY if self.binary else TEXT, bytes(data))

    def _send(self, opcode: int, payload: bytes) -> None:
        with self._send_lock:
            if self._close_sent:
                raise BrokenPipeError("websocket closed")
            if opcode == CLOSE:
                self._close_sent = True
            self.conn.sendall(frame(opcode, payload))

    def close_write(self, code: int = NORMAL, reason: str = "") -> None:
        """Send the server's close frame (once; nothing more is sent after it)."""
        payload = struct.pack(">H", code) + reason.encode()[:123]
        try:
            self._send(CLOSE, payload)
        except OSError:
            pass

    def _end(self) -> None:
        """The connection is over: stop reading and writing it."""
        self._ended = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # --- receiving ---
    def recv(self, n: int = 65536) -> bytes:
        """Up to ``n`` bytes of the client's data (never empty), or b"" once the connection
        has ended: the client closed it (its close answered), broke the protocol (closed
        with the code saying why), or went away."""
        try:
            while not self._ended:
                if self._left:
                    data = self._payload(min(n, self._left))
                    if data and self.deliver:
                        return data
                    continue
                self._next_frame()
        except _Failed as e:
            log.info("websocket: closing the connection: %s", e.reason)
            self.close_write(e.code, e.reason)
            self._end()
        except (EOFError, OSError):     # gone, or the answer to its ping cannot be sent
            self._end()
        return b""

    def _read(self, n: int) -> bytes:
        """Exactly ``n`` bytes; EOFError when the client went away first."""
        while len(self._buf) < n:
            chunk = self.conn.recv(max(65536, n - len(self._buf)))
            if not chunk:
                raise EOFError()
            self._buf += chunk
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def _payload(self, n: int) -> bytes:
        """Up to ``n`` bytes of the current data frame's payload, unmasked and checked."""
        if not self._buf:
            chunk = self.conn.recv(65536)
            if not chunk:
                raise EOFError()
            self._buf += chunk
        raw = bytes(self._buf[:n])
        del self._buf[:len(raw)]
        data = unmask(raw, self._mask, self._offset)
        self._offset += len(raw)
        self._left -= len(raw)
        if self._text is not None:
            data = self._check_text(data, final=False)
        if not self._left and self._fin:
            self._message_done()
        return data

    def _check_text(self, data: bytes, final: bool) -> bytes:
        """The bytes of a text message known to be UTF-8 so far: a character cut at the end
        of ``data`` is held back until its end comes (so nothing of an invalid message is
        passed on)."""
        held = self._text.getstate()[0]
        try:
            self._text.decode(data, final)
        except UnicodeDecodeError:
            raise _Failed(INVALID_DATA, "text message is not UTF-8") from None
        data = held + data
        return data[:len(data) - len(self._text.getstate()[0])]

    def _message_done(self) -> None:
        if self._text is not None:
            self._check_text(b"", final=True)
        self._message = None
        self._text = None

    def _next_frame(self) -> None:
        b0, b1 = self._read(2)
        fin, opcode, masked, length = bool(b0 & 0x80), b0 & 0x0F, bool(b1 & 0x80), b1 & 0x7F
        if b0 & 0x70:
            raise _Failed(PROTOCOL_ERROR, "reserved bits set without an extension")
        if length == 126:
            length = struct.unpack(">H", self._read(2))[0]
        elif length == 127:
            length = struct.unpack(">Q", self._read(8))[0]
            if length >> 63:
                raise _Failed(PROTOCOL_ERROR, "frame length has its most significant bit set")
        if not masked:
            raise _Failed(PROTOCOL_ERROR, "client frame is not masked")
        mask = self._read(4)
        if opcode >= CLOSE:
            if not fin or length > 125:
                raise _Failed(PROTOCOL_ERROR, "control frame fragmented or over 125 bytes")
            self._control(opcode, unmask(self._read(length), mask))
            return
        if opcode == CONTINUATION:
            if self._message is None:
                raise _Failed(PROTOCOL_ERROR, "continuation frame without a message")
        elif opcode in (TEXT, BINARY):
            if self._message is not None:
                raise _Failed(PROTOCOL_ERROR, "new message before the last one ended")
            self._message = opcode
            self._text = codecs.getincrementaldecoder("utf-8")() if opcode == TEXT else None
        else:
            raise _Failed(PROTOCOL_ERROR, "reserved opcode 0x%x" % opcode)
        if length > self.max_frame:
            raise _Failed(TOO_BIG, "frame of %d bytes is over %d" % (length, self.max_frame))
        self._left, self._fin, self._mask, self._offset = length, fin, mask, 0
        if not length and fin:
            self._message_done()

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == PING:
            self._send(PONG, payload)
        elif opcode == CLOSE:
            if len(payload) == 1:
                raise _Failed(PROTOCOL_ERROR, "close frame with a 1-byte payload")
            if payload:
                code = struct.unpack(">H", payload[:2])[0]
                if code not in _SENDABLE and not 3000 <= code <= 4999:
                    raise _Failed(PROTOCOL_ERROR, "close code %d is not one to send" % code)
                try:
                    payload[2:].decode("utf-8")
                except UnicodeDecodeError:
                    raise _Failed(INVALID_DATA, "close reason is not UTF-8") from None
                self.close_code = code
            try:
                self._send(CLOSE, payload[:2])
            except OSError:
                pass                    # the server had sent its own close: none owed
            self._end()
        elif opcode != PONG:
            raise _Failed(PROTOCOL_ERROR, "reserved control opcode 0x%x" % opcode)
