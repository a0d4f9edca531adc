"""The default seccomp profile, and docker's profile format turned into ``linux.seccomp``.

A profile is what ``docker run --security-opt seccomp=FILE`` reads (the docker CLI sends the
file's contents): ``defaultAction``, ``defaultErrnoRet``, ``architectures`` or ``archMap``,
``flags``, ``listenerPath``, and ``syscalls`` whose entries may carry ``includes`` and
``excludes`` conditions (``caps``: capabilities the container must have, or not have, in its
bounding set; ``arches``: Go architecture names; ``minKernel``: ``"4.8"``). ``to_oci`` keeps
the entries whose conditions hold for this container on this host, as dockerd does when it
writes the runtime config.

The default profile (``default_profile()``) is an allowlist with the semantics of docker's:
anything not listed fails with EPERM; what a container with docker's default capabilities
should not reach is left out (the kernel keyring: keyctl, add_key, request_key; namespaces:
unshare, setns, clone with any CLONE_NEW* flag; mounts and filesystem contexts; kexec,
module loading, reboot, swap, bpf, perf_event_open, userfaultfd, handles (open_by_handle_at),
clocks, accounting, the old obsolete calls, io_uring, sockets of the kernel crypto API
(AF_ALG) and to the hypervisor (AF_VSOCK), and socketcall, through which a 32-bit process
could open them unfiltered; personality only for the harmless personas). Adding a capability re-enables the calls it governs, as in docker:
CAP_SYS_ADMIN gives mount, umount, unshare, setns, clone with namespaces, bpf,
perf_event_open...; CAP_SYS_PTRACE, CAP_SYS_MODULE, CAP_SYS_BOOT, CAP_SYS_TIME and the others
their own calls. A privileged container has no filter at all.
"""
from __future__ import annotations

import os

from pyrunc.errors import InvalidArgument
from pyrunc.libcontainer import jsoncodec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EPERM = 1
ENOSYS = 38
CLONE_NAMESPACE_FLAGS = 0x7E020000
"""CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
CLONE_NEWNET: clone without CAP_SYS_ADMIN is allowed only when none of them is set."""
AF_ALG = 38
AF_VSOCK = 40

# Go's architecture names (what a profile's "arches" conditions use) and libseccomp's, for the
# machine names os.uname() gives.
HOST_ARCHES = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"), "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "i686": ("386", "SCMP_ARCH_X86"), "armv7l": ("arm", "SCMP_ARCH_ARM"),
    "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"), "s390x": ("s390x", "SCMP_ARCH_S390X"),
    "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"), "loongarch64": ("loong64",
                                                                 "SCMP_ARCH_LOONGARCH64"),
    "mips64": ("mips64", "SCMP_ARCH_MIPS64"),
}

