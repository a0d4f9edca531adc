"""Resource usage in the shape of runc's ``events --stats`` "data" (its JSON field names, and its
habit of leaving out zero counters), read from cgroup v1 or v2 files."""
from __future__ import annotations

import os

from pyrunc.libcontainer.cgroups.manager import read, read_int, read_keyed
from pyrunc.libcontainer.cgroups.resources import UINT64_MAX, parse_cpu_list

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
NS_PER_TICK = 1_000_000_000 // CLOCK_TICKS


def _compact(d):
    """Drop the zero/empty members runc's JSON leaves out (omitempty), keep the rest."""
    return {k: v for k, v in d.items() if v not in (0, None, [], {}, "")}


def _ints(path):
    try:
        return [int(x) for x in read(path).split()]
    except FileNotFoundError:
        return []


def _memory_entry(limit, usage, peak, failcnt):
    entry = {"limit": limit, "usage": usage, "max": peak, "failcnt": failcnt}
    return {k: v for k, v in entry.items() if k in ("limit", "failcnt") or v}


def _empty():
    return {"cpu": {"usage": {"kernel": 0, "user": 0}, "throttling": {}}, "memory": {},
            "pids": {}, "blkio": {}, "hugetlb": {}}


# ---- cgroup v1 ----------------------------------------------------------------------------------

def v1_stats(dirs: dict[str, str]) -> dict[str, Any]:
    out = _empty()
    if "cpuacct" in dirs:
        d = dirs["cpuacct"]
        acct = read_keyed(os.path.join(d, "cpuacct.stat"))
        usage = {"total": read_int(os.path.join(d, "cpuacct.usage")),
                 "percpu": _ints(os.path.join(d, "cpuacct.usage_percpu")),
                 "percpu_kernel": _ints(os.path.join(d, "cpuacct.usage_percpu_sys")),
                 "percpu_user": _ints(os.path.join(d, "cpuacct.usage_percpu_user"))}
        usage = _compact(usage)
        usage["kernel"] = acct.get("system", 0) * NS_PER_TICK
        usage["user"] = acct.get("user", 0) * NS_PER_TICK
        out["cpu"]["usage"] = usage
    if "cpu" in dirs:
        st = read_keyed(os.path.join(dirs["cpu"], "cpu.stat"))
        out["cpu"]["throttling"] = _compact({"periods": st.get("nr_periods", 0),
                                             "throttledPeriods": st.get("nr_throttled", 0),
                                             "throttledTime": st.get("throttled_time", 0)})
    if "cpuset" in dirs:
        out["cpuset"] = _cpuset(dirs["cpuset"])
    if "memory" in dirs:
        d = dirs["memory"]
        raw = read_keyed(os.path.join(d, "memory.stat"))

        def entry(prefix):
            return _memory_entry(read_int(os.path.join(d, prefix + "limit_in_bytes")),
                                 read_int(os.path.join(d, prefix + "usage_in_bytes")),
                                 read_int(os.path.join(d, prefix + "max_usage_in_bytes")),
                                 read_int(os.path.join(d, prefix + "failcnt")))
        out["memory"] = _compact({"cache": raw.get("cache", 0), "usage": entry("memory."),
                                  "swap": entry("memory.memsw."), "kernel": entry("memory.kmem."),
                                  "kernelTCP": entry("memory.kmem.tcp."), "raw": raw})
    if "pids" in dirs:
        d = dirs["pids"]
        out["pids"] = _compact({"current": read_int(os.path.join(d, "pids.current")),
                                "limit": read_int(os.path.join(d, "pids.max"))})
    if "blkio" in dirs:
        d = dirs["blkio"]
        out["blkio"] = _compact({
            "ioServiceBytesRecursive": _blkio(os.path.join(d, "blkio.throttle.io_service_bytes_recursive")),
            "ioServicedRecursive": _blkio(os.path.join(d, "blkio.throttle.io_serviced_recursive")),
        })
    if "hugetlb" in dirs:
        d = dirs["hugetlb"]
        for size in _hugepage_sizes(d, ".limit_in_bytes"):
            out["hugetlb"][size] = _compact({
                "usage": read_int(os.path.join(d, "hugetlb.%s.usage_in_bytes" % size)),
                "max": read_int(os.path.join(d, "hugetlb.%s.max_usage_in_bytes" % size)),
            })
            out["hugetlb"][size]["failcnt"] = read_int(os.path.join(d, "hugetlb.%s.failcnt" % size))
    return out


