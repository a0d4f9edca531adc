"""Garbage collection of content: mark from roots through manifests and indexes, sweep the rest.

Roots are what the image store points at (manifest and index digests, image configs) plus
every digest a live lease holds. A manifest references its config and layers; an index
references its manifests; anything reachable is kept, everything else is deleted. Ingests no
live writer holds are removed too (containerd's collector drops expired ingests).
"""
from __future__ import annotations

import json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from pyrunc.engine.content.store import ContentStore

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")


def children(store: ContentStore, digest: str) -> list[Any]:
    """Digests a blob references, if it is a manifest or an index; else nothing."""
    try:
        info = store.info(digest)
    except Exception:
        return []
    if info.size > 4 << 20:
        return []
    data = store.read(digest)
    if not data[:1] == b"{":
        return []
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):      # not JSON, or nested past the parser's depth
        return []
    if not isinstance(doc, dict):
        return []
    media = doc.get("mediaType")
    out = []
    if media in INDEX_TYPES or (media is None and "manifests" in doc):
        out += [m.get("digest") for m in _list(doc.get("manifests")) if isinstance(m, dict)]
    if media in MANIFEST_TYPES or (media is None and "layers" in doc and "config" in doc):
        config = doc.get("config")
        if isinstance(config, dict):
            out.append(config.get("digest"))
        out += [m.get("digest") for m in _list(doc.get("layers")) if isinstance(m, dict)]
    return [d for d in out if isinstance(d, str)]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def reachable(store: ContentStore, roots: Any) -> set[str]:
    seen = set()
    stack = list(roots) + list(store.live_leases()[0])
    while stack:
        d = stack.pop()
        if d in seen:
            continue
        seen.add(d)
        stack.extend(children(store, d))
    return seen


def collect(store: ContentStore, roots: Any) -> tuple[Any, ...]:
    """Delete every ingest no writer holds and every blob not reachable from ``roots``;
    returns (deleted digests, bytes freed). The caller holds ``store.gc_lock(exclusive=True)``
    (or knows nobody else uses the store)."""
    freed = sum(size for _, size in store.collect_ingests())
    keep = reachable(store, roots)
    deleted = []
    for info in list(store.walk()):
        if info.digest not in keep:
            try:
                store.delete(info.digest)
            except Exception:
                continue
            deleted.append(info.digest)
            freed += info.size
    return deleted, freed