ARCH_MAP = (
    ("SCMP_ARCH_X86_64", ("SCMP_ARCH_X86", "SCMP_ARCH_X32")),
    ("SCMP_ARCH_AARCH64", ("SCMP_ARCH_ARM",)),
    ("SCMP_ARCH_MIPS64", ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32")),
    ("SCMP_ARCH_MIPSEL64", ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32")),
    ("SCMP_ARCH_PPC64LE", ()),
    ("SCMP_ARCH_S390X", ("SCMP_ARCH_S390",)),
    ("SCMP_ARCH_RISCV64", ()),
    ("SCMP_ARCH_LOONGARCH64", ()),
)
"""Each native architecture and the compatibility ABIs its processes may also use."""

# -- the allowlist, by what the calls do -----------------------------------------------------

_FILES = """
access chdir chmod chown chown32 close close_range copy_file_range creat dup dup2 dup3
faccessat faccessat2 fadvise64 fadvise64_64 fallocate fchdir fchmod fchmodat fchmodat2 fchown
fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fremovexattr fsetxattr
fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futimesat getcwd
getdents getdents64 getxattr lchown lchown32 lgetxattr link linkat listxattr llistxattr
_llseek lremovexattr lseek lsetxattr lstat lstat64 mkdir mkdirat mknod mknodat newfstatat
open openat openat2 pread64 preadv preadv2 pwrite64 pwritev pwritev2 read readahead readlink
readlinkat readv removexattr rename renameat renameat2 rmdir sendfile sendfile64 setxattr splice
stat stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs tee truncate
truncate64 umask unlink unlinkat utime utimensat utimensat_time64 utimes vmsplice write writev
"""
_EVENTS = """
epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
epoll_wait_old eventfd eventfd2 fanotify_mark inotify_add_watch inotify_init inotify_init1
inotify_rm_watch io_cancel io_destroy io_getevents io_pgetevents io_pgetevents_time64
io_setup io_submit pause poll ppoll ppoll_time64 pselect6 pselect6_time64 select _newselect
signalfd signalfd4 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
timerfd_settime64
"""
_MEMORY = """
brk cachestat madvise map_shadow_stack membarrier memfd_create memfd_secret mincore mlock
mlock2 mlockall mmap mmap2 mprotect mremap msync munlock munlockall munmap pkey_alloc pkey_free
pkey_mprotect remap_file_pages
"""
_PROCESSES = """
capget capset execve execveat exit exit_group fork getcpu getegid getegid32 geteuid geteuid32
getgid getgid32 getgroups getgroups32 getitimer getpgid getpgrp getpid getppid getpriority
getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid gettid
get_thread_area getuid getuid32 ioprio_get ioprio_set kill landlock_add_rule
landlock_create_ruleset landlock_restrict_self pidfd_open pidfd_send_signal prctl prlimit64
process_mrelease restart_syscall rseq rt_sigaction rt_sigpending rt_sigprocmask
rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64
rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam sched_get_priority_max
sched_get_priority_min sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp
setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer
setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid
setreuid32 setrlimit set_robust_list setsid set_thread_area set_tid_address setuid setuid32
sigaltstack sigprocmask sigreturn tgkill tkill ugetrlimit vfork wait4 waitid waitpid
"""
_TIME = """
adjtimex alarm clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
clock_gettime64 clock_nanosleep clock_nanosleep_time64 futex futex_requeue futex_time64
futex_wait futex_waitv futex_wake gettimeofday nanosleep time timer_create timer_delete
timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64 times
"""
_IPC_NET = """
accept accept4 bind connect getpeername getsockname getsockopt ioctl ipc listen
mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
mq_timedsend_time64 mq_unlink msgctl msgget msgrcv msgsnd pipe pipe2 recv recvfrom recvmmsg
recvmmsg_time64 recvmsg semctl semget semop semtimedop semtimedop_time64 send sendmmsg
sendmsg sendto setsockopt shmat shmctl shmdt shmget shutdown socketpair getrandom
sysinfo uname
"""

ALWAYS_ALLOWED = tuple(sorted(set(" ".join(
    (_FILES, _EVENTS, _MEMORY, _PROCESSES, _TIME, _IPC_NET)).split())))
"""Calls every container may make."""

# calls each capability re-enables (the capability in the container's bounding set)
BY_CAPABILITY = (
    ("CAP_SYS_ADMIN", "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick "
                      "lookup_dcookie mount mount_setattr move_mount name_to_handle_at "
                      "open_tree perf_event_open quotactl quotactl_fd setdomainname "
                      "sethostname setns syslog umount umount2 unshare"),
    ("CAP_SYS_BOOT", "reboot"),
    ("CAP_SYS_CHROOT", "chroot"),
    ("CAP_SYS_MODULE", "delete_module init_module finit_module"),
    ("CAP_SYS_PACCT", "acct"),
    ("CAP_SYS_PTRACE", "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev "
                       "ptrace"),
    ("CAP_SYS_RAWIO", "iopl ioperm"),
    ("CAP_SYS_TIME", "settimeofday stime clock_settime clock_settime64"),
    ("CAP_SYS_TTY_CONFIG", "vhangup"),
    ("CAP_SYS_NICE", "get_mempolicy mbind set_mempolicy set_mempolicy_home_node"),
    ("CAP_SYSLOG", "syslog"),
    ("CAP_BPF", "bpf"),
    ("CAP_PERFMON", "perf_event_open"),
    ("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
)

# calls only some architectures have (Go architecture names)
BY_ARCH = (
    (("amd64", "x32", "386"), "arch_prctl modify_ldt"),
    (("arm", "arm64"), "arm_fadvise64_64 arm_sync_file_range breakpoint cacheflush set_tls "
                       "sync_file_range2"),
    (("s390", "s390x"), "s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr"),
    (("riscv64",), "riscv_flush_icache riscv_hwprobe"),
)

PERSONAS = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
"""personality(2) values allowed: PER_LINUX, PER_LINUX32, UNAME26 (with and without LINUX32),
and the query."""

NEVER = ("add_key", "keyctl", "request_key", "kexec_load", "kexec_file_load", "swapon",
         "swapoff", "userfaultfd", "uselib", "ustat", "sysfs", "_sysctl", "pivot_root",
         "nfsservctl", "vm86", "vm86old", "create_module", "get_kernel_syms", "query_module",
         "move_pages", "io_uring_setup", "io_uring_enter", "io_uring_register")
"""Calls no entry allows, whatever the capabilities (the tests check that none is listed)."""


def default_profile() -> dict[str, Any]:
    """The default profile, in docker's profile format (a new dict each call)."""
    syscalls: list[dict[str, Any]] = [
        {"names": list(ALWAYS_ALLOWED), "action": "SCMP_ACT_ALLOW"},
    ]
    # socket for every family but AF_ALG and AF_VSOCK (one condition per rule: conditions on
    # the same argument within a rule would match when any one does)
    syscalls += [{"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": 0, "value": value, "op": op}]}
                 for op, value in (("SCMP_CMP_LT", AF_ALG), ("SCMP_CMP_EQ", AF_ALG + 1),
                                   ("SCMP_CMP_GT", AF_VSOCK))]
    syscalls += [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": 0, "value": value, "op": "SCMP_CMP_EQ"}]}
                 for value in PERSONAS]
    # ptrace and its relatives confine a traced process's seccomp filter only from 4.8 on
    syscalls.append({"names": ["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
                               "process_vm_writev", "ptrace"],
                     "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}})
    for arches, names in BY_ARCH:
        syscalls.append({"names": names.split(), "action": "SCMP_ACT_ALLOW",
                         "includes": {"arches": list(arches)}})
    for cap, names in BY_CAPABILITY:
        syscalls.append({"names": names.split(), "action": "SCMP_ACT_ALLOW",
                         "includes": {"caps": [cap]}})
    # without CAP_SYS_ADMIN: clone without namespace flags (its flags are the second argument
    # on s390), and clone3, whose flags a filter cannot read, fails with ENOSYS so that C
    # libraries fall back to clone
    syscalls.append({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0,
                               "op": "SCMP_CMP_MASKED_EQ"}],
                     "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}})
    syscalls.append({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 1, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0,
                               "op": "SCMP_CMP_MASKED_EQ"}],
                     "includes": {"arches": ["s390", "s390x"]},
                     "excludes": {"caps": ["CAP_SYS_ADMIN"]}})
    syscalls.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS,
                     "excludes": {"caps": ["CAP_SYS_ADMIN"]}})
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "archMap": [{"architecture": arch, "subArchitectures": list(subs)}
                    for arch, subs in ARCH_MAP],
        "syscalls": syscalls,
    }


