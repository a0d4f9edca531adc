"""Container routes (moby's router/container): create, start, stop, restart, kill, wait, remove,
list, inspect, logs, attach, resize, top, stats, rename, update, pause, unpause, archive,
changes, export, commit and prune.

Attach (and exec start, in the exec router) hand the client's hijacked connection to an
``AttachSession``: the shim's attach frames (docker's 8-byte header already) are passed on as
they are, or without their headers when the process has a terminal; the client's bytes go to
the process's stdin, through the detach keys' filter when it has a terminal.

``docker run`` attaches before it starts the container. Such an attachment waits; the start
request then connects it to the shim between the task's create and its start
(``ContainerService.start(on_created=...)``), so the process's first byte is already seen. A
container started some other way (by the supervisor, by another process on the same root) is
attached as soon as the waiting session sees it running.
"""
from __future__ import annotations

import base64
import contextlib
import json
import select
import socket
import struct
import threading

from pyrunc.engine.api import httputils, websocket
from pyrunc.engine.api.server import Route
from pyrunc.engine.container import state as cstate
from pyrunc.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound, PyruncError
from pyrunc.libcontainer import timestamps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Any

    from pyrunc.containerd.shim.client import Attachment
    from pyrunc.containerd.tasks import Task
    from pyrunc.engine.api.websocket import WebSocket
    from pyrunc.engine.container.store import Container
    from pyrunc.engine.daemon import Engine

STDOUT, STDERR, EXIT = 1, 2, 3
DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
# How often a session waiting for its container's start looks at the container and the client.
WAIT_POLL = 0.25
# A wait request is served in slices this long, between which it checks the client is there.
WAIT_SLICE = 1.0
# How long a failed start of an AutoRemove container gives the requests waiting for its
# removal to answer first.
REMOVAL_SETTLE = 2.0
_CTRL = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def frame(stream: int, data: bytes) -> bytes:
    """docker's stdcopy framing: stream byte, three zero bytes, big-endian length, payload."""
    return struct.pack(">BxxxI", stream, len(data)) + data


def parse_detach_keys(text: str) -> bytes:
    """docker's detach key sequence (``ctrl-p,ctrl-q``: ``ctrl-`` and a letter or one of
    ``@[\\]^_``, or a single character) as bytes; InvalidArgument naming the keys otherwise."""
    out = bytearray()
    for key in text.split(","):
        if len(key) == 1 and ord(key) < 128:
            out.append(ord(key))
            continue
        low = key.lower()
        if low.startswith("ctrl-") and len(key) == 6:
            ch = low[5]
            if "a" <= ch <= "z":
                out.append(ord(ch) - ord("a") + 1)
                continue
            if ch in _CTRL:
                out.append(_CTRL[ch])
                continue
        raise InvalidArgument("Invalid detach keys (%s) provided" % text[:80])
    if not out:
        raise InvalidArgument("Invalid detach keys (%s) provided" % text[:80])
    return bytes(out)


class EscapeFilter:
    """Finds the detach sequence in what a client types: bytes that may start it are held
    until they do not (then passed on) or complete it (then the session detaches)."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to pass on, whether the sequence was typed)."""
        out = bytearray()
        for b in data:
            candidate = self.held + bytes((b,))
            if self.keys.startswith(candidate):
                if candidate == self.keys:
                    self.held = b""
                    return bytes(out), True
                self.held = candidate
                continue
            out += self.held
            self.held = b""
            if self.keys[:1] == bytes((b,)):
                self.held = bytes((b,))
            else:
                out.append(b)
        return bytes(out), False


def _hung_up(sock: Any, timeout: float) -> bool:
    """Whether the client closed its connection entirely (not just its sending side), waiting
    up to ``timeout`` seconds. A unix socket reports it at once; over TCP it shows when a
    write fails."""
    try:
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLHUP | select.POLLERR)
        for _, events in poller.poll(int(timeout * 1000)):
            if events & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                return True
        return False
    except (OSError, ValueError):
        return True


