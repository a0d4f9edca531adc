"""Request and response helpers shared by the routers (moby's api/server/httputils).

A handler receives a :class:`Request` and returns a :class:`Response` (``json_response``,
``stream``, ``raw``, ``no_content``), or calls :meth:`Request.hijack` and returns ``None``.
Raising a ``pyrunc.errors`` exception gives docker's JSON error body with the category's status.
"""
from __future__ import annotations

import io
import json
import queue
import re
import select
import socket
import threading

from pyrunc.errors import InvalidArgument, PyruncError, Unavailable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import Any

# The largest JSON body a handler parses (docker reads configs of any size; a limit keeps a
# hostile client from making the daemon hold gigabytes). Streams (load, import, archive) are
# read incrementally through Request.body and have no such limit.
MAX_JSON_BODY = 16 << 20

_VERSION = re.compile(r"[0-9]{1,6}(\.[0-9]{1,6}){0,2}", re.ASCII)

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"


class RequestEntityTooLarge(InvalidArgument):
    """A JSON body over MAX_JSON_BODY."""

    http_status = 413


def version_tuple(version: str) -> tuple[int, ...]:
    """"1.41" -> (1, 41); InvalidArgument for anything but one to three dotted ASCII numbers."""
    if not _VERSION.fullmatch(version):
        raise InvalidArgument("invalid API version: %r" % version[:40])
    return tuple(int(p) for p in version.split("."))


def bool_value(value: str | None) -> bool:
    """docker's BoolValue: anything but "", "0", "no", "false", "none" (any case) is true."""
    if value is None:
        return False
    return value.strip().lower() not in ("", "0", "no", "false", "none")


def parse_filters(text: str | None) -> dict[str, list[str]]:
    """The ``filters`` query parameter: ``{"key": {"value": true}}`` or the legacy
    ``{"key": ["value"]}``; returns key -> values. InvalidArgument for anything else."""
    if not text:
        return {}
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise InvalidArgument("invalid filter: %s" % e) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid filter: must be a JSON object")
    out: dict[str, list[str]] = {}
    for key, values in doc.items():
        if isinstance(values, dict):
            vals = [k for k, v in values.items() if v is True or v == "true"]
            if len(vals) != len(values):
                raise InvalidArgument("invalid filter '%s': values must be true" % _shown(key))
        elif isinstance(values, list) and all(isinstance(v, str) for v in values):
            vals = list(values)
        else:
            raise InvalidArgument("invalid filter '%s': values must be an object or a list of "
                                  "strings" % _shown(key))
        out[key] = vals
    return out


def _shown(text: str) -> str:
    """``text`` for a one-line message: control characters escaped, at most 80 characters."""
    return text[:80].encode("unicode_escape").decode("ascii")


