"""The Docker Engine API over HTTP/1.1: listeners, version negotiation, routing, docker's errors.

Router interface (moby's api/server/router): one module per resource under
``pyrunc.engine.api.router`` (system, images, volumes, build, containers, exec, networks), each
exposing::

    def routes(engine: Engine) -> list[Route]

A :class:`Route` is ``Route(method, pattern, handler)``. ``pattern`` is the path without the
``/vN.NN`` prefix; ``{name}`` matches one path segment, ``{name:.*}`` matches the rest of the path
including slashes (image names such as ``library/busybox:1``); the values arrive URL-decoded in
``request.params``. A handler only translates HTTP: it reads the request
(``request.query``, ``.query_bool``, ``.query_int``, ``.filters()``, ``.json_object()``,
``.body`` for streamed uploads, ``.version``/``.version_at_least("1.42")``), calls the
engine, and returns a ``pyrunc.engine.api.httputils`` response: ``json_response(obj, status)``, ``no_content()``,
``raw(bytes, content_type)`` or ``stream(iterable, content_type)`` (chunked, each item flushed as
it comes: bytes, or a dict written as one JSON line; the iterable is closed when the client goes
away, and ``request.disconnected()`` tells a blocking producer to stop). For attach and exec start
it calls ``request.hijack(content_type)`` (101 UPGRADED when the client sent ``Upgrade: tcp``,
otherwise 200 with the raw stream's type, as dockerd) and uses the returned connection's
``recv``/``sendall``/``close_write``, then returns None. Raising a ``pyrunc.errors`` exception
answers docker's ``{"message": ...}`` with the category's status (NotFound 404, InvalidArgument
400, Conflict/AlreadyExists/FailedPrecondition 409, others 500); any other exception is logged
and answered 500.

Every request is served on its own thread (a stuck client holds only its own); reads time out
after ``READ_TIMEOUT`` seconds of silence, except on hijacked connections.
"""
from __future__ import annotations

import http.server
import importlib
import io
import json
import logging
import os
import re
import socket
import socketserver
import ssl
import threading
import urllib.parse

import pyrunc
from pyrunc.engine.api import httputils
from pyrunc.errors import Conflict, InvalidArgument, NotFound, PyruncError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from pyrunc.engine.daemon import Engine

log = logging.getLogger("pydockerd")

MIN_API_VERSION = "1.24"
MAX_API_VERSION = "1.43"
READ_TIMEOUT = 60.0
ROUTERS = ("system", "images", "volumes", "build", "containers", "exec", "networks")

_VERSION_PREFIX = re.compile(r"^/v([0-9][0-9.]*)(/.*)$")


class Route:
    """One endpoint: ``method`` and ``pattern`` (see the module's text) to ``handler``."""

    def __init__(self, method: str, pattern: str,
                 handler: Callable[[httputils.Request], httputils.Response | None]) -> None:
        self.method = method.upper()
        self.pattern = pattern
        self.handler = handler
        regex = ""
        for part in re.split(r"(\{[^}]+\})", pattern):
            if part.startswith("{"):
                name, _, kind = part[1:-1].partition(":")
                regex += "(?P<%s>%s)" % (name, ".+" if kind == ".*" else "[^/]+")
            else:
                regex += re.escape(part)
        self.regex = re.compile("^" + regex + "$", re.S)

    def __repr__(self) -> str:
        return "Route(%s %s)" % (self.method, self.pattern)


def load_routes(engine: Engine, extra: dict[str, dict[str, Any]] | None = None) -> list[Route]:
    """The routes of every router module of ``ROUTERS`` that exists; ``extra`` maps a router's
    name to more keyword arguments for its ``routes`` (the daemon's configuration for /info,
    its registry settings for pulls)."""
    out: list[Route] = []
    for name in ROUTERS:
        module_name = "pyrunc.engine.api.router." + name
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name == module_name:
                log.warning("API router %s is not in this build", name)
                continue
            raise
        out.extend(module.routes(engine, **(extra or {}).get(name, {})))
    return out


def check_version(version: str) -> None:
    """docker's 400s for a client version outside [MIN_API_VERSION, MAX_API_VERSION]."""
    v = httputils.version_tuple(version)
    if v > httputils.version_tuple(MAX_API_VERSION):
        raise InvalidArgument("client version %s is too new. Maximum supported API version is %s"
                              % (version, MAX_API_VERSION))
    if v < httputils.version_tuple(MIN_API_VERSION):
        raise InvalidArgument("client version %s is too old. Minimum supported API version is "
                              "%s, please upgrade your client to a newer version"
                              % (version, MIN_API_VERSION))


