"""A minimal D-Bus client: enough of the wire protocol to call systemd's manager as root.

It speaks to systemd's private socket (``/run/systemd/private``, peer-to-peer, no bus daemon
needed) with EXTERNAL authentication, little-endian messages, and the basic, string, array,
struct, dict-entry and variant types. Values are Python values; a variant is written as a
``(signature, value)`` pair and read as its value.
"""
from __future__ import annotations

import os
import socket
import struct

from pyrunc.errors import SystemFailure, Unavailable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PRIVATE_SOCKET = "/run/systemd/private"
TIMEOUT = 15.0                  # seconds for any reply
METHOD_CALL, METHOD_RETURN, ERROR, SIGNAL = 1, 2, 3, 4
_FIXED = {"y": ("B", 1), "b": ("I", 4), "n": ("h", 2), "q": ("H", 2), "i": ("i", 4),
          "u": ("I", 4), "x": ("q", 8), "t": ("Q", 8), "d": ("d", 8), "h": ("I", 4)}
_ALIGN = dict({k: v[1] for k, v in _FIXED.items()}, s=4, o=4, g=1, a=4, v=1, **{"(": 8, "{": 8})


class DBusError(Exception):
    def __init__(self, name: str, message: str) -> None:
        super().__init__("%s: %s" % (name, message))
        self.name = name
        self.message = message


def split_signature(sig: str) -> list[str]:
    """"sa(sv)a{sv}" -> ["s", "a(sv)", "a{sv}"]"""
    types, i = [], 0
    while i < len(sig):
        j = _end_of_type(sig, i)
        types.append(sig[i:j])
        i = j
    return types


def _end_of_type(sig, i):
    c = sig[i]
    if c == "a":
        return _end_of_type(sig, i + 1)
    if c in "({":
        close = ")" if c == "(" else "}"
        depth, j = 0, i
        while True:
            if sig[j] == c:
                depth += 1
            elif sig[j] == close:
                depth -= 1
                if depth == 0:
                    return j + 1
            j += 1
    return i + 1


class Writer:
    def __init__(self) -> None:
        self.buf = bytearray()

    def align(self, n: int) -> None:
        self.buf.extend(b"\0" * (-len(self.buf) % n))

    def write(self, sig: str, value: Any) -> None:
        c = sig[0]
        if c in _FIXED:
            fmt, size = _FIXED[c]
            self.align(size)
            self.buf.extend(struct.pack("<" + fmt, int(value) if c == "b" else value))
        elif c in "so":
            data = value.encode()
            self.align(4)
            self.buf.extend(struct.pack("<I", len(data)) + data + b"\0")
        elif c == "g":
            data = value.encode()
            self.buf.extend(struct.pack("<B", len(data)) + data + b"\0")
        elif c == "v":
            inner, v = value
            self.write("g", inner)
            self.write(inner, v)
        elif c == "a":
            element = sig[1:]
            self.align(4)
            at = len(self.buf)
            self.buf.extend(b"\0\0\0\0")
            self.align(_ALIGN[element[0]])
            start = len(self.buf)
            items = value.items() if isinstance(value, dict) else value
            for item in items:
                self.write(element, item)
            struct.pack_into("<I", self.buf, at, len(self.buf) - start)
        elif c in "({":
            self.align(8)
            for t, v in zip(split_signature(sig[1:-1]), value):
                self.write(t, v)
        else:
            raise ValueError("D-Bus type %r is not supported" % c)