# -- docker's profile format -> linux.seccomp ------------------------------------------------

MAX_PROFILE = 8 << 20
_PROFILE_KEYS = {"defaultAction", "defaultErrnoRet", "architectures", "archMap", "syscalls",
                 "flags", "listenerPath", "listenerMetadata"}


def host_arch() -> tuple[str, str]:
    """(Go's name, libseccomp's name) of this machine's architecture."""
    machine = os.uname().machine
    if machine not in HOST_ARCHES:
        raise InvalidArgument("seccomp: architecture %s is not supported" % machine)
    return HOST_ARCHES[machine]


def _version(text: str) -> tuple[int, ...]:
    out = []
    for part in text.split("-", 1)[0].split(".")[:3]:
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break
            digits += ch
        out.append(int(digits) if digits else 0)
    return tuple(out)


def kernel_version() -> tuple[int, ...]:
    """The running kernel's version, (6, 1, 0) for ``6.1.0-18-amd64``."""
    return _version(os.uname().release)


def _bad(reason: str) -> InvalidArgument:
    return InvalidArgument("Decoding seccomp profile failed: %s" % reason)


def parse_profile(text: str | bytes) -> dict[str, Any]:
    """A profile's JSON text as a dict (what ``--security-opt seccomp=`` carries), checked
    for shape; InvalidArgument naming the field otherwise."""
    if len(text) > MAX_PROFILE:
        raise _bad("larger than %d MiB" % (MAX_PROFILE >> 20))
    try:
        doc = jsoncodec.loads(text)
    except (ValueError, RecursionError) as e:
        raise _bad("invalid JSON: %s" % e) from None
    if type(doc) is not dict:
        raise _bad("the profile must be a JSON object")
    return doc


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if type(value) is not list or any(type(v) is not str for v in value):
        raise _bad("%s: must be an array of strings" % where)
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if type(value) is not dict:
        raise _bad("%s: must be an object" % where)
    return value