def _shutdown(sock: Any) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class AttachSession:
    """One hijacked client connected to one process's stdio (container attach, exec start).

    ``tty``: the process has a terminal (raw bytes out, detach keys honoured). ``stdout``/
    ``stderr``: the streams the client asked for. ``stdin``: pass the client's bytes on;
    ``close_stdin``: close the process's stdin when the client ends its input. ``raw``: never
    docker's stream headers (a websocket, whose frames keep the writes apart)."""

    def __init__(self, conn: httputils.Hijacked | WebSocket, *, tty: bool,
                 stdout: bool = True, stderr: bool = True, stdin: bool = False,
                 close_stdin: bool = False, detach_keys: bytes | None = None,
                 raw: bool = False) -> None:
        self.conn = conn
        self.tty = tty
        self.raw = raw
        self.stdout = stdout
        self.stderr = stderr
        self.stdin = stdin
        self.close_stdin = close_stdin
        self.detach_keys = detach_keys
        self.done = threading.Event()

    def send(self, stream: int, data: bytes) -> None:
        """Write ``data`` of ``stream`` to the client (framed unless a terminal)."""
        if not data:
            return
        if (stream == STDOUT and not self.stdout) or (stream == STDERR and not self.stderr):
            return
        self.conn.sendall(data if self.tty or self.raw else frame(stream, data))

    def send_logs(self, messages: Iterable[Any]) -> None:
        """Replay log messages (attach's ``logs=1``)."""
        for m in messages:
            self.send(STDERR if m.stream == "stderr" else STDOUT, m.line)

    def run(self, attachment: Any) -> None:
        """Pass bytes both ways between the client and ``attachment`` (an ``Attachment``, or
        anything with its read/write/close_stdin/close and ``sock``) until the process's output
        ends, the client detaches or goes away; the client's side is then closed."""
        feeder = threading.Thread(target=self._feed, args=(attachment,), daemon=True,
                                  name="api-attach-input")
        feeder.start()
        try:
            while True:
                try:
                    stream, data = attachment.read()
                except OSError:
                    break
                if stream is None or stream == EXIT:
                    break
                try:
                    self.send(stream, data)
                except OSError:
                    break
        finally:
            self.done.set()
            attachment.close()
            self.finish()
            feeder.join(5)

    def finish(self) -> None:
        """Tell the client no more comes and stop reading from it."""
        self.conn.close_write()
        _shutdown(self.conn.sock)

    def _feed(self, attachment: Any) -> None:
        escape = EscapeFilter(self.detach_keys) if self.tty and self.detach_keys else None
        try:
            while self.stdin and not self.done.is_set():
                data = self.conn.recv()
                if not data:
                    if self.close_stdin and not self.done.is_set():
                        attachment.close_stdin()
                    break
                detach = False
                if escape is not None:
                    data, detach = escape.feed(data)
                if data:
                    attachment.write(data)
                if detach:
                    _shutdown(attachment.sock)
                    return
            while not self.done.is_set():
                if _hung_up(self.conn.sock, WAIT_POLL):
                    _shutdown(attachment.sock)     # ends the output loop
                    return
        except OSError:
            _shutdown(attachment.sock)

    def wait_until(self, ready: Any, woken: threading.Event | None = None) -> Any:
        """Poll ``ready()`` (None until there is something) every WAIT_POLL seconds, or at
        once when ``woken`` is set, while the client is connected; None if it went away."""
        while True:
            value = ready()
            if value is not None:
                return value
            if woken is not None:
                woken.wait(WAIT_POLL)
                if _hung_up(self.conn.sock, 0):
                    return None
            elif _hung_up(self.conn.sock, WAIT_POLL):
                return None


class _Counter:
    """Requests in flight by container ID (the wait requests for a removal)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._counts: dict[str, int] = {}

    @contextlib.contextmanager
    def counting(self, cid: str) -> Iterator[None]:
        with self._cond:
            self._counts[cid] = self._counts.get(cid, 0) + 1
        try:
            yield
        finally:
            with self._cond:
                self._counts[cid] -= 1
                if not self._counts[cid]:
                    del self._counts[cid]
                self._cond.notify_all()

    def settle(self, cid: str, timeout: float) -> None:
        """Wait (up to ``timeout`` seconds) until no request counts ``cid``."""
        with self._cond:
            self._cond.wait_for(lambda: cid not in self._counts, timeout)


class _Waiter:
    def __init__(self) -> None:
        self.ready = threading.Event()
        self.attachment: Attachment | None = None
        self.error: BaseException | None = None


class _Waiters:
    """Sessions waiting for their container's start, by container ID."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, list[_Waiter]] = {}

    def add(self, cid: str) -> _Waiter:
        w = _Waiter()
        with self._lock:
            self._by_id.setdefault(cid, []).append(w)
        return w

    def remove(self, cid: str, w: _Waiter) -> bool:
        """Take ``w`` back; False if a start took it meanwhile."""
        with self._lock:
            waiting = self._by_id.get(cid, [])
            if w not in waiting:
                return False
            waiting.remove(w)
            if not waiting:
                del self._by_id[cid]
            return True

    def connect(self, cid: str, task: Task) -> None:
        """The container's task exists and has not started: attach every waiting session."""
        with self._lock:
            waiting = self._by_id.pop(cid, [])
        for w in waiting:
            try:
                w.attachment = task.attach()
            except (PyruncError, OSError) as e:
                w.error = e
            w.ready.set()