class Response:
    """What a handler returns; the server writes it."""

    def __init__(self, status: int = 200, body: bytes = b"",
                 content_type: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = dict(headers or {})


class StreamResponse(Response):
    """A chunked body: every item of ``chunks`` (bytes, or a dict/list written as one line of
    JSON) is sent and flushed as it comes. The iterator is closed when the client goes away."""

    def __init__(self, chunks: Iterable[Any], content_type: str = "application/json",
                 status: int = 200, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, b"", content_type, headers)
        self.chunks = chunks


def json_response(obj: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    """``obj`` as JSON (docker ends its JSON bodies with a newline)."""
    body = (json.dumps(obj) + "\n").encode()
    return Response(status, body, "application/json", headers)


def raw(body: bytes, content_type: str = "text/plain; charset=utf-8", status: int = 200,
        headers: dict[str, str] | None = None) -> Response:
    """A fixed body of any type."""
    return Response(status, body, content_type, headers)


def no_content(status: int = 204) -> Response:
    """An empty answer (204 by default, as docker gives for start/stop/remove)."""
    return Response(status)


def stream(chunks: Iterable[Any], content_type: str = "application/json",
           status: int = 200, headers: dict[str, str] | None = None) -> StreamResponse:
    """A streamed (chunked) answer; see StreamResponse."""
    return StreamResponse(chunks, content_type, status, headers)


def error_body(error: BaseException) -> tuple[int, bytes]:
    """(status, docker's error body) for an exception a handler raised."""
    if isinstance(error, PyruncError):
        status = error.http_status
        message = error.message
    else:
        status, message = 500, str(error) or type(error).__name__
    return status, (json.dumps({"message": one_line(message)}) + "\n").encode()


def one_line(message: str) -> str:
    """An error message as one line whatever a client put in a name: control characters
    escaped."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), message)


class Hijacked:
    """The client's connection after a hijack: bytes both ways, no HTTP framing any more.
    ``recv`` returns b"" when the client closed its side."""

    def __init__(self, sock: socket.socket, rfile: io.BufferedIOBase) -> None:
        self.sock = sock
        self._rfile = rfile

    def recv(self, n: int = 65536) -> bytes:
        """Up to ``n`` bytes the client sent (what was buffered first); b"" at its end."""
        try:
            return self._rfile.read1(n)
        except (OSError, ValueError):
            return b""

    def sendall(self, data: bytes) -> None:
        """Write to the client; OSError when it went away."""
        self.sock.sendall(data)

    def close_write(self) -> None:
        """Tell the client no more output comes (docker half-closes after a stream's end)."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class Request:
    """One HTTP request as a handler sees it."""

    def __init__(self, method: str, path: str, query: dict[str, list[str]],
                 headers: Any, params: dict[str, str], version: str,
                 body: Any, connection: Any) -> None:
        self.method = method
        self.path = path
        self.query_lists = query
        self.headers = headers
        self.params = params
        self.version = version
        self.body = body
        self._connection = connection
        self.hijacked: Hijacked | None = None

    # --- query parameters ---
    def query(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name`` (as docker's FormValue;
        clients send each once), or ``default``."""
        values = self.query_lists.get(name)
        return values[0] if values else default

    def has(self, name: str) -> bool:
        """Whether query parameter ``name`` was sent at all."""
        return name in self.query_lists

    def query_bool(self, name: str, default: bool = False) -> bool:
        """docker's BoolValueOrDefault."""
        value = self.query(name)
        return default if value is None else bool_value(value)

    def query_int(self, name: str, default: int | None = None) -> int | None:
        """An integer parameter; InvalidArgument naming it when it is not one."""
        value = self.query(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise InvalidArgument("invalid value for %s: %r is not an integer"
                                  % (name, value[:40])) from None

    def filters(self) -> dict[str, list[str]]:
        """The ``filters`` parameter, parsed (see parse_filters)."""
        return parse_filters(self.query("filters"))

    def version_at_least(self, version: str) -> bool:
        """Whether the client speaks API ``version`` or later."""
        return version_tuple(self.version) >= version_tuple(version)

    # --- body ---
    def json(self, default: Any = None, required: bool = False) -> Any:
        """The body parsed as JSON; ``default`` for an empty body (InvalidArgument when
        ``required``). Bad JSON and bodies over MAX_JSON_BODY are InvalidArgument."""
        data = self.body.read(MAX_JSON_BODY + 1)
        if len(data) > MAX_JSON_BODY:
            raise RequestEntityTooLarge("request body is larger than %d bytes" % MAX_JSON_BODY)
        if not data.strip():
            if required:
                raise InvalidArgument("request body is empty")
            return default
        try:
            return json.loads(data)
        except ValueError as e:
            raise InvalidArgument("invalid JSON in request body: %s" % e) from None

    def json_object(self, required: bool = False) -> dict[str, Any]:
        """The body as a JSON object ({} when empty)."""
        doc = self.json({}, required)
        if not isinstance(doc, dict):
            raise InvalidArgument("invalid JSON in request body: must be an object")
        return doc

    # --- connection ---
    def disconnected(self) -> bool:
        """Whether the client closed the connection (for long streams to stop early)."""
        return self._connection.peer_closed()

    def hijack(self, content_type: str = RAW_STREAM) -> Hijacked:
        """Take the connection over for raw bytes both ways (attach, exec start). Answers
        ``101 UPGRADED`` when the client asked for ``Upgrade: tcp``, otherwise 200 with the
        raw stream's content type, as dockerd does. The handler then returns None."""
        self.hijacked = self._connection.hijack(content_type)
        return self.hijacked


def peer_closed(sock: socket.socket) -> bool:
    """True when ``sock``'s peer has shut its side or reset it (a readable socket with
    nothing to read); never consumes data."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except (OSError, ValueError):
        return True


def json_line(item: Any) -> bytes:
    """``item`` as one line of JSON (the pull progress and events format)."""
    return (json.dumps(item) + "\n").encode()



class _Cancelled(Exception):
    """The client went away; the background work stops at its next emit."""


class Producer:
    """Runs ``work(emit)`` on a thread and hands what it emits to the response's iterator,
    at most ``depth`` items ahead of the client. ``first()`` waits for the first item, so an
    error before any output becomes the HTTP status (as dockerd answers a failed pull that
    wrote nothing); later errors are raised from the iterator. Closing the iterator (the
    client went away) makes the next emit raise, which ends the work."""

    _DONE = object()

    def __init__(self, work: Callable[[Callable[[Any], None]], Any], depth: int = 64) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(depth)
        self._cancelled = threading.Event()
        self._work = work
        self._thread = threading.Thread(target=self._run, name="api-producer", daemon=True)
        self._pending: list[Any] = []

    def _run(self) -> None:
        try:
            self._work(self._emit)
            end: Any = self._DONE
        except BaseException as e:  # handed to the request's thread
            end = _Failure(e)
        try:
            self._emit(end)
        except _Cancelled:  # nobody reads any more: the thread just ends
            pass

    def _emit(self, item: Any) -> None:
        while True:
            if self._cancelled.is_set():
                raise _Cancelled()
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def first(self) -> Producer:
        """Start the work and wait for its first item (raising its error if it failed
        before emitting anything)."""
        self._thread.start()
        item = self._queue.get()
        if isinstance(item, _Failure):
            raise item.error
        self._pending.append(item)
        return self

    def __iter__(self) -> Iterator[Any]:
        try:
            while True:
                item = self._pending.pop() if self._pending else self._queue.get()
                if item is self._DONE:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            self._cancelled.set()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def progress_stream(items: Iterable[Any]) -> Iterator[bytes]:
    """JSON progress lines; an error during the stream becomes docker's last line
    ``{"errorDetail": {"message": ...}, "error": ...}`` (the CLI prints it and fails)."""
    try:
        for item in items:
            yield json_line(item)
    except PyruncError as e:
        message = one_line(e.message)
        yield json_line({"errorDetail": {"message": message}, "error": message})


class Unsupported(Unavailable):
    """An endpoint this daemon does not implement (dockerd's NotImplemented, 501)."""

    http_status = 501


class Writer(io.RawIOBase):
    """A binary file whose writes become a Producer's items (for save and export)."""

    def __init__(self, emit: Callable[[Any], None]) -> None:
        self._emit = emit

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        if chunk:
            self._emit(chunk)
        return len(chunk)
