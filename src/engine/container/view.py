"""What readers get: the Engine API's ContainerInspectResponse and ContainerSummary, docker's
HostConfig defaults, and ``docker ps --filter``."""
from __future__ import annotations

import re

from pyrunc.engine.container import state as cstate
from pyrunc.engine.container.network import summary_ports
from pyrunc.engine.oci.defaults import READONLY_PATHS, masked_paths
from pyrunc.engine.supervisor.policy import validate_restart_policy
from pyrunc.engine.volume import inspect_mounts
from pyrunc.errors import InvalidArgument, NotFound
from pyrunc.libcontainer import timestamps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Callable
    from pyrunc.engine.container.store import Container

SHM_SIZE = 64 * 1024 * 1024
LIST_FILTERS = ("id", "name", "label", "status", "exited", "ancestor", "before", "since",
                "volume", "health", "is-task", "network", "publish", "expose", "isolation")

# docker's HostConfig as `docker inspect` shows it for a container created with no options
# (lists the request did not give are null, as dockerd keeps them)
HOST_CONFIG_DEFAULTS: dict[str, Any] = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
    "NetworkMode": "bridge", "PortBindings": None, "RestartPolicy": {"Name": "",
                                                                     "MaximumRetryCount": 0},
    "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None, "ConsoleSize": [0, 0],
    "CapAdd": None, "CapDrop": None, "CgroupnsMode": "private", "Dns": None,
    "DnsOptions": None, "DnsSearch": None, "ExtraHosts": None, "GroupAdd": None,
    "IpcMode": "private", "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "",
    "Privileged": False, "PublishAllPorts": False, "ReadonlyRootfs": False,
    "SecurityOpt": None, "UTSMode": "", "UsernsMode": "", "ShmSize": SHM_SIZE,
    "Runtime": "pyrunc", "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0,
    "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": None,
    "BlkioDeviceReadBps": None, "BlkioDeviceWriteBps": None, "BlkioDeviceReadIOps": None,
    "BlkioDeviceWriteIOps": None, "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0,
    "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": None,
    "DeviceCgroupRules": None, "DeviceRequests": None, "KernelMemory": 0,
    "KernelMemoryTCP": 0, "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": None,
    "OomKillDisable": False, "PidsLimit": None, "Ulimits": None, "CpuCount": 0,
    "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0, "MaskedPaths": None,
    "ReadonlyPaths": None,
}
INT_KEYS = ("Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuShares",
            "CpuPeriod", "CpuQuota", "OomScoreAdj", "BlkioWeight", "CpuRealtimePeriod",
            "CpuRealtimeRuntime", "KernelMemory", "KernelMemoryTCP", "CpuCount", "CpuPercent",
            "IOMaximumIOps", "IOMaximumBandwidth", "ShmSize")
STR_KEYS = ("CpusetCpus", "CpusetMems", "NetworkMode", "CgroupParent", "ContainerIDFile",
            "VolumeDriver", "IpcMode", "PidMode", "UTSMode", "UsernsMode", "Cgroup",
            "CgroupnsMode", "Isolation")
STR_LIST_KEYS = ("Dns", "DnsOptions", "DnsSearch", "ExtraHosts", "GroupAdd", "CapAdd",
                 "CapDrop", "SecurityOpt", "Links", "VolumesFrom", "DeviceCgroupRules")
BOOL_KEYS = ("AutoRemove", "Privileged", "PublishAllPorts", "ReadonlyRootfs",
             "OomKillDisable")
# HostConfig fields dockerd leaves out when unset (``omitempty``)
HOST_CONFIG_OMIT_EMPTY = ("Mounts", "Tmpfs", "Sysctls", "Init", "Annotations")

# the Config fields of the Engine API, and those it leaves out when unset
CONFIG_DEFAULTS: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
    "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": {},
}
CONFIG_OMIT_EMPTY = ("ExposedPorts", "Healthcheck", "ArgsEscaped", "NetworkDisabled",
                     "MacAddress", "StopSignal", "StopTimeout", "Shell")


def valid_hostname(name: str) -> bool:
    """RFC 1123 labels joined by dots (docker's check), at most 64 bytes (the kernel's)."""
    if not 0 < len(name) <= 64:
        return False
    for label in name.split("."):
        if not label or not all(c.isascii() and (c.isalnum() or c == "-") for c in label) \
                or label[0] == "-" or label[-1] == "-":
            return False
    return True


def normalise_config(config: dict[str, Any]) -> dict[str, Any]:
    """The merged Config as dockerd stores it: its fields only (a request's other keys are
    dropped, as Go's decoder drops them), nulls of plain fields as their zero values."""
    for key in ("Hostname", "Domainname"):
        if not isinstance(config.get(key) or "", str):
            raise InvalidArgument("Config.%s: must be a string" % key)
    if config.get("Hostname") and not valid_hostname(config["Hostname"]):
        raise InvalidArgument("invalid hostname format: %s" % config["Hostname"])
    if config.get("Domainname") and not valid_hostname(config["Domainname"]):
        raise InvalidArgument("invalid domainname format: %s" % config["Domainname"])
    out = {}
    for key, default in CONFIG_DEFAULTS.items():
        value = config.get(key)
        out[key] = default if value is None and default is not None else value
    for key in CONFIG_OMIT_EMPTY:
        value = config.get(key)
        if not (value is None or value is False or value in ("", {}, [])):
            out[key] = value
    return out