def _ns(text: str | None, name: str) -> int | None:
    """docker's timestamp parameters (since, until): seconds since the epoch with an optional
    fraction (``1700000000.5``), or RFC 3339; 0 or empty: not given."""
    if text is None or text.strip() in ("", "0"):
        return None
    text = text.strip()
    seconds, dot, fraction = text.partition(".")
    digits = seconds[1:] if seconds.startswith("-") else seconds
    if _decimal(digits) and (not dot or _decimal(fraction)):
        value = int(digits) * timestamps.NS + int(fraction[:9].ljust(9, "0") or 0)
        return -value if seconds.startswith("-") else value
    try:
        return timestamps.parse_ns(text)
    except InvalidArgument:
        raise InvalidArgument("invalid value for %s: %r is not a timestamp"
                              % (name, text[:40])) from None


def _decimal(text: str) -> bool:
    return text.isascii() and text.isdigit()


def fixed_time(ns: int) -> str:
    """docker's RFC3339NanoFixed: nine fraction digits always."""
    text = timestamps.format_ns(ns - ns % timestamps.NS)
    return "%s.%09dZ" % (text[:-1], ns % timestamps.NS)


def _dimension(req: httputils.Request, name: str) -> int:
    value = req.query_int(name)
    if value is None or not 0 <= value <= 65535:
        raise InvalidArgument("invalid value for %s: must be an integer in 0-65535" % name)
    return value


def stream_type(req: httputils.Request, tty: bool) -> str:
    """The hijacked stream's content type: multiplexed for a process without a terminal
    when the client upgraded and speaks 1.42 or later, raw otherwise (dockerd's rule)."""
    upgrade = req.headers.get("Upgrade", "").lower() == "tcp"
    if not tty and upgrade and req.version_at_least("1.42"):
        return httputils.MULTIPLEXED_STREAM
    return httputils.RAW_STREAM


def _flag_value(value: Any) -> bool:
    """Whether an update field carries a change (dockerd applies only non-zero values)."""
    if value is None or value is False or value == 0 or value == "" or value == [] \
            or value == {}:
        return False
    return True


