"""The copying backend: each snapshot holds a full copy of its parent's tree.

Works on any filesystem and needs no overlayfs; ``cp -a`` (with reflinks where the filesystem
has them) copies the parent, keeping hard links, ownership, modes, times, xattrs and devices.
"""
import os
import subprocess

from pyrunc.engine.snapshots.base import VIEW, Mount, Snapshotter
from pyrunc.errors import SystemFailure


class CopySnapshotter(Snapshotter):
    name = "native"
    whiteouts = "delete"

    def _layout(self, d, parents, kind):
        fs = os.path.join(d, "fs")
        os.makedirs(d)
        if not parents:
            os.mkdir(fs, 0o755)
            return
        r = subprocess.run(["cp", "-a", "--reflink=auto", os.path.join(parents[0], "fs"), fs],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemFailure("snapshot: copy parent tree", 0, r.stderr.strip())

    def _diff(self, d, parents, out):
        from pyrunc.engine.layers import write_tree, write_tree_diff
        if parents:
            write_tree_diff(os.path.join(parents[0], "fs"), os.path.join(d, "fs"), out)
        else:
            write_tree(os.path.join(d, "fs"), out)

    def _mounts(self, d, parents, kind):
        return [Mount("bind", os.path.join(d, "fs"), ["rbind", "ro" if kind == VIEW else "rw"])]
