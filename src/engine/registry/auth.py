"""Registry authentication: the ``WWW-Authenticate`` challenge, Basic, and Bearer tokens.

A registry answers ``GET /v2/`` with 401 and a challenge. For ``Basic`` the client sends the
stored credentials on every request. For ``Bearer`` it asks the token server named by
``realm`` for a token covering the scopes it needs (``repository:library/busybox:pull``),
anonymously or with the credentials, and caches the token until it expires.
"""
from __future__ import annotations

import base64
import re
import threading
import time

from pyrunc import errors
from pyrunc.errors import Unavailable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from pyrunc.engine.registry.config import Credentials
    from pyrunc.engine.registry.transport import Transport

TOKEN_DEFAULT_LIFETIME = 60
TOKEN_EXPIRY_MARGIN = 5

_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(,|$)')


class Unauthorized(errors.Unauthorized):
    """The registry or its token server refused the credentials (or asked for some)."""


class Challenge:
    __slots__ = ("scheme", "params")

    def __init__(self, scheme: str, params: dict[str, str]) -> None:
        self.scheme = scheme.lower()
        self.params = params

    def __repr__(self):
        return "Challenge(%r, %r)" % (self.scheme, self.params)


def parse_challenges(header: str) -> Any:
    """Parse a ``WWW-Authenticate`` value into challenges (scheme + parameters)."""
    challenges = []
    rest = (header or "").strip()
    while rest:
        match = re.match(r"([A-Za-z][A-Za-z0-9_-]*)\s*", rest)
        if not match:
            break
        scheme = match.group(1)
        rest = rest[match.end():]
        params = {}
        while rest:
            pmatch = _PARAM_RE.match(rest)
            if not pmatch:
                break
            value = pmatch.group(2)
            value = re.sub(r"\\(.)", r"\1", value) if value is not None else pmatch.group(3)
            params[pmatch.group(1).lower()] = value
            rest = rest[pmatch.end():]
            if not pmatch.group(4):
                break
        challenges.append(Challenge(scheme, params))
        rest = rest.lstrip(", ")
    return challenges


def repository_scope(name: str, actions: Any) -> str:
    return "repository:%s:%s" % (name, ",".join(actions))


def basic_header(credentials: Credentials) -> str:
    raw = ("%s:%s" % (credentials.username, credentials.password)).encode()
    return "Basic " + base64.b64encode(raw).decode()


TOKEN_BODY_LIMIT = 1024 * 1024


