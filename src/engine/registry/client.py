"""A client for the registry HTTP API v2 (the OCI distribution spec).

:class:`Registry` is one registry domain: it finds a working endpoint (mirrors first for
``docker.io`` pulls, HTTPS then plain HTTP for insecure registries), pings it, and logs in.
:class:`Repository` is one repository on it: manifests (get, head, put), blobs (get with
resume, head, mount, monolithic or chunked upload) and tags. Errors the registry reports come
back as ``pyrunc.errors`` categories with docker's wording.

``requests`` is imported lazily: importing this module costs nothing on runtime hot paths.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.parse

from pyrunc.errors import InvalidArgument, NotFound, Unavailable

from pyrunc.engine.reference import compute_digest, validate_digest, verify_digest
from pyrunc.engine.registry import mediatypes
from pyrunc.engine.registry.auth import (Authenticator, Unauthorized, repository_scope, _one_line,
                                         _reason)
from pyrunc.engine.registry.config import AuthFile, Credentials, RegistryOptions, server_domain
from pyrunc.engine.registry.transport import (Refused, Transport, _tls_adapter, origin,
                                              read_limited)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn
    from collections.abc import Iterator
    from collections.abc import Callable
    from pyrunc.engine.content.store import Writer
    from pyrunc.engine.registry.config import Endpoint
    from requests.models import Response

DOWNLOAD_CHUNK = 1 << 20
DOWNLOAD_RETRIES = 5
UPLOAD_RETRIES = 3
RETRY_BACKOFF = 0.2
RETRY_BACKOFF_MAX = 5.0


class Manifest:
    """A manifest or index as the registry served it: the raw bytes are what the digest covers."""

    __slots__ = ("media_type", "digest", "data", "_json")

    def __init__(self, media_type: str, digest: str, data: bytes) -> None:
        self.media_type = media_type
        self.digest = digest
        self.data = data
        self._json = None

    @property
    def json(self) -> Any:
        if self._json is None:
            self._json = json.loads(self.data)
        return self._json

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def is_index(self) -> bool:
        return self.media_type in mediatypes.INDEXES

    def __repr__(self):
        return "Manifest(%r, %r)" % (self.media_type, self.digest)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def registry_error_text(response: Response) -> str:
    """docker's text for a registry error body: ``manifest unknown: manifest unknown``."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
        parts = []
        for error in body["errors"]:
            if not isinstance(error, dict):
                continue
            code = str(error.get("code", "unknown")).lower().replace("_", " ")
            message = error.get("message") or code
            parts.append("%s: %s" % (code, message))
        if parts:
            return _one_line("; ".join(parts), 300)
    text = _one_line(response.text) if response.text else ""
    return "%d %s%s" % (response.status_code, response.reason or "",
                        (": " + text) if text else "")


def _error_codes(response):
    try:
        body = response.json()
    except ValueError:
        return set()
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        return set()
    return {e.get("code") for e in body["errors"] if isinstance(e, dict)}


def raise_for_response(response: Response, context: str) -> NoReturn:
    """Raise the category matching an error response; ``context`` prefixes the message."""
    text = context + ": " + registry_error_text(response)
    status = response.status_code
    if status == 404:
        raise NotFound(text)
    if status in (401, 403):
        raise Unauthorized(text)
    if status in (400, 405, 411, 413, 416):
        raise InvalidArgument(text)
    raise Unavailable(text)


