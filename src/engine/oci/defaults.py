"""Docker's defaults for a container's runtime config: what ``docker run`` gives a container
that asks for nothing (moby's default Linux spec, as dockerd 28 fills it in)."""
from __future__ import annotations

import os

DEFAULT_PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""PATH of a container whose image and request set none."""

DEFAULT_SHM_SIZE = 64 << 20
"""/dev/shm of a container that does not set ShmSize."""

DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)
"""The capabilities of a container that neither adds nor drops any (bounding, effective and
permitted; the inheritable and ambient sets stay empty)."""

MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)
"""Paths hidden from an unprivileged container (a file under /dev/null, a directory under an
empty read-only tmpfs); ``masked_paths()`` adds the host's per-CPU thermal_throttle
directories, as docker 28 does."""

READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
"""Paths made read-only in an unprivileged container."""


def masked_paths() -> list[str]:
    """MASKED_PATHS and ``/sys/devices/system/cpu/cpuN/thermal_throttle`` of each host CPU that
    has one (they let a container throttle the host's CPUs)."""
    paths = list(MASKED_PATHS)
    base = "/sys/devices/system/cpu"
    try:
        names = sorted(os.listdir(base))
    except OSError:
        names = []
    for name in names:
        if name.startswith("cpu") and name[3:].isdigit():
            path = os.path.join(base, name, "thermal_throttle")
            if os.path.isdir(path):
                paths.append(path)
    return paths


def default_mounts(shm_size: int = DEFAULT_SHM_SIZE, *, privileged: bool = False) -> list[dict]:
    """The mounts every container gets before its own: /proc, /dev, /dev/pts, /sys,
    /sys/fs/cgroup, /dev/mqueue and /dev/shm. A privileged container's /sys and /sys/fs/cgroup
    are writable."""
    sys_ro = [] if privileged else ["ro"]
    return [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev"] + sys_ro},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": sys_ro + ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=%d" % shm_size]},
    ]


ALLOWED_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                   "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")
"""The IPC namespace's sysctls a container may set (besides ``fs.mqueue.*`` and ``net.*``)."""
ALLOWED_SYSCTL_PREFIXES = ("fs.mqueue.", "net.")
