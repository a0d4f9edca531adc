"""The Engine API client: HTTP/1.1 over a unix socket or TCP, API version negotiation.

    api = Client.from_env(host)        # -H, DOCKER_HOST, else unix:///run/pyrunc/docker.sock
    api.get_json("/containers/json", {"all": 1})

Errors from the daemon become ``DaemonError`` (docker's "Error response from daemon: MSG");
a socket nobody listens on becomes ``ConnectError`` (docker's "Cannot connect ..."); an answer
that is not HTTP becomes ``ProtocolError``.

The HTTP client is this module's own, on ``_socket``: one request per connection, responses
framed by Content-Length, chunked transfer coding or the end of the connection, and the
upgraded (hijacked) connection of attach and exec. ``http.client`` would cost every command
about 20 ms of imports (``email.*``, ``ssl``), ``socket`` and ``urllib.parse`` a few more.
"""
from __future__ import annotations

import _socket
import os

from .flags import ConnectError, DaemonError, ProtocolError, TransportError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from .tls import TLSConfig

DEFAULT_HOST = "unix:///run/pyrunc/docker.sock"
DEFAULT_TLS_HOST = "tcp://localhost:2376"   # docker's default when TLS is on and no host given
CLIENT_API_VERSION = "1.47"       # the newest this client speaks; lowered to the daemon's
MIN_API_VERSION = "1.24"
MAX_HEADER_LINE = 65536
MAX_HEADERS = 100
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def quote_plus(value: Any) -> str:
    """urllib.parse.quote_plus of ``str(value)`` (bytes as they are): what urlencode does to
    a query's names and values."""
    data = value if isinstance(value, bytes) else str(value).encode("utf-8")
    return "".join(chr(b) if b in _UNRESERVED else "+" if b == 0x20 else "%%%02X" % b
                   for b in data)


def urlencode(pairs: list[tuple[Any, Any]]) -> str:
    """urllib.parse.urlencode of a list of pairs."""
    return "&".join(quote_plus(k) + "=" + quote_plus(v) for k, v in pairs)


def _quote_path(path: str) -> str:
    """A request target with what a request line cannot carry (controls, spaces, non-ASCII)
    percent-encoded, as Go's client escapes a URL's path."""
    if path.isascii() and all(" " < c < "\x7f" for c in path):
        return path
    return "".join(c if c.isascii() and " " < c < "\x7f" else
                   "".join("%%%02X" % b for b in c.encode("utf-8", "surrogatepass"))
                   for c in path)


class Response:
    """An HTTP response read from ``sock``: ``status``, ``headers`` (lower-case names) and
    the body, read as it comes with ``read`` and ``read1``."""

    def __init__(self, sock: Any, method: str) -> None:
        self.sock = sock
        self.buffered = b""
        status_line = self._line()
        if not status_line:
            raise EOFError("the daemon closed the connection without a response")
        parts = status_line.split(None, 2)
        if (len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or len(parts[1]) != 3
                or not parts[1].isdigit()):
            raise ProtocolError("malformed HTTP status line: %r"
                                % status_line.decode("latin-1")[:100])
        self.status = int(parts[1])
        self.reason = parts[2].decode("latin-1").strip() if len(parts) > 2 else ""
        self.headers: dict[str, str] = {}
        while True:
            line = self._line()
            if line in (b"\r\n", b"\n", b""):
                break
            if len(self.headers) >= MAX_HEADERS:
                raise ProtocolError("more than %d headers" % MAX_HEADERS)
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise ProtocolError("malformed HTTP header line: %r" % line[:100])
            self.headers[name.strip().lower()] = value.strip()
        self._chunked = False
        self._left: int | None = None        # bytes left: of the body, or of the chunk
        self._done = False
        if method == "HEAD" or self.status in (204, 304) or 100 <= self.status < 200:
            self._done = True
        elif "chunked" in self.headers.get("transfer-encoding", "").lower():
            self._chunked = True
            self._left = 0
        elif "content-length" in self.headers:
            length = self.headers["content-length"]
            if not length.isdigit():
                raise ProtocolError("bad Content-Length: %r" % length[:100])
            self._left = int(length)
            self._done = self._left == 0

    def getheaders(self) -> list[tuple[str, str]]:
        return list(self.headers.items())

    def _recv(self) -> bool:
        data = self.sock.recv(65536)
        self.buffered += data
        return bool(data)

    def _line(self) -> bytes:
        while True:
            i = self.buffered.find(b"\n", 0, MAX_HEADER_LINE + 1)
            if i >= 0:
                line, self.buffered = self.buffered[:i + 1], self.buffered[i + 1:]
                return line
            if len(self.buffered) > MAX_HEADER_LINE:
                raise ProtocolError("an HTTP header line longer than %d bytes" % MAX_HEADER_LINE)
            if not self._recv():
                line, self.buffered = self.buffered, b""
                return line

    def _next_chunk(self) -> None:
        size = self._line().split(b";", 1)[0].strip()
        try:
            self._left = int(size, 16)
        except ValueError:
            raise ProtocolError("bad chunk size: %r" % size[:100]) from None
        if self._left < 0:
            raise ProtocolError("bad chunk size: %r" % size[:100])
        if self._left == 0:
            while self._line() not in (b"\r\n", b"\n", b""):   # trailers
                pass
            self._done = True

    def read1(self, n: int = 65536) -> bytes:
        """Up to ``n`` bytes of the body, as soon as some are there; b"" at its end."""
        if self._done or n <= 0:
            return b""
        if self._chunked and self._left == 0:
            self._next_chunk()
            if self._done:
                return b""
        if not self.buffered and not self._recv():
            if self._left is None:
                self._done = True
                return b""
            raise ProtocolError("the daemon closed the connection in the middle of a response")
        take = n if self._left is None else min(n, self._left)
        data, self.buffered = self.buffered[:take], self.buffered[take:]
        if self._left is not None:
            self._left -= len(data)
            if self._left == 0:
                if self._chunked:
                    self._chunk_end()
                else:
                    self._done = True
        return data

    def _chunk_end(self) -> None:
        if self._line() not in (b"\r\n", b"\n"):
            raise ProtocolError("a chunk not followed by CRLF")

    def read(self, n: int = -1) -> bytes:
        """``n`` bytes of the body (fewer at its end), all of it when ``n`` < 0."""
        parts = []
        want = n
        while want != 0:
            data = self.read1(65536 if want < 0 else want)
            if not data:
                break
            parts.append(data)
            if want > 0:
                want -= len(data)
        return b"".join(parts)

    def close(self) -> None:
        self.sock.close()


