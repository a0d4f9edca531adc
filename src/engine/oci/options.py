"""HostConfig options, each checked and turned into its part of the runtime config as dockerd
does: capabilities, security options, devices, resources, ulimits, sysctls, tmpfs, env.

Every parser raises InvalidArgument with docker's message where docker has one, and is given
what an API client sends, so every value is type-checked first.
"""
from __future__ import annotations

import os
import stat

from pyrunc.errors import InvalidArgument, shown
from pyrunc.libcontainer.capabilities import CAPABILITIES, last_cap
from pyrunc.libcontainer.rlimits import RLIM_INFINITY, RLIMITS

from pyrunc.engine.oci import defaults

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MIN_MEMORY = 6 << 20
"""The smallest memory limit or reservation docker accepts."""
MIN_CPU_SHARES, MAX_CPU_SHARES = 2, 262144
NANO = 1_000_000_000


def int_field(host_config: dict[str, Any], key: str) -> int:
    """``host_config[key]`` as an integer, 0 when absent or null; InvalidArgument otherwise."""
    value = host_config.get(key)
    if value is None:
        return 0
    if type(value) is not int:
        raise InvalidArgument("HostConfig.%s: must be an integer" % key)
    return value


def str_field(host_config: dict[str, Any], key: str) -> str:
    """``host_config[key]`` as a string, "" when absent or null."""
    value = host_config.get(key)
    if value is None:
        return ""
    if type(value) is not str:
        raise InvalidArgument("HostConfig.%s: must be a string" % key)
    return value


def list_field(host_config: dict[str, Any], key: str, item: type = str) -> list[Any]:
    """``host_config[key]`` as a list of ``item`` (strings or objects), [] when absent."""
    value = host_config.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or any(not isinstance(v, item) for v in value):
        raise InvalidArgument("HostConfig.%s: must be an array of %s" % (
            key, "strings" if item is str else "objects"))
    return value


# -- capabilities ----------------------------------------------------------------------------

def _bounding_set() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return None


def all_capabilities() -> list[str]:
    """Every capability the running kernel has and the engine may hand on (those in its own
    bounding set: an engine in a container cannot give what it lacks): a privileged
    container's set, and ``--cap-add ALL``."""
    known = CAPABILITIES[:last_cap() + 1]
    bounding = _bounding_set()
    if bounding is None:
        return list(known)
    return [c for number, c in enumerate(known) if bounding >> number & 1]


def normalize_capabilities(names: list[str]) -> list[str]:
    """``"net_admin"``, ``"NET_ADMIN"`` and ``"CAP_NET_ADMIN"`` as ``CAP_NET_ADMIN``, ``"all"``
    as ``ALL``; an unknown name -> InvalidArgument ``unknown capability: "CAP_X"``."""
    out = []
    for name in names:
        upper = name.upper()
        if upper == "ALL":
            out.append("ALL")
            continue
        if not upper.startswith("CAP_"):
            upper = "CAP_" + upper
        if upper not in CAPABILITIES:
            raise InvalidArgument("unknown capability: %s" % _quote(upper))
        out.append(upper)
    return out