def _condition_holds(cond: dict[str, Any], where: str, *, caps: set[str], arch: str,
                     kernel: tuple[int, ...], include: bool) -> bool:
    """Whether an ``includes`` (all must hold) or ``excludes`` (any excludes) condition lets
    the entry through."""
    arches = _strings(cond.get("arches"), where + ".arches")
    want_caps = _strings(cond.get("caps"), where + ".caps")
    min_kernel = cond.get("minKernel")
    if min_kernel is not None and (type(min_kernel) is not str or not min_kernel[:1].isdigit()):
        raise _bad("%s.minKernel: must be a kernel version such as \"4.8\"" % where)
    if include:
        if arches and arch not in arches:
            return False
        if any(c not in caps for c in want_caps):
            return False
        return not (min_kernel is not None and kernel < _version(min_kernel))
    if arches and arch in arches:
        return False
    if any(c in caps for c in want_caps):
        return False
    return not (min_kernel is not None and kernel >= _version(min_kernel))


def to_oci(profile: dict[str, Any], capabilities: list[str], *,
           arch: tuple[str, str] | None = None,
           kernel: tuple[int, ...] | None = None) -> dict[str, Any]:
    """``linux.seccomp`` of ``profile`` for a container whose bounding set is ``capabilities``,
    on ``arch`` (Go's name, libseccomp's name; the host's by default) and ``kernel``."""
    go_arch, native = arch or host_arch()
    kernel = kernel_version() if kernel is None else kernel
    caps = set(capabilities)
    unknown = sorted(set(profile) - _PROFILE_KEYS)
    if unknown:
        raise _bad("unknown field %r" % unknown[0])
    if profile.get("architectures") and profile.get("archMap"):
        raise _bad("'architectures' and 'archMap' were specified in the seccomp profile, "
                   "use either 'architectures' or 'archMap'")
    action = profile.get("defaultAction")
    if type(action) is not str or not action:
        raise _bad("defaultAction: must be a seccomp action such as \"SCMP_ACT_ERRNO\"")
    out: dict[str, Any] = {"defaultAction": action}
    if "defaultErrnoRet" in profile:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    architectures = _strings(profile.get("architectures"), "architectures")
    arch_map = profile.get("archMap")
    if arch_map is not None:
        if type(arch_map) is not list:
            raise _bad("archMap: must be an array")
        for i, entry in enumerate(arch_map):
            entry = _object(entry, "archMap[%d]" % i)
            if entry.get("architecture") == native:
                architectures = architectures + [native] + _strings(
                    entry.get("subArchitectures"), "archMap[%d].subArchitectures" % i)
    if architectures:
        out["architectures"] = architectures
    for key in ("flags",):
        if profile.get(key):
            out[key] = _strings(profile[key], key)
    for key in ("listenerPath", "listenerMetadata"):
        if profile.get(key):
            out[key] = profile[key]
    calls = profile.get("syscalls")
    if calls is None:
        calls = []
    if type(calls) is not list:
        raise _bad("syscalls: must be an array")
    syscalls = []
    for i, call in enumerate(calls):
        where = "syscalls[%d]" % i
        call = _object(call, where)
        names = _strings(call.get("names"), where + ".names")
        if call.get("name"):
            if names:
                raise _bad("'name' and 'names' were specified in the seccomp profile, use "
                           "either 'name' or 'names'")
            if type(call["name"]) is not str:
                raise _bad("%s.name: must be a string" % where)
            names = [call["name"]]
        ok = True
        for key, include in (("excludes", False), ("includes", True)):
            cond = _object(call.get(key), where + "." + key)
            if ok and cond and not _condition_holds(cond, where + "." + key, caps=caps,
                                                    arch=go_arch, kernel=kernel,
                                                    include=include):
                ok = False
        if not ok or not names:
            continue
        entry = {"names": list(names), "action": call.get("action")}
        if "errnoRet" in call:
            entry["errnoRet"] = call["errnoRet"]
        if call.get("args"):
            entry["args"] = call["args"]
        syscalls.append(entry)
    if syscalls:
        out["syscalls"] = syscalls
    _check(out)
    return out


def _check(section: dict[str, Any]) -> None:
    """Refuse what the runtime spec would refuse (bad action, argument index, errno...)."""
    from pyrunc.libcontainer.ocispec.fields import Invalid
    from pyrunc.libcontainer.ocispec.spec import Seccomp
    try:
        Seccomp.decode(section, "seccomp")
    except Invalid as e:
        raise _bad("%s: %s" % (e.path, e.reason)) from None
