"""The snapshotter interface (containerd's shape) and the metadata every backend shares.

A snapshot is *active* (writable, made by ``prepare``), a *view* (read-only, made by
``view``) or *committed* (made from an active one by ``commit``; only committed snapshots can
be parents). ``mounts(key)`` describes how to mount an active snapshot or a view; callers
perform the mounts (in their own private mount namespace), see ``mount.mount_all``.

Metadata lives in ``metadata.json`` under the backend's root, rewritten by atomic rename under
an flock; each snapshot's files live in ``snapshots/<id>/``.
"""
from __future__ import annotations

import collections
import os
import shutil
import stat
import time

from pyrunc.engine.content.private import private_dir
from pyrunc.engine.metadata import locked_document
from pyrunc.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Iterator
    from io import BytesIO

ACTIVE, VIEW, COMMITTED = "active", "view", "committed"

Info = collections.namedtuple("Info", "name kind parent labels created updated")
Usage = collections.namedtuple("Usage", "size inodes")


class Mount(collections.namedtuple("Mount", "type source options")):
    """One mount(2): ``type`` ("bind" or "overlay"), ``source`` and fstab-style options."""


def tree_usage(path: str) -> Any:
    """Bytes (allocated blocks) and distinct inodes under ``path``."""
    seen = set()
    size = 0
    for dirpath, dirs, files in os.walk(path):
        for name in [dirpath] + [os.path.join(dirpath, n) for n in dirs + files]:
            st = os.lstat(name)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            size += st.st_blocks * 512
    return Usage(size, len(seen))


