"""The Engine API client: http.client over a unix socket or TCP, API version negotiation.

    api = Client.from_env(host)        # -H, DOCKER_HOST, else unix:///run/pyrunc/docker.sock
    api.get_json("/containers/json", {"all": 1})

Errors from the daemon become ``DaemonError`` (docker's "Error response from daemon: MSG");
a socket nobody listens on becomes ``ConnectError`` (docker's "Cannot connect ...").
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import urllib.parse

from .flags import ConnectError, DaemonError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_HOST = "unix:///run/pyrunc/docker.sock"
CLIENT_API_VERSION = "1.47"       # the newest this client speaks; lowered to the daemon's
MIN_API_VERSION = "1.24"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None = None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not None:
            s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def _version_tuple(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in v.split("."))
    except ValueError:
        return (0,)


class Client:
    """One daemon address; a connection per request (a retried POST could act twice)."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.version: str | None = os.environ.get("DOCKER_API_VERSION") or None

    @classmethod
    def from_env(cls, host: str | None = None) -> Client:
        return cls(parse_host(host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST))

    def connection(self, timeout: float | None = None) -> http.client.HTTPConnection:
        scheme, _, rest = self.host.partition("://")
        if scheme == "unix":
            return _UnixConnection(rest, timeout)
        if scheme == "tcp":
            hostname, _, port = rest.partition(":")
            return http.client.HTTPConnection(hostname, int(port or 2375), timeout=timeout)
        raise ConnectError(self.host)

    def negotiate(self) -> str:
        if self.version is None:
            status, headers, _ = self._raw("HEAD", "/_ping", None, {}, versioned=False)
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
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def url(self, path: str, query: dict[str, Any] | None = None) -> str:
        if query:
            items = [(k, v) for k, v in query.items() if v is not None]
            q = urllib.parse.urlencode([(k, ("1" if v is True else "0" if v is False else v))
                                        for k, v in items])
            if q:
                path += "?" + q
        return path

    def open(self, method: str, path: str, query: dict[str, Any] | None = None,
             body: Any = None, headers: dict[str, str] | None = None, versioned: bool = True
             ) -> http.client.HTTPResponse:
        """Send one request; returns the response (its body not read yet)."""
        headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        full = ("/v" + self.negotiate() if versioned else "") + self.url(path, query)
        conn = self.connection()
        try:
            conn.request(method, full, body=body, headers=headers)
            return conn.getresponse()
        except PermissionError:
            raise DaemonError(0, "permission denied while trying to connect to the Docker "
                                 "daemon socket at %s" % self.host) from None
        except (FileNotFoundError, ConnectionRefusedError):
            raise ConnectError(self.host) from None

    def call(self, method: str, path: str, query: dict[str, Any] | None = None,
             body: Any = None, headers: dict[str, str] | None = None) -> bytes:
        r = self.open(method, path, query, body, headers)
        data = r.read()
        if r.status >= 400:
            raise DaemonError(r.status, error_message(data))
        return data

    def get_json(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return json.loads(self.call("GET", path, query) or b"null")

    def post_json(self, path: str, query: dict[str, Any] | None = None,
                  body: Any = None) -> Any:
        data = self.call("POST", path, query, body)
        return json.loads(data) if data.strip() else None

    def stream(self, method: str, path: str, query: dict[str, Any] | None = None,
               body: Any = None, headers: dict[str, str] | None = None
               ) -> http.client.HTTPResponse:
        """A response to read as it comes (logs, events, pull progress); errors raised."""
        r = self.open(method, path, query, body, headers)
        if r.status >= 400:
            raise DaemonError(r.status, error_message(r.read()))
        return r


def error_message(data: bytes) -> str:
    try:
        doc = json.loads(data)
        if isinstance(doc, dict) and "message" in doc:
            return str(doc["message"])
    except ValueError:
        pass
    return data.decode(errors="replace").strip()


def parse_host(host: str) -> str:
    """docker's -H grammar: unix://PATH, tcp://HOST:PORT, fd:// is not supported here."""
    if host.startswith("/"):
        return "unix://" + host
    if "://" not in host:
        return "tcp://" + host
    scheme = host.split("://", 1)[0]
    if scheme in ("http",):
        return "tcp://" + host.split("://", 1)[1]
    if scheme not in ("unix", "tcp"):
        raise ValueError("Invalid bind address format: %s" % host)
    return host


def json_lines(r: http.client.HTTPResponse) -> Any:
    """The JSON messages of a streamed response (pull, push, load, events), one by one."""
    decoder = json.JSONDecoder()
    buf = ""
    while True:
        chunk = r.read1(65536) if hasattr(r, "read1") else r.read(65536)
        if not chunk:
            break
        buf += chunk.decode(errors="replace")
        while True:
            buf = buf.lstrip()
            if not buf:
                break
            try:
                doc, end = decoder.raw_decode(buf)
            except ValueError:
                break
            buf = buf[end:]
            yield doc