def _cpuset(d):
    def lst(name):
        try:
            return parse_cpu_list(read(os.path.join(d, name)))
        except FileNotFoundError:
            return []
    return _compact({"cpus": lst("cpuset.cpus") or lst("cpuset.cpus.effective"),
                     "mems": lst("cpuset.mems") or lst("cpuset.mems.effective")})


def _blkio(path):
    """"8:0 Read 4096" lines -> [{"major", "minor", "op", "value"}] (the Total line dropped)."""
    entries: list[Any] = []
    try:
        text = read(path)
    except FileNotFoundError:
        return entries
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue
        major, minor = parts[0].split(":", 1)
        entries.append(_compact({"major": int(major), "minor": int(minor), "op": parts[1],
                                 "value": int(parts[2])}))
    return entries


def _hugepage_sizes(d, suffix):
    sizes: list[Any] = []
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return sizes
    for name in names:
        if name.startswith("hugetlb.") and name.endswith(suffix):
            size = name[len("hugetlb."):-len(suffix)]
            if size and "." not in size:            # not hugetlb.2MB.rsvd.max
                sizes.append(size)
    return sorted(sizes)


# ---- cgroup v2 ----------------------------------------------------------------------------------

def v2_stats(d: Any) -> Any:
    out = _empty()
    st = read_keyed(os.path.join(d, "cpu.stat"))
    usage = _compact({"total": st.get("usage_usec", 0) * 1000})
    usage["kernel"] = st.get("system_usec", 0) * 1000
    usage["user"] = st.get("user_usec", 0) * 1000
    out["cpu"] = {"usage": usage,
                  "throttling": _compact({"periods": st.get("nr_periods", 0),
                                          "throttledPeriods": st.get("nr_throttled", 0),
                                          "throttledTime": st.get("throttled_usec", 0) * 1000})}
    if os.path.exists(os.path.join(d, "cpuset.cpus.effective")):
        out["cpuset"] = _cpuset(d)
    if os.path.exists(os.path.join(d, "memory.current")):
        raw = read_keyed(os.path.join(d, "memory.stat"))
        events = read_keyed(os.path.join(d, "memory.events"))
        current = read_int(os.path.join(d, "memory.current"))
        swap_current = read_int(os.path.join(d, "memory.swap.current"))
        limit = read_int(os.path.join(d, "memory.max"), UINT64_MAX)
        swap_limit = read_int(os.path.join(d, "memory.swap.max"), UINT64_MAX)
        # as runc: "swap" is memory+swap, like v1's memsw
        swap_total = UINT64_MAX if UINT64_MAX in (limit, swap_limit) else limit + swap_limit
        out["memory"] = _compact({
            "cache": raw.get("file", 0),
            "usage": _memory_entry(limit, current, read_int(os.path.join(d, "memory.peak")),
                                   events.get("max", 0)),
            "swap": _memory_entry(swap_total, current + swap_current, 0,
                                  read_keyed(os.path.join(d, "memory.swap.events")).get("max", 0)),
            "raw": raw})
    if os.path.exists(os.path.join(d, "pids.current")):
        out["pids"] = _compact({"current": read_int(os.path.join(d, "pids.current")),
                                "limit": read_int(os.path.join(d, "pids.max"))})
    out["blkio"] = _compact(_io_stat(os.path.join(d, "io.stat")))
    for size in _hugepage_sizes(d, ".max"):
        out["hugetlb"][size] = _compact({"usage": read_int(os.path.join(d, "hugetlb.%s.current" % size))})
        out["hugetlb"][size]["failcnt"] = read_keyed(
            os.path.join(d, "hugetlb.%s.events" % size)).get("max", 0)
    return out


def _io_stat(path):
    """io.stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...") in v1's blkio entry shape."""
    service_bytes: list[Any]
    serviced: list[Any]
    service_bytes, serviced = [], []
    try:
        text = read(path)
    except FileNotFoundError:
        return {}
    for line in text.splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        major, minor = (int(x) for x in parts[0].split(":", 1))
        kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        for key, op, target in (("rbytes", "Read", service_bytes), ("wbytes", "Write", service_bytes),
                                ("rios", "Read", serviced), ("wios", "Write", serviced)):
            if key in kv:
                target.append(_compact({"major": major, "minor": minor, "op": op,
                                        "value": int(kv[key])}))
    return {"ioServiceBytesRecursive": service_bytes, "ioServicedRecursive": serviced}