def _version_tuple(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in v.split("."))
    except ValueError:
        return (0,)


class Client:
    """One daemon address; a connection per request (a retried POST could act twice). With
    ``tls``, every TCP connection is a TLS one (a unix socket stays plain, as docker's)."""

    def __init__(self, host: str, tls: TLSConfig | None = None) -> None:
        self.host = host
        self.tls = tls
        self.version: str | None = os.environ.get("DOCKER_API_VERSION") or None

    @classmethod
    def from_env(cls, host: str | None = None, tls: TLSConfig | None = None) -> Client:
        return cls(parse_host(host or os.environ.get("DOCKER_HOST")
                              or (DEFAULT_TLS_HOST if tls else DEFAULT_HOST)), tls)

    def connect(self) -> Any:
        """A socket connected to the daemon (TLS handshake done when TLS is on)."""
        scheme, _, rest = self.host.partition("://")
        try:
            if scheme == "unix":
                sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
                try:
                    sock.connect(rest)
                except BaseException:
                    sock.close()
                    raise
                return sock
            if scheme == "tcp":
                hostname, _, port = rest.rpartition(":") if ":" in rest else (rest, "", "")
                hostname = hostname.strip("[]")
                return self._secure(_tcp_connect(hostname, int(port or 2375)), hostname)
        except PermissionError:
            raise DaemonError(0, "permission denied while trying to connect to the Docker "
                                 "daemon socket at %s" % self.host) from None
        except (FileNotFoundError, ConnectionRefusedError):
            raise ConnectError(self.host) from None
        raise ConnectError(self.host)

    def _secure(self, sock: Any, hostname: str) -> Any:
        if self.tls is None:
            return sock
        from .tls import wrap
        return wrap(sock, self.tls, hostname)

    def negotiate(self) -> str:
        if self.version is None:
            try:
                status, headers, _ = self._raw("HEAD", "/_ping", None, {}, versioned=False)
            except TransportError:
                # as docker's: a failed ping leaves the client's version, and the request
                # itself reports the failure
                self.version = CLIENT_API_VERSION
                return self.version
            server = headers.get("api-version", "")
            if status >= 400 or not server:
                status, headers, _ = self._raw("GET", "/_ping", None, {}, versioned=False)
                server = headers.get("api-version", "") or "1.24"
            self.version = (server if _version_tuple(server) < _version_tuple(CLIENT_API_VERSION)
                            else CLIENT_API_VERSION)
        return self.version

    def _raw(self, method: str, path: str, body: Any, headers: dict[str, str],
             versioned: bool = True) -> tuple[int, dict[str, str], bytes]:
        r = self.open(method, path, body=body, headers=headers, versioned=versioned)
        data = r.read()
        r.close()
        return r.status, r.headers, data

    def url(self, path: str, query: dict[str, Any] | None = None) -> str:
        if query:
            items = [(k, v) for k, v in query.items() if v is not None]
            q = urlencode([(k, ("1" if v is True else "0" if v is False else v))
                           for k, v in items])
            if q:
                path += "?" + q
        return path

    def request(self, method: str, path: str, query: dict[str, Any] | None = None,
                body: Any = None, headers: dict[str, str] | None = None,
                versioned: bool = True, upgrade: bool = False) -> Response:
        """Send one request on a new connection; returns the response, its headers read."""
        headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            from .jsonio import dumps
            body = dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        target = _quote_path(("/v" + self.negotiate() if versioned else "")
                             + self.url(path, query))
        host = "localhost" if self.host.startswith("unix://") else self.host.partition("://")[2]
        lines = ["%s %s HTTP/1.1" % (method, target), "Host: " + host]
        if upgrade:
            lines += ["Connection: Upgrade", "Upgrade: tcp"]
        else:
            lines.append("Accept-Encoding: identity")
        lines += ["%s: %s" % kv for kv in headers.items()]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append("Content-Length: %d" % len(body or b""))
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            sock = self.connect()
            try:
                sock.sendall(head + body if body else head)
                return Response(sock, method)
            except BaseException:
                sock.close()
                raise
        except EOFError as e:      # Go's words over TCP; the one-line ProtocolError otherwise
            if not self.host.startswith("tcp://"):
                raise ProtocolError(str(e)) from None
            raise self._failed(method, target, "EOF") from None
        except OSError as e:
            if not self.host.startswith("tcp://"):
                raise
            if self.tls is not None:
                from .tls import go_message
                raise self._failed(method, target, go_message(e)) from None
            if isinstance(e, ConnectionResetError):
                raise self._failed(method, target, "read: connection reset by peer") from None
            if isinstance(e, BrokenPipeError):
                raise self._failed(method, target, "write: broken pipe") from None
            raise

    def _failed(self, method: str, target: str, reason: str) -> TransportError:
        """docker's 'error during connect: Get "URL": REASON' for a TCP request (and its
        hint when the server refused the client's certificate)."""
        what = '%s "%s://%s%s": %s' % (method.title(), "https" if self.tls else "http",
                                       self.host.partition("://")[2], target, reason)
        if "bad certificate" in reason:
            return TransportError("the server probably has client authentication (--tlsverify) "
                                  "enabled; check your TLS client certification settings: "
                                  + what)
        return TransportError("error during connect: " + what)

    def open(self, method: str, path: str, query: dict[str, Any] | None = None,
             body: Any = None, headers: dict[str, str] | None = None, versioned: bool = True
             ) -> Response:
        """Send one request; returns the response (its body not read yet)."""
        return self.request(method, path, query, body, headers, versioned)

    def call(self, method: str, path: str, query: dict[str, Any] | None = None,
             body: Any = None, headers: dict[str, str] | None = None) -> bytes:
        r = self.open(method, path, query, body, headers)
        data = r.read()
        r.close()
        if r.status >= 400:
            raise DaemonError(r.status, error_message(data))
        return data

    def get_json(self, path: str, query: dict[str, Any] | None = None) -> Any:
        from .jsonio import loads
        return loads(self.call("GET", path, query) or b"null")

    def post_json(self, path: str, query: dict[str, Any] | None = None,
                  body: Any = None) -> Any:
        from .jsonio import loads
        data = self.call("POST", path, query, body)
        return loads(data) if data.strip() else None

    def stream(self, method: str, path: str, query: dict[str, Any] | None = None,
               body: Any = None, headers: dict[str, str] | None = None
               ) -> Response:
        """A response to read as it comes (logs, events, pull progress); errors raised. The
        command may stay a while: the cyclic garbage collector is turned back on."""
        import gc
        gc.enable()
        r = self.open(method, path, query, body, headers)
        if r.status >= 400:
            raise DaemonError(r.status, error_message(r.read()))
        return r


