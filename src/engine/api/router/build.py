"""Build routes (moby's router/build): ``POST /build`` runs the classic builder on the tar
context in the body and streams its JSON messages; ``/build/prune`` empties the build cache;
``/build/cancel`` stops a build that named itself with ``buildid``.

Every query parameter is checked before any byte of the context is read, so a bad request is a
400 naming the parameter and leaves nothing behind. BuildKit (``version=2``) and remote contexts
(``remote=URL``) are refused: the context comes in the request body.
"""
from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import threading

from pyrunc.engine.api import httputils
from pyrunc.engine.api.server import Route
from pyrunc.engine.registry import AuthFile, RegistryService
from pyrunc.errors import InvalidArgument, PyruncError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from pyrunc.engine.builder import BuildOptions
    from pyrunc.engine.daemon import Engine

# More tags than anyone names in one build; a request over it is refused before building.
MAX_TAGS = 100
# The build args and labels, as JSON in the query (the whole query is bounded by the server's
# request line limit already; this bounds what a document may hold).
MAX_ENTRIES = 1000

# Query parameters docker's clients send with their zero value that this builder does not
# implement: accepted when empty or zero, refused naming the parameter otherwise.
_UNSUPPORTED = ("cgroupparent", "cpusetcpus", "cpusetmems", "isolation", "shmsize", "ulimits",
                "securityopt", "cachefrom", "outputs", "session")
_ZERO = ("", "0", "null", "[]", "{}")


def _json_param(req: httputils.Request, name: str, what: str, values_may_be_null: bool
                ) -> dict[str, Any]:
    """A JSON object of strings (``buildargs``, ``labels``); {} when absent."""
    text = req.query(name)
    if not text:
        return {}
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise InvalidArgument("error reading %s: %s" % (what, e)) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise InvalidArgument("error reading %s: must be a JSON object of strings" % what)
    if len(doc) > MAX_ENTRIES:
        raise InvalidArgument("error reading %s: more than %d entries" % (what, MAX_ENTRIES))
    for key, value in doc.items():
        if not key or "\x00" in key:
            raise InvalidArgument("error reading %s: empty name or a NUL byte in %r"
                                  % (what, key[:40]))
        if value is None and values_may_be_null:
            continue
        if not isinstance(value, str) or "\x00" in value:
            raise InvalidArgument("error reading %s: the value of %s must be a string"
                                  % (what, httputils.one_line(key[:40])))
    return doc


def _tags(values: list[str]) -> list[str]:
    """moby's sanitizeRepoAndTags: each a name[:tag] (":latest" added), no digest, no
    repeats, in the order given."""
    from pyrunc.engine.reference import parse_normalized
    if len(values) > MAX_TAGS:
        raise InvalidArgument("too many tags: %d (at most %d)" % (len(values), MAX_TAGS))
    out: list[str] = []
    for text in values:
        if not text:
            continue
        ref = parse_normalized(text)
        if ref.digest is not None:
            raise InvalidArgument("build tag cannot contain a digest")
        name = str(ref if ref.tag is not None else ref.with_tag("latest"))
        if name not in out:
            out.append(name)
    return out


def _extra_hosts(values: list[str]) -> list[str]:
    """``host:ip`` (or docker 28's ``host=ip``) entries; the IP must parse."""
    out = []
    for entry in values:
        for item in (entry.split(",") if entry else []):
            sep = "=" if "=" in item else ":"
            host, found, ip = item.partition(sep)
            ip = ip.strip("[]")
            try:
                if not found or not host or ip != "host-gateway" and not \
                        ipaddress.ip_address(ip):
                    raise ValueError
            except ValueError:
                raise InvalidArgument("invalid IP address in add-host: %r"
                                      % httputils.one_line(ip[:60])) from None
            out.append("%s:%s" % (host, ip))
    return out


def _limit(req: httputils.Request, name: str, least: int) -> int:
    value = req.query_int(name, 0) or 0
    if value < least:
        raise InvalidArgument("invalid %s: %d (must be %s)" % (
            name, value, "at least -1" if least == -1 else "zero or more"))
    return value


