"""The overlayfs backend: each snapshot is an upper directory; parents are lower directories.

Layers are applied straight into the upper directory (whiteouts in overlay form), so
unpacking needs no mount; an active snapshot mounts as overlay(lower=parents, upper, work).
"""
from __future__ import annotations

import os
import shutil

from pyrunc.engine.snapshots.base import VIEW, Mount, Snapshotter

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def supported(root: str) -> bool:
    """Overlayfs is available and ``root``'s filesystem can hold upper directories."""
    try:
        with open("/proc/filesystems") as f:
            if not any(line.split()[-1:] == ["overlay"] for line in f):
                return False
    except OSError:
        return False
    st = os.statvfs(root)
    return st.f_namemax >= 255 and _fs_type(root) not in ("overlay", "nfs", "fuse")


def _fs_type(path):
    path = os.path.realpath(path)
    best, kind = "", ""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mnt = fields[4]
            sep = fields.index("-")
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, kind = mnt, fields[sep + 1]
    return kind


class OverlaySnapshotter(Snapshotter):
    name = "overlayfs"
    whiteouts = "overlay"

    def _layout(self, d, parents, kind):
        os.makedirs(os.path.join(d, "fs"), 0o755)
        if kind != VIEW:
            os.makedirs(os.path.join(d, "work"), 0o711)

    def _mounts(self, d, parents, kind):
        lowers = [os.path.join(p, "fs") for p in parents]
        if kind == VIEW:
            if not lowers:
                return [Mount("bind", os.path.join(d, "fs"), ["rbind", "ro"])]
            if len(lowers) == 1:
                return [Mount("bind", lowers[0], ["rbind", "ro"])]
            return [Mount("overlay", "overlay", ["lowerdir=" + ":".join(lowers)])]
        if not lowers:
            return [Mount("bind", os.path.join(d, "fs"), ["rbind", "rw"])]
        return [Mount("overlay", "overlay", [
            "index=off", "workdir=" + os.path.join(d, "work"),
            "upperdir=" + os.path.join(d, "fs"), "lowerdir=" + ":".join(lowers)])]

    def _diff(self, d, parents, out):
        from pyrunc.engine.layers import write_overlay_diff
        write_overlay_diff(os.path.join(d, "fs"), out)

    def _seal(self, d):
        shutil.rmtree(os.path.join(d, "work"), ignore_errors=True)