class Reader:
    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data = data
        self.pos = offset

    def align(self, n: int) -> None:
        self.pos += -self.pos % n

    def read(self, sig: str) -> Any:
        c = sig[0]
        if c in _FIXED:
            fmt, size = _FIXED[c]
            self.align(size)
            (value,) = struct.unpack_from("<" + fmt, self.data, self.pos)
            self.pos += size
            return bool(value) if c == "b" else value
        if c in "so":
            n = self.read("u")
            value = self.data[self.pos:self.pos + n].decode()
            self.pos += n + 1
            return value
        if c == "g":
            n = self.data[self.pos]
            value = self.data[self.pos + 1:self.pos + 1 + n].decode()
            self.pos += n + 2
            return value
        if c == "v":
            return self.read(self.read("g"))
        if c == "a":
            n = self.read("u")
            element = sig[1:]
            self.align(_ALIGN[element[0]])
            end = self.pos + n
            items = []
            while self.pos < end:
                items.append(self.read(element))
            return dict(items) if element[0] == "{" else items
        if c in "({":
            self.align(8)
            return tuple(self.read(t) for t in split_signature(sig[1:-1]))
        raise ValueError("D-Bus type %r is not supported" % c)


def encode_message(serial: int, path: str, interface: str, member: str, destination: str,
                   signature: str, args: Any) -> bytes:
    body = Writer()
    for t, v in zip(split_signature(signature), args):
        body.write(t, v)
    fields = [(1, ("o", path)), (2, ("s", interface)), (3, ("s", member))]
    if destination:
        fields.append((6, ("s", destination)))
    if signature:
        fields.append((8, ("g", signature)))
    head = Writer()
    for t, v in (("y", ord("l")), ("y", METHOD_CALL), ("y", 0), ("y", 1),
                 ("u", len(body.buf)), ("u", serial), ("a(yv)", fields)):
        head.write(t, v)
    head.align(8)
    return bytes(head.buf + body.buf)


class Connection:
    def __init__(self, path: str = PRIVATE_SOCKET) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.sock.settimeout(TIMEOUT)
        try:
            self.sock.connect(path)
        except OSError as e:
            self.sock.close()
            raise Unavailable("systemd cgroup driver: cannot connect to %s: %s"
                              % (path, os.strerror(e.errno).lower())) from None  # type: ignore[arg-type]
        self._buf = b""
        self._serial = 0
        self._auth()

    def _auth(self):
        uid = str(os.geteuid()).encode().hex().encode()
        self.sock.sendall(b"\0AUTH EXTERNAL " + uid + b"\r\n")
        line = self._line()
        if not line.startswith(b"OK "):
            raise SystemFailure("authenticate to systemd over D-Bus", 0, line.decode(errors="replace"))
        self.sock.sendall(b"BEGIN\r\n")

    def _line(self):
        while b"\r\n" not in self._buf:
            self._recv()
        line, self._buf = self._buf.split(b"\r\n", 1)
        return line

    def _recv(self):
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise SystemFailure("talk to systemd over D-Bus", 0,
                                "no reply in %gs" % TIMEOUT) from None
        if not chunk:
            raise SystemFailure("talk to systemd over D-Bus", 0, "the connection was closed")
        self._buf += chunk

    def _message(self):
        while len(self._buf) < 16:
            self._recv()
        if self._buf[0:1] != b"l":
            raise SystemFailure("talk to systemd over D-Bus", 0, "big-endian reply")
        body_len, _, fields_len = struct.unpack_from("<III", self._buf, 4)
        header_len = 16 + fields_len + (-(16 + fields_len) % 8)
        while len(self._buf) < header_len + body_len:
            self._recv()
        data, self._buf = self._buf[:header_len + body_len], self._buf[header_len + body_len:]
        fields = dict(Reader(data, 12).read("a(yv)"))
        body = []
        if 8 in fields:
            r = Reader(data[header_len:])
            body = [r.read(t) for t in split_signature(fields[8])]
        return data[1], fields, body

    def call(self, path: str, interface: str, member: str, signature: str = "", *args: Any,
             destination: str = "org.freedesktop.systemd1") -> Any:
        self._serial += 1
        serial = self._serial
        self.sock.sendall(encode_message(serial, path, interface, member, destination,
                                         signature, args))
        while True:
            kind, fields, body = self._message()
            if kind in (METHOD_RETURN, ERROR) and fields.get(5) == serial:
                if kind == ERROR:
                    raise DBusError(fields.get(4, "error"), body[0] if body else "")
                return body

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
