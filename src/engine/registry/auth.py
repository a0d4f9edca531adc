"""Registry authentication: the ``WWW-Authenticate`` challenge, Basic, and Bearer tokens.

A registry answers ``GET /v2/`` with 401 and a challenge. For ``Basic`` the client sends the
stored credentials on every request. For ``Bearer`` it asks the token server named by
``realm`` for a token covering the scopes it needs (``repository:library/busybox:pull``),
anonymously or with the credentials, and caches the token until it expires.
"""
import base64
import re
import threading
import time

from pyrunc import errors
from pyrunc.errors import Unavailable

TOKEN_DEFAULT_LIFETIME = 60
TOKEN_EXPIRY_MARGIN = 5

_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(,|$)')


class Unauthorized(errors.Unauthorized):
    """The registry or its token server refused the credentials (or asked for some)."""


class Challenge:
    __slots__ = ("scheme", "params")

    def __init__(self, scheme, params):
        self.scheme = scheme.lower()
        self.params = params

    def __repr__(self):
        return "Challenge(%r, %r)" % (self.scheme, self.params)


def parse_challenges(header):
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


def repository_scope(name, actions):
    return "repository:%s:%s" % (name, ",".join(actions))


def basic_header(credentials):
    raw = ("%s:%s" % (credentials.username, credentials.password)).encode()
    return "Basic " + base64.b64encode(raw).decode()


class Authenticator:
    """Authorization headers for one registry endpoint, from its challenge.

    Thread-safe: layer downloads share it. ``session`` is the requests session used to reach
    the token server (it carries the endpoint's TLS settings).
    """

    def __init__(self, credentials, session, timeout=30, verify=True):
        self.credentials = credentials
        self.session = session
        self.verify = verify
        self.timeout = timeout
        self.challenge = None
        self._tokens = {}
        self._lock = threading.Lock()

    def set_challenge(self, header):
        for challenge in parse_challenges(header):
            if challenge.scheme in ("bearer", "basic"):
                self.challenge = challenge
                return True
        return False

    def header(self, scopes):
        """The ``Authorization`` value for a request needing ``scopes`` (None: send none)."""
        if self.challenge is None:
            return None
        if self.challenge.scheme == "basic":
            return basic_header(self.credentials) if self.credentials.username else None
        return "Bearer " + self.token(scopes)

    def invalidate(self, scopes):
        with self._lock:
            self._tokens.pop(tuple(sorted(scopes)), None)

    def token(self, scopes):
        key = tuple(sorted(scopes))
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached[1] > time.monotonic():
                return cached[0]
            token, lifetime = self._fetch(key)
            self._tokens[key] = (token, time.monotonic() + max(lifetime - TOKEN_EXPIRY_MARGIN, 1))
            return token

    def _fetch(self, scopes):
        import requests
        realm = self.challenge.params.get("realm")
        if not realm:
            raise Unauthorized("registry's bearer challenge has no realm")
        params = [("scope", scope) for scope in scopes]
        if self.challenge.params.get("service"):
            params.insert(0, ("service", self.challenge.params["service"]))
        auth = None
        if self.credentials.identity_token:
            return self._fetch_oauth(realm, scopes)
        if self.credentials.username:
            params.append(("account", self.credentials.username))
            auth = (self.credentials.username, self.credentials.password)
        try:
            response = self.session.get(realm, params=params, auth=auth, timeout=self.timeout,
                                        verify=self.verify)
        except requests.RequestException as err:
            raise Unavailable("Get %s: %s" % (realm, _reason(err)))
        if response.status_code in (401, 403):
            detail = _error_detail(response) or "incorrect username or password"
            raise Unauthorized("Get %s: unauthorized: %s" % (realm, detail))
        if response.status_code != 200:
            raise Unavailable("Get %s: token server answered %d %s"
                              % (realm, response.status_code, response.reason))
        return _parse_token(realm, response)

    def _fetch_oauth(self, realm, scopes):
        import requests
        form = {"grant_type": "refresh_token", "refresh_token": self.credentials.identity_token,
                "client_id": "pyrunc", "scope": " ".join(scopes)}
        if self.challenge.params.get("service"):
            form["service"] = self.challenge.params["service"]
        try:
            response = self.session.post(realm, data=form, timeout=self.timeout,
                                         verify=self.verify)
        except requests.RequestException as err:
            raise Unavailable("Post %s: %s" % (realm, _reason(err)))
        if response.status_code != 200:
            raise Unauthorized("Post %s: unauthorized: %s"
                               % (realm, _error_detail(response) or response.reason))
        return _parse_token(realm, response)


def _parse_token(realm, response):
    try:
        body = response.json()
    except ValueError:
        raise Unavailable("Get %s: token server answered with invalid JSON" % realm)
    token = body.get("token") or body.get("access_token")
    if not token:
        raise Unavailable("Get %s: token server answered without a token" % realm)
    lifetime = body.get("expires_in") or TOKEN_DEFAULT_LIFETIME
    try:
        lifetime = int(lifetime)
    except (TypeError, ValueError):
        lifetime = TOKEN_DEFAULT_LIFETIME
    return token, lifetime


def _error_detail(response):
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200]
    if isinstance(body, dict):
        if body.get("errors"):
            return "; ".join(e.get("message", "") for e in body["errors"] if isinstance(e, dict))
        return body.get("details") or body.get("error") or ""
    return ""


def _reason(err):
    """A short reason for a requests exception (connection refused, TLS failure...)."""
    text = str(err)
    for marker in ("Connection refused", "certificate verify failed", "Name or service not known",
                   "timed out", "Connection reset by peer", "wrong version number"):
        if marker in text:
            return marker[0].lower() + marker[1:]
    return text