class Connection:
    """One endpoint of a registry: its transport, its authenticator and the ping state.

    Credentials go only to the endpoint's own origin; redirects follow the transport's rules
    (see transport.py)."""

    def __init__(self, endpoint: Endpoint, credentials: Credentials, pool_size: int = 16,
                 options: RegistryOptions | None = None) -> None:
        self.endpoint = endpoint
        self.url = endpoint.url
        self.transport = Transport(endpoint, options or RegistryOptions(), pool_size)
        self.session = self.transport.session
        self.auth = Authenticator(credentials, self.transport)
        self._pinged = False
        self._ping_lock = threading.Lock()

    def close(self) -> None:
        self.transport.close()

    def _own(self, url):
        return origin(url) == self.transport.origin

    def ping(self) -> None:
        """``GET /v2/``: check the endpoint speaks the v2 API and learn its auth challenge."""
        with self._ping_lock:
            if self._pinged:
                return
            url = self.url + "/v2/"
            response = self.transport.send("GET", url)
            # a challenge counts only when the registry's own origin gives it
            if response.status_code == 401 and self._own(response.url):
                self.auth.set_challenge(response.headers.get("WWW-Authenticate", ""))
            elif response.status_code != 200:
                raise Unavailable('Get "%s": registry answered %d %s (not a v2 registry?)'
                                  % (url, response.status_code, response.reason))
            self._pinged = True

    def request(self, method: str, path: str, scopes: Any, stream: bool = False,
                **kwargs: Any) -> Response:
        """Send one request; on 401 from the registry re-read the challenge and try once more.

        The registry's credentials (or token) go only to its own origin: a ``Location`` on
        another host gets the request without them. A request body must be re-sendable
        (bytes, or None): large uploads go through :meth:`request` only after an earlier
        request on the same scopes got a token.
        """
        self.ping()
        url = path if path.startswith(("http://", "https://")) else self.url + path
        headers = dict(kwargs.pop("headers", None) or {})
        kwargs.pop("allow_redirects", None)
        own = self._own(url)
        for attempt in range(2):
            authorization = self.auth.header(scopes) if own else None
            response = self.transport.send(method, url, authorization=authorization,
                                           headers=headers, stream=stream, **kwargs)
            if response.status_code == 401 and attempt == 0 and own \
                    and not _is_stream(kwargs) and self._own(response.url):
                challenge = response.headers.get("WWW-Authenticate", "")
                if challenge and self.auth.set_challenge(challenge):
                    self.auth.invalidate(scopes)
                    response.close()
                    continue
            return response
        return response


def _is_stream(kwargs):
    data = kwargs.get("data")
    return data is not None and not isinstance(data, (bytes, str))


class Registry:
    """A registry domain (``docker.io``, ``127.0.0.1:5000``...) and how to reach it."""

    def __init__(self, domain: str, options: RegistryOptions | None = None,
                 auth_file: AuthFile | None = None, credentials: Credentials | None = None) -> None:
        self.domain = domain
        self.options = options or RegistryOptions()
        self.auth_file = auth_file or AuthFile()
        self._credentials = credentials
        self._connections: dict[Any, Any] = {}
        self._lock = threading.Lock()

    @property
    def credentials(self) -> Credentials:
        if self._credentials is None:
            self._credentials = self.auth_file.get(self.domain)
        return self._credentials

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def connection(self, endpoint: Endpoint) -> Any:
        with self._lock:
            if endpoint.url not in self._connections:
                self._connections[endpoint.url] = Connection(endpoint, self.credentials,
                                                             options=self.options)
            return self._connections[endpoint.url]

    def connections(self, for_push: bool = False) -> Iterator[Any]:
        """Pinged connections, best first: mirrors, then the registry (HTTPS, then HTTP if
        insecure). Endpoints that cannot be reached are skipped; none at all raises the first
        endpoint's error."""
        errors = []
        for endpoint in self.options.endpoints(self.domain, for_push=for_push):
            connection = self.connection(endpoint)
            try:
                connection.ping()
            except Unavailable as err:
                errors.append(err)
                continue
            yield connection
        if errors:
            raise errors[-1]

    def ping(self, for_push: bool = False) -> Any:
        """The first endpoint that answers the v2 ping."""
        for connection in self.connections(for_push=for_push):
            return connection
        raise Unavailable("registry %s: no endpoint to try" % self.domain)

    def login(self, credentials: Credentials, store: bool = True) -> str:
        """Check ``credentials`` against the registry and store them; docker's message back."""
        self._credentials = credentials
        with self._lock:
            for connection in self._connections.values():
                connection.close()
            self._connections.clear()
        connection = self.ping(for_push=True)
        challenge = connection.auth.challenge
        url = connection.url + "/v2/"
        if challenge is not None:
            response = connection.request("GET", "/v2/", scopes=())
            if response.status_code == 401:
                raise Unauthorized("login attempt to %s failed with status: 401 Unauthorized"
                                   % url)
            if response.status_code != 200:
                raise_for_response(response, "login attempt to %s failed" % url)
        if store:
            self.auth_file.store(self.domain, credentials)
        return "Login Succeeded"

    def logout(self) -> bool:
        """Forget stored credentials; False when there were none."""
        self._credentials = Credentials()
        return self.auth_file.erase(self.domain)

    def repository(self, path: str, for_push: bool = False,
                   extra_pull_scopes: Any = ()) -> Repository:
        return Repository(self, path, for_push=for_push, extra_pull_scopes=extra_pull_scopes)


