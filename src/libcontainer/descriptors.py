"""CRIU's keys for a process's descriptors, taken at create (runc's "external descriptors").

Kept apart from ``pyrunc.libcontainer.criu`` because it runs on every create: it imports only
``os`` and ``stat`` (see docs/architecture.md, "Hot paths").
"""
from __future__ import annotations

import os
import stat

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence


def descriptor_keys(fds: Sequence[int]) -> list[str]:
    """CRIU's key of each of this process's ``fds``: "pipe:[INODE]" for a pipe,
    "file[MNT_ID:INODE]" (hex) for a device or other file that is not a regular one, a regular
    file's path (CRIU 3.17 cannot hand one to a restored process: checkpoint refuses it), ""
    for a closed descriptor, else what /proc shows ("socket:[INODE]")."""
    keys = []
    for fd in fds:
        link = "/proc/self/fd/%d" % fd
        try:
            target = os.readlink(link)
            st = os.stat(link)
            if target.startswith("/") and not stat.S_ISREG(st.st_mode):
                with open("/proc/self/fdinfo/%d" % fd) as f:
                    mnt_id = next(int(line.split()[1]) for line in f
                                  if line.startswith("mnt_id:"))
                target = "file[%x:%x]" % (mnt_id, st.st_ino)
        except FileNotFoundError:
            target = ""
        keys.append(target)
    return keys
