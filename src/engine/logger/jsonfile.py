"""Reading a container's json-file log as ``docker logs`` does: tail, since, until, the
streams, and follow across the shim's rotations.

The shim writes ``{"log": TEXT, "stream": ..., "time": RFC3339Nano}`` lines to ``PATH`` and
rotates by renaming ``PATH.(i-1)`` to ``PATH.i`` (oldest last), then ``PATH`` to ``PATH.1``,
and opening a new ``PATH``; with one file it truncates ``PATH`` instead. A reader holds each
file open by descriptor and knows it by (device, inode), so a rename never makes it lose its
place: at the end of a file that is no longer ``PATH`` it reads what is left, then moves to
the file written after it (the one whose name is one index lower), which it checks is still
the neighbour once opened. Nothing is read into memory whole: ``tail`` counts newlines
backwards from the end in blocks, and a line longer than ``MAX_LINE`` (no shim writes one)
is skipped as garbage, as are lines that are not a log record.
"""
from __future__ import annotations

import errno
import json
import os
import stat
import time

from pyrunc.errors import FailedPrecondition, InvalidArgument, SystemFailure
from pyrunc.libcontainer import timestamps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

BLOCK = 64 * 1024
# A record holds at most 16 KiB of output, at most 6 bytes of JSON each (\u00XX escapes).
MAX_LINE = 1 << 20
POLL = 0.05
# How long to wait for the shim to open the new file after a rename, before giving up on it
# when not following.
_ROTATION_GRACE = 1.0
# running() may be slow (a shim busy writing the output answers late): a follower asks it
# only after the log has been quiet this long, never while lines are coming.
_QUIET = 0.25
# How much of a file's start identifies its content, to notice a truncation in place.
_HEAD = 256


class LogMessage:
    """One record of the log: ``stream`` ("stdout"/"stderr"), ``line`` (the bytes as the
    container wrote them, with their newline; a piece of a line split at 16 KiB has none, as
    docker's messages), ``time_ns`` (when the shim read it)."""

    __slots__ = ("stream", "line", "time_ns")

    def __init__(self, stream: str, line: bytes, time_ns: int) -> None:
        self.stream = stream
        self.line = line
        self.time_ns = time_ns

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, LogMessage) and (self.stream, self.line, self.time_ns)
                == (other.stream, other.line, other.time_ns))

    def __repr__(self) -> str:
        return "LogMessage(%r, %r, %d)" % (self.stream, self.line, self.time_ns)


class _File:
    """An open log file, known by identity rather than by its (changing) name."""

    __slots__ = ("fd", "ident")

    def __init__(self, fd: int, ident: tuple[int, int]) -> None:
        self.fd = fd
        self.ident = ident

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def close(self) -> None:
        os.close(self.fd)