class RegistryService:
    """The daemon's registries: one :class:`Registry` per domain, sharing the options and the
    stored credentials, so connections and tokens are reused across pulls and pushes."""

    def __init__(self, options: RegistryOptions | None = None,
                 auth_file: AuthFile | None = None) -> None:
        self.options = options or RegistryOptions()
        self.auth_file = auth_file or AuthFile()
        self._registries: dict[Any, Any] = {}
        self._lock = threading.Lock()

    def get(self, domain: str) -> Any:
        with self._lock:
            if domain not in self._registries:
                self._registries[domain] = Registry(domain, self.options, self.auth_file)
            return self._registries[domain]

    def login(self, server: str, credentials: Credentials) -> str:
        """Check and store credentials for a registry (``docker login``'s server argument:
        ``myreg:5000``, ``https://index.docker.io/v1/``...): ``Login Succeeded``."""
        domain = server_domain(server)
        with self._lock:
            old = self._registries.pop(domain, None)
        if old is not None:
            old.close()
        registry = Registry(domain, self.options, self.auth_file)
        try:
            message = registry.login(credentials)
        except BaseException:
            registry.close()
            raise
        with self._lock:
            self._registries[domain] = registry
        return message

    def logout(self, server: str) -> bool:
        """Forget stored credentials; False when there were none."""
        domain = server_domain(server)
        with self._lock:
            old = self._registries.pop(domain, None)
        if old is not None:
            old.close()
        return Registry(domain, self.options, self.auth_file).logout()

    def close(self) -> None:
        with self._lock:
            registries, self._registries = list(self._registries.values()), {}
        for registry in registries:
            registry.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Repository:
    """One repository of a registry; manifests and blobs in it."""

    def __init__(self, registry: Any, path: str, for_push: bool = False,
                 extra_pull_scopes: Any = ()) -> None:
        self.registry = registry
        self.path = path
        self.for_push = for_push
        actions = ("pull", "push") if for_push else ("pull",)
        self.scopes = (repository_scope(path, actions),) + tuple(
            repository_scope(p, ("pull",)) for p in extra_pull_scopes)
        self._connection = None
        self._fallbacks: Any = None

    @property
    def name(self) -> str:
        return "%s/%s" % (self.registry.domain, self.path)

    @property
    def connection(self) -> Any:
        if self._connection is None:
            self._fallbacks = self.registry.connections(for_push=self.for_push)
            self._connection = next(self._fallbacks)
        return self._connection

    def _next_connection(self):
        """Leave a mirror that failed for the next endpoint; False when there is none."""
        if self._connection is None or not self._connection.endpoint.mirror:
            return False
        try:
            self._connection = next(self._fallbacks)
        except (StopIteration, Unavailable):
            return False
        return True

    def _request(self, method, path, **kwargs):
        return self.connection.request(method, "/v2/%s/%s" % (self.path, path),
                                       scopes=self.scopes, **kwargs)

    # -- manifests ---------------------------------------------------------------------------

    def get_manifest(self, reference: str, accept: Any = mediatypes.ACCEPT_MANIFESTS,
                     display: str | None = None) -> Any:
        """Fetch a manifest or index by tag or digest; verify its digest; refuse schema 1."""
        if ":" in reference:
            validate_digest(reference)
        if display is None:
            display = self.name + ("@" if ":" in reference else ":") + reference
        while True:
            try:
                return self._get_manifest(reference, accept, display)
            except (NotFound, Unavailable, Unauthorized):
                if not self._next_connection():
                    raise

    def _get_manifest(self, reference, accept, display):
        response = self._request("GET", "manifests/" + reference,
                                 headers={"Accept": ", ".join(accept)}, stream=True)
        with response:
            if response.status_code != 200:
                self._raise_manifest_error(response, display)
            data = read_limited(response, mediatypes.MANIFEST_SIZE_LIMIT,
                                "manifest for %s" % display)
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            header_digest = response.headers.get("Docker-Content-Digest")
        # schema 1 is refused first (a signed one's digest does not cover its bytes); then, by
        # digest: the bytes must have it, whatever the algorithm (sha256 or sha512); by tag:
        # the registry's Docker-Content-Digest, when sent, must be theirs
        media_type, body = parse_manifest(content_type, data, display, validate=False)
        if ":" in reference:
            digest = verify_digest(reference, data, "manifest for %s" % display)
        else:
            digest = sha256_digest(data)
            if header_digest:
                verify_digest(header_digest, data, "manifest for %s" % display)
        # verified bytes only go through the schema (the spec: no heavy processing before)
        from pyrunc.engine import imagespec
        imagespec.validate(imagespec.kind_for_media_type(media_type), body,
                           "manifest for %s" % display)
        manifest = Manifest(media_type, digest, data)
        manifest._json = body
        return manifest

    def _raise_manifest_error(self, response, display):
        status = response.status_code
        if status == 404:
            raise NotFound("manifest for %s not found: %s"
                           % (display, registry_error_text(response)))
        if status in (401, 403):
            raise Unauthorized("pull access denied for %s, repository does not exist or may "
                               "require 'docker login': %s"
                               % (display.rsplit(":", 1)[0].split("@")[0],
                                  registry_error_text(response)))
        raise_for_response(response, "manifest for %s" % display)

    def head_manifest(
            self, reference: str,
            accept: tuple[str, str, str, str] = mediatypes.ACCEPT_MANIFESTS) -> tuple[Any, ...] | None:
        """(media type, digest, size) of a manifest, or None when there is none."""
        response = self._request("HEAD", "manifests/" + reference,
                                 headers={"Accept": ", ".join(accept)})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise_for_response(response, "manifest for %s:%s" % (self.name, reference))
        return (response.headers.get("Content-Type", "").split(";")[0].strip(),
                response.headers.get("Docker-Content-Digest"),
                _content_length(response, "manifest for %s:%s" % (self.name, reference), 0))

    def put_manifest(self, reference: str, media_type: str, data: bytes) -> str:
        """Store a manifest under a tag or its digest; return the digest."""
        digest = sha256_digest(data)
        if ":" in reference and reference != digest:
            raise InvalidArgument("manifest put by digest %s: content has digest %s"
                                  % (reference, digest))
        response = self._request("PUT", "manifests/" + reference, data=data,
                                 headers={"Content-Type": media_type})
        if response.status_code not in (200, 201, 202):
            raise_for_response(response, "manifest put %s:%s" % (self.name, reference))
        served = response.headers.get("Docker-Content-Digest")
        if served and served != digest:
            raise InvalidArgument("manifest put %s:%s: registry computed digest %s, expected %s"
                                  % (self.name, reference, served, digest))
        return digest

    def tags(self) -> list[str]:
        response = self._request("GET", "tags/list")
        if response.status_code != 200:
            raise_for_response(response, "tags of %s" % self.name)
        try:
            body = response.json()
        except ValueError:
            body = None
        tags = body.get("tags") if isinstance(body, dict) else None
        if tags is None:
            return []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise InvalidArgument("tags of %s: the registry's answer is not a list of tags"
                                  % self.name)
        return tags

    # -- blobs -------------------------------------------------------------------------------

    def blob_size(self, digest: str) -> int | None:
        """The size of a blob in the repository, or None when it is not there."""
        response = self._request("HEAD", "blobs/" + digest)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise_for_response(response, "blob %s in %s" % (digest, self.name))
        return _content_length(response, "blob %s in %s" % (digest, self.name), -1)

    def get_blob(self, digest: str, size: int | None = None,
                 limit: int = mediatypes.MANIFEST_SIZE_LIMIT) -> bytes:
        """A small blob (a config) in memory, verified."""
        validate_digest(digest)
        response = self._request("GET", "blobs/" + digest, stream=True)
        with response:
            if response.status_code != 200:
                raise_for_response(response, "blob %s in %s" % (digest, self.name))
            data = read_limited(response, limit, "blob " + digest)
        if size is not None and len(data) != size:
            raise InvalidArgument("blob %s: size mismatch: expected %d, got %d"
                                  % (digest, size, len(data)))
        verify_digest(digest, data, "blob %s" % digest)
        return data

    def fetch_blob(self, digest: str, size: int, writer: Writer, progress: Callable | None = None,
                   retries: int = DOWNLOAD_RETRIES, verifying: Any = None) -> None:
        """Stream a blob into a content-store ``writer`` and commit it.

        The size is checked while streaming, the digest by ``writer.commit``. A broken
        connection resumes from ``writer.offset`` with a Range request; attempts that make no
        progress back off and give up after ``retries``. On failure the caller aborts the
        writer.
        """
        import requests
        import urllib3
        broken = (requests.RequestException, urllib3.exceptions.HTTPError, OSError, Unavailable,
                  _Truncated)
        validate_digest(digest)
        failures = 0
        while True:
            offset = writer.offset
            try:
                self._download(digest, size, writer, offset, progress)
                if writer.offset < size:
                    raise _Truncated("blob %s: connection closed after %d of %d bytes"
                                     % (digest, writer.offset, size))
                break
            except Refused:
                raise
            except broken as err:
                if writer.offset > offset:
                    failures = 0
                failures += 1
                if failures > retries:
                    if isinstance(err, Unavailable):
                        raise
                    raise Unavailable("blob %s in %s: download failed after %d attempts: %s"
                                      % (digest, self.name, failures, _reason(err)))
                time.sleep(min(RETRY_BACKOFF * (2 ** (failures - 1)), RETRY_BACKOFF_MAX))
        if verifying:
            verifying()
        writer.commit(digest, size)

    def _download(self, digest, size, writer, offset, progress):
        # the bytes as stored: a transfer encoding would only be undone to be checked
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = "bytes=%d-" % offset
        response = self._request("GET", "blobs/" + digest, headers=headers, stream=True)
        with response:
            if response.status_code == 206:
                skip = 0
            elif response.status_code == 200:
                skip = offset
            elif response.status_code == 416 and offset >= size:
                return
            elif response.status_code == 404:
                raise NotFound("blob %s in %s: %s"
                               % (digest, self.name, registry_error_text(response)))
            elif response.status_code >= 500:
                raise Unavailable("blob %s in %s: %s"
                                  % (digest, self.name, registry_error_text(response)))
            else:
                raise_for_response(response, "blob %s in %s" % (digest, self.name))
            received = writer.offset
            raw = response.raw
            while True:
                chunk = raw.read(DOWNLOAD_CHUNK, decode_content=False)
                if not chunk:
                    break
                if skip:
                    drop = min(skip, len(chunk))
                    chunk = chunk[drop:]
                    skip -= drop
                    if not chunk:
                        continue
                received += len(chunk)
                if received > size:
                    raise InvalidArgument("blob %s: size mismatch: registry sent more than the "
                                          "%d bytes the manifest declares" % (digest, size))
                writer.write(chunk)
                if progress:
                    progress(received)

    def mount_blob(self, digest: str, source_path: str) -> bool:
        """Ask the registry to link a blob from another repository: True when mounted.

        When the registry does not mount (it answers with an upload session instead), the
        session is cancelled and False returned.
        """
        query = urllib.parse.urlencode({"mount": digest, "from": source_path})
        response = self._request("POST", "blobs/uploads/?" + query)
        if response.status_code == 201:
            return True
        if response.status_code == 202:
            location = response.headers.get("Location")
            if location:
                self.connection.request("DELETE", self._absolute(location), scopes=self.scopes)
            return False
        raise_for_response(response, "blob mount %s from %s" % (digest, source_path))

    def upload_blob(self, digest: Any, size: Any, opener: Any, chunk_size: Any = None,
                    progress: Any = None) -> Any:
        """Upload a blob (``opener()`` returns a fresh binary file on it).

        Monolithic (one PUT) by default; with ``chunk_size``, PATCH chunks then a closing PUT.
        A broken connection restarts the upload, up to ``UPLOAD_RETRIES`` times.
        """
        validate_digest(digest)
        for attempt in range(UPLOAD_RETRIES):
            try:
                return self._upload(digest, size, opener, chunk_size, progress)
            except Unavailable as err:
                if isinstance(err, Refused) or attempt == UPLOAD_RETRIES - 1:
                    raise
                time.sleep(RETRY_BACKOFF * (2 ** attempt))

    def _upload(self, digest, size, opener, chunk_size, progress):
        response = self._request("POST", "blobs/uploads/")
        if response.status_code != 202:
            raise_for_response(response, "blob upload to %s" % self.name)
        location = self._absolute(response.headers["Location"])
        with opener() as f:
            if chunk_size and size > chunk_size:
                offset = 0
                while offset < size:
                    chunk = f.read(chunk_size)
                    if not chunk:
                        raise InvalidArgument("blob %s: source ended at %d of %d bytes"
                                              % (digest, offset, size))
                    end = offset + len(chunk) - 1
                    response = self.connection.request(
                        "PATCH", location, scopes=self.scopes, data=chunk,
                        headers={"Content-Type": "application/octet-stream",
                                 "Content-Range": "%d-%d" % (offset, end)})
                    if response.status_code != 202:
                        raise_for_response(response, "blob upload %s" % digest)
                    location = self._absolute(response.headers["Location"])
                    offset = end + 1
                    if progress:
                        progress(offset)
                body: Any = b""
            else:
                body = _ProgressReader(f, size, progress)
            response = self.connection.request(
                "PUT", _add_query(location, digest=digest), scopes=self.scopes, data=body,
                headers={"Content-Type": "application/octet-stream",
                         "Content-Length": str(size if body != b"" else 0)})
        if response.status_code != 201:
            raise_for_response(response, "blob upload %s" % digest)
        return digest

    def _absolute(self, location):
        return urllib.parse.urljoin(self.connection.url + "/", location)