def _quote(text: str) -> str:
    """Go's %q of a string (enough of it for names that are ASCII)."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append("\\u%04x" % ord(ch) if ord(ch) < 0x10000 else "\\U%08x" % ord(ch))
    out.append('"')
    return "".join(out)


def capabilities(cap_add: list[str], cap_drop: list[str], privileged: bool) -> list[str]:
    """The container's capabilities: docker's defaults with CapDrop removed and CapAdd added
    (``ALL`` in CapAdd: every capability but those dropped; ``ALL`` in CapDrop: only those
    added); every capability for a privileged container."""
    drop = normalize_capabilities(cap_drop)
    add = normalize_capabilities(cap_add)
    if privileged:
        return all_capabilities()
    if not add and not drop:
        return list(defaults.DEFAULT_CAPABILITIES)
    if "ALL" in add:
        caps = [c for c in all_capabilities() if c not in drop]
    elif "ALL" in drop:
        caps = []
        for c in add:
            if c not in caps:
                caps.append(c)
    else:
        caps = [c for c in defaults.DEFAULT_CAPABILITIES if c not in drop]
        for c in add:
            if c not in caps:
                caps.append(c)
    return caps


# -- security options ------------------------------------------------------------------------

class SecurityOptions:
    """``HostConfig.SecurityOpt`` read: ``seccomp`` ("" for the default profile,
    "unconfined", or a profile's JSON text), ``no_new_privileges``, ``unconfined_paths``
    (systempaths=unconfined), and the options accepted but without effect here (``ignored``)."""

    __slots__ = ("seccomp", "no_new_privileges", "unconfined_paths", "ignored")

    def __init__(self) -> None:
        self.seccomp = ""
        self.no_new_privileges = False
        self.unconfined_paths = False
        self.ignored: list[str] = []


def _parse_bool(text: str) -> bool | None:
    """Go's strconv.ParseBool."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


def security_options(options: list[str]) -> SecurityOptions:
    """Parse ``--security-opt`` values as dockerd does."""
    out = SecurityOptions()
    for opt in options:
        if opt == "systempaths=unconfined":
            out.unconfined_paths = True
            continue
        if opt == "no-new-privileges":
            out.no_new_privileges = True
            continue
        if opt == "disable":
            out.ignored.append(opt)
            continue
        if "=" in opt:
            key, _, value = opt.partition("=")
        elif ":" in opt:
            key, _, value = opt.partition(":")
        else:
            raise InvalidArgument("invalid --security-opt 1: %s" % _quote(opt))
        if key == "label" or key == "apparmor":
            out.ignored.append(opt)
        elif key == "seccomp":
            out.seccomp = "" if value == "builtin" else value
        elif key == "no-new-privileges":
            flag = _parse_bool(value)
            if flag is None:
                raise InvalidArgument("invalid --security-opt 2: %s" % _quote(opt))
            out.no_new_privileges = flag
        else:
            raise InvalidArgument("invalid --security-opt 2: %s" % _quote(opt))
    return out


# -- devices ---------------------------------------------------------------------------------

HOST_DEV_SKIP = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"})


def _device_entry(path: str, st: os.stat_result, container_path: str, access: str
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    device = {"path": container_path, "type": kind, "major": major, "minor": minor,
              "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}
    rule = {"allow": True, "type": kind, "major": major, "minor": minor, "access": access}
    return device, rule


def _is_device(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)


def _valid_mode(mode: str) -> bool:
    return bool(mode) and len(mode) <= 3 and all(c in "rwm" for c in mode) and \
        len(set(mode)) == len(mode)


def devices(entries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``HostConfig.Devices`` (PathOnHost, PathInContainer, CgroupPermissions) as
    ``linux.devices`` and the device cgroup rules allowing them. A directory adds every device
    under it; a host path that is a symlink is followed, as docker does."""
    devs: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidArgument("HostConfig.Devices[%d]: must be an object" % i)
        host = entry.get("PathOnHost")
        inside = entry.get("PathInContainer") or host
        mode = entry.get("CgroupPermissions") or "rwm"
        if type(host) is not str or not host or type(inside) is not str or type(mode) is not str:
            raise InvalidArgument("HostConfig.Devices[%d]: PathOnHost, PathInContainer and "
                                  "CgroupPermissions must be strings" % i)
        if not _valid_mode(mode):
            raise InvalidArgument("invalid device mode: %s" % shown(mode))
        if not inside.startswith("/") or "\0" in inside or "\0" in host:
            raise InvalidArgument("bad format for path: %s" % shown(inside))
        resolved = os.path.realpath(host)
        try:
            st = os.stat(resolved)
        except OSError as e:
            raise InvalidArgument("error gathering device information while adding custom "
                                  "device %s: %s" % (_quote(host), os.strerror(e.errno or 0)
                                                     .lower())) from None
        if _is_device(st):
            device, rule = _device_entry(resolved, st, os.path.normpath(inside), mode)
            devs.append(device)
            rules.append(rule)
            continue
        found = False
        if stat.S_ISDIR(st.st_mode):
            for dirpath, dirnames, filenames in os.walk(resolved):
                dirnames.sort()
                for name in sorted(filenames):
                    path = os.path.join(dirpath, name)
                    try:
                        child = os.stat(path, follow_symlinks=False)
                    except OSError:
                        continue
                    if _is_device(child):
                        target = os.path.join(inside, os.path.relpath(path, resolved))
                        device, rule = _device_entry(path, child, os.path.normpath(target),
                                                     mode)
                        devs.append(device)
                        rules.append(rule)
                        found = True
        if not found:
            raise InvalidArgument("error gathering device information while adding custom "
                                  "device %s: not a device node" % _quote(host))
    return devs, rules


def host_devices() -> list[dict[str, Any]]:
    """Every device node under the host's /dev (a privileged container's), skipping the
    directories of pseudo-terminals, shared memory, fds and message queues, and /dev/console."""
    out: list[dict[str, Any]] = []
    for dirpath, dirnames, filenames in os.walk("/dev"):
        if dirpath == "/dev":
            dirnames[:] = [d for d in dirnames if d not in HOST_DEV_SKIP]
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if path == "/dev/console":
                continue
            try:
                st = os.stat(path, follow_symlinks=False)
            except OSError:
                continue
            if _is_device(st):
                out.append(_device_entry(path, st, path, "rwm")[0])
    return out


# -- resources -------------------------------------------------------------------------------

def _swap_accounting() -> bool:
    """Whether the memory cgroup can limit swap (docker's SwapLimit)."""
    return os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") or _v2_swap()


def _v2_swap() -> bool:
    try:
        with open("/proc/self/cgroup") as f:
            line = f.read()
    except OSError:
        return False
    if not line.startswith("0::"):
        return False
    path = line.split("::", 1)[1].strip()
    return os.path.exists(os.path.join("/sys/fs/cgroup", path.lstrip("/"), "memory.swap.max"))


MAX_CPUSET_ID = 1 << 16
"""The largest CPU or memory node number a cpuset list may name (Linux builds at most 8192
CPUs): ``0-4000000000`` is refused instead of expanded."""


def parse_list(text: str) -> set[int] | None:
    """A cpuset list (``0-3,5``) as a set; None when malformed (docker's ParseUintList) or
    naming a number above MAX_CPUSET_ID."""
    out: set[int] = set()
    if not text:
        return out
    for part in text.split(","):
        low, dash, high = part.partition("-")
        if not (low.isascii() and low.isdigit()) or (dash and not (high.isascii()
                                                                   and high.isdigit())):
            return None
        first, last = int(low), int(high) if dash else int(low)
        if last < first or last > MAX_CPUSET_ID:
            return None
        out.update(range(first, last + 1))
    return out


def _available(kind: str) -> set[int]:
    """The CPUs or memory nodes the engine's cgroup may use."""
    for path in ("/sys/fs/cgroup/cpuset/cpuset.%s" % kind,
                 "/sys/fs/cgroup/cpuset.%s.effective" % kind):
        try:
            with open(path) as f:
                found = parse_list(f.read().strip())
        except OSError:
            continue
        if found is not None:
            return found
    if kind == "cpus":
        return set(os.sched_getaffinity(0))
    return {0}


def _cpuset(text: str, kind: str, what: str) -> str:
    wanted = parse_list(text)
    if wanted is None:
        raise InvalidArgument("Invalid value %s for cpuset %s" % (shown(text), kind))
    available = _available(kind)
    if not wanted <= available:
        raise InvalidArgument("Requested %s are not available - requested %s, available: %s"
                              % (what, shown(text), _format_list(available)))
    return text


def _format_list(values: set[int]) -> str:
    out = []
    ordered = sorted(values)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else "%d-%d" % (ordered[i], ordered[j]))
        i = j + 1
    return ",".join(out)


def resources(host_config: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """``linux.resources`` (without devices) of the resource options, validated with docker's
    messages; adjustments docker makes are noted in ``warnings``."""
    out: dict[str, Any] = {}
    memory = int_field(host_config, "Memory")
    swap = int_field(host_config, "MemorySwap")
    reservation = int_field(host_config, "MemoryReservation")
    if memory < 0 or 0 < memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if swap > 0 and memory == 0:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap "
                              "limit, see usage")
    if memory > 0 and swap > 0 and swap < memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, "
                              "see usage")
    if reservation < 0 or 0 < reservation < MIN_MEMORY:
        raise InvalidArgument("Minimum memory reservation allowed is 6MB")
    if memory > 0 and reservation > 0 and memory < reservation:
        raise InvalidArgument("Minimum memory limit can not be less than memory reservation "
                              "limit, see usage")
    swappiness = host_config.get("MemorySwappiness")
    if swappiness is not None and (type(swappiness) is not int
                                   or swappiness != -1 and not 0 <= swappiness <= 100):
        raise InvalidArgument("Invalid value: %s, valid memory swappiness range is 0-100"
                              % swappiness)
    mem: dict[str, Any] = {}
    if memory > 0:
        mem["limit"] = memory
        if swap == 0:
            if _swap_accounting():
                swap = memory * 2
            else:
                warnings.append("Your kernel does not support swap limit capabilities or the "
                                "cgroup is not mounted. Memory limited without swap.")
                swap = -1
    if swap != 0 and (memory > 0 or swap == -1):
        if swap > 0 and not _swap_accounting():
            warnings.append("Your kernel does not support swap limit capabilities or the "
                            "cgroup is not mounted. Memory limited without swap.")
        else:
            mem["swap"] = swap
    if reservation > 0:
        mem["reservation"] = reservation
    if swappiness is not None and swappiness >= 0:
        mem["swappiness"] = swappiness
    if host_config.get("OomKillDisable") is True:
        mem["disableOOMKiller"] = True
    if mem:
        out["memory"] = mem

    nano = int_field(host_config, "NanoCpus")
    quota = int_field(host_config, "CpuQuota")
    period = int_field(host_config, "CpuPeriod")
    shares = int_field(host_config, "CpuShares")
    if nano > 0 and period > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano > 0 and quota > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    ncpu = len(os.sched_getaffinity(0))
    if nano < 0 or nano > ncpu * NANO:
        raise InvalidArgument("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs "
                              "available" % (ncpu, ncpu))
    if period != 0 and not 1000 <= period <= 1000000:
        raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger "
                              "than 1s (i.e. 1000000)")
    if 0 < quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if quota < -1:
        raise InvalidArgument("invalid CPU value: CpuQuota %d" % quota)
    cpu: dict[str, Any] = {}
    if shares < 0:
        warnings.append("Changing requested CPUShares of %d to minimum allowed of %d"
                        % (shares, MIN_CPU_SHARES))
        shares = MIN_CPU_SHARES
    elif shares > MAX_CPU_SHARES:
        warnings.append("Changing requested CPUShares of %d to maximum allowed of %d"
                        % (shares, MAX_CPU_SHARES))
        shares = MAX_CPU_SHARES
    if shares:
        cpu["shares"] = shares
    if nano > 0:
        cpu["period"] = 100000
        cpu["quota"] = nano * 100000 // NANO
    if quota:
        cpu["quota"] = quota
    if period:
        cpu["period"] = period
    cpus = str_field(host_config, "CpusetCpus")
    mems = str_field(host_config, "CpusetMems")
    if cpus:
        cpu["cpus"] = _cpuset(cpus, "cpus", "CPUs")
    if mems:
        cpu["mems"] = _cpuset(mems, "mems", "memory nodes")
    for key, name in (("CpuRealtimePeriod", "realtimePeriod"),
                      ("CpuRealtimeRuntime", "realtimeRuntime")):
        value = int_field(host_config, key)
        if value < 0:
            raise InvalidArgument("invalid CPU value: %s %d" % (key, value))
        if value:
            cpu[name] = value
    if cpu:
        out["cpu"] = cpu

    pids = host_config.get("PidsLimit")
    if pids is not None:
        if type(pids) is not int:
            raise InvalidArgument("HostConfig.PidsLimit: must be an integer")
        out["pids"] = {"limit": pids if pids > 0 else -1}
    weight = int_field(host_config, "BlkioWeight")
    if weight and not 10 <= weight <= 1000:
        raise InvalidArgument("Range of blkio weight is from 10 to 1000")
    blkio: dict[str, Any] = {}
    if weight:
        blkio["weight"] = weight
    for key, name, field in BLKIO_DEVICE_LISTS:
        entries = []
        for i, entry in enumerate(list_field(host_config, key, dict)):
            path = entry.get("Path")
            value = entry.get(field)
            if type(path) is not str or type(value) is not int or value < 0:
                raise InvalidArgument("HostConfig.%s[%d]: must be {\"Path\": string, \"%s\": "
                                      "integer >= 0}" % (key, i, field))
            if field == "Weight" and not (10 <= value <= 1000 or value == 0):
                raise InvalidArgument("Range of blkio weight is from 10 to 1000")
            major, minor = _block_device(path)
            item = {"major": major, "minor": minor}
            item["weight" if field == "Weight" else "rate"] = value
            entries.append(item)
        if entries:
            blkio[name] = entries
    if blkio:
        out["blockIO"] = blkio
    return out


BLKIO_DEVICE_LISTS = (
    ("BlkioWeightDevice", "weightDevice", "Weight"),
    ("BlkioDeviceReadBps", "throttleReadBpsDevice", "Rate"),
    ("BlkioDeviceWriteBps", "throttleWriteBpsDevice", "Rate"),
    ("BlkioDeviceReadIOps", "throttleReadIOPSDevice", "Rate"),
    ("BlkioDeviceWriteIOps", "throttleWriteIOPSDevice", "Rate"),
)
"""HostConfig's per-device block I/O lists, their linux.resources.blockIO names and values."""


def _block_device(path: str) -> tuple[int, int]:
    """(major, minor) of the host's device at ``path``."""
    if "\0" in path:
        raise InvalidArgument("error getting blkio device %s: a NUL byte in the path"
                              % shown(path))
    try:
        st = os.stat(path)
    except OSError as e:
        raise InvalidArgument("error getting blkio device %s: %s" % (
            shown(path), os.strerror(e.errno or 0).lower())) from None
    if not _is_device(st):
        raise InvalidArgument("error getting blkio device %s: not a device node" % shown(path))
    return os.major(st.st_rdev), os.minor(st.st_rdev)


def device_cgroup_rules(rules: list[str]) -> list[dict[str, Any]]:
    """``HostConfig.DeviceCgroupRules`` (``"c 1:3 rwm"``, ``"b *:* m"``) as device cgroup
    rules; docker's message for a malformed one."""
    out = []
    for rule in rules:
        parts = rule.split(" ")
        numbers = parts[1].split(":") if len(parts) == 3 else []
        if (len(parts) != 3 or parts[0] not in ("a", "b", "c") or len(numbers) != 2
                or not all(n == "*" or (n.isascii() and n.isdigit()) for n in numbers)
                or not _valid_mode(parts[2])):
            raise InvalidArgument("invalid device cgroup rule format: '%s'" % shown(rule))
        item: dict[str, Any] = {"allow": True, "type": parts[0]}
        if numbers[0] != "*":
            item["major"] = int(numbers[0])
        if numbers[1] != "*":
            item["minor"] = int(numbers[1])
        if any(v >= 1 << 32 for k, v in item.items() if k in ("major", "minor")):
            raise InvalidArgument("invalid device cgroup rule format: '%s'" % shown(rule))
        item["access"] = parts[2]
        out.append(item)
    return out


# -- process limits, sysctls, tmpfs ----------------------------------------------------------

def _limit(value: Any, name: str) -> int:
    if type(value) is not int:
        raise InvalidArgument("invalid ulimit %s: the limits must be integers" % shown(name))
    if value == -1:
        return RLIM_INFINITY
    if value < 0:
        raise InvalidArgument("invalid ulimit %s: %d is not a limit" % (name, value))
    return value


def rlimits(ulimits: list[Any]) -> list[dict[str, Any]]:
    """``HostConfig.Ulimits`` ([{Name, Soft, Hard}]) as ``process.rlimits``; -1 is unlimited."""
    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(ulimits):
        if not isinstance(entry, dict) or type(entry.get("Name")) is not str:
            raise InvalidArgument("HostConfig.Ulimits[%d]: must be an object with a Name" % i)
        name = entry["Name"]
        kind = "RLIMIT_" + name.upper()
        if kind not in RLIMITS:
            raise InvalidArgument("invalid ulimit type: %s" % shown(name))
        soft = _limit(entry.get("Soft", 0), name)
        hard = _limit(entry.get("Hard", 0), name)
        if soft > hard:
            raise InvalidArgument("ulimit soft limit must be less than or equal to hard "
                                  "limit: %d > %d" % (soft, hard))
        limit = {"type": kind, "soft": soft, "hard": hard}
        if kind in seen:
            out[seen[kind]] = limit
        else:
            seen[kind] = len(out)
            out.append(limit)
    return out


def sysctls(values: dict[str, Any], *, host_network: bool, host_ipc: bool) -> dict[str, str]:
    """``HostConfig.Sysctls``: only the namespaced ones docker allows (the IPC namespace's,
    ``fs.mqueue.*``, and ``net.*`` outside the host's network namespace)."""
    out: dict[str, str] = {}
    for key, value in values.items():
        if type(key) is not str or type(value) is not str:
            raise InvalidArgument("HostConfig.Sysctls: keys and values must be strings")
        if "\0" in key or "\0" in value:
            raise InvalidArgument("sysctl '%s' is not allowed" % shown(key))
        name = key.replace("/", ".")
        ipc = name in defaults.ALLOWED_SYSCTLS or name.startswith("fs.mqueue.")
        if ipc:
            if host_ipc:
                raise InvalidArgument("sysctl '%s' is not allowed in host ipc namespace" % shown(key))
        elif name.startswith("net."):
            if host_network:
                raise InvalidArgument("sysctl '%s' is not allowed in host network namespace"
                                      % shown(key))
        else:
            raise InvalidArgument("sysctl '%s' is not allowed" % shown(key))
        if any(part in ("", ".", "..") for part in name.split(".")):
            raise InvalidArgument("sysctl '%s' is not allowed" % shown(key))
        out[name] = value
    return out


TMPFS_FLAGS = {
    "ro", "rw", "suid", "nosuid", "dev", "nodev", "exec", "noexec", "sync", "async",
    "dirsync", "remount", "mand", "nomand", "atime", "noatime", "diratime", "nodiratime",
    "relatime", "norelatime", "strictatime", "nostrictatime",
    "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable",
    "runbindable",
}
TMPFS_DATA = {"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"}
# options that cancel each other: the later one wins
_OPPOSITES = {}
for _a, _b in (("ro", "rw"), ("suid", "nosuid"), ("dev", "nodev"), ("exec", "noexec"),
               ("sync", "async"), ("mand", "nomand"), ("atime", "noatime"),
               ("diratime", "nodiratime"), ("relatime", "norelatime"),
               ("strictatime", "nostrictatime")):
    _OPPOSITES[_a], _OPPOSITES[_b] = _b, _a
_PROPAGATIONS = {"private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable",
                 "runbindable"}


def merge_tmpfs_options(options: list[str]) -> list[str]:
    """Options in order with later ones overriding earlier (``exec`` after ``noexec`` wins; the
    last ``size=`` wins), refusing unknown ones (``Invalid tmpfs option "x"``)."""
    out: list[str] = []
    for opt in options:
        key = opt.split("=", 1)[0]
        if "=" in opt:
            if key not in TMPFS_DATA:
                raise InvalidArgument("Invalid tmpfs option %s" % _quote(opt))
            out = [o for o in out if o.split("=", 1)[0] != key]
        elif opt in TMPFS_FLAGS:
            if opt in _PROPAGATIONS:
                out = [o for o in out if o not in _PROPAGATIONS]
            else:
                out = [o for o in out if o != opt and o != _OPPOSITES.get(opt)]
        else:
            raise InvalidArgument("Invalid tmpfs option %s" % _quote(opt))
        out.append(opt)
    return out


def tmpfs_mounts(tmpfs: dict[str, Any]) -> list[dict[str, Any]]:
    """``HostConfig.Tmpfs`` ({destination: "opt,opt"}) as OCI mounts: noexec, nosuid, nodev
    and rprivate unless the options say otherwise."""
    out = []
    for dest, data in sorted(tmpfs.items()):
        if type(dest) is not str or type(data) is not str:
            raise InvalidArgument("HostConfig.Tmpfs: keys and values must be strings")
        if not dest.startswith("/") or "\0" in dest:
            raise InvalidArgument("invalid mount config for type \"tmpfs\": invalid mount "
                                  "path: '%s' mount path must be absolute" % shown(dest))
        if os.path.normpath(dest) == "/":
            raise InvalidArgument("invalid mount config for type \"tmpfs\": destination "
                                  "can't be '/'")
        opts = ["noexec", "nosuid", "nodev", "rprivate"]
        if data:
            opts += data.split(",")
        out.append({"destination": os.path.normpath(dest), "type": "tmpfs",
                    "source": "tmpfs", "options": merge_tmpfs_options(opts)})
    return out


# -- environment -----------------------------------------------------------------------------

def environment(config_env: list[str], *, hostname: str, tty: bool) -> list[str]:
    """The process's environment as dockerd builds it: PATH (docker's default), HOSTNAME and,
    with a terminal, TERM=xterm, each replaced by the Config's entry of the same name; the
    Config's other entries appended; an entry without ``=`` removes that variable."""
    env = ["PATH=" + defaults.DEFAULT_PATH_ENV, "HOSTNAME=" + hostname]
    if tty:
        env.append("TERM=xterm")
    index = {e.split("=", 1)[0]: i for i, e in enumerate(env)}
    removed: set[int] = set()
    for entry in config_env:
        if type(entry) is not str or "\0" in entry:
            raise InvalidArgument("invalid environment variable: %r" % (entry,))
        name, eq, _ = entry.partition("=")
        if not name:
            raise InvalidArgument("invalid environment variable: %s" % shown(entry))
        if not eq:
            if name in index:
                removed.add(index[name])
            continue
        if name in index:
            env[index[name]] = entry
            removed.discard(index[name])
        else:
            index[name] = len(env)
            env.append(entry)
    return [e for i, e in enumerate(env) if i not in removed]