def _open(name: str) -> _File | None:
    """Open a log file for reading; None if it does not exist. A symbolic link or anything
    but a regular file is refused: a log path is never one."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise FailedPrecondition("log file %s: is a symbolic link, refusing to follow it"
                                     % name) from None
        raise SystemFailure("open log file %s" % name, e.errno) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise FailedPrecondition("log file %s: not a regular file" % name)
    return _File(fd, (st.st_dev, st.st_ino))


def _ident(name: str) -> tuple[int, int] | None:
    try:
        st = os.lstat(name)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def _name(path: str, index: int) -> str:
    return path if index == 0 else "%s.%d" % (path, index)


def _indexes(path: str) -> list[int]:
    """Indexes of the files of the log now: 0 for PATH, i for PATH.i; oldest first."""
    directory, base = os.path.split(path)
    found = []
    try:
        names = os.listdir(directory or ".")
    except FileNotFoundError:
        return []
    for name in names:
        if name == base:
            found.append(0)
        elif name.startswith(base + ".") and name[len(base) + 1:].isdigit():
            suffix = name[len(base) + 1:]
            if suffix == str(int(suffix)) and int(suffix) > 0:
                found.append(int(suffix))
    return sorted(found, reverse=True)


def _locate(path: str, f: _File) -> int | None:
    """f's index now. A rotation moves files to higher indexes, the higher ones first, so
    the names are tried from PATH upwards (going down, f could move to a name just tried);
    None once f has no name left (its link count is 0); a miss while it still has one is a
    race with a rotation, tried again."""
    for attempt in range(100):
        indexes = _indexes(path)
        for index in range((indexes[0] if indexes else 0) + 2):
            if _ident(_name(path, index)) == f.ident:
                return index
        if os.fstat(f.fd).st_nlink == 0:
            return None
        time.sleep(0.001)
    return None


def _neighbour(path: str, f: _File, step: int) -> tuple[_File | None, bool]:
    """The file rotated just before (step +1) or after (step -1) ``f``, opened, checked to be
    still the neighbour once open. Returns (file or None, settled): settled False means the
    neighbour may be about to appear (a rotation under way)."""
    for _ in range(100):
        index = _locate(path, f)
        if index is None:
            if step > 0:
                return None, True
            # f was rotated out of the kept files (its reader fell behind): go on with the
            # oldest one left.
            for oldest in _indexes(path):
                g = _open(_name(path, oldest))
                if g is not None:
                    return g, True
            return None, False
        if index + step < 0:
            return None, True
        name = _name(path, index + step)
        g = _open(name)
        if g is None:
            if _locate(path, f) == index:
                return None, step > 0
            continue
        if g.ident != f.ident and _ident(_name(path, index)) == f.ident:
            return g, True
        g.close()
    return None, False


def _complete_end(f: _File, size: int) -> int:
    """The offset just after the last newline before ``size`` (0 if none)."""
    pos = size
    while pos > 0:
        start = max(0, pos - BLOCK)
        block = os.pread(f.fd, pos - start, start)
        i = block.rfind(b"\n")
        if i >= 0:
            return start + i + 1
        pos = start
    return 0


def _line_start(f: _File, end: int, n: int) -> tuple[int | None, int]:
    """Where the n-th last complete line before ``end`` starts, or (None, lines counted) if
    the file holds fewer than n."""
    count = 0
    pos = end - 1  # the newline ending the last line is not a line start
    while pos > 0:
        start = max(0, pos - BLOCK)
        block = os.pread(f.fd, pos - start, start)
        i = len(block)
        while True:
            i = block.rfind(b"\n", 0, i)
            if i < 0:
                break
            count += 1
            if count == n:
                return start + i + 1, count
        pos = start
    count += end > 0
    return (0, count) if count == n else (None, count)


def _check_streams(stdout: bool, stderr: bool) -> None:
    if not (stdout or stderr):
        raise InvalidArgument("You must choose at least one stream")


def read_logs(path: str, *, follow: bool = False, tail: int | None = None,
              since: int | None = None, until: int | None = None, stdout: bool = True,
              stderr: bool = True, running: Callable[[], bool] = lambda: False,
              poll: float = POLL) -> Iterator[LogMessage]:
    """The log at ``path`` as docker's json-file reader gives it.

    ``tail``: only the last N lines (None or negative: all; counted across the rotated files,
    before the other filters, as docker counts them). ``since``/``until``: nanoseconds since
    the epoch, both inclusive. ``follow``: then keep reading what is written, across
    rotations, until ``running()`` is false and everything written is read (or a line after
    ``until`` arrives, or the clock passes ``until``). A missing log is an empty one.
    """
    _check_streams(stdout, stderr)
    streams = {s for s, on in (("stdout", stdout), ("stderr", stderr)) if on}
    return _Reader(path, follow, tail, since, until, streams, running, poll).messages()


class _Reader:
    def __init__(self, path: str, follow: bool, tail: int | None, since: int | None,
                 until: int | None, streams: set[str], running: Callable[[], bool],
                 poll: float) -> None:
        self.path = path
        self.follow = follow
        self.tail = None if tail is None or tail < 0 else tail
        self.since = since
        self.until = until
        self.streams = streams
        self.running = running
        self.poll = poll
        self.open_files: list[_File] = []

    def messages(self) -> Iterator[LogMessage]:
        try:
            chain = self._start()
            if not chain:
                return
            for message in self._forward(chain):
                if self.since is not None and message.time_ns < self.since:
                    continue
                if self.until is not None and message.time_ns > self.until:
                    return
                if message.stream in self.streams:
                    yield message
        finally:
            for f in self.open_files:
                f.close()
            self.open_files.clear()

    def _opened(self, f: _File | None) -> _File | None:
        if f is not None:
            self.open_files.append(f)
        return f

    def _done_with(self, f: _File) -> None:
        self.open_files.remove(f)
        f.close()

    def _start(self) -> list[tuple[_File, int]]:
        """The files to read, oldest first, with the offset to start at in the first."""
        current = self._opened(_open(self.path))
        while current is None:
            # No log yet, or a rotation between the rename and the new file: its last file
            # is then PATH.1.
            current = self._opened(_open(_name(self.path, 1)) if _indexes(self.path) else None)
            if current is not None:
                break
            if not self.follow or not self.running():
                return []
            time.sleep(self.poll)
            current = self._opened(_open(self.path))
        end = _complete_end(current, current.size())
        chain = [(current, end)]
        wanted = self.tail
        if wanted == 0:
            return chain
        f = current
        while True:
            start, found = (_line_start(f, end, wanted) if wanted is not None
                            else (None, 0))
            if start is not None:
                chain[0] = (f, start)
                return chain
            chain[0] = (f, 0)
            if wanted is not None:
                wanted -= found
            older = self._opened(_neighbour(self.path, f, +1)[0])
            if older is None:
                return chain
            f = older
            end = _complete_end(f, f.size())
            chain.insert(0, (f, end))

    def _forward(self, chain: list[tuple[_File, int]]) -> Iterator[LogMessage]:
        """Every record from chain[0]'s offset on, moving to newer files as they come."""
        i = 0
        f, offset = chain[0]
        pending = b""
        head = os.pread(f.fd, _HEAD, 0)
        decode = _Decoder()
        waited_since: float | None = None
        quiet_since: float | None = None
        alive: bool | None = None
        while True:
            data = os.pread(f.fd, BLOCK, offset)
            if data and offset:
                cut, head = _truncated(f, offset, head)
                if cut:             # in place, with max-file 1: start again at its top
                    offset, pending = 0, b""
                    continue
            if data:
                offset += len(data)
                pending += data
                lines = pending.split(b"\n")
                pending = lines.pop()
                if len(pending) > MAX_LINE:
                    pending = b""
                    offset = self._skip_line(f, offset)
                for raw in lines:
                    message = decode(raw)
                    if message is not None:
                        yield message
                waited_since = quiet_since = alive = None
                continue
            # At the end of f: is f still the file being written?
            if i + 1 < len(chain):
                self._done_with(f)
                pending = b""
                i += 1
                f, offset = chain[i][0], 0
                head = os.pread(f.fd, _HEAD, 0)
                continue
            # ``alive`` is asked only once nothing new came for a while, and everything is
            # read once more after it said no: what was written before the end is read.
            now = time.monotonic()
            if quiet_since is None:
                quiet_since = now
            quiet = now - quiet_since >= _QUIET
            if _ident(self.path) == f.ident:
                cut, head = _truncated(f, offset, head)
                if cut:             # in place, with max-file 1
                    offset, pending = 0, b""
                    continue
                if not self.follow or self._past_until():
                    return
                if f.size() > offset:
                    continue
                if quiet and alive is None:
                    alive = self.running()
                    continue
                if alive is False:
                    return
                alive = None
                time.sleep(self.poll)
                continue
            # f was rotated: nothing more is written to it, read what is left, then go on.
            if f.size() > offset:
                continue
            newer, settled = _neighbour(self.path, f, -1)
            if newer is not None:
                self._opened(newer)
                self._done_with(f)
                chain, i = [(newer, 0)], 0
                f, offset, pending = newer, 0, b""
                head = os.pread(f.fd, _HEAD, 0)
                waited_since = quiet_since = alive = None
                continue
            if waited_since is None:
                waited_since = time.monotonic()
            gave_up = time.monotonic() - waited_since > _ROTATION_GRACE
            if not self.follow:
                if settled or gave_up:
                    return
            elif quiet and alive is None:
                alive = self.running()
                continue
            elif alive is False and gave_up:
                return
            else:
                alive = None
            time.sleep(min(self.poll, 0.01))

    def _skip_line(self, f: _File, offset: int) -> int:
        """Past the end of an over-long line (garbage: no shim writes one)."""
        while True:
            data = os.pread(f.fd, BLOCK, offset)
            if not data:
                return offset
            i = data.find(b"\n")
            if i >= 0:
                return offset + i + 1
            offset += len(data)

    def _past_until(self) -> bool:
        return self.until is not None and timestamps.now_ns() > self.until