class Containers:
    """The handlers, over ``engine.containers``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.service = engine.containers
        self.waiters = _Waiters()
        self.removal_waits = _Counter()

    def _get(self, req: httputils.Request) -> Container:
        return self.service.get(req.params["name"])

    # POST /containers/create
    def create(self, req: httputils.Request) -> httputils.Response:
        body = req.json_object(required=True)
        host_config = body.pop("HostConfig", None)
        networking = body.pop("NetworkingConfig", None)
        for key, value in (("HostConfig", host_config), ("NetworkingConfig", networking)):
            if value is not None and not isinstance(value, dict):
                raise InvalidArgument("%s: must be a JSON object" % key)
        name = req.query("name") or None
        platform = req.query("platform") or None
        result = self.service.create(body, host_config, name=name, networking_config=networking,
                                     platform=platform)
        warnings = list(result.get("Warnings") or [])
        if not platform:
            warnings += self._platform_warnings(body.get("Image"))
        if (host_config or {}).get("NetworkMode") == "host" and \
                (host_config or {}).get("PortBindings"):
            warnings.append("Published ports are discarded when using host network mode")
        return httputils.json_response({"Id": result["Id"], "Warnings": warnings}, 201)

    def _platform_warnings(self, ref: Any) -> list[str]:
        """dockerd's warning for an image made for another platform than the host's."""
        import platform as platform_
        from pyrunc.engine.api.router.system import GO_ARCH
        try:
            config = self.engine.images.get(ref).config
        except NotFound:
            return []
        host = "linux/" + GO_ARCH.get(platform_.machine(), platform_.machine())
        image = "%s/%s" % (config.get("os") or "linux", config.get("architecture") or "")
        if image.rstrip("/") == host or not config.get("architecture"):
            return []
        return ["The requested image's platform (%s) does not match the detected host "
                "platform (%s) and no specific platform was requested" % (image, host)]

    # GET /containers/json
    def list(self, req: httputils.Request) -> httputils.Response:
        limit = req.query_int("limit", -1)
        return httputils.json_response(self.service.list(
            all=req.query_bool("all"), limit=limit if limit is not None else -1,
            size=req.query_bool("size"), filters=req.filters()))

    def inspect(self, req: httputils.Request) -> httputils.Response:
        return httputils.json_response(self.service.inspect(req.params["name"],
                                                            size=req.query_bool("size")))

    # lifecycle
    def start(self, req: httputils.Request) -> httputils.Response:
        if req.query("checkpoint"):
            raise httputils.Unsupported("checkpoints are not supported by this daemon")
        if req.json_object():
            raise InvalidArgument("starting container with non-empty request body was "
                                  "deprecated since API v1.22 and removed in v1.24")
        c = self._get(req)
        if cstate.is_active(c.state) and not c.state["Paused"]:
            return httputils.no_content(304)
        try:
            self.service.start(c.id, on_created=lambda task: self.waiters.connect(c.id, task))
        except PyruncError:
            if c.host_config.get("AutoRemove"):     # the service removed it (docker run --rm)
                # as dockerd, whoever waits for the removal has the answer before the
                # start's error (the CLI stops waiting once it has that error)
                self.removal_waits.settle(c.id, REMOVAL_SETTLE)
            raise
        return httputils.no_content()

    def _timeout(self, req: httputils.Request) -> int | None:
        return req.query_int("t")

    def stop(self, req: httputils.Request) -> httputils.Response:
        c = self._get(req)
        if not cstate.is_active(c.state):
            return httputils.no_content(304)
        self.service.stop(c.id, timeout=self._timeout(req), signal=req.query("signal") or None)
        return httputils.no_content()

    def restart(self, req: httputils.Request) -> httputils.Response:
        c = self._get(req)
        self.service.restart(c.id, timeout=self._timeout(req),
                             signal=req.query("signal") or None)
        return httputils.no_content()

    def kill(self, req: httputils.Request) -> httputils.Response:
        self.service.kill(req.params["name"], req.query("signal") or "KILL")
        return httputils.no_content()

    def pause(self, req: httputils.Request) -> httputils.Response:
        self.service.pause(req.params["name"])
        return httputils.no_content()

    def unpause(self, req: httputils.Request) -> httputils.Response:
        self.service.unpause(req.params["name"])
        return httputils.no_content()

    def wait(self, req: httputils.Request) -> httputils.Response:
        condition = req.query("condition") or "not-running"
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidArgument("invalid condition: %r" % condition[:40])
        c = self._get(req)
        first = condition
        seen = c.state["StartedAt"]
        if condition == "next-exit" and cstate.is_active(c.state):
            first = "not-running"

        def result() -> Iterator[Any]:
            counted = self.removal_waits.counting(c.id) if condition == "removed" \
                else contextlib.nullcontext()
            with counted:
                doc = self._wait_result(req, c, condition, first, seen)
                if doc is not None:
                    yield doc
        return httputils.stream(result(), "application/json")

    def _wait_result(self, req: httputils.Request, c: Container, condition: str, first: str,
                     seen: str) -> dict[str, Any] | None:
        cid = c.id
        cond = first
        while True:
            if req.disconnected():
                return None
            try:
                doc = self.service.wait(cid, condition=cond, timeout=WAIT_SLICE)
                break
            except TimeoutError:
                pass
            except NotFound:                # removed between two slices: the service
                # kept its exit for the waiters of its removal
                doc = self.service.removed_exit(cid) or _wait_doc(c)
                break
            if cond == "next-exit":     # started since the request came: its exit
                try:
                    if self.service.get(cid).state["StartedAt"] != seen:
                        cond = "not-running"
                except NotFound:
                    pass
        return doc

    def remove(self, req: httputils.Request) -> httputils.Response:
        if req.query_bool("link"):
            raise InvalidArgument("container links are not supported by this daemon")
        self.service.remove(req.params["name"], force=req.query_bool("force"),
                            volumes=req.query_bool("v"))
        return httputils.no_content()

    def rename(self, req: httputils.Request) -> httputils.Response:
        name = req.query("name") or ""
        if not name:
            raise InvalidArgument("Neither old nor new names may be empty")
        self.service.rename(req.params["name"], name)
        return httputils.no_content()

    def update(self, req: httputils.Request) -> httputils.Response:
        body = req.json_object()
        update = {}
        for key, value in body.items():
            if key == "RestartPolicy":
                if isinstance(value, dict) and not value.get("Name") \
                        and not value.get("MaximumRetryCount"):
                    continue
            elif key == "PidsLimit":
                if value is None:
                    continue
            elif not _flag_value(value):
                continue
            update[key] = value
        return httputils.json_response(self.service.update(req.params["name"], update))

    def prune(self, req: httputils.Request) -> httputils.Response:
        return httputils.json_response(self.service.prune(req.filters()))

    # reading
    def top(self, req: httputils.Request) -> httputils.Response:
        return httputils.json_response(self.service.top(req.params["name"],
                                                        req.query("ps_args") or None))

    def stats(self, req: httputils.Request) -> httputils.Response:
        c = self._get(req)
        if req.query_bool("stream", True):
            docs = self.service.stats(c.id, stream=True)
            return httputils.stream(docs, "application/json")
        if req.query_bool("one-shot"):
            return httputils.json_response(self.service.stats(c.id))
        # docker's non-streamed stats: two samples a second apart, so precpu_stats is set
        # (the CLI's CPU %); a stopped container gives one
        doc = None
        stream = self.service.stats(c.id, stream=True)
        try:
            for i, doc in enumerate(stream):
                if i == 1:
                    break
        finally:
            stream.close()
        return httputils.json_response(doc)

    def logs(self, req: httputils.Request) -> httputils.Response:
        out, err = req.query_bool("stdout"), req.query_bool("stderr")
        if not (out or err):
            raise InvalidArgument("Bad parameters: you must choose at least one stream")
        tail_text = (req.query("tail") or "all").strip()
        tail = int(tail_text) if tail_text.isdigit() else None
        since, until = _ns(req.query("since"), "since"), _ns(req.query("until"), "until")
        follow, stamps = req.query_bool("follow"), req.query_bool("timestamps")
        c = self._get(req)
        tty = bool(c.config.get("Tty"))
        cid = c.id
        log: Any
        if not follow:
            log = self.service.logs(cid, stdout=out, stderr=err, tail=tail, since=since,
                                    until=until)
        else:               # followed while the container runs and the client is there
            from pyrunc.engine.logger import parse_log_config, read_logs
            if parse_log_config(c.host_config.get("LogConfig")).type == "none":
                raise FailedPrecondition("configured logging driver does not support reading")

            def running() -> bool:
                if req.disconnected():
                    return False
                try:
                    return cstate.is_active(self.service.get(cid).state)
                except NotFound:
                    return False
            log = read_logs(c.log_path, follow=True, tail=tail, since=since, until=until,
                            stdout=out, stderr=err, running=running)

        def chunks() -> Iterator[bytes]:
            try:
                for m in log:
                    line = m.line
                    if stamps:
                        line = fixed_time(m.time_ns).encode() + b" " + line
                    yield line if tty else frame(STDERR if m.stream == "stderr" else STDOUT,
                                                 line)
            finally:
                log.close()
        content = httputils.RAW_STREAM if tty or not req.version_at_least("1.42") \
            else httputils.MULTIPLEXED_STREAM
        return httputils.stream(chunks(), content)

    def changes(self, req: httputils.Request) -> httputils.Response:
        from pyrunc.engine.container.archive import changes
        return httputils.json_response(changes(self.service, req.params["name"]))

    def export(self, req: httputils.Request) -> httputils.Response:
        from pyrunc.engine.container.archive import export
        return httputils.stream(_closing(export(self.service, req.params["name"])),
                                "application/x-tar")

    # archive (docker cp)
    def _path(self, req: httputils.Request) -> str:
        path = req.query("path") or ""
        if not path:
            raise InvalidArgument("Path cannot be empty")
        return path

    @staticmethod
    def _stat_header(info: dict[str, Any]) -> dict[str, str]:
        text = json.dumps(info, separators=(",", ":")).encode()
        return {"X-Docker-Container-Path-Stat": base64.b64encode(text).decode()}

    def archive_head(self, req: httputils.Request) -> httputils.Response:
        from pyrunc.engine.container.archive import archive_stat
        info = archive_stat(self.service, req.params["name"], self._path(req))
        return httputils.raw(b"", "application/json", headers=self._stat_header(info))

    def archive_get(self, req: httputils.Request) -> httputils.Response:
        from pyrunc.engine.container.archive import archive_get
        info, tar = archive_get(self.service, req.params["name"], self._path(req))
        return httputils.stream(_closing(tar), "application/x-tar",
                                headers=self._stat_header(info))

    def archive_put(self, req: httputils.Request) -> httputils.Response:
        from pyrunc.engine.container.archive import archive_put
        archive_put(self.service, req.params["name"], self._path(req), req.body,
                    no_overwrite_dir_non_dir=req.query_bool("noOverwriteDirNonDir"),
                    copy_uid_gid=req.query_bool("copyUIDGID"))
        return httputils.no_content(200)

    # POST /commit
    def commit(self, req: httputils.Request) -> httputils.Response:
        from pyrunc.engine.container.commit import commit
        ref = req.query("container") or ""
        if not ref:
            raise InvalidArgument("No container name or ID supplied")
        config = req.json(None)
        if config is not None and not isinstance(config, dict):
            raise InvalidArgument("invalid JSON in request body: must be an object")
        repo, tag = req.query("repo") or "", req.query("tag") or ""
        if tag and not repo:
            raise InvalidArgument("a tag needs a repository name")
        pause = req.query_bool("pause", True)
        image_id = commit(self.service, ref, repo + (":" + tag if tag else "") or None,
                          comment=req.query("comment") or None,
                          author=req.query("author") or None,
                          changes=req.query_lists.get("changes", []), pause=pause,
                          config=config)
        return httputils.json_response({"Id": image_id}, 201)

    # resize, attach
    def resize(self, req: httputils.Request) -> httputils.Response:
        h, w = _dimension(req, "h"), _dimension(req, "w")
        c = self._get(req)
        try:
            self.service.resize(c.id, h, w)
        except FailedPrecondition:
            if c.config.get("Tty"):
                raise       # no terminal to size: dockerd ignores it too
        return httputils.no_content(200)

    def attach_ws(self, req: httputils.Request) -> httputils.Response | None:
        """dockerd's attach over a websocket: the same parameters as attach; each stream's
        bytes are frames of their own, never multiplexed (see pyrunc.engine.api.websocket)."""
        c = self._get(req)
        keys, logs, follow, want_in, want_out, want_err = self._attach_options(req, c)
        try:
            accept = websocket.check_handshake(req.headers)
        except websocket.HandshakeError as e:
            return e.response()
        tty = bool(c.config.get("Tty"))

        def connect() -> Any:
            # the client is always read (its close and pings are answered); its data goes to
            # the process's stdin only when asked for
            return websocket.upgrade(req, accept, binary=req.version_at_least("1.28"),
                                     deliver=want_in)
        session_options = {"stdin": True, "close_stdin": want_in and bool(
            c.config.get("StdinOnce")), "raw": True}
        self._attach(c, connect, tty, keys, logs, follow, want_out, want_err, session_options)
        return None

    def _attach_options(self, req: httputils.Request,
                        c: Container) -> tuple[bytes, bool, bool, bool, bool, bool]:
        """(detach keys, logs, stream, stdin, stdout, stderr) of an attach request; Conflict
        for a container that cannot be attached now."""
        keys = parse_detach_keys(req.query("detachKeys") or DEFAULT_DETACH_KEYS)
        logs, follow = req.query_bool("logs"), req.query_bool("stream")
        want_in = req.query_bool("stdin") and bool(c.config.get("OpenStdin"))
        want_out, want_err = req.query_bool("stdout"), req.query_bool("stderr")
        if c.state["Paused"]:
            raise Conflict("container %s is paused, unpause the container before attach"
                           % req.params["name"])
        if c.state["Restarting"]:
            raise Conflict("container %s is restarting, wait until the container is running"
                           % req.params["name"])
        return keys, logs, follow, want_in, want_out, want_err

    def attach(self, req: httputils.Request) -> None:
        c = self._get(req)
        keys, logs, follow, want_in, want_out, want_err = self._attach_options(req, c)
        tty = bool(c.config.get("Tty"))
        self._attach(c, lambda: req.hijack(stream_type(req, tty)), tty, keys, logs, follow,
                     want_out, want_err, {"stdin": want_in,
                                          "close_stdin": bool(c.config.get("StdinOnce"))})

    def _attach(self, c: Container, connect: Any, tty: bool, keys: bytes, logs: bool,
                follow: bool, want_out: bool, want_err: bool,
                session_options: dict[str, Any]) -> None:
        """Take the client's connection (``connect()``), replay the logs, then pass the
        process's stdio both ways while it runs."""
        waiter = self.waiters.add(c.id) if follow else None
        try:
            conn = connect()
        except BaseException:
            if waiter is not None:
                self.waiters.remove(c.id, waiter)
            raise
        session = AttachSession(conn, tty=tty, stdout=want_out, stderr=want_err,
                                detach_keys=keys, **session_options)
        try:
            if logs and (want_out or want_err):
                from pyrunc.engine.logger import read_logs
                session.send_logs(read_logs(c.log_path, stdout=want_out, stderr=want_err))
            if waiter is None:
                return
            self.service._emit(c, "attach")
            attachment = session.wait_until(lambda: self._attachment(c.id, waiter),
                                            waiter.ready)
            if isinstance(attachment, Exception) or attachment is None:
                return
            session.run(attachment)
        except OSError:
            pass                    # the client went away
        finally:
            if waiter is not None:
                self.waiters.remove(c.id, waiter)
            session.finish()

    def _attachment(self, cid: str, waiter: _Waiter) -> Any:
        """The session's attachment once there is one: given by a start, or taken here of a
        container found running; an exception when there will be none."""
        if waiter.ready.is_set():
            return waiter.attachment or waiter.error or NotFound("no attachment")
        try:
            c = self.service.get(cid)
        except NotFound as e:
            return e
        if not cstate.is_active(c.state) or c.state["Restarting"]:
            return None
        if not self.waiters.remove(cid, waiter):    # a start is connecting it right now
            waiter.ready.wait()
            return waiter.attachment or waiter.error
        try:
            return c.task().attach()
        except (PyruncError, OSError) as e:
            return e


