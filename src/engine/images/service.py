"""Image operations over the content store, the image store and a snapshotter.

The library API behind ``docker image ls/rm/tag/inspect/history/prune`` (save, load, import
and the built-in images are in their own modules and use the same service). Results have the
Docker Engine API's shapes (``ImageSummary``, ``ImageInspect``, delete records) so the API and
CLI layers only serialise them.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import threading

from pyrunc.engine import reference
from pyrunc.engine.content import ContentStore, collect
from pyrunc.engine.content.private import private_dir
from pyrunc.engine.images.store import ImageStore, parent_of, parse_name, short_id
from pyrunc.engine.images.unpack import (DEFAULT_LIMITS, SIZE_LABEL, chain_ids, remove_abandoned,
                                         unpack, unpacked_size)
from pyrunc.engine.snapshots import COMMITTED, open_snapshotter
from pyrunc.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from pyrunc.libcontainer import timestamps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Callable, Iterable, Iterator
    from pyrunc.engine.idmap import IDMap
    from pyrunc.engine.events import EventService
    from pyrunc.engine.images.unpack import LayerLimits
    from pyrunc.engine.reference import Reference
    from pyrunc.engine.snapshots.base import Mount

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
REMAP_MARKER = "remapped-root"   # UID.GID of the mapping a store's layers are unpacked for
LIST_FILTERS = ("dangling", "reference", "before", "since", "label")


def json_object(data: bytes, what: str) -> dict[str, Any]:
    """``data`` parsed as a JSON object, or InvalidArgument naming ``what`` (bad JSON,
    nesting past the parser's depth, or not an object)."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise InvalidArgument("%s: not valid JSON" % what) from None
    if not isinstance(doc, dict):
        raise InvalidArgument("%s: not a JSON object" % what)
    return doc


def rfc3339_now() -> str:
    return timestamps.now()


def parse_time(text: Any) -> Any:
    """Seconds since the epoch of an RFC 3339 timestamp (nanoseconds allowed); 0 if absent."""
    if not text:
        return 0.0
    try:
        return timestamps.parse_ns(text) / timestamps.NS
    except InvalidArgument:
        return 0.0


def _path_match(pattern, name):
    """Go's path.Match: ``*`` and ``?`` do not cross ``/``."""
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                raise InvalidArgument("invalid reference filter %r: syntax error in pattern"
                                      % pattern)
            cls = pattern[i + 1:j]
            out += "[" + ("^" + cls[1:] if cls.startswith("^") else re.escape(cls).replace(
                "\\-", "-")) + "]"
            i = j
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(c)
        i += 1
    return re.fullmatch(out, name) is not None


class Image:
    """One image as the operations see it."""

    def __init__(self, image_id: str, record: Any, refs: Any, config: dict[str, Any],
                 manifest: Any) -> None:
        self.id = image_id
        self.record = record
        self.refs = [reference.parse(r) for r in refs]
        self.config = config
        self.manifest = manifest

    @property
    def tags(self) -> list[Any]:
        return [r for r in self.refs if r.tag and not r.digest]

    @property
    def digest_refs(self) -> list[Any]:
        return [r for r in self.refs if r.digest]

    @property
    def dangling(self) -> bool:
        """No name at all: neither a tag nor a digest reference (docker's notion)."""
        return not self.refs

    @property
    def repo_tags(self) -> list[Any]:
        return [r.familiar for r in self.tags]

    @property
    def repo_digests(self) -> Any:
        return sorted({r.familiar for r in self.digest_refs})

    @property
    def created(self) -> Any:
        return parse_time(self.config.get("created"))

    @property
    def labels(self) -> dict[str, str]:
        return (self.config.get("config") or {}).get("Labels") or {}

    @property
    def diff_ids(self) -> list[str]:
        return self.config.get("rootfs", {}).get("diff_ids", [])

    @property
    def size(self) -> int:
        if self.record.get("size") is not None:
            return self.record["size"]
        return sum(layer.get("size", 0) for layer in self.manifest.get("layers", []))

    @property
    def parent(self) -> str:
        """The local image this one was built or committed from ("" when none)."""
        return parent_of(self.record)

    @property
    def top_chain(self) -> Any:
        chain = chain_ids(self.diff_ids)
        return chain[-1] if chain else None

    def summary(self) -> dict[str, Any]:
        """Engine API ImageSummary."""
        return {"Id": self.id, "ParentId": self.parent, "RepoTags": self.repo_tags,
                "RepoDigests": self.repo_digests, "Created": int(self.created),
                "Size": self.size, "SharedSize": -1, "Labels": self.labels, "Containers": -1}


class ImageService:
    """Images under ``root`` (content/, images/, snapshots/).

    ``containers(image_id) -> [(container_id, running)]`` tells which containers use an image
    (the container side of the engine provides it; without it no image is in use).
    ``layer_limits`` (an ``unpack.LayerLimits``) bounds how far a layer may expand when it is
    unpacked; its ``cap`` is the configurable ceiling.
    ``events`` (an ``events.EventService``, None by default: no events) receives docker's
    image events: pull, tag, untag, delete, prune.
    ``idmap`` (``--userns-remap``) unpacks every layer with its owners shifted to the remapped
    root's host ids; a store is for one mapping (or none) only, as each of docker's
    ``ROOT/UID.GID`` trees is: opening it with another is refused.
    """

    events: EventService | None = None

    def __init__(self, root: str, snapshotter: str | None = None, containers: Any = None,
                 layer_limits: LayerLimits = DEFAULT_LIMITS, idmap: IDMap | None = None) -> None:
        self.root = os.path.abspath(root)
        private_dir(self.root)
        self.content = ContentStore(os.path.join(self.root, "content"))
        self.store = ImageStore(os.path.join(self.root, "images"))
        self.snapshotter = open_snapshotter(os.path.join(self.root, "snapshots"), snapshotter)
        self.idmap = idmap
        self._check_mapping()
        self.containers: Any = containers or (lambda image_id: [])
        self.layer_limits = layer_limits
        self._local = threading.local()

    @contextlib.contextmanager
    def holding_gc(self) -> Iterator[Any]:
        """Hold off garbage collection (a shared lock; collection takes it exclusively) while
        writing content and snapshots that no image records yet: ``with svc.holding_gc():``.
        A gc() asked for inside runs when the outermost hold ends."""
        held = getattr(self._local, "held", 0)
        self._local.held = held + 1
        try:
            if held:
                yield
            else:
                with self._gc_lock(exclusive=False):
                    yield
        finally:
            self._local.held = held
            if not held and getattr(self._local, "gc_pending", False):
                self._local.gc_pending = False
                self.gc()

    def _gc_lock(self, exclusive):
        return self.content.gc_lock(exclusive)

    def _check_mapping(self):
        """Refuse a store unpacked for another id mapping; mark a fresh one with ours."""
        path = os.path.join(self.root, REMAP_MARKER)
        want = self.idmap.dir_name if self.idmap is not None else None
        try:
            with open(path) as f:
                have: str | None = f.read().strip()
        except FileNotFoundError:
            have = None
        if have == want:
            return
        if want is None or have is not None or self.store.state()["images"] or any(
                True for _ in self.snapshotter.walk()):
            raise FailedPrecondition(
                "image store %s: its layers are unpacked for %s, not for %s: each userns-remap "
                "mapping has a store of its own" % (
                    self.root, "remapped root " + have if have else "no userns-remap",
                    "remapped root " + want if want else "no userns-remap"))
        with open(path + ".tmp", "w") as f:
            f.write(want + "\n")
        os.replace(path + ".tmp", path)

    def unpack(self, manifest: Any, config: dict[str, Any],
               progress: Callable | None = None) -> str:
        """Unpack an image's layers (see ``unpack.unpack``) under this service's layer limits;
        returns the top chain ID. Callers keep the content and snapshots from collection
        (``holding_gc`` or a lease)."""
        return unpack(self.content, self.snapshotter, manifest, config, progress,
                      self.layer_limits, self.idmap)

    def log_event(self, action: str, actor_id: str, name: str,
                  labels: dict[str, str] | None = None) -> None:
        """Emit an image event as dockerd's LogImageEvent does (no-op without ``events``)."""
        if self.events is not None:
            from pyrunc.engine.events import image_attributes
            self.events.emit("image", action, actor_id, image_attributes(labels, name))

    def _untagged(self, records: list[dict[str, str]], image_id: str, ref: Reference,
                  labels: dict[str, str]) -> None:
        self.store.remove_ref(ref)
        records.append({"Untagged": ref.familiar})
        self.log_event("untag", image_id, image_id, labels)

    # loading images -------------------------------------------------------------------------
    def _image(self, image_id, state):
        rec = state["images"][image_id]
        config = json.loads(self.content.read(image_id))
        manifest = json.loads(self.content.read(rec["manifest"]["digest"]))
        return Image(image_id, rec, self.store.refs_of(image_id, state), config, manifest)

    def get(self, name: str) -> Any:
        state = self.store.state()
        return self._image(self.store.resolve(name, state), state)

    def images(self) -> list[Any]:
        state = self.store.state()
        return [self._image(i, state) for i in state["images"]]

    # adding images --------------------------------------------------------------------------
    def add(self, manifest_digest: str, refs: Any = (), index_digest: Any = None,
            unpack_layers: bool = True, progress: Any = None, parent: str | None = None) -> str:
        """Record the image whose manifest is ``manifest_digest`` (in the content store), name
        it ``refs`` (References or strings) and unpack it; returns the image ID. ``parent``
        is the local image it was made from (a build step's or a commit's), recorded with it."""
        manifest_bytes = self.content.read(manifest_digest)
        manifest = json_object(manifest_bytes, "manifest %s" % manifest_digest)
        config_desc = manifest.get("config") or {}
        image_id = config_desc.get("digest") if isinstance(config_desc, dict) else None
        if not image_id or not isinstance(image_id, str):
            raise InvalidArgument("manifest %s: has no config" % manifest_digest)
        config = json_object(self.content.read(image_id), "image config %s" % image_id)
        refs = [parse_name(r) if isinstance(r, str) else r for r in refs]
        size = None
        with self.holding_gc():
            if unpack_layers:
                top = self.unpack(manifest, config, progress)
                size = unpacked_size(self.snapshotter, top) if top else 0
            descriptor = {"mediaType": manifest.get("mediaType", OCI_MANIFEST),
                          "digest": manifest_digest, "size": len(manifest_bytes)}
            self.store.put(image_id, descriptor, index_digest, refs, size, parent)
        return image_id

    def put_image(self, config: dict[str, Any], layers: Any, refs: Any = (),
                  progress: Any = None, parent: str | None = None) -> str:
        """Store ``config`` (a dict) and an OCI manifest over ``layers`` (descriptors of blobs
        already in the content store); record and unpack the image (``parent``: the local image
        it was made from); returns its ID."""
        config_bytes = json.dumps(config, separators=(",", ":")).encode()
        try:
            with self.holding_gc():
                config_digest = self.content.put(config_bytes)
                manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                            "config": {"mediaType": OCI_CONFIG, "digest": config_digest,
                                       "size": len(config_bytes)},
                            "layers": list(layers)}
                manifest_digest = self.content.put(
                    json.dumps(manifest, separators=(",", ":")).encode())
                return self.add(manifest_digest, refs, progress=progress, parent=parent)
        except BaseException:
            self.gc()
            raise

    # containers' root filesystems ------------------------------------------------------------
    def prepare_rootfs(self, key: str, name: str, readonly: bool = False,
                       labels: Any = None) -> list[Mount]:
        """An active snapshot (or a read-only view) ``key`` over the image ``name``'s layers,
        unpacking any layer whose snapshot is missing; returns the mounts to perform."""
        img = self.get(name)
        with self.holding_gc():
            top = self.unpack(img.manifest, img.config)
            make = self.snapshotter.view if readonly else self.snapshotter.prepare
            mounts = make(key, top, labels={**(labels or {}), "pyrunc.io/image": img.id})
            if self.idmap is not None and not readonly:
                # the container's root directory is its root's (the layers' roots already are)
                os.chown(self.snapshotter.writable_dir(key), *self.idmap.root)
            return mounts

    # tag ------------------------------------------------------------------------------------
    def tag(self, source: str, target: str) -> Reference:
        image_id = self.store.resolve(source)
        ref = parse_name(target)
        if ref.digest:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        self.store.add_ref(ref, image_id)
        if self.events is not None:
            self.log_event("tag", image_id, ref.familiar, self._labels(image_id))
        return ref

    def _labels(self, image_id: str) -> dict[str, str]:
        try:
            config = json.loads(self.content.read(image_id))
        except (NotFound, ValueError):
            return {}
        labels = (config.get("config") or {}).get("Labels") if isinstance(config, dict) else None
        return labels if isinstance(labels, dict) else {}

    # inspect / history ----------------------------------------------------------------------
    def inspect(self, name: str) -> dict[Any, Any]:
        img = self.get(name)
        c = img.config
        return {
            "Id": img.id,
            "RepoTags": img.repo_tags,
            "RepoDigests": img.repo_digests,
            "Parent": img.parent,
            "Comment": c.get("comment", "") or _history_comment(c),
            "Created": c.get("created", ""),
            "DockerVersion": c.get("docker_version", ""),
            "Author": c.get("author", ""),
            "Config": _docker_config(c.get("config") or {}),
            "Architecture": c.get("architecture", ""),
            **({"Variant": c["variant"]} if c.get("variant") else {}),
            "Os": c.get("os", ""),
            "Size": img.size,
            "GraphDriver": {"Name": self.snapshotter.name, "Data": None},
            "RootFS": {"Type": c.get("rootfs", {}).get("type", "layers"),
                       "Layers": list(img.diff_ids)},
            "Metadata": {"LastTagTime": _rfc3339(img.record.get("last_tag"))},
        }

    def _layer_size(self, chain: str) -> int:
        """The bytes of the layer whose chain ID is ``chain`` (0 if it is not unpacked)."""
        try:
            return int(self.snapshotter.stat(chain).labels.get(SIZE_LABEL, 0))
        except NotFound:
            return 0

    def layer_usage(self, listed: Iterable[str] | None = None) -> tuple[dict[str, int], int]:
        """({image ID: bytes of its layers that another of the ``listed`` images (all when
        None) also has}, the bytes of every image's layers, each layer once): docker's
        SharedSize and its system df's LayersSize."""
        chains = {img.id: chain_ids(img.diff_ids) for img in self.images()}
        listed = list(chains) if listed is None else list(listed)
        users: dict[str, int] = {}
        for image_id in listed:
            for chain in set(chains.get(image_id, ())):
                users[chain] = users.get(chain, 0) + 1
        sizes = {chain: self._layer_size(chain) for ids in chains.values() for chain in set(ids)}
        shared = {image_id: sum(sizes[c] for c in set(chains.get(image_id, ())) if users[c] > 1)
                  for image_id in listed}
        return shared, sum(sizes.values())

    def history(self, name: str) -> Any:
        """The image's history, newest first; entries down the chain of local parents carry
        those images' IDs and tags (the rest ``<missing>``), as dockerd's do."""
        state = self.store.state()
        img = self._image(self.store.resolve(name, state), state)
        sizes = []
        top = img.top_chain
        if top:
            sizes = [self._layer_size(chain) for chain in chain_ids(img.diff_ids)]
        history = img.config.get("history") or [{"created": img.config.get("created", "")}
                                                 for _ in img.diff_ids]
        out = []
        layer = 0
        for h in history:
            size = 0
            if not h.get("empty_layer"):
                size = sizes[layer] if layer < len(sizes) else 0
                layer += 1
            out.append({"Id": "<missing>", "Created": int(parse_time(h.get("created"))),
                        "CreatedBy": h.get("created_by", ""), "Tags": None, "Size": size,
                        "Comment": h.get("comment", "")})
        out.reverse()
        image_id = img.id
        for entry in out:
            entry["Id"] = image_id
            refs = [reference.parse(r) for r in self.store.refs_of(image_id, state)]
            entry["Tags"] = [r.familiar for r in refs if r.tag and not r.digest] or None
            image_id = parent_of(state["images"][image_id])
            if image_id not in state["images"]:
                break
        return out

    # list -----------------------------------------------------------------------------------
    def list(self, filters: Any = None, all_images: bool = True) -> list[Any]:
        """ImageSummary dicts, newest first, filtered like ``docker image ls --filter``.
        Without ``all_images`` intermediate images (unnamed, the parent of another) are left
        out, as ``docker images`` without ``-a`` does; ``dangling=true`` never lists them."""
        filters = _normalise_filters(filters)
        images = self.images()
        parents = {i.parent for i in images}
        by_time = []
        for key in ("before", "since"):
            for value in filters.get(key, []):
                by_time.append((key, self.get(value).created))
        out = []
        for img in images:
            intermediate = img.dangling and img.id in parents
            if intermediate and (not all_images or filters.get("dangling")):
                continue
            if "dangling" in filters:
                want = filters["dangling"]
                if img.dangling != want:
                    continue
            if "label" in filters and not all(_label_match(img.labels, f)
                                              for f in filters["label"]):
                continue
            if any((k == "before" and img.created >= t) or (k == "since" and img.created <= t)
                   for k, t in by_time):
                continue
            if "reference" in filters:
                if not any(_ref_matches(p, r) for p in filters["reference"] for r in img.refs):
                    continue
            out.append(img)
        out.sort(key=lambda i: (-i.created, i.id))
        return [i.summary() for i in out]

    # remove ---------------------------------------------------------------------------------
    def remove(self, name: Any, force: bool = False, prune: bool = True) -> Any:
        """docker rmi: untag a name, or delete an image by ID; returns delete records
        ([{"Untagged": ...}, {"Deleted": ...}]) or raises Conflict/NotFound like docker.
        An image that is the parent of another is not deleted (by its ID: Conflict; by a
        name: only untagged). With ``prune`` (``rmi`` without ``--no-prune``) the deleted
        image's unnamed parents follow it, up to the first one still in use."""
        state = self.store.state()
        image_id = self.store.resolve(name, state)
        refs = [reference.parse(r) for r in self.store.refs_of(image_id, state)]
        children = self.store.children(image_id, state)
        parent = parent_of(state["images"][image_id])
        records: list[dict[str, str]] = []
        users = self.containers(image_id)
        by_id = _is_id_prefix(image_id, name)
        labels = self._labels(image_id) if self.events is not None else {}
        removed_ref = False
        if not by_id:
            given = parse_name(name)
            if not force and _single_reference(refs) and users:
                raise Conflict("conflict: unable to remove repository reference \"%s\" (must "
                               "force) - container %s is using its referenced image %s"
                               % (name, short_id(users[0][0]), short_id(image_id)))
            match = [r for r in refs if r == given]
            if not match and given.digest:
                match = [r for r in refs if r.digest == given.digest and r.name == given.name]
            for r in match:
                self._untagged(records, image_id, r, labels)
            refs = [r for r in refs if r not in match]
            if not given.digest and not any(not r.digest and r.name == given.name for r in refs):
                for r in [r for r in refs if r.digest and r.name == given.name]:
                    self._untagged(records, image_id, r, labels)
                    refs.remove(r)
            if refs:
                return records
            removed_ref = True
        elif _single_reference(refs) or children:
            self._check_conflict(image_id, refs, users, force, True, children)
            for r in refs:
                self._untagged(records, image_id, r, labels)
            refs = []
            removed_ref = True
        if removed_ref and children:
            return records      # dockerd: a name removed, the image kept for its children
        self._check_conflict(image_id, refs, users, force, removed_ref, children)
        for r in refs:
            self._untagged(records, image_id, r, labels)
        self.store.remove_image(image_id)
        records.append({"Deleted": image_id})
        self.log_event("delete", image_id, image_id)
        if prune:
            self._remove_parents(parent, records)
            self.gc()
        return records

    def _remove_parents(self, parent, records):
        """Delete the chain of unnamed parents from ``parent`` up, stopping quietly at the
        first one a name, another child image or a container still uses (dockerd's prune of
        a deleted image's parents)."""
        seen = set()
        while parent and parent not in seen and not self.containers(parent):
            seen.add(parent)
            image_id, parent = parent, self.store.remove_unused_parent(parent)
            if parent is None:
                return
            records.append({"Deleted": image_id})
            self.log_event("delete", image_id, image_id)

    def _check_conflict(self, image_id, refs, users, force, removed_ref, children=()):
        sid = short_id(image_id)
        if children:
            raise Conflict("conflict: unable to delete %s (cannot be forced) - image has "
                           "dependent child images" % sid)
        running = [c for c, up in users if up]
        stopped = [c for c, up in users if not up]
        if running:
            raise Conflict("conflict: unable to delete %s (cannot be forced) - image is being "
                           "used by running container %s" % (sid, short_id(running[0])))
        if force:
            return
        if refs and not removed_ref:
            raise Conflict("conflict: unable to delete %s (must be forced) - image is "
                           "referenced in multiple repositories" % sid)
        if stopped:
            raise Conflict("conflict: unable to delete %s (must be forced) - image is being "
                           "used by stopped container %s" % (sid, short_id(stopped[0])))

    # prune / gc -----------------------------------------------------------------------------
    def prune(self, all_images: bool = False, filters: Any = None) -> dict[str, Any]:
        """docker image prune: delete dangling (or, with ``all_images``, unused) images, and
        their unnamed parents as ``rmi`` does. An intermediate image (unnamed, the parent of
        another) is not dangling; a named image that is a parent is only untagged."""
        filters = _normalise_filters(filters, allowed=("label", "until"))
        deleted: list[dict[str, str]] = []
        before = self._disk_usage()
        images = self.images()
        parents = {i.parent for i in images}
        for img in images:
            if img.dangling and img.id in parents:
                continue
            if not img.dangling and not all_images:
                continue
            if self.containers(img.id):
                continue
            if "label" in filters and not all(_label_match(img.labels, f)
                                               for f in filters["label"]):
                continue
            if "until" in filters and not all(img.created < _until(v) for v in filters["until"]):
                continue
            if img.id not in self.store.state()["images"]:
                continue        # deleted above as the parent of another
            for r in img.refs:
                self._untagged(deleted, img.id, r, img.labels)
            if self.store.children(img.id):
                continue
            self.store.remove_image(img.id)
            deleted.append({"Deleted": img.id})
            self.log_event("delete", img.id, img.id)
            self._remove_parents(img.parent, deleted)
        self.gc()
        reclaimed = max(0, before - self._disk_usage())
        if self.events is not None:
            self.events.emit("image", "prune", "", {"reclaimed": str(reclaimed)})
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    def gc(self) -> int:
        """Remove content and layer snapshots no image or live lease holds, ingests and
        extraction snapshots whose writer is gone; returns bytes of content freed (inside
        holding_gc() it is deferred to the end of the hold, and returns 0)."""
        if getattr(self._local, "held", 0):
            self._local.gc_pending = True
            return 0
        with self._gc_lock(exclusive=True):
            return self._collect()

    def _collect(self):
        _, freed = collect(self.content, self.store.roots())
        remove_abandoned(self.snapshotter)
        wanted = set(self.content.live_leases()[1])
        for img in self.images():
            wanted.update(chain_ids(img.diff_ids))
        removed = True
        while removed:
            removed = False
            infos = list(self.snapshotter.walk())
            parents = {i.parent for i in infos}
            for info in infos:
                if (info.kind == COMMITTED and info.name not in wanted
                        and info.name not in parents):
                    self.snapshotter.remove(info.name)
                    removed = True
        self.snapshotter.cleanup()
        return freed

    def _disk_usage(self):
        total = sum(i.size for i in self.content.walk())
        for info in self.snapshotter.walk():
            total += int(info.labels.get(SIZE_LABEL, 0))
        return total


