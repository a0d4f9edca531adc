"""The engine's event log: docker's event objects, kept on disk for ``/events``.

``EventService(path)`` appends one JSON line per event to ``path`` under an exclusive flock
of ``path.lock``, so processes sharing an engine root see each other's events and a process
killed at any moment loses none that ``emit`` returned (the line is written before). The log
is not synced to the disk by default: an fdatasync costs 2-4 ms and a ``docker run --rm``
emits about seven events, all on its path. What an operating-system crash can lose is the
last events, where dockerd, which keeps its events in memory only, loses all of them at any
restart; ``sync=True`` makes each event durable too. Each line is ``[seq, event]``: ``seq`` counts
every event ever written; the file holds the events ``k*limit+1 .. (k+1)*limit`` and is
renamed to ``path.1`` when the next block begins, so the two files keep between ``limit``
and ``2*limit`` of the latest events (docker keeps the last 256 in memory). Readers need no
lock to read (lines are appended whole, rotated files never change); they take the shared
lock only to open the pair consistently, and the sequence numbers make a follower that
re-reads after a rotation skip what it has seen.

Event objects are docker's ``events.Message``: ``Type``, ``Action``, ``Actor`` (``ID``,
``Attributes``), ``scope`` ("local"), ``time``, ``timeNano``, and for container and image
events the legacy ``status``, ``id`` (and ``from``: the container's image).
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import time

from pyrunc.containerd.tasks.events import complete_end
from pyrunc.engine import reference
from pyrunc.errors import InvalidArgument, SystemFailure
from pyrunc.libcontainer import timestamps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Callable, Iterator

TYPES = ("container", "image", "volume", "network", "daemon", "plugin", "node", "service",
         "secret", "config")
FILTERS = ("config", "container", "daemon", "event", "image", "label", "network", "node",
           "plugin", "scope", "secret", "service", "type", "volume")
DEFAULT_LIMIT = 1000
POLL = 0.05
_BLOCK = 64 * 1024
_MAX_LINE = 1 << 20
_NS = timestamps.NS


class EventService:
    """Events of one engine root, in the file ``path`` (and ``path.1``)."""

    def __init__(self, path: str, limit: int = DEFAULT_LIMIT, sync: bool = False) -> None:
        if limit < 1:
            raise InvalidArgument("event log limit must be at least 1")
        self.path = os.path.abspath(path)
        self.limit = limit
        self.sync = sync
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)

    # writing --------------------------------------------------------------------------------
    def emit(self, type: str, action: str, actor_id: str,
             attributes: dict[str, str] | None = None) -> dict[str, Any]:
        """Record an event now; returns the event object (as ``query`` yields it)."""
        if type not in TYPES:
            raise InvalidArgument("event type %r: not one of %s" % (type, ", ".join(TYPES)))
        if not isinstance(action, str) or not action or not isinstance(actor_id, str):
            raise InvalidArgument("event: action and actor ID must be strings")
        attrs = dict(attributes or {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in attrs.items()):
            raise InvalidArgument("event attributes: must map strings to strings")
        with self._lock(fcntl.LOCK_EX):
            fd = _open_append(self.path)
            try:
                last, end, size = _last_seq(fd)
                if size > end:       # a writer died part way through a line: drop it
                    os.ftruncate(fd, end)
                if last is None:
                    last = self._previous_last()
                seq = last + 1
                if end and (seq - 1) % self.limit == 0:
                    os.rename(self.path, self.path + ".1")
                    os.close(fd)
                    fd = _open_append(self.path)
                    if self.sync:
                        _sync_dir(os.path.dirname(self.path))
                now = timestamps.now_ns()
                event = make_event(type, action, actor_id, attrs, now)
                line = json.dumps([seq, event], separators=(",", ":")).encode() + b"\n"
                if len(line) > _MAX_LINE:
                    raise InvalidArgument("event %s %s of %s: %d bytes, more than the event "
                                          "log's %d" % (type, action, actor_id[:64], len(line),
                                                        _MAX_LINE))
                os.write(fd, line)
                if self.sync:
                    os.fdatasync(fd)
            finally:
                os.close(fd)
        return event

    def _previous_last(self) -> int:
        try:
            fd = os.open(self.path + ".1", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return 0
        try:
            return _last_seq(fd)[0] or 0
        finally:
            os.close(fd)

    def _lock(self, how: int) -> _Flock:
        return _Flock(self.path + ".lock", how)

    # reading --------------------------------------------------------------------------------
    def query(self, since: Any = None, until: Any = None, filters: Any = None,
              follow: bool = False, stop: Callable[[], bool] | None = None,
              poll: float = POLL) -> Iterator[dict[str, Any]]:
        """Events matching ``filters`` (docker's: {"type": [...], "event": [...], ...}).

        ``since``/``until``: docker's times (unix seconds with an optional fraction, as a
        number or text; RFC 3339; a Go duration meaning that long ago), both inclusive.
        Without ``follow``: the kept events from ``since`` (or the oldest kept) to
        ``until``. With ``follow``: those from ``since`` if given (none otherwise, as
        docker's /events without since), then new ones as any process emits them, until
        ``stop()`` is true or the clock passes ``until``.
        """
        now = timestamps.now_ns()
        since_ns = parse_event_time(since, now) if _given(since) else None
        until_ns = parse_event_time(until, now) if _given(until) else None
        if since_ns is not None and until_ns is not None and until_ns < since_ns:
            raise InvalidArgument("`since` time (%s) cannot be after `until` time (%s)"
                                  % (since, until))
        match = EventFilter(filters)
        return self._query(since_ns, until_ns, match, follow, stop, poll)

    def _query(self, since_ns, until_ns, match, follow, stop, poll):
        cursor = _Cursor(self)
        try:
            if follow and since_ns is None:
                cursor.skip_to_end()
            while True:
                for seq, event in cursor.read():
                    t = event.get("timeNano", 0)
                    if since_ns is not None and t < since_ns:
                        continue
                    if until_ns is not None and t > until_ns:
                        if follow:
                            return
                        continue
                    if match(event):
                        yield event
                if not follow:
                    return
                if stop is not None and stop():
                    return
                if until_ns is not None and timestamps.now_ns() > until_ns:
                    return
                time.sleep(poll)
        finally:
            cursor.close()


class _Flock:
    def __init__(self, path: str, how: int) -> None:
        self.path = path
        self.how = how
        self.fd = -1

    def __enter__(self) -> _Flock:
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                              0o600)
        except OSError as e:
            raise SystemFailure("open event log lock %s" % self.path, e.errno) from None
        fcntl.flock(self.fd, self.how)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _sync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_append(path: str) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
                       | os.O_NOFOLLOW, 0o600)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise SystemFailure("open event log %s" % path, e.errno,
                                "it is a symbolic link") from None
        raise SystemFailure("open event log %s" % path, e.errno) from None


def _last_seq(fd: int) -> tuple[int | None, int, int]:
    """(seq of the last readable line or None, end of the last complete line, size)."""
    size = os.fstat(fd).st_size
    end = pos = complete_end(fd, size)
    carry = b""
    while pos > 0:
        start = max(0, pos - _BLOCK)
        lines = (os.pread(fd, pos - start, start) + carry).split(b"\n")
        carry = lines.pop(0) if start > 0 else b""
        for raw in reversed(lines):
            record = _decode(raw)
            if record is not None:
                return record[0], end, size
        if len(carry) > _MAX_LINE:
            carry = b""
        pos = start
    return None, end, size


def _decode(raw: bytes) -> tuple[int, dict[str, Any]] | None:
    try:
        seq, event = json.loads(raw)
    except (ValueError, TypeError, RecursionError):
        return None
    if isinstance(seq, int) and isinstance(event, dict):
        return seq, event
    return None


class _Cursor:
    """Where a reader is: the file it reads, its offset, the last sequence number seen."""

    def __init__(self, service: EventService) -> None:
        self.service = service
        self.last = 0
        self.fd = -1
        self.ident: tuple[int, int] | None = None
        self.offset = 0
        self.pending = b""
        self.rescan = True
        self.first: int | None = None     # the first sequence number of the file read

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def skip_to_end(self) -> None:
        for _ in self.read():
            pass

    def read(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Events not seen yet, in order."""
        path = self.service.path
        if not self.rescan and self.fd >= 0:
            yield from self._drain()
            if _ident(path) == self.ident:
                return
            yield from self._drain()   # rotated: finish it, then read the pair again
        with self.service._lock(fcntl.LOCK_SH):
            files = [_open_read(path + ".1"), _open_read(path)]
        previous, last = self.ident, self.last
        self.close()
        try:
            for fd in files[:1]:
                if fd >= 0:
                    self._switch(fd)
                    yield from self._drain()
                    self.close()
            if files[1] >= 0:
                self._switch(files[1])
                files[1] = -1
                yield from self._drain()
        finally:
            for fd in files[1:]:
                if fd >= 0:
                    os.close(fd)
        self.rescan = self.fd < 0
        if (previous is not None and self.ident != previous and self.first is not None
                and self.first <= last):
            # A new current file starts past every event seen, unless the log was started
            # over (its files removed): then read the new one from its start.
            self.last = 0
            self.rescan = True
            yield from self.read()

    def _switch(self, fd: int) -> None:
        self.fd = fd
        st = os.fstat(fd)
        self.ident = (st.st_dev, st.st_ino)
        self.offset = 0
        self.pending = b""
        self.first = None

    def _drain(self) -> Iterator[tuple[int, dict[str, Any]]]:
        while True:
            data = os.pread(self.fd, _BLOCK, self.offset)
            if not data:
                return
            self.offset += len(data)
            lines = (self.pending + data).split(b"\n")
            self.pending = lines.pop()
            if len(self.pending) > _MAX_LINE:
                self.pending = b""
            for raw in lines:
                record = _decode(raw)
                if record is not None and self.first is None:
                    self.first = record[0]
                if record is not None and record[0] > self.last:
                    self.last = record[0]
                    yield record


def _open_read(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return -1
    except OSError as e:
        raise SystemFailure("open event log %s" % path, e.errno) from None


def _ident(path: str) -> tuple[int, int] | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


# event objects ------------------------------------------------------------------------------
def make_event(type: str, action: str, actor_id: str, attributes: dict[str, str],
               time_ns: int) -> dict[str, Any]:
    """docker's events.Message for an event at ``time_ns``."""
    event: dict[str, Any] = {}
    if type in ("container", "image"):
        # the legacy fields, omitted when empty as docker's JSON omits them
        event["status"] = action
        if actor_id:
            event["id"] = actor_id
        if type == "container" and attributes.get("image"):
            event["from"] = attributes["image"]
    event.update({"Type": type, "Action": action,
                  "Actor": {"ID": actor_id, "Attributes": attributes},
                  "scope": "local", "time": time_ns // _NS, "timeNano": time_ns})
    return event


def container_attributes(config: dict[str, Any], name: str,
                         extra: dict[str, str] | None = None) -> dict[str, str]:
    """A container event's attributes as dockerd builds them: ``extra`` (exitCode, signal,
    execID...), the container's labels over it, then ``image`` (Config.Image) and ``name``
    (without its "/")."""
    attrs = dict(extra or {})
    attrs.update(config.get("Labels") or {})
    if config.get("Image"):
        attrs["image"] = config["Image"]
    attrs["name"] = name.lstrip("/")
    return attrs


def image_attributes(labels: dict[str, str] | None, name: str) -> dict[str, str]:
    """An image event's attributes: the image's labels, then ``name``."""
    attrs = dict(labels or {})
    if name:
        attrs["name"] = name
    return attrs


# filters --------------------------------------------------------------------------------------
class EventFilter:
    """docker's event filter (daemon/events/filter.go): values of one key are alternatives,
    keys must all match; names and IDs match by prefix, ``image`` also without its tag."""

    def __init__(self, filters: Any) -> None:
        self.args = normalise_filters(filters)

    def __call__(self, event: dict[str, Any]) -> bool:
        actor = event.get("Actor") or {}
        attrs = actor.get("Attributes") or {}
        actor_id = actor.get("ID", "")
        kind = event.get("Type", "")
        action = event.get("Action", "")
        if not self._event(action) or not self._exact("type", kind):
            return False
        if not self._exact("scope", event.get("scope", "")):
            return False
        for key in ("daemon", "container", "plugin", "volume", "network", "service", "node",
                    "secret", "config"):
            if key in self.args and not self._fuzzy_name(key, actor_id, attrs):
                return False
        return self._image(kind, actor_id, attrs) and self._labels(attrs)

    def _exact(self, key: str, value: str) -> bool:
        values = self.args.get(key)
        return not values or value in values

    def _fuzzy(self, key: str, value: str) -> bool:
        values = self.args.get(key)
        return not values or value in values or any(value.startswith(v) for v in values)

    def _event(self, action: str) -> bool:
        values = self.args.get("event") or set()
        if values & {"health_status", "exec_create", "exec_start"}:
            return self._fuzzy("event", action)
        return self._exact("event", action)

    def _fuzzy_name(self, key: str, actor_id: str, attrs: dict[str, str]) -> bool:
        # docker matches the key against every event's actor: a "container" filter thus
        # keeps only events whose actor ID or name starts with one of its values.
        return self._fuzzy(key, actor_id) or self._fuzzy(key, attrs.get("name", ""))

    def _image(self, kind: str, actor_id: str, attrs: dict[str, str]) -> bool:
        if not self.args.get("image"):
            return True
        name = attrs.get("name" if kind == "image" else "image", "")
        return any(self._exact("image", v)
                   for v in (actor_id, name, _strip_tag(actor_id), _strip_tag(name)))

    def _labels(self, attrs: dict[str, str]) -> bool:
        values = self.args.get("label")
        if not values:
            return True
        if not attrs:
            return False
        for value in values:
            key, eq, wanted = value.partition("=")
            if key not in attrs or (eq and attrs[key] != wanted):
                return False
        return True


def normalise_filters(filters: Any) -> dict[str, set[str]]:
    """Filters as {key: {values}}: from the Engine API's {"key": ["v"]} (or its older
    {"key": {"v": true}}), {"key": "v"}, or ["key=v", ...]; unknown keys refused as docker
    refuses them."""
    out: dict[str, set[str]] = {}
    if not filters:
        return out
    pairs: list[tuple[Any, Any]] = []
    if isinstance(filters, (list, tuple)):
        for item in filters:
            if not isinstance(item, str) or "=" not in item:
                raise InvalidArgument("bad format of filter (expected name=value)")
            key, value = item.split("=", 1)
            pairs.append((key, value))
    elif isinstance(filters, dict):
        for key, values in filters.items():
            if isinstance(values, dict):
                values = [v for v, on in values.items() if on]
            elif isinstance(values, str):
                values = [values]
            elif not isinstance(values, (list, tuple)):
                raise InvalidArgument("invalid filter '%s': values must be strings" % key)
            pairs.extend((key, v) for v in values)
    else:
        raise InvalidArgument("filters: must be an object of lists of strings")
    for key, value in pairs:
        if not isinstance(key, str) or key not in FILTERS:
            raise InvalidArgument("invalid filter '%s'" % key)
        if not isinstance(value, str):
            raise InvalidArgument("invalid filter '%s': values must be strings" % key)
        out.setdefault(key, set()).add(value)
    return out


def _strip_tag(name: str) -> str:
    try:
        return reference.parse_normalized(name).familiar_name
    except InvalidArgument:
        return name


# times ----------------------------------------------------------------------------------------
_DURATION_UNITS = {"ns": 1, "us": 1000, "\u00b5s": 1000, "\u03bcs": 1000, "ms": 10 ** 6,
                   "s": _NS, "m": 60 * _NS, "h": 3600 * _NS}


def _given(value: Any) -> bool:
    return value is not None and value != ""


def parse_event_time(value: Any, now_ns: int | None = None) -> int:
    """Nanoseconds since the epoch of a time as ``docker events --since/--until`` takes it:
    a number or "SECONDS[.FRACTION]", an RFC 3339 time (with a zone, or local without one,
    also the shorter "2006-01-02", "2006-01-02T15", "2006-01-02T15:04"), or a Go duration
    ("10m", "1h30m") meaning that long before now."""
    if now_ns is None:
        now_ns = timestamps.now_ns()
    if isinstance(value, bool):
        raise InvalidArgument("invalid time %r" % (value,))
    if isinstance(value, int):
        return value * _NS
    if isinstance(value, float):
        # through its decimal text, so 1700000000.25 is exactly that many seconds
        exact = _unix("%.9f" % value) if value == value and value >= 0 else None
        if exact is None:
            raise InvalidArgument("invalid time %r" % (value,))
        return exact
    if not isinstance(value, str):
        raise InvalidArgument("invalid time %r" % (value,))
    if value != "0":
        duration = _go_duration(value)
        if duration is not None:
            return now_ns - duration
    unix = _unix(value)
    if unix is not None:
        return unix
    if "-" in value:
        return _rfc3339ish(value)
    raise InvalidArgument('failed to parse value as time or duration: "%s"' % value)


def _unix(text: str) -> int | None:
    seconds, dot, fraction = text.partition(".")
    if not seconds.isdigit() or not seconds.isascii() or (dot and not (
            fraction.isdigit() and fraction.isascii() and len(fraction) <= 9)):
        return None
    return int(seconds) * _NS + int(fraction.ljust(9, "0") if fraction else 0)


def _go_duration(text: str) -> int | None:
    """Nanoseconds of a Go duration ("1h2m3.5s", "-5m", "300ms"), None if it is not one."""
    rest = text
    sign = 1
    if rest and rest[0] in "+-":
        sign = -1 if rest[0] == "-" else 1
        rest = rest[1:]
    if not rest:
        return None
    total = 0
    while rest:
        i = 0
        while i < len(rest) and (rest[i].isdigit() and rest[i].isascii() or rest[i] == "."):
            i += 1
        number = rest[:i]
        if not number or number == "." or number.count(".") > 1:
            return None
        j = i
        while j < len(rest) and not (rest[j].isdigit() and rest[j].isascii()) \
                and rest[j] != ".":
            j += 1
        unit = rest[i:j]
        if unit not in _DURATION_UNITS:
            return None
        whole, _, frac = number.partition(".")
        scale = _DURATION_UNITS[unit]
        total += int(whole or 0) * scale
        if frac:
            total += int(frac) * scale // 10 ** len(frac)
        rest = rest[j:]
    return sign * total


def _rfc3339ish(text: str) -> int:
    zoned = any(c in text for c in "zZ+") or text.count("-") == 3
    try:
        if zoned:
            return timestamps.parse_ns(_complete(text))
        return _local(text)
    except InvalidArgument:
        raise InvalidArgument('parsing time "%s": not a time docker accepts (RFC 3339, '
                              'unix seconds or a duration)' % text) from None


def _complete(text: str) -> str:
    """Fill the parts docker lets out of a zoned time ("2006-01-02T15Z07:00", a date)."""
    date, t, rest = text.partition("T")
    if not t:
        date, zone = text[:10], text[10:]
        return date + "T00:00:00" + zone
    clock_end = len(rest)
    for i, c in enumerate(rest):
        if c in "zZ+-":
            clock_end = i
            break
    clock, zone = rest[:clock_end], rest[clock_end:]
    main, dot, fraction = clock.partition(".")
    parts = main.split(":")
    while len(parts) < 3:
        parts.append("00")
    return date + "T" + ":".join(parts) + dot + fraction + zone


def _local(text: str) -> int:
    full = _complete(text + "Z")[:-1]
    ns = timestamps.parse_ns(full + "Z")
    seconds, fraction = divmod(ns, _NS)
    tm = time.gmtime(seconds)
    local = time.mktime((tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min,
                         tm.tm_sec, 0, 0, -1))
    return int(local) * _NS + fraction