def _wait_doc(c: Container) -> dict[str, Any]:
    """The wait result of ``c`` as last seen (a container removed long ago)."""
    return {"StatusCode": c.state.get("ExitCode", 0), "Error": None}


def _closing(stream: Any) -> Iterator[bytes]:
    """The chunks of a tar stream; the stream is closed when the client has it all or goes
    away."""
    try:
        yield from stream
    finally:
        stream.close()


def routes(engine: Engine) -> list[Route]:
    """The container routes."""
    c = Containers(engine)
    engine_api = [
        ("POST", "/containers/create", c.create),
        ("GET", "/containers/json", c.list),
        ("POST", "/containers/prune", c.prune),
        ("POST", "/commit", c.commit),
        ("GET", "/containers/{name}/json", c.inspect),
        ("GET", "/containers/{name}/top", c.top),
        ("GET", "/containers/{name}/logs", c.logs),
        ("GET", "/containers/{name}/changes", c.changes),
        ("GET", "/containers/{name}/export", c.export),
        ("GET", "/containers/{name}/stats", c.stats),
        ("POST", "/containers/{name}/resize", c.resize),
        ("POST", "/containers/{name}/start", c.start),
        ("POST", "/containers/{name}/stop", c.stop),
        ("POST", "/containers/{name}/restart", c.restart),
        ("POST", "/containers/{name}/kill", c.kill),
        ("POST", "/containers/{name}/update", c.update),
        ("POST", "/containers/{name}/rename", c.rename),
        ("POST", "/containers/{name}/pause", c.pause),
        ("POST", "/containers/{name}/unpause", c.unpause),
        ("POST", "/containers/{name}/attach", c.attach),
        ("GET", "/containers/{name}/attach/ws", c.attach_ws),
        ("POST", "/containers/{name}/wait", c.wait),
        ("DELETE", "/containers/{name}", c.remove),
        ("HEAD", "/containers/{name}/archive", c.archive_head),
        ("GET", "/containers/{name}/archive", c.archive_get),
        ("PUT", "/containers/{name}/archive", c.archive_put),
    ]
    return [Route(method, pattern, handler) for method, pattern, handler in engine_api]