def _tcp_connect(hostname: str, port: int) -> Any:
    error: OSError = ConnectionRefusedError("no address for %s" % hostname)
    for family, kind, proto, _, address in _socket.getaddrinfo(hostname, port, 0,
                                                                _socket.SOCK_STREAM):
        sock = _socket.socket(family, kind, proto)
        try:
            sock.connect(address)
            return sock
        except OSError as e:
            sock.close()
            error = e
    raise error


def error_message(data: bytes) -> str:
    from .jsonio import loads
    try:
        doc = loads(data)
        if isinstance(doc, dict) and "message" in doc:
            return str(doc["message"])
    except ValueError:
        pass
    return data.decode(errors="replace").strip()


def parse_host(host: str) -> str:
    """docker's -H grammar: unix://PATH, tcp://HOST[:PORT] (port 2375 when none is given, TLS
    or not, as docker's), fd:// is not supported here."""
    if host.startswith("/"):
        return "unix://" + host
    if "://" not in host:
        host = "tcp://" + host
    scheme, _, rest = host.partition("://")
    if scheme in ("http",):
        scheme = "tcp"
    if scheme not in ("unix", "tcp"):
        raise ValueError("Invalid bind address format: %s" % host)
    if scheme == "tcp":
        address = rest.split("/", 1)[0]
        name, colon, port = address.rpartition(":")
        if not colon or name.count(":") and not name.endswith("]") or not port:
            rest = (address.rstrip(":") or "localhost") + ":2375"
    return scheme + "://" + rest


def json_lines(r: Response) -> Iterator[Any]:
    """The JSON messages of a streamed response (pull, push, load, events), one by one."""
    from .jsonio import raw_decode
    buf = ""
    while True:
        chunk = r.read1(65536)
        if not chunk:
            break
        buf += chunk.decode(errors="replace")
        while True:
            buf = buf.lstrip()
            if not buf:
                break
            try:
                doc, end = raw_decode(buf)
            except ValueError:
                break
            buf = buf[end:]
            yield doc