class _Body:
    """The request body as a file: exactly Content-Length bytes, or the chunked encoding
    decoded; reading past its end gives b""."""

    def __init__(self, rfile: io.BufferedIOBase, length: int | None, chunked: bool) -> None:
        self._rfile = rfile
        self._left = length or 0
        self._chunked = chunked
        self._done = not chunked and not length

    def read(self, n: int = -1) -> bytes:
        out = bytearray()
        while not self._done and (n < 0 or len(out) < n):
            piece = self._read1(65536 if n < 0 else min(65536, n - len(out)))
            if not piece:
                break
            out += piece
        return bytes(out)

    def read1(self, n: int = 65536) -> bytes:
        return self._read1(n)

    def _read1(self, n: int) -> bytes:
        if self._done:
            return b""
        if self._chunked and self._left == 0:
            line = self._rfile.readline(1024)
            if not line.endswith(b"\n"):
                raise InvalidArgument("malformed chunked request body")
            try:
                self._left = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise InvalidArgument("malformed chunked request body") from None
            if self._left < 0:
                raise InvalidArgument("malformed chunked request body")
            if self._left == 0:
                while self._rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                self._done = True
                return b""
        piece = self._rfile.read(min(n, self._left))
        if not piece:
            raise InvalidArgument("request body ended early")
        self._left -= len(piece)
        if self._left == 0:
            if self._chunked:
                self._rfile.readline(8)  # the CRLF after a chunk
            else:
                self._done = True
        return piece

    def drain(self, limit: int) -> bool:
        """Read what is left, up to ``limit`` bytes; whether the body's end was reached."""
        read = 0
        while not self._done and read <= limit:
            piece = self._read1(65536)
            if not piece:
                break
            read += len(piece)
        return self._done


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any
    timeout = READ_TIMEOUT

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()

    def version_string(self) -> str:
        return "Docker/%s (linux)" % pyrunc.__version__

    def address_string(self) -> str:
        return str(self.client_address or "unix")

    def log_message(self, format: str, *args: Any) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s", self.address_string(), format % args)

    def log_error(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """Requests the HTTP parser refuses (bad request line, headers too long): docker's
        JSON body, always with a status line, and the connection closed."""
        self.request_version = "HTTP/1.1"
        self.close_connection = True
        reason = message or self.responses.get(code, ("error",))[0]
        body = (json.dumps({"message": reason}) + "\n").encode()
        self.send_response(code, reason)
        for name, value in self._common_headers():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _common_headers(self) -> list[tuple[str, str]]:
        return [("Api-Version", MAX_API_VERSION), ("Docker-Experimental", "false"),
                ("Ostype", "linux")]

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    # --- hijack (called from a handler through Request.hijack) ---
    def hijack(self, content_type: str) -> httputils.Hijacked:
        upgrade = (self.headers.get("Upgrade", "").lower() == "tcp"
                   and "upgrade" in self.headers.get("Connection", "").lower())
        if upgrade:
            lines = ["HTTP/1.1 101 UPGRADED", "Content-Type: " + content_type,
                     "Connection: Upgrade", "Upgrade: tcp"]
        else:
            lines = ["HTTP/1.1 200 OK", "Content-Type: " + content_type]
        lines += ["%s: %s" % h for h in self._common_headers()]
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.wfile.flush()
        self.connection.settimeout(None)
        self.close_connection = True
        self._started = True
        return httputils.Hijacked(self.connection, self.rfile)

    def peer_closed(self) -> bool:
        return httputils.peer_closed(self.connection)

    # --- dispatch ---
    def _dispatch(self) -> None:
        self._started = False
        body: _Body | None = None
        try:
            body = self._body()
            request = self._request(body)
            response = self.server.api.call(request)
            if request.hijacked is not None:
                return
            if response is None:
                response = httputils.no_content()
            self._send(response)
        except Exception as e:  # one request's failure is that request's answer
            if not isinstance(e, PyruncError):
                if isinstance(e, (BrokenPipeError, ConnectionResetError)):
                    self.close_connection = True
                    return
                log.exception("%s %s", self.command, self.path)
            if self._started:
                self.close_connection = True
                return
            status, payload = httputils.error_body(e)
            self._send(httputils.Response(status, payload, "application/json"))
        finally:
            if body is not None and not self.close_connection:
                try:
                    if not body.drain(1 << 20):
                        self.close_connection = True
                except (PyruncError, OSError):
                    self.close_connection = True

    def _body(self) -> _Body:
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        length = None
        if not chunked and self.headers.get("Content-Length"):
            try:
                length = int(self.headers["Content-Length"])
            except ValueError:
                length = -1
            if length < 0:
                self.close_connection = True
                raise InvalidArgument("invalid Content-Length")
        return _Body(self.rfile, length, chunked)

    def _request(self, body: _Body) -> httputils.Request:
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        version = MAX_API_VERSION
        m = _VERSION_PREFIX.match(path)
        if m:
            version, path = m.group(1), m.group(2)
            check_version(version)
        try:
            query = urllib.parse.parse_qs(url.query, keep_blank_values=True,
                                          max_num_fields=1000, errors="strict")
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidArgument("invalid query string: %s" % e) from None
        return httputils.Request(self.command, path, query, self.headers, {}, version,
                                 body, self)

    def _send(self, response: httputils.Response) -> None:
        self._started = True
        self.send_response(response.status)
        for name, value in self._common_headers():
            self.send_header(name, value)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.content_type and response.status != 204:
            self.send_header("Content-Type", response.content_type)
        if isinstance(response, httputils.StreamResponse):
            self._send_stream(response)
            return
        if response.status not in (204, 304):
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)
        self.wfile.flush()

    def _send_stream(self, response: httputils.StreamResponse) -> None:
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        chunks = iter(response.chunks)
        try:
            for item in chunks:
                data = item if isinstance(item, (bytes, bytearray)) else \
                    httputils.json_line(item)
                if not data:
                    continue
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()


