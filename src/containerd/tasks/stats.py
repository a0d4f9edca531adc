"""Resource usage of a running task, read from its cgroups (any runtime, v1 or v2)."""
from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CGROUP_ROOT = "/sys/fs/cgroup"


def cgroups_of(pid: int) -> dict[str, str]:
    """{controller: cgroup directory} of a process; the v2 hierarchy is under key ""."""
    found = {}
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controllers == "":
                for base in (os.path.join(CGROUP_ROOT, "unified"), CGROUP_ROOT):
                    if os.path.exists(os.path.join(base, "cgroup.controllers")):
                        found[""] = base + path
                        break
            for name in controllers.split(","):
                if name.startswith("name="):
                    continue
                found[name] = os.path.join(CGROUP_ROOT, name) + path
    return found


def _read_int(path):
    try:
        with open(path) as f:
            text = f.read().strip()
    except (FileNotFoundError, ProcessLookupError, OSError):
        return None
    return None if text == "max" else int(text)


def _read_keyed(path):
    try:
        with open(path) as f:
            return {k: int(v) for k, v in (line.split() for line in f if line.strip())}
    except (FileNotFoundError, OSError):
        return {}


def read_stats(pid: int) -> dict[str, dict[str, int]]:
    """{"memory": {...}, "cpu": {...}, "pids": {...}} for the cgroups of ``pid``."""
    groups = cgroups_of(pid)
    stats: dict[str, Any] = {"memory": {}, "cpu": {}, "pids": {}}
    if "memory" in groups:
        m = groups["memory"]
        stats["memory"] = {"usage": _read_int(m + "/memory.usage_in_bytes"),
                           "max_usage": _read_int(m + "/memory.max_usage_in_bytes"),
                           "limit": _read_int(m + "/memory.limit_in_bytes"),
                           "oom_kills": _read_keyed(m + "/memory.oom_control").get("oom_kill")}
    elif "" in groups and os.path.exists(groups[""] + "/memory.current"):
        m = groups[""]
        stats["memory"] = {"usage": _read_int(m + "/memory.current"),
                           "limit": _read_int(m + "/memory.max"),
                           "oom_kills": _read_keyed(m + "/memory.events").get("oom_kill")}
    if "cpuacct" in groups:
        stats["cpu"] = {"usage_ns": _read_int(groups["cpuacct"] + "/cpuacct.usage")}
    elif "" in groups and os.path.exists(groups[""] + "/cpu.stat"):
        usec = _read_keyed(groups[""] + "/cpu.stat").get("usage_usec")
        stats["cpu"] = {"usage_ns": None if usec is None else usec * 1000}
    for key in ("pids", ""):
        if key in groups and os.path.exists(groups[key] + "/pids.current"):
            stats["pids"] = {"current": _read_int(groups[key] + "/pids.current"),
                             "limit": _read_int(groups[key] + "/pids.max")}
            break
    return stats
