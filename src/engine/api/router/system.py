"""System routes: /_ping, /version, /info, /events, /system/df, /auth (moby's router/system)."""
from __future__ import annotations

import base64
import json
import os
import platform as _platform
import time

import pyrunc
from pyrunc.engine.api import httputils, server
from pyrunc.engine.api.server import Route
from pyrunc.errors import InvalidArgument
from pyrunc.libcontainer import timestamps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from pyrunc.engine.daemon import Engine
    from pyrunc.engine.registry import RegistryService

# What docker's ping answers besides the status: no caching, the builder the CLI may use
# (1 = the classic builder; this daemon has no BuildKit), and no swarm.
PING_HEADERS = {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache",
                "Builder-Version": "1", "Swarm": "inactive"}

GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
           "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def decode_auth_header(value: str | None) -> dict[str, Any]:
    """X-Registry-Auth / X-Registry-Config: base64url (padded or not) JSON; {} when absent.
    InvalidArgument when it is not base64 JSON of an object (docker's check)."""
    if not value:
        return {}
    try:
        data = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("invalid X-Registry-Auth header: not base64-encoded JSON") \
            from None
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid X-Registry-Auth header: not a JSON object")
    return doc


def _os_release() -> tuple[str, str]:
    fields = {}
    try:
        with open("/etc/os-release") as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                fields[key] = value.strip('"')
    except OSError:
        pass
    return fields.get("PRETTY_NAME", "Linux"), fields.get("VERSION_ID", "")


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _cgroup_version() -> str:
    return "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"


def _daemon_id(root: str) -> str:
    """A stable ID for this daemon's root (dockerd keeps one in its root too)."""
    path = os.path.join(root, "engine-id")
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        pass
    import uuid
    value = str(uuid.uuid4())
    tmp = path + ".%d.tmp" % os.getpid()
    with open(tmp, "w") as f:
        f.write(value + "\n")
    os.replace(tmp, path)
    return value


