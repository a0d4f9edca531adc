"""Streams: docker's JSON progress display (pull, push, load), stdcopy demultiplexing, and the
hijacked connection of attach/exec."""
from __future__ import annotations

import os
import socket
import struct

from .flags import CommandError
from .units import human_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, BinaryIO, TextIO

    from .client import Client


def _progress_text(detail: dict[str, Any], width: int) -> str:
    current = int(detail.get("current") or 0)
    total = int(detail.get("total") or 0)
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return "%8s" % human_size(current, 4)
    pct = min(int(current / total * 100) // 2, 50)
    bar = ""
    if width > 110:
        bar = "[%s>%s] " % ("=" * pct, " " * max(50 - pct, 0))
    numbers = "%8s/%s" % (human_size(current, 4), human_size(total, 4))
    if current > total:
        numbers = ""
    return bar + numbers


def display_json_messages(messages: Iterable[dict[str, Any]], out: TextIO, tty: bool,
                          aux: list[dict[str, Any]] | None = None) -> None:
    """docker's jsonmessage display: plain "ID: Status" lines, without the byte counters, when
    ``out`` is not a terminal; on a terminal one line per layer, redrawn in place. An
    ``error`` message ends the display with CommandError(its text)."""
    ids: dict[str, int] = {}
    width = 80
    if tty:
        try:
            width = os.get_terminal_size(out.fileno()).columns
        except (OSError, ValueError):
            pass
    for jm in messages:
        if jm.get("error") or jm.get("errorDetail"):
            msg = jm.get("error") or (jm.get("errorDetail") or {}).get("message", "")
            out.flush()
            raise CommandError(str(msg))
        if "aux" in jm:
            if aux is not None:
                aux.append(jm["aux"])
            continue
        jid = jm.get("id") or ""
        has_progress = "progressDetail" in jm
        if not tty and has_progress and (jm.get("progressDetail") or {}).get("total"):
            continue
        diff = 0
        if jid and (has_progress or jm.get("progress")):
            if jid not in ids:
                ids[jid] = len(ids)
                if tty:
                    out.write("\n")
            diff = len(ids) - ids[jid]
            if tty:
                out.write("\x1b[%dA" % diff)
        else:
            ids = {}
        endl = ""
        if tty and "stream" not in jm and has_progress:
            out.write("\x1b[2K\r")
            endl = "\r"
        if jid:
            out.write(jid + ": ")
        status = jm.get("status", "")
        if has_progress and tty:
            out.write("%s %s%s" % (status, _progress_text(jm.get("progressDetail") or {}, width),
                                   endl))
        elif jm.get("stream"):
            out.write(jm["stream"] + endl)
        else:
            out.write(status + endl + "\n")
        if tty and diff:
            out.write("\x1b[%dB" % diff)
        out.flush()


def demux(r: Any, stdout: BinaryIO, stderr: BinaryIO) -> None:
    """Copy a multiplexed stream (8-byte headers: stream, 0, 0, 0, big-endian size) to the
    two outputs."""
    while True:
        head = _read_exact(r, 8)
        if len(head) < 8:
            return
        kind, size = head[0], struct.unpack(">I", head[4:8])[0]
        data = _read_exact(r, size)
        target = stderr if kind == 2 else stdout
        target.write(data)
        target.flush()
        if len(data) < size:
            return


def _read_exact(r: Any, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = r.read(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


class Hijacked:
    """A connection upgraded to a raw stream (attach, exec start): ``sock`` and any bytes
    that came with the response headers in ``buffered``."""

    def __init__(self, sock: socket.socket, buffered: bytes) -> None:
        self.sock = sock
        self.buffered = buffered

    def read(self, n: int = 65536) -> bytes:
        if self.buffered:
            data, self.buffered = self.buffered[:n], self.buffered[n:]
            return data
        try:
            return self.sock.recv(n)
        except OSError:
            return b""

    def close_write(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()


def hijack(api: Client, path: str, query: dict[str, Any] | None = None,
           body: dict[str, Any] | None = None) -> Hijacked:
    """POST with ``Upgrade: tcp`` and take the socket over (docker's attach protocol)."""
    import json
    from .client import DaemonError, error_message
    api.negotiate()
    conn = api.connection()
    conn.connect()
    sock = conn.sock
    payload = json.dumps(body).encode() if body is not None else b""
    target = "/v" + str(api.version) + api.url(path, query)
    head = ("POST %s HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (target, len(payload))).encode()
    sock.sendall(head + payload)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    header, _, rest = data.partition(b"\r\n\r\n")
    status_line = header.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = status_line.split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    if status >= 400:
        headers = header.decode(errors="replace").lower()
        if "content-length:" in headers:
            length = int(headers.split("content-length:", 1)[1].split("\r\n", 1)[0])
            while len(rest) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
        sock.close()
        raise DaemonError(status, error_message(rest))
    return Hijacked(sock, rest)
