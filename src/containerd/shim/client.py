"""Starting a shim and talking to it over its unix socket.

The wire protocol is described in docs/containerd.md, "The shim protocol". The socket is
reached through ``/proc/self/fd/N/shim.sock`` (N an O_PATH descriptor of the state directory), so
state directories deeper than a sockaddr_un path allows still work.
"""
from __future__ import annotations

import json
import os
import re
import socket
import struct
import subprocess

from pyrunc import errors

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from pyrunc.containerd.shim.warm import CreateServer

SHIM_NAME = "pyrunc-shim"
SOCKET = "shim.sock"
# The longest attach frame payload (the protocol's 1 MiB; the shim's ATTACH_FRAME_MAX): the
# shim drops a client that announces more.
ATTACH_FRAME_MAX = 1 << 20

_CATEGORIES = {cls.__name__: cls for cls in (errors.InvalidArgument, errors.NotFound,
                                             errors.AlreadyExists, errors.Conflict,
                                             errors.FailedPrecondition, errors.Unavailable)}


class ShimGone(Exception):
    """The shim is not answering: it exited or was killed."""


def shim_binary() -> str:
    """Path of the compiled shim shipped in the package."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(here, "_libexec", SHIM_NAME)
    if not os.access(path, os.X_OK):
        raise errors.Unavailable("%s: not built (run setup.py build_ext)" % path)
    return path


_RUNC_MSG = re.compile(r'level=(?:error|fatal) msg="((?:[^"\\]|\\.)*)"')


def runtime_message(text: str) -> str:
    """The one-line reason out of a runtime's stderr (runc's logrus lines or plain text)."""
    found = _RUNC_MSG.findall(text)
    if found:
        return json.loads('"%s"' % found[-1])
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else text.strip()


def error_from_reply(text: str) -> Any:
    """Turn ``CATEGORY MESSAGE`` into the matching pyrunc error."""
    category, _, message = text.partition(" ")
    cls = _CATEGORIES.get(category, errors.PyruncError)
    prefix, sep, detail = message.partition(": ")
    if sep and "runtime" in prefix:
        message = "%s: %s" % (prefix, runtime_message(detail))
    return cls(message)


def start_shim(*, container_id: str, state_dir: Any, bundle: str, runtime: Any,
               runtime_root: Any = None, log: Any = None, log_max_size: int = 0,
               log_max_file: int = 1, terminal: bool = False, stdin: bool = False,
               events: Any = None, server: CreateServer | None = None) -> int:
    """Start a detached shim that creates the container; returns the init's pid.

    ``server``: the create server of the warm path (``pyrunc.containerd.shim.warm``), for the
    pyrunc runtime only; when it is gone, the cold path is taken.
    Raises the runtime's create error (with the container left deleted) on failure.
    """
    argv = [shim_binary(), "--id", container_id, "--state-dir", state_dir, "--bundle", bundle,
            "--runtime", runtime]
    if runtime_root:
        argv += ["--runtime-root", runtime_root]
    if log:
        argv += ["--log", log, "--log-max-size", str(int(log_max_size or 0)),
                 "--log-max-file", str(int(log_max_file or 1))]
    if terminal:
        argv.append("--terminal")
    if stdin:
        argv.append("--stdin")
    if events:
        argv += ["--events", events]
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        if server is None or not server.request(argv[1:], w):
            argv += ["--ready-fd", str(w)]
            proc = subprocess.Popen(argv, pass_fds=(w,), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            os.close(w)
            w = -1
            _, err = proc.communicate()
            if proc.returncode:
                raise errors.InvalidArgument("%s: %s" % (SHIM_NAME, err.decode(errors="replace")
                                                         .strip()))
        else:
            os.close(w)
            w = -1
        chunks = []
        while True:
            chunk = os.read(r, 4096)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    line = b"".join(chunks).decode(errors="replace").strip()
    if line.startswith("ok "):
        return int(line[3:])
    if line.startswith("err "):
        raise error_from_reply(line[4:])
    raise errors.PyruncError("%s for %s exited before creating the container"
                             % (SHIM_NAME, container_id))


class ShimClient:
    """Requests to the shim of one container."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir

    def connect(self, timeout: float = 30.0) -> Any:
        try:
            dfd = os.open(self.state_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ShimGone(self.state_dir) from None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect("/proc/self/fd/%d/%s" % (dfd, SOCKET))
        except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError) as e:
            sock.close()
            raise ShimGone(str(e)) from None
        except BaseException:
            sock.close()
            raise
        finally:
            os.close(dfd)
        return sock

    def call(self, *words: Any, timeout: float = 30.0) -> str:
        """Send one request; return the reply payload (str) or raise its error."""
        sock = self.connect(timeout)
        try:
            sock.sendall((" ".join(str(w) for w in words) + "\n").encode())
            line = _read_line(sock)[0]
        except (ConnectionResetError, BrokenPipeError) as e:
            raise ShimGone(str(e)) from None
        finally:
            sock.close()
        return _parse_reply(line)

    def call_json(self, *words: Any, timeout: float = 30.0) -> Any:
        return json.loads(self.call(*words, timeout=timeout))

    def attach(self, *words: Any) -> tuple[Any, ...]:
        """Send a request that turns the connection into an ``Attachment`` (``attach [EXEC]``,
        or ``exec ... attach``); returns ``(reply payload, Attachment)``."""
        sock = self.connect()
        try:
            sock.sendall((" ".join(str(w) for w in words) + "\n").encode())
            line, rest = _read_line(sock)
            payload = _parse_reply(line)
        except (ConnectionResetError, BrokenPipeError) as e:
            sock.close()
            raise ShimGone(str(e)) from None
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)
        return payload, Attachment(sock, rest)