def _truncated(f: _File, offset: int, head: bytes) -> tuple[bool, bytes]:
    """Whether the file was cut and written again since it was read up to ``offset``: it is
    shorter, or its first bytes are no longer ``head`` (what they were); and its head now."""
    if f.size() < offset:
        return True, b""
    now = os.pread(f.fd, _HEAD, 0)
    common = min(len(now), len(head))
    return now[:common] != head[:common], now


class _Decoder:
    """Records from lines; a record's time is parsed once per second of the log (the lines
    of one second share their "YYYY-MM-DDThh:mm:ss" and differ in the fraction only)."""

    def __init__(self) -> None:
        self.prefix = ""
        self.base = 0

    def __call__(self, raw: bytes) -> LogMessage | None:
        """A record, or None for a line that is not one (garbage, a torn write)."""
        try:
            record = json.loads(raw)
            text, stream, when = record["log"], record["stream"], record["time"]
            if not (isinstance(text, str) and isinstance(stream, str)):
                return None
            return LogMessage(stream, text.encode("utf-8", "replace"), self.time_ns(when))
        except (ValueError, TypeError, KeyError, RecursionError, InvalidArgument):
            return None

    def time_ns(self, when: str) -> int:
        if len(when) >= 20 and when[-1] == "Z" and when[19] in ".Z":
            fraction = when[20:-1]
            if fraction.isdigit() and fraction.isascii() or not fraction and when[19] == "Z":
                prefix = when[:19]
                if prefix != self.prefix:
                    self.base = timestamps.parse_ns(prefix + "Z")
                    self.prefix = prefix
                return self.base + int(fraction[:9].ljust(9, "0") or 0)
        return timestamps.parse_ns(when)
