"""Streams: docker's JSON progress display (pull, push, load), stdcopy demultiplexing, and the
hijacked connection of attach/exec."""
from __future__ import annotations

import _socket
import os
import struct

from .flags import CommandError, DaemonError
from .units import human_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, BinaryIO, TextIO

    from .client import Client


def _progress_text(detail: dict[str, Any], width: int) -> str:
    """docker's progress column: the bar (on terminals wider than 110), the counts (bytes,
    or the message's ``units``; none with ``hidecounts``), and the time left when the daemon
    says when the transfer started and it is less than half done."""
    current = int(detail.get("current") or 0)
    total = int(detail.get("total") or 0)
    units = str(detail.get("units") or "")
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return "%d %s" % (current, units) if units else "%8s" % human_size(current, 4)
    pct = min(int(current / total * 100) // 2, 50)
    bar = ""
    if width > 110:
        bar = "[%s>%s] " % ("=" * pct, " " * max(50 - pct, 0))
    numbers = ""
    if detail.get("hidecounts"):
        pass
    elif units:
        numbers = ("%d %s" % (current, units) if current > total
                   else "%d/%d %s" % (current, total, units))
    else:
        numbers = ("%8s" % human_size(current, 4) if current > total
                   else "%8s/%s" % (human_size(current, 4), human_size(total, 4)))
    left = ""
    start = int(detail.get("start") or 0)
    if current > 0 and start > 0 and pct < 50:
        import time
        seconds = round((total - current) * (time.time() - start) / current)
        left = " " + _go_duration(max(seconds, 0))
    return bar + numbers + left


def _go_duration(seconds: int) -> str:
    """Go's Duration.String() of whole seconds: "0s", "42s", "3m5s", "2h0m1s"."""
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return "%dh%dm%ds" % (h, m, s)
    if m:
        return "%dm%ds" % (m, s)
    return "%ds" % s


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

    def __init__(self, sock: Any, buffered: bytes) -> None:
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
            if hasattr(self.sock, "close_write"):    # TLS: a close_notify, reading goes on
                self.sock.close_write()
            else:
                self.sock.shutdown(_socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()


def hijack(api: Client, path: str, query: dict[str, Any] | None = None,
           body: dict[str, Any] | None = None) -> Hijacked:
    """POST with ``Upgrade: tcp`` and take the socket over (docker's attach protocol)."""
    import gc

    from .client import error_message
    from .jsonio import dumps
    gc.enable()                       # the command stays attached
    r = api.request("POST", path, query, dumps(body).encode() if body is not None else b"",
                    {"Content-Type": "application/json"}, upgrade=True)
    if r.status >= 400:
        message = error_message(r.read())
        r.close()
        raise DaemonError(r.status, message)
    return Hijacked(r.sock, r.buffered)
