"""Interactive sessions (``run -it``, ``attach``, ``exec -it``): the local terminal in raw
mode, its size sent on start and on every SIGWINCH, the detach keys (ctrl-p,ctrl-q by default)
recognised locally, the terminal restored on the way out."""
from __future__ import annotations

import os
import select
import signal
import sys
import termios
import tty as _tty

from .streams import hijack

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .client import Client
    from .streams import Hijacked

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


def parse_keys(text: str) -> bytes:
    """"ctrl-p,ctrl-q" -> b"\\x10\\x11"; single characters stand for themselves."""
    out = bytearray()
    for part in (text or DEFAULT_DETACH_KEYS).split(","):
        part = part.strip()
        if part.startswith("ctrl-") and len(part) == 6:
            c = part[5].lower()
            if "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
                continue
            codes = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}
            if c in codes:
                out.append(codes[c])
                continue
        if len(part) == 1:
            out.append(ord(part))
            continue
        from .flags import CommandError
        raise CommandError("Invalid detach keys (%s) provided" % text, 125)
    return bytes(out)


def _size() -> tuple[int, int]:
    try:
        s = os.get_terminal_size(sys.stdout.fileno())
        return s.lines, s.columns
    except OSError:
        return 24, 80


def interactive(api: Client, cid: str, detach_keys: str,
                start: Callable[[], None] | None = None) -> bool:
    """Attach the terminal to container ``cid`` (then call ``start``, as run does: attached
    before the process starts); True when the user detached."""
    keys = parse_keys(detach_keys)
    stream = hijack(api, "/containers/%s/attach" % cid,
                    {"stream": 1, "stdin": 1, "stdout": 1, "stderr": 1,
                     "detachKeys": detach_keys or None})
    if start is not None:
        try:
            start()
        except BaseException:
            stream.close()
            raise
    return _session(api, stream, "/containers/%s/resize" % cid, keys)


def interactive_exec(api: Client, eid: str, detach_keys: str) -> bool:
    keys = parse_keys(detach_keys)
    stream = hijack(api, "/exec/%s/start" % eid, None, {"Detach": False, "Tty": True})
    return _session(api, stream, "/exec/%s/resize" % eid, keys)


def _session(api: Client, stream: Hijacked, resize_path: str, keys: bytes) -> bool:
    from .client import DaemonError

    def resize(*_: object) -> None:
        h, w = _size()
        try:
            api.call("POST", resize_path, {"h": h, "w": w})
        except (DaemonError, OSError):
            pass

    fd_in, fd_out = sys.stdin.fileno(), sys.stdout.fileno()
    saved = termios.tcgetattr(fd_in)
    old_handler = signal.signal(signal.SIGWINCH, resize)
    detached = False
    held = b""
    try:
        _tty.setraw(fd_in, termios.TCSANOW)      # keep what was typed ahead
        resize()
        if stream.buffered:
            os.write(fd_out, stream.read())
        sock = stream.sock
        stdin_open = True
        while True:
            watch = [sock] + ([fd_in] if stdin_open else [])
            try:
                ready, _, _ = select.select(watch, [], [])
            except InterruptedError:
                continue
            if sock in ready:
                data = stream.read()
                if not data:
                    break
                os.write(fd_out, data)
            if fd_in in ready:
                data = os.read(fd_in, 4096)
                if not data:
                    stdin_open = False
                    stream.close_write()
                    continue
                out = bytearray()
                for b in data:
                    candidate = held + bytes([b])
                    if keys and keys.startswith(candidate):
                        held = candidate
                        if held == keys:
                            detached = True
                            break
                    else:
                        out += candidate
                        held = b""
                if out:
                    sock.sendall(bytes(out))
                if detached:
                    break
    finally:
        termios.tcsetattr(fd_in, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, old_handler)
        stream.close()
    if detached:
        sys.stderr.write("\nread escape sequence\n")
    return detached