class _Threading(socketserver.ThreadingMixIn):
    daemon_threads = True
    block_on_close = False
    request_queue_size = socket.SOMAXCONN  # socketserver's 5 refuses bursts of clients
    api: APIServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("connection from %s", client_address or "unix")


class _UnixServer(_Threading, socketserver.UnixStreamServer):
    pass


class _TLSServer(_Threading, socketserver.TCPServer):
    allow_reuse_address = True
    context: ssl.SSLContext
    address_family = socket.AF_INET

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        # the handshake runs on the connection's own thread (_Handler.setup)
        return self.context.wrap_socket(sock, server_side=True,
                                        do_handshake_on_connect=False), addr


class APIServer:
    """The routes behind any number of listeners (unix sockets, TLS over TCP)."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self._servers: list[socketserver.BaseServer] = []
        self._threads: list[threading.Thread] = []
        self._unix_paths: list[str] = []

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route for (method, path) and its decoded parameters; NotFound "page not found"
        as docker answers for anything else."""
        for route in self.routes:
            if route.method != method:
                continue
            m = route.regex.match(path)
            if m:
                return route, {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()}
        raise NotFound("page not found")

    def call(self, request: httputils.Request) -> httputils.Response | None:
        """Route ``request`` to its handler."""
        route, params = self.match(request.method, request.path)
        request.params = params
        return route.handler(request)

    def listen_unix(self, path: str, group: str | None = "docker") -> None:
        """Serve on a unix socket at ``path`` (a stale socket file is replaced; one that a
        process still serves is Conflict), mode 0660, owned by root and ``group`` when that
        group exists."""
        if _in_use(path):
            raise Conflict("%s is in use: another daemon serves it" % path)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        old = os.umask(0o177)
        try:
            server = _UnixServer(path, _Handler)
        finally:
            os.umask(old)
        gid = _group_id(group) if group else None
        if gid is not None:
            os.chown(path, 0, gid)
        os.chmod(path, 0o660)
        self._add(server)
        self._unix_paths.append(path)

    def listen_tls(self, host: str, port: int, context: ssl.SSLContext) -> tuple[str, int]:
        """Serve TLS on TCP ``host:port``; returns the bound address (port 0 picks one)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        cls = type("_TLSServerFamily", (_TLSServer,), {"address_family": family})
        server = cls((host, port), _Handler)
        server.context = context
        self._add(server)
        return server.server_address[:2]  # type: ignore[no-any-return, index]

    def _add(self, server: Any) -> None:
        server.api = self
        self._servers.append(server)

    def start(self) -> None:
        """Serve every listener on its own thread."""
        for server in self._servers:
            t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                 name="api-listener", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        """Stop accepting, close the listeners and remove the unix sockets. Connections
        being served end with the process (their threads are daemons)."""
        for server in self._servers:
            if self._threads:           # shutdown() waits for a serve_forever that ran
                server.shutdown()
            server.server_close()
        for path in self._unix_paths:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        for t in self._threads:
            t.join(5)


def _in_use(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        probe.settimeout(2)
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def _group_id(name: str) -> int | None:
    import grp
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None