def normalise_host_config(host_config: dict[str, Any], runtime: str) -> dict[str, Any]:
    """The request's HostConfig over docker's defaults, with the daemon's own adjustments
    (swap twice the memory limit when only the limit is set, as dockerd does)."""
    if not isinstance(host_config, dict):
        raise InvalidArgument("HostConfig: must be a JSON object")
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in HOST_CONFIG_DEFAULTS.items()}
    for k, v in host_config.items():
        if v is not None or k not in out:
            out[k] = v
    out["Runtime"] = host_config.get("Runtime") or runtime
    if not out.get("NetworkMode") or out["NetworkMode"] == "default":
        out["NetworkMode"] = "bridge"
    if not out.get("ShmSize"):
        out["ShmSize"] = SHM_SIZE
    log = out.get("LogConfig") or {}
    if not isinstance(log, dict) or not isinstance(log.get("Config") or {}, dict):
        raise InvalidArgument("HostConfig.LogConfig: must be an object with a Config object")
    out["LogConfig"] = {"Type": log.get("Type") or "json-file", "Config": log.get("Config") or {}}
    policy = validate_restart_policy(out.get("RestartPolicy"))     # docker's messages
    out["RestartPolicy"] = {"Name": policy["Name"] or "",
                            "MaximumRetryCount": policy["MaximumRetryCount"] if policy["Name"]
                            else 0}
    for key in INT_KEYS:
        if not isinstance(out.get(key) or 0, int) or isinstance(out.get(key), bool):
            raise InvalidArgument("HostConfig.%s: must be an integer" % key)
        out[key] = out.get(key) or 0
    if out["PidsLimit"] is not None and (not isinstance(out["PidsLimit"], int)
                                         or isinstance(out["PidsLimit"], bool)):
        raise InvalidArgument("HostConfig.PidsLimit: must be an integer")
    for key in STR_KEYS:
        if not isinstance(out.get(key) or "", str):
            raise InvalidArgument("HostConfig.%s: must be a string" % key)
    for key in BOOL_KEYS:
        if not isinstance(out.get(key) or False, bool):
            raise InvalidArgument("HostConfig.%s: must be true or false" % key)
    for key in STR_LIST_KEYS:
        value = out.get(key)
        if value is not None and (not isinstance(value, list)
                                  or not all(isinstance(v, str) for v in value)):
            raise InvalidArgument("HostConfig.%s: must be a list of strings" % key)
    memory: Any = out["Memory"]
    if memory > 0 and out["MemorySwap"] == 0:
        out["MemorySwap"] = 2 * memory
    if not out["Privileged"]:       # dockerd records the paths it masks
        if out["MaskedPaths"] is None:
            out["MaskedPaths"] = masked_paths()
        if out["ReadonlyPaths"] is None:
            out["ReadonlyPaths"] = list(READONLY_PATHS)
    for key in HOST_CONFIG_OMIT_EMPTY:
        if out.get(key) in (None, {}, []):
            out.pop(key, None)
    return out




def _mount_entries(c: Container) -> list[dict[str, Any]]:
    return inspect_mounts(c.mount_points)


def inspect(c: Container, graph_driver: str, size: dict[str, int] | None = None,
            exec_ids: list[str] | None = None) -> dict[str, Any]:
    """ContainerInspectResponse."""
    r = c.record
    doc: dict[str, Any] = {
        "Id": c.id, "Created": r["Created"], "Path": r["Path"], "Args": r["Args"],
        "State": dict(c.state), "Image": c.image_id,
        "ResolvConfPath": r["ResolvConfPath"], "HostnamePath": r["HostnamePath"],
        "HostsPath": r["HostsPath"], "LogPath": r["LogPath"], "Name": c.name,
        "RestartCount": c.restart_count, "Driver": graph_driver, "Platform": r["Platform"],
        "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
        "ExecIDs": exec_ids or None, "HostConfig": c.host_config,
        "GraphDriver": {"Name": graph_driver, "Data": None},
        "Mounts": _mount_entries(c), "Config": c.config,
        "NetworkSettings": r["NetworkSettings"],
    }
    if size is not None:
        doc["SizeRw"], doc["SizeRootFs"] = size["SizeRw"], size["SizeRootFs"]
    return doc


def command_text(c: Container) -> str:
    """The COMMAND column: the path and arguments joined by spaces."""
    return " ".join([c.record["Path"]] + list(c.record["Args"]))


