"""The task event log: json lines appended by shims and managers, read by anyone.

Every event is one ``write`` with O_APPEND, so concurrent writers (one shim per container, any
number of managers) never interleave. An event is ``{"time", "id", "type", ...}`` with type one of
create, start, pause, resume, exec-start, exec-exit, oom, exit, delete. Readers resume from an
offset, so a restarted process continues where it stopped.

The log is bounded: a writer holds ``PATH.lock`` shared while it opens and appends; the one that
finds the file past ``MAX_BYTES`` takes the lock exclusively and, if no other writer did it
meanwhile, renames it to ``PATH.1`` and starts a new ``PATH`` with the line
``{"type":"continued","base":N}``: N is the log's offset where the new file continues (the old
file's base plus its size). Offsets are positions in the whole log, every file ever written one
after the other, so they keep growing across rotations; the two files hold between MAX_BYTES
and twice that of the latest events (thousands of events). A reader that fell behind more than
a file resumes at the oldest event kept. The shim (native/shim/events.c) follows the same rule.
"""
from __future__ import annotations

import fcntl
import json
import os
import time

from pyrunc.libcontainer import timestamps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Iterator

MAX_BYTES = 1 << 20
CONTINUED = "continued"
_HEADER_MAX = 64
_BLOCK = 64 * 1024


class EventLog:
    def __init__(self, path: str, max_bytes: int = MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes

    def _lock(self) -> int:
        return os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                       0o600)

    def append(self, container_id: str, kind: Any, **fields: Any) -> None:
        record = {"time": timestamps.now(), "id": container_id, "type": kind}
        record.update(fields)
        data = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        lock = self._lock()
        try:
            fcntl.flock(lock, fcntl.LOCK_SH)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
                         | os.O_NOFOLLOW, 0o644)
            try:
                os.write(fd, data)
                full = os.fstat(fd).st_size > self.max_bytes
            finally:
                os.close(fd)
            if full:
                fcntl.flock(lock, fcntl.LOCK_EX)
                self._rotate()
        finally:
            os.close(lock)

    def _rotate(self) -> None:
        """Start a new file if the current one is still past the limit (hold the lock
        exclusively)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            return
        try:
            size = os.fstat(fd).st_size
            if size <= self.max_bytes:
                return          # another writer rotated it
            base = _base(fd) + size
        finally:
            os.close(fd)
        os.rename(self.path, self.path + ".1")
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
                     | os.O_NOFOLLOW, 0o644)
        try:
            os.write(fd, b'{"type":"%s","base":%d}\n' % (CONTINUED.encode(), base))
        finally:
            os.close(fd)

    def end(self) -> int:
        """The log's offset after its last complete line: where a reader of only new events
        starts."""
        return self._read_from(None)[0]

    def read(self, since: int = 0, follow: bool = False, timeout: float | None = None,
             poll_interval: float = 0.05) -> Iterator[Any]:
        """Yield ``(offset_after, event)`` from offset ``since`` (0: the oldest event kept).

        With ``follow`` keep waiting for new events until ``timeout`` seconds pass without one.
        Lines that are not events (a writer killed part way) are passed over.
        """
        offset = since
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            offset, found = self._read_from(offset)
            yield from found
            if found and timeout is not None:
                deadline = time.monotonic() + timeout
            if not follow or (deadline is not None and time.monotonic() >= deadline):
                return
            time.sleep(poll_interval)

    def _read_from(self, offset: int | None) -> tuple[int, list[tuple[int, Any]]]:
        """(the offset after the last complete line, the events after ``offset``); None: no
        events, only the end."""
        lock = self._lock()
        try:
            fcntl.flock(lock, fcntl.LOCK_SH)       # the pair of files as one writer left it
            files = [_open(self.path + ".1"), _open(self.path)]
        finally:
            os.close(lock)
        found: list[tuple[int, Any]] = []
        end = 0
        try:
            for fd in files:
                if fd < 0:
                    continue
                base = _base(fd)
                size = os.fstat(fd).st_size
                if offset is None:
                    end = max(end, base + complete_end(fd, size))
                    continue
                if offset < base:
                    offset = base            # fell behind: from the oldest kept
                start = offset - base
                if start >= size:
                    continue
                data = os.pread(fd, size - start, start)
                complete = data.rfind(b"\n") + 1
                pos = start
                for line in data[:complete].split(b"\n")[:-1]:
                    pos += len(line) + 1
                    event = _decode(line)
                    if event is not None:
                        found.append((base + pos, event))
                offset = base + start + complete
        finally:
            for fd in files:
                if fd >= 0:
                    os.close(fd)
        return (end if offset is None else offset), found


def complete_end(fd: int, size: int) -> int:
    """The position just after the last newline before ``size`` of the file open at ``fd``
    (0 if none): the end of its last complete line."""
    pos = size
    while pos > 0:
        start = max(0, pos - _BLOCK)
        i = os.pread(fd, pos - start, start).rfind(b"\n")
        if i >= 0:
            return start + i + 1
        pos = start
    return 0


def _open(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return -1


def _base(fd: int) -> int:
    """The offset where the file open at ``fd`` continues the log (its first line's base)."""
    head = os.pread(fd, _HEADER_MAX, 0)
    if not head.startswith(b'{"type":"%s",' % CONTINUED.encode()) or b"\n" not in head:
        return 0
    try:
        header = json.loads(head.split(b"\n", 1)[0])
    except ValueError:
        return 0
    if isinstance(header, dict):
        base = header.get("base")
        if isinstance(base, int) and not isinstance(base, bool) and base >= 0:
            return base
    return 0


def _decode(line: bytes) -> Any:
    """The event of a line; None for an empty line, one that is not a JSON object, or the
    header of a rotated file."""
    if not line:
        return None
    try:
        event = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(event, dict) or event.get("type") == CONTINUED:
        return None
    return event
