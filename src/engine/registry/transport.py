"""HTTP for the registry client: where credentials may go, which redirects are followed, and
how much of a response is read.

* Credentials (an ``Authorization`` header: Basic, or a registry's Bearer token) are sent only
  to the origin (scheme, host, port) they belong to: the registry endpoint, or for the token
  request the token server the registry's challenge names. A request or a redirect to any
  other origin, such as an upload ``Location`` on another host, carries none.
* Redirects are followed by hand, at most ``MAX_REDIRECTS`` in a row, each target under the
  rules of the original request: https or http only, plain http only to a host the options
  call insecure (loopback by default, as in docker), TLS verified unless the *target's* host
  is insecure, with the target's own ``certs.d`` files.
* Small bodies (errors, tokens, tag lists, manifests, configs) are read up to a size limit
  and within a deadline, so an endless or trickling body ends in one error line.

``requests`` is imported lazily.
"""
from __future__ import annotations

import threading
import time
import urllib.parse

from pyrunc.errors import InvalidArgument, Unavailable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from pyrunc.engine.registry.config import Endpoint, RegistryOptions
    from requests.models import Response

CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60
MAX_REDIRECTS = 10
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
SMALL_BODY_LIMIT = 4 * 1024 * 1024      # a whole response read into memory
ERROR_BODY_LIMIT = 64 * 1024            # what an error response's text is taken from
BODY_DEADLINE = 120.0                   # seconds to receive a small body, however it trickles
_READ_CHUNK = 64 * 1024


class Refused(Unavailable):
    """A URL or redirect the rules do not allow, or too many redirects: not worth a retry."""


def _tls_adapter(context, pool_size):
    """A requests adapter whose connections use ``context`` (an endpoint's TLS settings)."""
    from requests.adapters import HTTPAdapter

    class TLSAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            kwargs["ssl_context"] = context
            return super().init_poolmanager(*args, **kwargs)

    return TLSAdapter(pool_connections=4, pool_maxsize=pool_size)


