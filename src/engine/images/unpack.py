"""Unpack an image's layers into snapshots named by their chain IDs.

ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)). A layer is
applied into a fresh active snapshot ``extract-<id> <chain>`` over its parent chain and
committed under its chain ID; on any error the temporary snapshot is removed, so a bad layer
leaves nothing behind.

A process killed mid-extraction cannot remove its snapshot, so the extractor holds an flock on
``<snapshotter root>/extracting/<id>`` for as long as the snapshot is in use: garbage
collection (``remove_abandoned``) removes extraction snapshots whose lock is free, and never
one a live extractor holds.

Each layer is applied under a size limit derived from its descriptor (``LayerLimits``): its
blob must have the declared size, and its uncompressed stream may be at most ``ratio`` times
that (deflate cannot expand more than 1032:1), at least ``floor``, at most ``cap``. A layer
past the limit is refused (LayerTooLarge) and leaves nothing behind.

With an ``idmap`` (``--userns-remap``) the layers are applied with their owners shifted to the
remapped root's host ids (``layers.apply``): such snapshots belong to that mapping's own store.
"""
from __future__ import annotations

import collections
import contextlib
import fcntl
import hashlib
import os
import uuid

from pyrunc.engine.content.private import private_dir
from pyrunc.engine.content.store import try_lock
from pyrunc.engine.layers import LayerTooLarge, apply_layer
from pyrunc.engine.snapshots import ACTIVE
from pyrunc.errors import AlreadyExists, InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyrunc.engine.idmap import IDMap

SIZE_LABEL = "pyrunc.io/unpacked-size"
DIFF_LABEL = "pyrunc.io/diff-id"
EXTRACT_PREFIX = "extract-"


class LayerLimits(collections.namedtuple("LayerLimits", "ratio floor cap")):
    """How far a layer may expand: ``ratio`` times its declared size, at least ``floor``
    bytes, at most ``cap`` bytes (None: no cap)."""

    def for_layer(self, declared: int) -> int:
        limit = max(declared * self.ratio, self.floor)
        return limit if self.cap is None else min(limit, self.cap)


DEFAULT_LIMITS = LayerLimits(ratio=1100, floor=256 << 20, cap=None)


def chain_ids(diff_ids: list[str]) -> list[str]:
    out: list[Any] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + hashlib.sha256((out[-1] + " " + diff_id).encode()).hexdigest())
    return out


def unpack(content: Any, snapshotter: Any, manifest: Any, config: Any, progress: Any = None,
           limits: Any = DEFAULT_LIMITS, idmap: IDMap | None = None) -> Any:
    """Make sure every layer of the image is a committed snapshot; returns the top chain ID
    (None for an image without layers). ``progress(layer_digest, status)`` gets docker's
    "Extracting", "Pull complete" or "Already exists"."""
    layers = manifest.get("layers", [])
    rootfs = config.get("rootfs", {})
    diff_ids = rootfs.get("diff_ids", []) if isinstance(rootfs, dict) else None
    if not isinstance(layers, list) or not all(
            isinstance(d, dict) and isinstance(d.get("digest"), str)
            and isinstance(d.get("size", 0), int) for d in layers):
        raise InvalidArgument("image manifest: layers must be a list of descriptors")
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise InvalidArgument("image config: rootfs.diff_ids must be a list of digests")
    if len(layers) != len(diff_ids):
        raise InvalidArgument("image config has %d diff_ids for %d layers"
                              % (len(diff_ids), len(layers)))
    parent = None
    for desc, diff_id, chain in zip(layers, diff_ids, chain_ids(diff_ids)):
        try:
            snapshotter.stat(chain)
            if progress:
                progress(desc["digest"], "Already exists")
        except NotFound:
            if progress:
                progress(desc["digest"], "Extracting")
            _apply(content, snapshotter, desc, diff_id, chain, parent, limits, idmap)
            if progress:
                progress(desc["digest"], "Pull complete")
        parent = chain
    return parent


def _layer_limit(content, desc, limits):
    digest = desc["digest"]
    stored = content.info(digest).size
    declared = desc.get("size", stored)
    if declared != stored:
        raise InvalidArgument("layer %s: the blob has %d bytes but its descriptor declares %d"
                              % (digest, stored, declared))
    return limits.for_layer(declared)


def _apply(content, snapshotter, desc, diff_id, chain, parent, limits, idmap):
    limit = _layer_limit(content, desc, limits)
    with _extraction_lock(snapshotter) as ident:
        key = "%s%s %s" % (EXTRACT_PREFIX, ident, chain)
        snapshotter.prepare(key, parent)
        try:
            with content.open(desc["digest"]) as blob:
                result = apply_layer(blob, snapshotter.writable_dir(key),
                                     whiteouts=snapshotter.whiteouts,
                                     lowers=snapshotter.lower_dirs(key),
                                     expected_diff_id=diff_id, max_size=limit, idmap=idmap)
            snapshotter.commit(chain, key,
                               labels={SIZE_LABEL: str(result.size), DIFF_LABEL: diff_id})
        except AlreadyExists:
            snapshotter.remove(key)      # unpacked concurrently by someone else: keep theirs
        except LayerTooLarge as err:
            snapshotter.remove(key)
            raise LayerTooLarge("layer %s: refused: it expands past %d bytes, the limit for a "
                                "%d-byte blob (%s)" % (desc["digest"], limit,
                                                       desc.get("size", 0), err)) from None
        except BaseException:
            snapshotter.remove(key)
            raise


@contextlib.contextmanager
def _extraction_lock(snapshotter):
    """A fresh id whose lock file this process holds until the block ends."""
    base = os.path.join(snapshotter.root, "extracting")
    private_dir(base)
    while True:
        ident = uuid.uuid4().hex
        path = os.path.join(base, ident)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink:
            break
        os.close(fd)                     # a collection removed it before we locked it
    try:
        yield ident
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        os.close(fd)


def remove_abandoned(snapshotter: Any) -> Any:
    """Remove the extraction snapshots (and lock files) of extractors that are gone; returns
    the keys removed. One whose extractor still holds its lock is left alone."""
    removed = []
    for info in list(snapshotter.walk()):
        if info.kind != ACTIVE or not info.name.startswith(EXTRACT_PREFIX):
            continue
        ident = info.name[len(EXTRACT_PREFIX):].split(" ", 1)[0]
        path = os.path.join(snapshotter.root, "extracting", ident)
        fd = try_lock(path)
        if fd is None and os.path.exists(path):
            continue                     # its extractor is alive
        try:
            snapshotter.remove(info.name)
            removed.append(info.name)
        except NotFound:
            pass                         # committed or removed by its extractor meanwhile
        finally:
            if fd is not None:
                os.unlink(path)
                os.close(fd)
    base = os.path.join(snapshotter.root, "extracting")
    for ident in os.listdir(base) if os.path.isdir(base) else ():
        fd = try_lock(os.path.join(base, ident))
        if fd is not None:               # died between taking the lock and preparing
            os.unlink(os.path.join(base, ident))
            os.close(fd)
    return removed


def unpacked_size(snapshotter: Any, top_chain: str) -> int:
    """Sum of the unpacked sizes along the chain ending at ``top_chain``."""
    size = 0
    key = top_chain
    while key:
        info = snapshotter.stat(key)
        size += int(info.labels.get(SIZE_LABEL, 0))
        key = info.parent
    return size
