"""Namespace types of the runtime spec and their clone(2) flags."""
from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CLONE_NEWTIME = 0x80
CLONE_NEWNS = 0x20000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

NAMESPACES = {
    "cgroup": CLONE_NEWCGROUP,
    "ipc": CLONE_NEWIPC,
    "mount": CLONE_NEWNS,
    "network": CLONE_NEWNET,
    "pid": CLONE_NEWPID,
    "time": CLONE_NEWTIME,
    "user": CLONE_NEWUSER,
    "uts": CLONE_NEWUTS,
}
"""Spec namespace type -> CLONE_NEW* flag."""

PROC_NAMES = {
    "cgroup": "cgroup", "ipc": "ipc", "mount": "mnt", "network": "net", "pid": "pid",
    "time": "time", "user": "user", "uts": "uts",
}
"""Spec namespace type -> its name under /proc/PID/ns/."""


def supported() -> list[str]:
    """The namespace types the running kernel has."""
    return sorted(t for t, name in PROC_NAMES.items()
                  if os.path.exists("/proc/self/ns/" + name))