def origin(url: str) -> tuple:
    """``(scheme, host, port)`` of a URL, the default port filled in."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidArgument("invalid URL %s" % _short(url)) from None
    scheme = parts.scheme.lower()
    if port is None:
        port = 443 if scheme == "https" else 80
    return scheme, (parts.hostname or "").lower(), port


def host_port(url: str) -> str:
    """``host[:port]`` of a URL as the registry options name hosts (no user info)."""
    return urllib.parse.urlsplit(url).netloc.rpartition("@")[2].lower()


def _short(text, limit=200):
    text = str(text)
    return text if len(text) <= limit else text[:limit] + "..."


def strip_query(url: str) -> str:
    return url.split("?")[0]


class Transport:
    """A requests session with the registry client's rules; see the module's docstring.

    ``options`` (RegistryOptions) decides, per host, whether plain HTTP is allowed and
    whether TLS is verified; ``endpoint`` is the registry's own base URL and TLS settings.
    """

    def __init__(self, endpoint: Endpoint, options: RegistryOptions, pool_size: int = 16) -> None:
        import requests
        from requests.adapters import HTTPAdapter
        self.endpoint = endpoint
        self.options = options
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "pyrunc/0.1 (docker-compatible)"
        self.pool_size = pool_size
        self.origin = origin(endpoint.url)
        self._verify = {}
        # other origins (redirect targets, a token server) get sessions of their own, made
        # once under the lock: mounting adapters on a session other threads use is unsafe
        self._sessions: dict = {}
        self._lock = threading.Lock()
        if endpoint.secure:
            self.session.mount(endpoint.url + "/", _tls_adapter(endpoint.ssl_context(),
                                                                pool_size))
            if not endpoint.verify_tls:
                import urllib3
                urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        else:
            self.session.mount(endpoint.url + "/", HTTPAdapter(pool_maxsize=pool_size))
        # passed on every request: an explicit value wins over REQUESTS_CA_BUNDLE in the
        # environment (the endpoint's SSL context already holds the roots it needs)
        self._verify[self.origin] = endpoint.verify_tls or not endpoint.secure

    def close(self) -> None:
        self.session.close()
        for session in list(self._sessions.values()):
            session.close()

    def allowed(self, url: str, context: str) -> bool:
        """Check ``url`` against the scheme and host rules; returns whether to verify TLS.

        Raises Unavailable naming ``context`` when the URL may not be used."""
        key = origin(url)
        if key in self._verify:
            return self._verify[key]
        with self._lock:
            if key not in self._verify:
                self._verify[key] = self._check(url, key, context)
            return self._verify[key]

    def _check(self, url, key, context):
        scheme, host = key[0], host_port(url)
        if scheme not in ("http", "https") or not key[1]:
            raise Refused("%s: refused %s: only http and https URLs are followed"
                              % (context, _short(strip_query(url))))
        if "@" in urllib.parse.urlsplit(url).netloc:
            raise Refused("%s: refused %s: a URL with user information"
                              % (context, _short(strip_query(url))))
        secure = self.options.is_secure(host)
        if scheme == "http" and secure:
            raise Refused("%s: refused %s: plain HTTP is allowed only to insecure "
                              "registries, and %s is not one" % (context,
                                                                 _short(strip_query(url)),
                                                                 host))
        import requests
        session = requests.Session()
        session.headers["User-Agent"] = self.session.headers["User-Agent"]
        if scheme == "https":
            self._mount_tls(session, url, host, secure)
        self._sessions[key] = session
        return secure or scheme == "http"

    def _mount_tls(self, session, url, host, secure):
        from pyrunc.engine.registry.config import Endpoint
        ca_files, pairs = self.options.tls_files(host)
        parts = urllib.parse.urlsplit(url)
        base = "https://" + parts.netloc
        endpoint = Endpoint(base, host, verify_tls=secure, ca_files=ca_files,
                            client_certs=pairs)
        session.mount(base + "/", _tls_adapter(endpoint.ssl_context(), 4))
        if not secure:
            import urllib3
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    def send(self, method: str, url: str, *, authorization: str | None = None,
             auth_origin: Any = None, headers: dict | None = None, stream: bool = False,
             data: Any = None, timeout: Any = None, body_limit: int = SMALL_BODY_LIMIT) -> Response:
        """Send one request, following redirects under the rules; the final response.

        ``authorization`` goes only to ``auth_origin`` (default: the endpoint's origin).
        Unless ``stream``, the body is read here, at most ``body_limit`` bytes; an error
        response's body is always read (its first ``ERROR_BODY_LIMIT`` bytes).
        """
        import requests
        auth_origin = self.origin if auth_origin is None else auth_origin
        timeout = timeout or (CONNECT_TIMEOUT, READ_TIMEOUT)
        what = '%s "%s"' % (method.capitalize(), _short(strip_query(url)))
        replayable = data is None or isinstance(data, (bytes, str))
        for hop in range(MAX_REDIRECTS + 1):
            verify = self.allowed(url, what)
            request_headers = dict(headers or {})
            if authorization and origin(url) == auth_origin:
                request_headers["Authorization"] = authorization
            try:
                session = self._sessions.get(origin(url), self.session)
                response = session.request(method, url, headers=request_headers,
                                           data=data, stream=True, timeout=timeout,
                                           verify=verify, allow_redirects=False)
            except requests.RequestException as err:
                from pyrunc.engine.registry.auth import _reason
                raise Unavailable('%s "%s": %s' % (method.capitalize(),
                                                   _short(strip_query(url)), _reason(err)))
            location = response.headers.get("Location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                break
            response.close()
            if hop == MAX_REDIRECTS:
                raise Refused("%s: stopped after %d redirects" % (what, MAX_REDIRECTS))
            url = urllib.parse.urljoin(url, location)
            if response.status_code == 303 or (response.status_code in (301, 302)
                                               and method == "POST"):
                method, data = ("HEAD" if method == "HEAD" else "GET"), None
                headers = {k: v for k, v in (headers or {}).items()
                           if k.lower() not in ("content-type", "content-length",
                                                "content-range")}
            elif data is not None and not replayable:
                raise Refused("%s: redirected to %s with a streamed body that cannot be "
                                  "sent again" % (what, _short(strip_query(url))))
        if method == "HEAD":
            response.close()
        elif response.status_code >= 300:
            buffer(response, ERROR_BODY_LIMIT, what, truncate=True)
        elif not stream:
            buffer(response, body_limit, what)
        return response


def buffer(response: Response, limit: int, what: str, truncate: bool = False) -> None:
    """Read a response's body now (``response.content`` then holds it), bounded."""
    if response._content_consumed:
        return
    try:
        body = read_limited(response, limit, what, truncate=truncate)
    finally:
        response.close()
    response._content = body
    response._content_consumed = True


def read_limited(response: Response, limit: int, what: str, truncate: bool = False,
                 deadline: float | None = None) -> bytes:
    """At most ``limit`` bytes of a streamed body, within ``BODY_DEADLINE`` seconds.

    More than ``limit`` is InvalidArgument (``what: larger than the N bytes allowed``), or with
    ``truncate`` cut short; a body still arriving at the deadline, or a connection broken
    before its end, is Unavailable."""
    length = response.headers.get("Content-Length", "")
    if not truncate and length.isdigit() and int(length) > limit:
        response.close()
        raise InvalidArgument("%s: larger than the %d bytes allowed (Content-Length %s)"
                              % (what, limit, length))
    end = time.monotonic() + (BODY_DEADLINE if deadline is None else deadline)
    raw = response.raw
    parts, total = [], 0
    try:
        while True:
            if time.monotonic() > end:
                raise Unavailable("%s: the body did not arrive within %g s"
                                  % (what, BODY_DEADLINE if deadline is None else deadline))
            chunk = raw.read1(_READ_CHUNK, decode_content=True)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                if truncate:
                    parts.append(chunk[:limit - (total - len(chunk))])
                    break
                raise InvalidArgument("%s: larger than the %d bytes allowed" % (what, limit))
            parts.append(chunk)
    except (InvalidArgument, Unavailable):
        response.close()
        raise
    except Exception as err:        # urllib3's protocol and decoding errors, OSError
        response.close()
        if truncate:
            return b"".join(parts)
        from pyrunc.engine.registry.auth import _reason
        raise Unavailable("%s: reading the body: %s" % (what, _short(_reason(err))))
    return b"".join(parts)