def _read_line(sock: Any) -> tuple[str, bytes]:
    """One reply line (without its newline) and the bytes read past it: the frames the shim
    sends right after ``ok`` to an attach may come in the same read."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise ShimGone("connection closed before a reply")
        start = len(data)
        data += chunk
        end = data.find(b"\n", start)
        if end >= 0:
            return data[:end].decode(errors="replace"), data[end + 1:]


def _parse_reply(line):
    if line == "ok":
        return ""
    if line.startswith("ok "):
        return line[3:]
    if line.startswith("err "):
        raise error_from_reply(line[4:])
    raise errors.PyruncError("%s: malformed reply %r" % (SHIM_NAME, line[:80]))


STDIN, STDOUT, STDERR, EXIT = 0, 1, 2, 3


class Attachment:
    """A live connection to a container's stdio.

    ``read()`` returns ``(stream, bytes)`` frames (STDOUT, STDERR, then EXIT with the status as
    text) and ``(None, b"")`` once the shim closes the stream. The header is Docker's attach
    multiplexing header.
    """

    def __init__(self, sock: Any, buffered: bytes = b"") -> None:
        """``buffered``: stream bytes already read from ``sock`` (after the attach reply)."""
        self.sock = sock
        self._buf = buffered

    def _recv_exactly(self, n):
        while len(self._buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self._buf += chunk
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def read(self, timeout: float | None = None) -> tuple[Any, ...]:
        self.sock.settimeout(timeout)
        header = self._recv_exactly(8)
        if header is None:
            return None, b""
        stream, size = header[0], struct.unpack(">I", header[4:])[0]
        payload = self._recv_exactly(size)
        if payload is None:
            return None, b""
        return stream, payload

    def write(self, data: bytes) -> None:
        """Send ``data`` to stdin, in frames of at most ATTACH_FRAME_MAX bytes."""
        view = memoryview(data)
        for start in range(0, len(view), ATTACH_FRAME_MAX):
            piece = view[start:start + ATTACH_FRAME_MAX]
            self.sock.sendall(struct.pack(">BxxxI", STDIN, len(piece)))
            self.sock.sendall(piece)

    def close_stdin(self) -> None:
        """Close the process's stdin; nothing to do once the shim ended the attachment (the
        process exited: what it wrote can still be read)."""
        try:
            self.sock.sendall(struct.pack(">BxxxI", STDIN, 0))
        except (BrokenPipeError, ConnectionResetError):
            pass

    def read_all(self, timeout: float | None = None) -> tuple[Any, ...]:
        """Collect everything until the exit frame: ({stream: bytes}, exit status or None)."""
        # joined at the end: adding each frame to the bytes so far is quadratic, and a reader
        # that slow gets dropped by the shim (more than 1 MiB of its output queued)
        parts: dict[int, list[bytes]] = {STDOUT: [], STDERR: []}
        while True:
            stream, data = self.read(timeout)
            if stream is None or stream == EXIT:
                out = {s: b"".join(p) for s, p in parts.items()}
                return out, None if stream is None else int(data)
            parts.setdefault(stream, []).append(data)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