def summary(c: Container, size: dict[str, int] | None = None) -> dict[str, Any]:
    """ContainerSummary (one entry of GET /containers/json)."""
    networks = (c.record["NetworkSettings"] or {}).get("Networks") or {}
    doc: dict[str, Any] = {
        "Id": c.id, "Names": [c.name], "Image": c.config.get("Image", ""),
        "ImageID": c.image_id, "Command": command_text(c),
        "Created": cstate.time_ns(c.record["Created"]) // timestamps.NS,
        "Ports": summary_ports(c.record["NetworkSettings"]),
        "Labels": c.config.get("Labels") or {}, "State": c.state["Status"],
        "Status": cstate.status_text(c.state),
        "HostConfig": {"NetworkMode": c.host_config.get("NetworkMode", "bridge")},
        "NetworkSettings": {"Networks": networks}, "Mounts": _mount_entries(c),
    }
    if size is not None:
        doc.update(size)
    return doc


def parse_filters(filters: Any) -> dict[str, list[str]]:
    """{"key": [values]} (the Engine API's form), {"key": value} or ["key=value", ...]."""
    out: dict[str, list[str]] = {}
    if not filters:
        return out
    if isinstance(filters, (list, tuple)):
        pairs = []
        for f in filters:
            if not isinstance(f, str) or "=" not in f:
                raise InvalidArgument("bad format of filter (expected name=value)")
            pairs.append(tuple(f.split("=", 1)))
    elif isinstance(filters, dict):
        pairs = []
        for k, vs in filters.items():
            if isinstance(vs, dict):        # the old {"key": {"value": true}} form
                vs = [v for v, on in vs.items() if on]
            for v in (vs if isinstance(vs, (list, tuple)) else [vs]):
                pairs.append((k, v))
    else:
        raise InvalidArgument("filters: must be an object or a list of name=value")
    for key, value in pairs:
        if key not in LIST_FILTERS:
            raise InvalidArgument("invalid filter '%s'" % key)
        out.setdefault(key, []).append(str(value))
    for value in out.get("status", []):
        if value not in cstate.STATUSES:
            raise InvalidArgument("invalid filter 'status=%s'" % value)
    for value in out.get("exited", []):
        try:
            int(value)
        except ValueError:
            raise InvalidArgument("invalid filter 'exited=%s'" % value) from None
    for value in out.get("health", []):
        if value not in ("starting", "healthy", "unhealthy", "none"):
            raise InvalidArgument("invalid filter 'health=%s'" % value)
    return out


def _label_match(labels: dict[str, str], f: str) -> bool:
    if "=" in f:
        k, v = f.split("=", 1)
        return labels.get(k) == v
    return f in labels


class Matcher:
    """``docker ps --filter`` over loaded containers. ``resolve(ref)`` finds the container
    named by before/since; ``image_ids(ref)`` the image IDs an ancestor filter means."""

    def __init__(self, filters: dict[str, list[str]], resolve: Callable[[str], Any],
                 image_ids: Callable[[str], set[str]]) -> None:
        self.f = filters
        self.before = [timestamps.parse_ns(resolve(r).record["Created"])
                       for r in filters.get("before", [])]
        self.since = [timestamps.parse_ns(resolve(r).record["Created"])
                      for r in filters.get("since", [])]
        self.names = []              # docker matches names as regular expressions
        for pattern in filters.get("name", []):
            try:
                self.names.append(re.compile(pattern))
            except re.error as e:
                raise InvalidArgument("invalid filter 'name=%s': %s" % (pattern, e)) from None
        self.ancestors: set[str] = set()
        for ref in filters.get("ancestor", []):
            try:
                self.ancestors |= image_ids(ref)
            except (NotFound, InvalidArgument):
                pass                 # docker matches nothing for an unknown image

    def __call__(self, c: Container) -> bool:
        f = self.f
        if "id" in f and not any(c.id.startswith(v) for v in f["id"]):
            return False
        if "name" in f and not any(p.search(c.name) for p in self.names):
            return False
        labels = c.config.get("Labels") or {}
        if "label" in f and not all(_label_match(labels, v) for v in f["label"]):
            return False
        if "status" in f and c.state["Status"] not in f["status"]:
            return False
        if "exited" in f and not (c.state["Status"] == cstate.EXITED
                                  and str(c.state["ExitCode"]) in f["exited"]):
            return False
        if "ancestor" in f and c.image_id not in self.ancestors:
            return False
        if self.before or self.since:
            created = cstate.time_ns(c.record["Created"])
            if any(created >= b for b in self.before) or any(created <= s for s in self.since):
                return False
        if "volume" in f:
            wanted = set(f["volume"])
            if not any(m.get("Name") in wanted or m.get("Destination") in wanted
                       or m.get("Source") in wanted for m in _mount_entries(c)):
                return False
        if "health" in f:
            health = (c.state.get("Health") or {}).get("Status") or "none"
            if health not in f["health"]:
                return False
        if "network" in f:
            nets = (c.record["NetworkSettings"] or {}).get("Networks") or {}
            if not any(v in nets or any(n.get("NetworkID") == v for n in nets.values())
                       for v in f["network"]):
                return False
        if "is-task" in f and "true" in f["is-task"]:
            return False
        if "expose" in f or "publish" in f:
            exposed = set(c.config.get("ExposedPorts") or {})
            if not all(v in exposed or v + "/tcp" in exposed
                       for v in f.get("expose", []) + f.get("publish", [])):
                return False
        return True