class _Truncated(Exception):
    pass


class _ProgressReader:
    """A file wrapper that reports bytes read, for a streamed PUT body."""

    def __init__(self, f, size, progress):
        self.f = f
        self.size = size
        self.progress = progress
        self.done = 0

    def __len__(self):
        return self.size

    def read(self, n=-1):
        data = self.f.read(max(n, 1 << 20) if n and n > 0 else n)
        self.done += len(data)
        if self.progress and data:
            self.progress(self.done)
        return data

    def __iter__(self):
        while True:
            data = self.read(1 << 20)
            if not data:
                return
            yield data


def _content_length(response, what, default):
    value = response.headers.get("Content-Length")
    if value is None:
        return default
    if not value.isdigit() or len(value) > 19:
        raise InvalidArgument("%s: the registry sent Content-Length %s" % (what,
                                                                          _one_line(value, 40)))
    return int(value)


def _add_query(url, **params):
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def manifest_media_type(content_type: Any, data: Any, display: Any) -> Any:
    """The media type of a served manifest; schema 1 refused with docker's explanation."""
    return parse_manifest(content_type, data, display)[0]


def parse_manifest(content_type: str, data: bytes, display: str, validate: bool = True) -> tuple:
    """(media type, parsed body) of a served manifest or index, checked against its OCI or
    docker schema after the size and depth limits; schema 1 refused with docker's
    explanation."""
    from pyrunc.engine import imagespec
    what = "manifest for %s" % display
    imagespec.check_limits(data, what)
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        raise InvalidArgument("manifest for %s: invalid JSON" % display)
    if not isinstance(body, dict):
        raise InvalidArgument("manifest for %s: not a JSON object" % display)
    if content_type in mediatypes.SCHEMA1 or body.get("schemaVersion") == 1:
        raise InvalidArgument(
            "[DEPRECATION NOTICE] Docker Image Format v1 and Docker Image manifest version 2, "
            "schema 1 support has been removed. Suggest the author of %s to upgrade the image "
            "to the OCI Format or Docker Image manifest v2, schema 2." % display)
    declared = body.get("mediaType")
    media_type = content_type if content_type in mediatypes.MANIFESTS + mediatypes.INDEXES \
        else declared
    if media_type not in mediatypes.MANIFESTS + mediatypes.INDEXES:
        if "manifests" in body:
            media_type = mediatypes.OCI_INDEX
        elif "config" in body and "layers" in body:
            media_type = mediatypes.OCI_MANIFEST
        else:
            raise InvalidArgument("manifest for %s: unsupported media type %r"
                                  % (display, content_type or declared))
    if declared and declared != media_type:
        raise InvalidArgument("manifest for %s: mediaType %s does not match Content-Type %s"
                              % (display, declared, media_type))
    if validate:
        imagespec.validate(imagespec.kind_for_media_type(media_type), body, what)
    return media_type, body
