"""Snapshotters: one interface (containerd's), two backends chosen at run time.

``open_snapshotter(root)`` picks overlayfs where the kernel and the filesystem allow it, else
the copying backend; ``open_snapshotter(root, "native")`` forces one.
"""
from __future__ import annotations

import os

from pyrunc.engine.content.private import private_dir
from pyrunc.engine.snapshots.base import ACTIVE, COMMITTED, VIEW, Info, Mount, Snapshotter, Usage
from pyrunc.engine.snapshots.copy import CopySnapshotter
from pyrunc.engine.snapshots.overlay import OverlaySnapshotter, supported as overlay_supported
from pyrunc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

BACKENDS = {"overlayfs": OverlaySnapshotter, "native": CopySnapshotter}


def open_snapshotter(root: str, backend: str | None = None) -> Any:
    """The snapshotter stored under ``root/<backend>``; the default prefers overlayfs."""
    private_dir(root)
    if backend is None:
        backend = "overlayfs" if overlay_supported(root) else "native"
    if backend not in BACKENDS:
        raise InvalidArgument("snapshotter %r: unknown (use %s)" % (backend, " or ".join(BACKENDS)))
    return BACKENDS[backend](os.path.join(root, backend))


__all__ = ["ACTIVE", "COMMITTED", "VIEW", "BACKENDS", "CopySnapshotter", "Info", "Mount",
           "OverlaySnapshotter", "Snapshotter", "Usage", "open_snapshotter"]
