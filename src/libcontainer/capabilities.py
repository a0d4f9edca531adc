"""Linux capability names and numbers, and the masks the native core applies.

Names follow the runtime spec (``CAP_SYS_ADMIN``). ``to_mask`` leaves out (and reports) a name
this table does not know or one the running kernel does not have (above
``/proc/sys/kernel/cap_last_cap``); specconv refuses the first kind and, as runc does, only
warns about the second.
"""
from __future__ import annotations


TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
"""Capability names, indexed by capability number."""

NUMBERS = {name: number for number, name in enumerate(CAPABILITIES)}

SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


def last_cap() -> int:
    """The highest capability number the running kernel knows."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return len(CAPABILITIES) - 1


def to_mask(names: Any, ignored: set[str], last: int | None = None) -> int:
    """The bit mask of ``names``; names unknown here or to the kernel are added to ``ignored``."""
    last = last_cap() if last is None else last
    mask = 0
    for name in names:
        number = NUMBERS.get(name)
        if number is None or number > last:
            ignored.add(name)
        else:
            mask |= 1 << number
    return mask