class Snapshotter:
    """Base of the backends: metadata bookkeeping; backends lay out and describe the files."""

    name: str | None = None
    whiteouts = "delete"     # how a layer's whiteouts are written into writable_dir()

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        private_dir(self.root)
        private_dir(os.path.join(self.root, "snapshots"))

    # metadata -------------------------------------------------------------------------------
    def _locked(self, write=True):
        return locked_document(self.root, "metadata.json",
                               lambda: {"next_id": 1, "snapshots": {}}, write=write)

    def _get(self, meta, key):
        s = meta["snapshots"].get(key)
        if s is None:
            raise NotFound("snapshot %s: not found" % key)
        return s

    def _dir(self, snap):
        return os.path.join(self.root, "snapshots", str(snap["id"]))

    def _chain(self, meta, parent):
        """Directories of ``parent`` and its ancestors, nearest first."""
        out = []
        while parent:
            s = self._get(meta, parent)
            out.append(self._dir(s))
            parent = s["parent"]
        return out

    @staticmethod
    def _info(key, s):
        return Info(key, s["kind"], s["parent"], dict(s["labels"]), s["created"], s["updated"])

    # the interface --------------------------------------------------------------------------
    def stat(self, key: str) -> Any:
        with self._locked(write=False) as meta:
            return self._info(key, self._get(meta, key))

    def walk(self) -> Iterator[Any]:
        with self._locked(write=False) as meta:
            items = sorted(meta["snapshots"].items(), key=lambda kv: kv[1]["id"])
        for key, s in items:
            yield self._info(key, s)

    def prepare(self, key: str, parent: str | None = None,
                labels: dict[str, str] | None = None) -> Any:
        return self._create(ACTIVE, key, parent, labels)

    def view(self, key: str, parent: str | None = None, labels: Any = None) -> Any:
        return self._create(VIEW, key, parent, labels)

    def _create(self, kind, key, parent, labels):
        if not key or not isinstance(key, str):
            raise InvalidArgument("snapshot key must be a non-empty string")
        with self._locked() as meta:
            if key in meta["snapshots"]:
                raise AlreadyExists("snapshot %s: already exists" % key)
            if parent is not None:
                p = self._get(meta, parent)
                if p["kind"] != COMMITTED:
                    raise FailedPrecondition("snapshot %s: parent %s is not committed"
                                             % (key, parent))
            now = time.time()
            snap = {"id": meta["next_id"], "kind": kind, "parent": parent,
                    "labels": dict(labels or {}), "created": now, "updated": now}
            meta["next_id"] += 1
            d = self._dir(snap)
            shutil.rmtree(d, ignore_errors=True)
            try:
                self._layout(d, self._chain(meta, parent), kind)
            except BaseException:
                shutil.rmtree(d, ignore_errors=True)
                raise
            meta["snapshots"][key] = snap
            return self._mounts(d, self._chain(meta, parent), kind)

    def mounts(self, key: str) -> Any:
        with self._locked(write=False) as meta:
            s = self._get(meta, key)
            if s["kind"] == COMMITTED:
                raise FailedPrecondition("snapshot %s: committed snapshots cannot be mounted: "
                                         "make a view" % key)
            return self._mounts(self._dir(s), self._chain(meta, s["parent"]), s["kind"])

    def commit(self, name: str, key: str, labels: dict[str, str] | None = None) -> None:
        with self._locked() as meta:
            s = self._get(meta, key)
            if s["kind"] != ACTIVE:
                raise FailedPrecondition("snapshot %s: is not active (it is %s)" % (key, s["kind"]))
            if name in meta["snapshots"]:
                raise AlreadyExists("snapshot %s: already exists" % name)
            self._seal(self._dir(s))
            s["kind"] = COMMITTED
            s["updated"] = time.time()
            if labels is not None:
                s["labels"] = dict(labels)
            del meta["snapshots"][key]
            meta["snapshots"][name] = s

    def remove(self, key: str) -> None:
        with self._locked() as meta:
            s = self._get(meta, key)
            children = sorted(k for k, c in meta["snapshots"].items() if c["parent"] == key)
            if children:
                raise FailedPrecondition("snapshot %s: cannot remove: it has %d child "
                                         "snapshot(s) (%s)" % (key, len(children), children[0]))
            del meta["snapshots"][key]
            # the files go first (on a full disk that frees the room the metadata write needs);
            # a crash in between leaves a record whose directory is gone, removable again
            d = self._dir(s)
            if os.path.exists(d):
                trash = os.path.join(self.root, "snapshots", "rm-%d" % s["id"])
                os.rename(d, trash)
                _force_rmtree(trash)

    def cleanup(self) -> Any:
        """Remove the directories no snapshot record owns: what a process killed while
        creating or removing a snapshot left behind (containerd's Cleaner). Creation and
        removal happen under the metadata lock, so holding it makes this safe."""
        with self._locked() as meta:
            owned = {str(s["id"]) for s in meta["snapshots"].values()}
            base = os.path.join(self.root, "snapshots")
            removed = []
            for name in sorted(os.listdir(base)):
                if name not in owned:
                    _force_rmtree(os.path.join(base, name))
                    removed.append(name)
            return removed

    def usage(self, key: str) -> Any:
        with self._locked(write=False) as meta:
            d = self._dir(self._get(meta, key))
        return tree_usage(self._data_dir(d))

    def writable_dir(self, key: str) -> str:
        """Where to apply a layer into the active snapshot ``key`` without mounting it."""
        with self._locked(write=False) as meta:
            s = self._get(meta, key)
            if s["kind"] != ACTIVE:
                raise FailedPrecondition("snapshot %s: is not active" % key)
            return self._data_dir(self._dir(s))

    def lower_dirs(self, key: str) -> list[Any]:
        """The committed parents' data directories under ``key``, nearest first."""
        with self._locked(write=False) as meta:
            s = self._get(meta, key)
            return [self._data_dir(d) for d in self._chain(meta, s["parent"])]

    def diff(self, key: str, out: BytesIO) -> None:
        """Write the changes of ``key`` over its parent as an uncompressed OCI layer tar."""
        with self._locked(write=False) as meta:
            s = self._get(meta, key)
            d = self._dir(s)
            parents = self._chain(meta, s["parent"])
        self._diff(d, parents, out)

    # backend hooks --------------------------------------------------------------------------
    def _layout(self, d, parents, kind):
        raise NotImplementedError

    def _mounts(self, d, parents, kind):
        raise NotImplementedError

    def _diff(self, d, parents, out):
        raise NotImplementedError

    def _seal(self, d):
        """Turn an active snapshot's directory into a committed one."""

    @staticmethod
    def _data_dir(d):
        return os.path.join(d, "fs")


def _force_rmtree(path):
    """rmtree that also clears immutable/append-only attributes a layer cannot set, and modes."""
    def onerror(func, p, exc):
        try:
            parent = os.path.dirname(p)
            st = os.lstat(parent)
            os.chmod(parent, stat.S_IMODE(st.st_mode) | 0o700)
            func(p)
        except OSError:
            pass
    shutil.rmtree(path, onerror=onerror)