class System:
    """The handlers, over ``engine`` and the daemon's settings."""

    def __init__(self, engine: Engine, config: dict[str, Any] | None = None,
                 registries: RegistryService | None = None) -> None:
        self.engine = engine
        self.config = dict(config or {})
        self.registries = registries
        self.id = _daemon_id(engine.root)

    def ping(self, req: httputils.Request) -> httputils.Response:
        return httputils.raw(b"OK" if req.method == "GET" else b"",
                             "text/plain; charset=utf-8", headers=PING_HEADERS)

    def version(self, req: httputils.Request) -> httputils.Response:
        return httputils.json_response(self.version_info())

    def version_info(self) -> dict[str, Any]:
        arch = GO_ARCH.get(_platform.machine(), _platform.machine())
        kernel = os.uname().release
        version = pyrunc.__version__
        built = timestamps.format_ns(int(os.path.getmtime(pyrunc.__file__)) * timestamps.NS)
        details = {"ApiVersion": server.MAX_API_VERSION, "Arch": arch, "BuildTime": built,
                   "Experimental": "false", "GitCommit": "", "GoVersion": "",
                   "KernelVersion": kernel, "MinAPIVersion": server.MIN_API_VERSION,
                   "Os": "linux"}
        runtime = self.engine.runtime
        return {
            "Platform": {"Name": "pyrunc"},
            "Components": [
                {"Name": "Engine", "Version": version, "Details": details},
                {"Name": "containerd", "Version": version,
                 "Details": {"GitCommit": "pyrunc.containerd"}},
                {"Name": runtime, "Version": version, "Details": {"GitCommit": ""}},
            ],
            "Version": version, "ApiVersion": server.MAX_API_VERSION,
            "MinAPIVersion": server.MIN_API_VERSION, "GitCommit": "", "GoVersion": "",
            "Os": "linux", "Arch": arch, "KernelVersion": kernel, "BuildTime": built,
        }

    def info(self, req: httputils.Request) -> httputils.Response:
        containers = self.engine.containers.list(all=True)
        running = sum(1 for c in containers if c.get("State") == "running")
        paused = sum(1 for c in containers if c.get("State") == "paused")
        os_name, os_version = _os_release()
        runtimes = {name: rt.to_dict() for name, rt in self.engine.runtimes.items()}
        # docker shows mirrors as it normalises them: with a trailing slash
        mirrors = [m.rstrip("/") + "/" for m in self.config.get("registry-mirrors") or []]
        insecure = list(self.config.get("insecure-registries") or [])
        cidrs = [i for i in insecure if "/" in i] + ["127.0.0.0/8", "::1/128"]
        index_configs = {"docker.io": {"Name": "docker.io", "Mirrors": mirrors,
                                       "Secure": True, "Official": True}}
        for name in insecure:
            if "/" not in name:
                index_configs[name] = {"Name": name, "Mirrors": [], "Secure": False,
                                       "Official": False}
        security = ["name=seccomp,profile=builtin"]
        if self.engine.userns_remap:
            security.append("name=userns")
        if _cgroup_version() == "2":
            security.append("name=cgroupns")
        snapshotter = self.engine.images.snapshotter.name
        info = {
            "ID": self.id,
            "Containers": len(containers), "ContainersRunning": running,
            "ContainersPaused": paused, "ContainersStopped": len(containers) - running - paused,
            "Images": len(self.engine.images.list()),
            "Driver": snapshotter, "DriverStatus": [["Backing Filesystem", _fs_type(
                self.engine.root)]],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"],
                        "Authorization": None, "Log": ["json-file", "none"]},
            "MemoryLimit": True, "SwapLimit": True, "KernelMemory": False,
            "KernelMemoryTCP": False, "CpuCfsPeriod": True, "CpuCfsQuota": True,
            "CPUShares": True, "CPUSet": True, "PidsLimit": True,
            "IPv4Forwarding": _read("/proc/sys/net/ipv4/ip_forward") == "1",
            "BridgeNfIptables": False, "BridgeNfIp6tables": False,
            "Debug": bool(self.config.get("debug")), "NFd": _count("/proc/self/fd"),
            "OomKillDisable": False, "NGoroutines": _count("/proc/self/task"),
            "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime()) +
            _utc_offset(),
            "LoggingDriver": "json-file", "CgroupDriver": "cgroupfs",
            "CgroupVersion": _cgroup_version(), "NEventsListener": 0,
            "KernelVersion": os.uname().release, "OperatingSystem": os_name,
            "OSVersion": os_version, "OSType": "linux",
            "Architecture": _platform.machine(),
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": None,
                               "AllowNondistributableArtifactsHostnames": None,
                               "InsecureRegistryCIDRs": cidrs, "IndexConfigs": index_configs,
                               "Mirrors": mirrors},
            "NCPU": os.cpu_count() or 1, "MemTotal": _mem_total(), "GenericResources": None,
            "DockerRootDir": self.engine.root,
            "HttpProxy": os.environ.get("HTTP_PROXY", ""),
            "HttpsProxy": os.environ.get("HTTPS_PROXY", ""),
            "NoProxy": os.environ.get("NO_PROXY", ""),
            "Name": os.uname().nodename, "Labels": list(self.config.get("labels") or []),
            "ExperimentalBuild": False, "ServerVersion": pyrunc.__version__,
            "Runtimes": runtimes,
            "DefaultRuntime": self.config.get("default-runtime") or self.engine.runtime,
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                      "ControlAvailable": False, "Error": "", "RemoteManagers": None},
            "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "docker-init",
            "ContainerdCommit": {"ID": pyrunc.__version__, "Expected": pyrunc.__version__},
            "RuncCommit": {"ID": pyrunc.__version__, "Expected": pyrunc.__version__},
            "InitCommit": {"ID": "", "Expected": ""},
            "SecurityOptions": security, "Warnings": None,
        }
        return httputils.json_response(info)

    def events(self, req: httputils.Request) -> httputils.Response:
        since, until = req.query("since") or None, req.query("until") or None
        filters = req.filters()
        follow = until is None or _in_future(until)
        found = self.engine.events.query(since=since, until=until, filters=filters,
                                         follow=follow, stop=req.disconnected)
        return httputils.stream(_events(found), "application/json")

    def df(self, req: httputils.Request) -> httputils.Response:
        types = req.query_lists.get("type") or ["container", "image", "volume",
                                                "build-cache"]
        out: dict[str, Any] = {"LayersSize": 0, "Images": [], "Containers": [],
                               "Volumes": [], "BuildCache": []}
        if "image" in types:
            from pyrunc.engine.api.router.images import summaries
            # as dockerd: the images ``docker images`` lists (no intermediate ones), their
            # SharedSize counted among themselves; LayersSize is every image's layers, once
            images = summaries(self.engine, all_images=False)
            shared, out["LayersSize"] = self.engine.images.layer_usage(i["Id"] for i in images)
            users: dict[str, int] = {}
            for c in self.engine.containers.list(all=True):
                users[c.get("ImageID", "")] = users.get(c.get("ImageID", ""), 0) + 1
            for img in images:
                img = dict(img)
                img["Containers"] = users.get(img["Id"], 0)
                img["SharedSize"] = shared.get(img["Id"], 0)
                out["Images"].append(img)
        if "container" in types:
            out["Containers"] = self.engine.containers.list(all=True, size=True)
        if "volume" in types:
            volumes = self.engine.volumes.list()["Volumes"]
            for v in volumes:
                usage = v.get("UsageData")
                if usage is None or usage.get("Size", -1) < 0:
                    v["UsageData"] = {"Size": _du(v.get("Mountpoint", "")),
                                      "RefCount": len(self.engine.volumes.references(
                                          v["Name"]))}
            out["Volumes"] = volumes
        return httputils.json_response(out)

    def auth(self, req: httputils.Request) -> httputils.Response:
        from pyrunc.engine.registry import Credentials, Registry, RegistryService
        from pyrunc.engine.registry.config import server_domain
        body = req.json_object(required=True)
        for key in ("username", "password", "serveraddress", "identitytoken"):
            if key in body and not isinstance(body[key], str):
                raise InvalidArgument("auth: %s must be a string" % key)
        server_address = body.get("serveraddress") or "https://index.docker.io/v1/"
        credentials = Credentials(body.get("username", ""), body.get("password", ""),
                                  body.get("identitytoken", ""))
        registries = self.registries or RegistryService()
        registry = Registry(server_domain(server_address), registries.options,
                            registries.auth_file)
        try:
            status = registry.login(credentials, store=False)
        finally:
            registry.close()
        return httputils.json_response({"Status": status, "IdentityToken": ""})