def _until(value):
    try:
        return float(value)
    except ValueError:
        t = parse_time(value)
        if not t:
            raise InvalidArgument("invalid filter 'until=%s'" % value) from None
        return t


def _rfc3339(ts):
    if not ts:
        return "0001-01-01T00:00:00Z"
    return timestamps.format_ns(round(ts * timestamps.NS))


def _history_comment(config):
    history = config.get("history") or []
    return history[-1].get("comment", "") if len(history) == 1 else ""


def _docker_config(c):
    keys = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
            "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Image", "Volumes",
            "WorkingDir", "Entrypoint", "OnBuild", "Labels", "StopSignal")
    defaults = {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
                "AttachStdout": False, "AttachStderr": False, "Tty": False, "OpenStdin": False,
                "StdinOnce": False, "Env": None, "Cmd": None, "Image": "", "Volumes": None,
                "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None}
    out = {k: c.get(k, defaults.get(k)) for k in keys if k in c or k in defaults}
    for k, v in c.items():
        out.setdefault(k, v)
    return out


def _normalise_filters(filters, allowed=LIST_FILTERS):
    """Accept {"key": [values]} (the Engine API's form), {"key": value} or ["key=value"]."""
    out: dict[Any, Any] = {}
    if not filters:
        return out
    if isinstance(filters, (list, tuple)):
        pairs = []
        for f in filters:
            if "=" not in f:
                raise InvalidArgument("bad format of filter (expected name=value)")
            pairs.append(f.split("=", 1))
    else:
        pairs = [(k, v) for k, vs in filters.items()
                 for v in (vs if isinstance(vs, (list, tuple)) else [vs])]
    for key, value in pairs:
        if key not in allowed:
            raise InvalidArgument("invalid filter '%s'" % key)
        if key == "dangling":
            if str(value).lower() not in ("true", "false", "1", "0"):
                raise InvalidArgument("invalid filter 'dangling=%s'" % value)
            out["dangling"] = str(value).lower() in ("true", "1")
        else:
            out.setdefault(key, []).append(str(value))
    return out


def _label_match(labels, f):
    if "=" in f:
        k, v = f.split("=", 1)
        return labels.get(k) == v
    return f in labels


def _ref_matches(pattern, ref):
    if ref.digest:
        return False
    names = [ref.familiar_name, ref.familiar]
    return any(_path_match(pattern, n) for n in names)


def _is_id_prefix(image_id, text):
    hexpart = image_id.split(":", 1)[1]
    t = text[len("sha256:"):] if text.startswith("sha256:") else text
    return bool(t) and hexpart.startswith(t) and re.fullmatch(r"[a-f0-9]+", t) is not None


def _single_reference(refs):
    """docker's isSingleReference: exactly one tag, digest references only of its repository."""
    if len(refs) <= 1:
        return len(refs) == 1
    tags = [r for r in refs if not r.digest]
    if len(tags) > 1:
        return False
    canonical = {r.name for r in refs if r.digest}
    single = tags[0] if tags else refs[0]
    return len(canonical) == 1 and single.name in canonical