def registry_auths(header: str | None) -> dict[str, Any]:
    """X-Registry-Config: base64 JSON of {registry: AuthConfig} (the CLI sends every
    credential it has, the builder uses those of FROM's registry)."""
    from pyrunc.engine.api.router.system import decode_auth_header
    try:
        doc = decode_auth_header(header)
    except InvalidArgument:
        raise InvalidArgument("invalid X-Registry-Config header: not base64-encoded JSON of "
                              "an object") from None
    for registry, auth in doc.items():
        if not isinstance(auth, dict) or not all(isinstance(v, str) for k, v in auth.items()
                                                 if k in ("username", "password", "auth",
                                                          "identitytoken", "registrytoken")):
            raise InvalidArgument("invalid X-Registry-Config header: the credentials of %s "
                                  "must be an object of strings" % httputils.one_line(
                                      str(registry)[:80]))
        if auth.get("auth"):
            try:
                base64.b64decode(auth["auth"], validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                raise InvalidArgument("invalid X-Registry-Config header: the auth of %s is not "
                                      "base64 user:password" % httputils.one_line(
                                          str(registry)[:80])) from None
    return doc


def build_options(req: httputils.Request) -> BuildOptions:
    """The classic builder's options from /build's query and headers; InvalidArgument (400)
    naming the first bad parameter."""
    from pyrunc.engine.builder import BuildOptions
    version = req.query("version") or "1"
    if version == "2":
        raise InvalidArgument("buildkit not supported by daemon: this daemon builds with the "
                              "classic builder only (version=1, DOCKER_BUILDKIT=0)")
    if version != "1":
        raise InvalidArgument("invalid version %s" % json.dumps(version[:20]))
    remote = req.query("remote")
    if remote:
        raise InvalidArgument("remote build contexts are not supported by this daemon (%s): "
                              "send the context as a tar archive in the request body"
                              % httputils.one_line(remote[:100]))
    for name in _UNSUPPORTED:
        value = req.query(name)
        if value is not None and value not in _ZERO:
            raise InvalidArgument("the %s build option is not supported by this daemon"
                                  % name)
    if req.query_bool("squash"):
        raise InvalidArgument("squash is only supported with experimental mode")
    platform = req.query("platform") or None
    if platform:
        from pyrunc.engine.platforms import parse_platform
        parse_platform(platform)
    dockerfile = req.query("dockerfile") or "Dockerfile"
    if "\x00" in dockerfile or len(dockerfile) > 4096:
        raise InvalidArgument("invalid dockerfile name: %r" % dockerfile[:60])
    network = req.query("networkmode") or None
    if network is not None and (len(network) > 256 or any(c < " " for c in network)):
        raise InvalidArgument("invalid networkmode: %r" % network[:60])
    return BuildOptions(
        dockerfile=dockerfile,
        tags=_tags(req.query_lists.get("t", [])),
        no_cache=req.query_bool("nocache"),
        pull=req.query_bool("pull"),
        rm=True if req.query_bool("forcerm") or req.query("rm") in (None, "") else
        req.query_bool("rm"),
        force_rm=req.query_bool("forcerm"),
        build_args=_json_param(req, "buildargs", "build args", True),
        labels=_json_param(req, "labels", "labels", False),
        target=req.query("target") or None,
        network_mode=None if network == "default" else network,
        quiet=req.query_bool("q"),
        platform=platform,
        extra_hosts=_extra_hosts(req.query_lists.get("extrahosts", [])),
        resources={key: value for key, value in (
            ("Memory", _limit(req, "memory", 0)), ("MemorySwap", _limit(req, "memswap", -1)),
            ("CpuShares", _limit(req, "cpushares", 0)),
            ("CpuPeriod", _limit(req, "cpuperiod", 0)),
            ("CpuQuota", _limit(req, "cpuquota", -1))) if value},
    )


class ConfigAuth(AuthFile):
    """The credentials of one request's X-Registry-Config (registry -> AuthConfig), looked up
    by domain as docker's config file is; nothing is ever written."""

    def __init__(self, auths: dict[str, Any]) -> None:
        super().__init__(os.devnull)
        self.auths = auths

    def _load(self) -> dict[str, Any]:
        return {"auths": self.auths}

    def store(self, domain: str, credentials: Any) -> None:
        return None

    def erase(self, domain: str) -> bool:
        return False


class RunningBuild:
    """One build under way: whether it was cancelled, and the RUN step's container it is in
    (from the builder's " ---> Running in ID" message until the step's end). A cancel kills
    that container, so the step ends at once; the container is then removed, as docker's
    builder removes a cancelled step's container."""

    _STEP_END = re.compile(r" ---> [0-9a-f]{12}\n")

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.cancelled = threading.Event()
        self.done = threading.Event()
        self.container = ""

    def track(self, message: dict[str, Any]) -> None:
        text = message.get("stream")
        if not isinstance(text, str):
            return
        if text.startswith(" ---> Running in "):
            self.container = text[len(" ---> Running in "):].strip()
        elif self._STEP_END.fullmatch(text) or text.startswith("Removing intermediate"):
            self.container = ""

    def cancel(self) -> None:
        self.cancelled.set()
        container = self.container
        if container:
            try:
                self.engine.containers.kill(container)
            except PyruncError:    # not started yet, or already gone: the loop ends it
                pass

    def watch(self, req: httputils.Request) -> None:
        """Cancel the build when its client goes away (checked every 0.25 s)."""
        while not self.done.wait(0.25):
            if req.disconnected():
                self.cancel()
                return

    def cleanup(self) -> None:
        container, self.container = self.container, ""
        if self.cancelled.is_set() and container:
            try:
                self.engine.containers.remove(container, force=True, volumes=True)
            except PyruncError:
                pass


class Builds:
    """The handlers; ``running`` maps a client's ``buildid`` to its build, for
    /build/cancel."""

    def __init__(self, engine: Engine, registries: RegistryService | None = None) -> None:
        self.engine = engine
        self.registries = registries
        self.running: dict[str, RunningBuild] = {}
        self._lock = threading.Lock()

    def build(self, req: httputils.Request) -> httputils.Response:
        options = build_options(req)
        options.registries = RegistryService(
            self.registries.options if self.registries is not None else None,
            ConfigAuth(registry_auths(req.headers.get("X-Registry-Config"))))
        build_id = req.query("buildid") or ""
        state = RunningBuild(self.engine)
        if build_id:
            with self._lock:
                if build_id in self.running:
                    raise InvalidArgument("a build with id %s is already running"
                                          % httputils.one_line(build_id[:80]))
                self.running[build_id] = state
        builder = self.engine.builder

        def work(emit: Callable[[Any], None]) -> None:
            messages = builder.build(req.body, options)
            watcher = threading.Thread(target=state.watch, args=(req,), daemon=True,
                                       name="build-watch")
            watcher.start()

            def finish() -> None:
                state.done.set()
                close = getattr(messages, "close", None)   # a generator: its finally blocks run
                if close is not None:
                    close()
                state.cleanup()
                self._forget(build_id)
            try:
                for message in messages:
                    state.track(message)
                    if state.cancelled.is_set():
                        break
                    emit(message)
                    if "error" in message:
                        return
                else:
                    return
                finish()         # the step's container is gone before the client hears of it
                emit({"errorDetail": {"message": "context canceled"},
                      "error": "context canceled"})
            finally:
                finish()
        try:
            producer = httputils.Producer(work).first()
        except BaseException:
            self._forget(build_id)
            raise
        return httputils.stream(httputils.progress_stream(producer), "application/json")

    def _forget(self, build_id: str) -> None:
        if build_id:
            with self._lock:
                self.running.pop(build_id, None)

    def prune(self, req: httputils.Request) -> httputils.Response:
        """Every cached step goes (the classic builder's cache has no filters but ``all``,
        ``until`` and ``keep-storage``, which mean nothing for it)."""
        filters = req.filters()
        unknown = sorted(set(filters) - {"until", "unused-for", "all", "type",
                                         "description", "id", "inuse", "shared", "private"})
        if unknown:
            raise InvalidArgument("invalid filter '%s'" % httputils.one_line(unknown[0][:40]))
        result = self.engine.builder.prune()
        return httputils.json_response({"CachesDeleted": result.get("CachesDeleted") or None,
                                        "SpaceReclaimed": result.get("SpaceReclaimed", 0)})

    def cancel(self, req: httputils.Request) -> httputils.Response:
        build_id = req.query("id") or ""
        if not build_id:
            raise InvalidArgument("build ID not provided")
        with self._lock:
            state = self.running.get(build_id)
        if state is not None:
            state.cancel()
        return httputils.no_content(200)


def routes(engine: Engine, registries: RegistryService | None = None) -> list[Route]:
    """POST /build, /build/prune and /build/cancel; ``registries`` (the daemon's mirrors and
    insecure registries) serves FROM's pulls."""
    b = Builds(engine, registries)
    return [Route("POST", "/build", b.build), Route("POST", "/build/prune", b.prune),
            Route("POST", "/build/cancel", b.cancel)]