def _events(found: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    try:
        for event in found:
            yield httputils.json_line(event)
    finally:
        close = getattr(found, "close", None)
        if close is not None:
            close()


def _in_future(value: str) -> bool:
    from pyrunc.engine.events import parse_event_time
    now = time.time_ns()
    return bool(parse_event_time(value, now) > now)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _count(path: str) -> int:
    try:
        return len(os.listdir(path))
    except OSError:
        return 0


def _utc_offset() -> str:
    offset = -time.timezone if not time.localtime().tm_isdst else -time.altzone
    if offset == 0:
        return "Z"
    sign = "+" if offset > 0 else "-"
    return "%s%02d:%02d" % (sign, abs(offset) // 3600, abs(offset) % 3600 // 60)


def _fs_type(path: str) -> str:
    best, kind = "", "unknown"
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 2 and (path == fields[1] or path.startswith(
                        fields[1].rstrip("/") + "/")) and len(fields[1]) >= len(best):
                    best, kind = fields[1], fields[2]
    except OSError:
        pass
    return kind


def _du(path: str) -> int:
    total = 0
    if not path:
        return -1
    for top, dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(top, name)).st_blocks * 512
            except OSError:
                pass
    return total


def routes(engine: Engine, config: dict[str, Any] | None = None,
           registries: RegistryService | None = None) -> list[Route]:
    """The system routes; ``config`` is the daemon's configuration (daemon.json keys) for
    /info, ``registries`` the daemon's registry settings for /auth."""
    s = System(engine, config, registries)
    return [
        Route("GET", "/_ping", s.ping), Route("HEAD", "/_ping", s.ping),
        Route("GET", "/version", s.version), Route("GET", "/info", s.info),
        Route("GET", "/events", s.events), Route("GET", "/system/df", s.df),
        Route("POST", "/auth", s.auth),
    ]
