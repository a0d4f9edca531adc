"""Unpack an image's layers into snapshots named by their chain IDs.

ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)). A layer is
applied into a fresh active snapshot over its parent chain and committed under its chain ID;
on any error the temporary snapshot is removed, so a bad layer leaves nothing behind.
"""
import hashlib
import uuid

from pyrunc.engine.layers import apply_layer
from pyrunc.errors import AlreadyExists, InvalidArgument, NotFound

SIZE_LABEL = "pyrunc.io/unpacked-size"
DIFF_LABEL = "pyrunc.io/diff-id"


def chain_ids(diff_ids):
    out = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + hashlib.sha256((out[-1] + " " + diff_id).encode()).hexdigest())
    return out


def unpack(content, snapshotter, manifest, config, progress=None, max_layer_size=None):
    """Make sure every layer of the image is a committed snapshot; returns the top chain ID
    (None for an image without layers). ``progress(layer_digest, status)`` gets docker's
    "Extracting", "Pull complete" or "Already exists"."""
    layers = manifest.get("layers", [])
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
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
            _apply(content, snapshotter, desc, diff_id, chain, parent, max_layer_size)
            if progress:
                progress(desc["digest"], "Pull complete")
        parent = chain
    return parent


def _apply(content, snapshotter, desc, diff_id, chain, parent, max_layer_size):
    key = "extract-%s %s" % (uuid.uuid4().hex[:12], chain)
    snapshotter.prepare(key, parent)
    try:
        with content.open(desc["digest"]) as blob:
            result = apply_layer(blob, snapshotter.writable_dir(key),
                                 whiteouts=snapshotter.whiteouts,
                                 lowers=snapshotter.lower_dirs(key),
                                 expected_diff_id=diff_id, max_size=max_layer_size)
        snapshotter.commit(chain, key, labels={SIZE_LABEL: str(result.size), DIFF_LABEL: diff_id})
    except AlreadyExists:
        snapshotter.remove(key)          # unpacked concurrently by someone else: keep theirs
    except BaseException:
        snapshotter.remove(key)
        raise


def unpacked_size(snapshotter, top_chain):
    """Sum of the unpacked sizes along the chain ending at ``top_chain``."""
    size = 0
    key = top_chain
    while key:
        info = snapshotter.stat(key)
        size += int(info.labels.get(SIZE_LABEL, 0))
        key = info.parent
    return size
