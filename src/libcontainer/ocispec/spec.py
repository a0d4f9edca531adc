"""The OCI runtime-spec configuration (versions 1.0 to 1.2, Linux platform) as typed classes.

Each class is one JSON object of ``config.json``; its ``fields`` map the JSON keys to their kinds
and the attributes are the keys in snake_case. ``linux.resources``, ``linux.seccomp``,
``linux.intelRdt`` and ``linux.personality`` are checked against their classes here but kept as
the JSON dicts they were (the cgroup managers and the seccomp compiler read them).

Keys the spec does not define are ignored, as runc ignores them (the spec allows extensions).
"""
from pyrunc.libcontainer.ocispec.fields import (
    BOOL, INT32, INT64, STRING, TEXT, UINT16, UINT32, UINT64, Array, Int, Map, Model, Object,
    Raw, Str, line_end, made_of)

UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
# the spec's four, and the recursive forms runc accepts and Docker writes
PROPAGATIONS = ("", "private", "shared", "slave", "unbindable",
                "rprivate", "rshared", "rslave", "runbindable")
SECCOMP_ACTIONS = ("SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                   "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW",
                   "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY")
SECCOMP_OPERATORS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
                     "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ")
SECCOMP_ARCHES = ("SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM",
                  "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64",
                  "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
                  "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
                  "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC",
                  "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64",
                  "SCMP_ARCH_M68K", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB")
SECCOMP_FLAGS = ("SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                 "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")
SCHEDULER_POLICIES = ("SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_ISO",
                      "SCHED_IDLE", "SCHED_DEADLINE")
SCHEDULER_FLAGS = ("SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM", "SCHED_FLAG_DL_OVERRUN",
                   "SCHED_FLAG_KEEP_POLICY", "SCHED_FLAG_KEEP_PARAMS", "SCHED_FLAG_UTIL_CLAMP_MIN",
                   "SCHED_FLAG_UTIL_CLAMP_MAX")
IOPRIO_CLASSES = ("IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE")

STRINGS = Array(STRING)


# -- root, mounts, hooks ---------------------------------------------------------------------

class Root(Model):
    """root: the container's root filesystem."""

    fields = {"path": STRING, "readonly": BOOL}
    required = ("path",)


class IDMapping(Model):
    """One range of a user namespace's uid or gid map."""

    fields = {"containerID": UINT32, "hostID": UINT32, "size": UINT32}
    required = ("containerID", "hostID", "size")


IDMAPPINGS = Array(Object(IDMapping))


class Mount(Model):
    """mounts[]: one mount, in order."""

    fields = {"destination": STRING, "source": STRING, "options": STRINGS, "type": STRING,
              "uidMappings": IDMAPPINGS, "gidMappings": IDMAPPINGS}
    required = ("destination",)


class Hook(Model):
    """One hook: an executable run with the container state on stdin."""

    fields = {"path": STRING, "args": STRINGS, "env": STRINGS, "timeout": Int(1, 2 ** 31 - 1)}
    required = ("path",)


HOOKS = Array(Object(Hook))


class Hooks(Model):
    """hooks: the six lifecycle points."""

    fields = {"prestart": HOOKS, "createRuntime": HOOKS, "createContainer": HOOKS,
              "startContainer": HOOKS, "poststart": HOOKS, "poststop": HOOKS}


# -- process ---------------------------------------------------------------------------------

class ConsoleSize(Model):
    """process.consoleSize: the terminal's size in characters."""

    fields = {"height": UINT32, "width": UINT32}
    required = ("height", "width")


class User(Model):
    """process.user: the identity the process runs as."""

    fields = {"uid": UINT32, "gid": UINT32, "umask": UINT32, "additionalGids": Array(UINT32),
              "username": STRING}
    required = ("uid", "gid")


class Capabilities(Model):
    """process.capabilities: the five capability sets, as CAP_* names."""

    fields = {"bounding": STRINGS, "effective": STRINGS, "inheritable": STRINGS,
              "permitted": STRINGS, "ambient": STRINGS}


def _rlimit_type(value):
    name = line_end(value)
    return name.startswith("RLIMIT_") and len(name) > 7 and made_of(name[7:], UPPER)


class Rlimit(Model):
    """process.rlimits[]: one resource limit."""

    fields = {"type": Str(pattern="^RLIMIT_[A-Z]+$", matches=_rlimit_type),
              "soft": UINT64, "hard": UINT64}
    required = ("type", "soft", "hard")


class Scheduler(Model):
    """process.scheduler: the scheduling policy and its attributes (sched_setattr)."""

    fields = {"policy": Str(SCHEDULER_POLICIES), "nice": INT32, "priority": INT32,
              "flags": Array(Str(SCHEDULER_FLAGS)), "runtime": UINT64, "deadline": UINT64,
              "period": UINT64}
    required = ("policy",)


class IOPriority(Model):
    """process.ioPriority: the I/O scheduling class and priority."""

    fields = {"class": Str(IOPRIO_CLASSES), "priority": INT32}
    required = ("class",)


class CPUAffinity(Model):
    """process.execCPUAffinity: CPU lists for the process during and after exec."""

    fields = {"initial": STRING, "final": STRING}


class Process(Model):
    """process: the container process."""

    fields = {"terminal": BOOL, "consoleSize": Object(ConsoleSize),
              "cwd": Str(pattern="^/", matches=lambda value: value.startswith("/")),
              "env": STRINGS,
              "args": Array(STRING, non_empty=True), "commandLine": STRING,
              "rlimits": Array(Object(Rlimit)), "apparmorProfile": STRING,
              "capabilities": Object(Capabilities), "noNewPrivileges": BOOL,
              "oomScoreAdj": Int(-1000, 1000), "scheduler": Object(Scheduler),
              "selinuxLabel": STRING, "ioPriority": Object(IOPriority),
              "execCPUAffinity": Object(CPUAffinity), "user": Object(User)}
    required = ("cwd", "args", "user")


# -- linux.resources (kept raw) --------------------------------------------------------------

class DeviceRule(Model):
    """linux.resources.devices[]: one device cgroup rule."""

    fields = {"allow": BOOL, "type": Str(("a", "b", "c")), "major": INT64, "minor": INT64,
              "access": Str(pattern="^[rwm]*$",
                            matches=lambda value: made_of(line_end(value), "rwm"))}
    required = ("allow",)


class Memory(Model):
    """linux.resources.memory: limits in bytes (-1: unlimited)."""

    fields = {"limit": INT64, "reservation": INT64, "swap": INT64, "kernel": INT64,
              "kernelTCP": INT64, "swappiness": Int(0, 100), "disableOOMKiller": BOOL,
              "useHierarchy": BOOL, "checkBeforeUpdate": BOOL}


class CPU(Model):
    """linux.resources.cpu: CPU shares, bandwidth, realtime and cpuset."""

    fields = {"shares": UINT64, "quota": INT64, "burst": UINT64, "period": UINT64,
              "realtimeRuntime": INT64, "realtimePeriod": UINT64, "cpus": STRING, "mems": STRING,
              "idle": INT64}


class Pids(Model):
    """linux.resources.pids: the process-number limit (0 or -1: unlimited)."""

    fields = {"limit": INT64}
    required = ("limit",)


class WeightDevice(Model):
    """linux.resources.blockIO.weightDevice[]: a per-device weight."""

    fields = {"major": INT64, "minor": INT64, "weight": UINT16, "leafWeight": UINT16}
    required = ("major", "minor")


class ThrottleDevice(Model):
    """linux.resources.blockIO.throttle*Device[]: a per-device rate."""

    fields = {"major": INT64, "minor": INT64, "rate": UINT64}
    required = ("major", "minor", "rate")


THROTTLES = Array(Object(ThrottleDevice))


class BlockIO(Model):
    """linux.resources.blockIO: weights and throttles."""

    fields = {"weight": UINT16, "leafWeight": UINT16, "weightDevice": Array(Object(WeightDevice)),
              "throttleReadBpsDevice": THROTTLES, "throttleWriteBpsDevice": THROTTLES,
              "throttleReadIOPSDevice": THROTTLES, "throttleWriteIOPSDevice": THROTTLES}


def _page_size(value):
    size = line_end(value)
    return (len(size) >= 3 and size[0] in DIGITS[1:] and made_of(size[1:-2], DIGITS)
            and size[-2] in "KMG" and size[-1] == "B")


class HugepageLimit(Model):
    """linux.resources.hugepageLimits[]: a limit for one page size."""

    fields = {"pageSize": Str(pattern="^[1-9][0-9]*[KMG]B$", matches=_page_size),
              "limit": UINT64}
    required = ("pageSize", "limit")


class InterfacePriority(Model):
    """linux.resources.network.priorities[]."""

    fields = {"name": STRING, "priority": UINT32}
    required = ("name", "priority")


class Network(Model):
    """linux.resources.network: net_cls class id and net_prio priorities."""

    fields = {"classID": UINT32, "priorities": Array(Object(InterfacePriority))}


class Rdma(Model):
    """linux.resources.rdma[device]."""

    fields = {"hcaHandles": UINT32, "hcaObjects": UINT32}


class Resources(Model):
    """linux.resources: cgroup settings."""

    fields = {"devices": Array(Object(DeviceRule)), "memory": Object(Memory),
              "cpu": Object(CPU), "pids": Object(Pids), "blockIO": Object(BlockIO),
              "hugepageLimits": Array(Object(HugepageLimit)), "network": Object(Network),
              "rdma": Map(Object(Rdma)), "unified": Map(STRING)}


# -- linux.seccomp (kept raw) ----------------------------------------------------------------

class SeccompArg(Model):
    """linux.seccomp.syscalls[].args[]: a condition on one syscall argument."""

    fields = {"index": Int(0, 5), "value": UINT64, "valueTwo": UINT64,
              "op": Str(SECCOMP_OPERATORS)}
    required = ("index", "value", "op")


class Syscall(Model):
    """linux.seccomp.syscalls[]: an action for some syscalls, under conditions."""

    fields = {"names": Array(STRING, non_empty=True), "action": Str(SECCOMP_ACTIONS),
              "errnoRet": UINT32, "args": Array(Object(SeccompArg))}
    required = ("names", "action")


class Seccomp(Model):
    """linux.seccomp: the syscall filter."""

    fields = {"defaultAction": Str(SECCOMP_ACTIONS), "defaultErrnoRet": UINT32,
              "architectures": Array(Str(SECCOMP_ARCHES)), "flags": Array(Str(SECCOMP_FLAGS)),
              "listenerPath": STRING, "listenerMetadata": STRING,
              "syscalls": Array(Object(Syscall))}
    required = ("defaultAction",)


# -- the rest of linux -----------------------------------------------------------------------

class IntelRdt(Model):
    """linux.intelRdt: resctrl class of service and monitoring."""

    fields = {"closID": STRING, "l3CacheSchema": STRING, "memBwSchema": STRING,
              "schemata": STRINGS, "enableMonitoring": BOOL, "enableCMT": BOOL, "enableMBM": BOOL}


class Personality(Model):
    """linux.personality: the execution domain."""

    fields = {"domain": Str(("LINUX", "LINUX32")), "flags": STRINGS}
    required = ("domain",)


class Namespace(Model):
    """linux.namespaces[]: a namespace to create, or to join by path."""

    fields = {"type": Str(NAMESPACE_TYPES), "path": STRING}
    required = ("type",)


class Device(Model):
    """linux.devices[]: a device node to create in the container."""

    fields = {"type": Str(("c", "b", "u", "p")), "path": STRING, "major": INT64, "minor": INT64,
              "fileMode": UINT32, "uid": UINT32, "gid": UINT32}
    required = ("type", "path")


class TimeOffset(Model):
    """linux.timeOffsets[clock]: the offset of a clock in a time namespace."""

    fields = {"secs": INT64, "nanosecs": UINT32}


class NetDevice(Model):
    """linux.netDevices[host name]: a host network device moved into the container."""

    fields = {"name": STRING}


class Linux(Model):
    """linux: the Linux-specific configuration."""

    fields = {"uidMappings": IDMAPPINGS, "gidMappings": IDMAPPINGS,
              "timeOffsets": Map(Object(TimeOffset)), "sysctl": Map(STRING),
              "resources": Raw(Resources), "cgroupsPath": STRING,
              "namespaces": Array(Object(Namespace)), "devices": Array(Object(Device)),
              "seccomp": Raw(Seccomp), "rootfsPropagation": Str(PROPAGATIONS),
              "maskedPaths": STRINGS, "readonlyPaths": STRINGS, "mountLabel": STRING,
              "intelRdt": Raw(IntelRdt), "personality": Raw(Personality),
              "netDevices": Map(Object(NetDevice))}


class Spec(Model):
    """The runtime configuration of a container (config.json)."""

    fields = {"ociVersion": TEXT, "root": Object(Root), "mounts": Array(Object(Mount)),
              "process": Object(Process), "hostname": STRING, "domainname": STRING,
              "hooks": Object(Hooks), "annotations": Map(TEXT, key=TEXT), "linux": Object(Linux)}
    required = ("ociVersion",)
    extra_slots = ("raw",)