class Authenticator:
    """Authorization headers for one registry endpoint, from its challenge.

    Thread-safe: layer downloads share it. ``transport`` (transport.Transport) reaches the
    token server under the registry client's rules: the realm must be https unless its host
    is insecure, the user's credentials go to the realm's origin only (never to where it
    redirects), and the answer is read up to ``TOKEN_BODY_LIMIT`` bytes.
    """

    def __init__(self, credentials: Credentials, transport: Transport, timeout: float = 30) -> None:
        self.credentials = credentials
        self.transport = transport
        self.timeout = timeout
        self.challenge: Any = None
        self._tokens: dict[Any, Any] = {}
        self._lock = threading.Lock()

    def set_challenge(self, header: str) -> bool:
        for challenge in parse_challenges(header):
            if challenge.scheme in ("bearer", "basic"):
                self.challenge = challenge
                return True
        return False

    def header(self, scopes: Any) -> str | None:
        """The ``Authorization`` value for a request needing ``scopes`` (None: send none)."""
        if self.challenge is None:
            return None
        if self.challenge.scheme == "basic":
            return basic_header(self.credentials) if self.credentials.username else None
        return "Bearer " + self.token(scopes)

    def invalidate(self, scopes: Any) -> None:
        with self._lock:
            self._tokens.pop(tuple(sorted(scopes)), None)

    def token(self, scopes: Any) -> str:
        key = tuple(sorted(scopes))
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached[1] > time.monotonic():
                return cached[0]
            token, lifetime = self._fetch(key)
            self._tokens[key] = (token, time.monotonic() + max(lifetime - TOKEN_EXPIRY_MARGIN, 1))
            return token

    def _get(self, method, realm, params, authorization=None, data=None, headers=None):
        import urllib.parse
        from pyrunc.engine.registry.transport import CONNECT_TIMEOUT, origin
        url = realm
        if params:
            url += ("&" if "?" in realm else "?") + urllib.parse.urlencode(params)
        return self.transport.send(method, url, authorization=authorization,
                                   auth_origin=origin(realm), data=data, headers=headers,
                                   timeout=(CONNECT_TIMEOUT, self.timeout),
                                   body_limit=TOKEN_BODY_LIMIT)

    def _fetch(self, scopes):
        realm = self.challenge.params.get("realm")
        if not realm:
            raise Unauthorized("registry's bearer challenge has no realm")
        params = [("scope", scope) for scope in scopes]
        if self.challenge.params.get("service"):
            params.insert(0, ("service", self.challenge.params["service"]))
        authorization = None
        if self.credentials.identity_token:
            return self._fetch_oauth(realm, scopes)
        if self.credentials.username:
            params.append(("account", self.credentials.username))
            authorization = basic_header(self.credentials)
        response = self._get("GET", realm, params, authorization)
        if response.status_code in (401, 403):
            detail = _error_detail(response) or "incorrect username or password"
            raise Unauthorized("Get %s: unauthorized: %s" % (realm, detail))
        if response.status_code != 200:
            raise Unavailable("Get %s: token server answered %d %s"
                              % (realm, response.status_code, response.reason))
        return _parse_token(realm, response)

    def _fetch_oauth(self, realm, scopes):
        import urllib.parse
        form = {"grant_type": "refresh_token", "refresh_token": self.credentials.identity_token,
                "client_id": "pyrunc", "scope": " ".join(scopes)}
        if self.challenge.params.get("service"):
            form["service"] = self.challenge.params["service"]
        response = self._get("POST", realm, None, data=urllib.parse.urlencode(form),
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        if response.status_code != 200:
            raise Unauthorized("Post %s: unauthorized: %s"
                               % (realm, _error_detail(response) or response.reason))
        return _parse_token(realm, response)


def _parse_token(realm, response):
    try:
        body = response.json()
    except ValueError:
        raise Unavailable("Get %s: token server answered with invalid JSON" % realm)
    if not isinstance(body, dict):
        raise Unavailable("Get %s: token server answered without a token" % realm)
    token = body.get("token") or body.get("access_token")
    if not token or not isinstance(token, str):
        raise Unavailable("Get %s: token server answered without a token" % realm)
    if not token.isascii() or not token.isprintable() or " " in token:
        raise Unavailable("Get %s: token server answered with a malformed token" % realm)
    lifetime = body.get("expires_in") or TOKEN_DEFAULT_LIFETIME
    try:
        lifetime = int(lifetime)
    except (TypeError, ValueError):
        lifetime = TOKEN_DEFAULT_LIFETIME
    return token, lifetime


def _error_detail(response):
    """One short line from a token server's error body."""
    try:
        body = response.json()
    except ValueError:
        return _one_line(response.text)
    if isinstance(body, dict):
        if isinstance(body.get("errors"), list):
            return _one_line("; ".join(str(e.get("message", "")) for e in body["errors"]
                                       if isinstance(e, dict)))
        return _one_line(str(body.get("details") or body.get("error") or ""))
    return ""


def _one_line(text, limit=200):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."


def _reason(err):
    """A short reason for a requests exception (connection refused, TLS failure...)."""
    text = str(err)
    for marker in ("Connection refused", "certificate verify failed", "Name or service not known",
                   "timed out", "Connection reset by peer", "wrong version number"):
        if marker in text:
            return marker[0].lower() + marker[1:]
    return text
