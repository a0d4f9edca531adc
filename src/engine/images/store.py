"""The image store: images by ID (the config digest) and the references that name them.

One JSON document, rewritten by atomic rename under an flock::

    {"images": {"sha256:<config>": {"manifest": {descriptor}, "index": "sha256:..." | null,
                                    "added": 1700000000.0, "last_tag": 1700000000.0,
                                    "size": <unpacked bytes> | null,
                                    "parent": "sha256:<config>"}},
     "refs":   {"docker.io/library/busybox:latest": "sha256:<config>",
                "docker.io/library/busybox@sha256:<manifest>": "sha256:<config>"}}

Configs, manifests and indexes themselves live in the content store; these records are the
roots its garbage collector keeps. ``parent`` is only in the records of images made here from
another local image (a build step, a commit): dockerd's local parent link, which pulled, loaded
and imported images do not have and save/load does not carry.
"""
from __future__ import annotations

import os
import re
import time

from pyrunc.engine import reference
from pyrunc.engine.content import parse_digest
from pyrunc.engine.content.private import private_dir
from pyrunc.engine.metadata import locked_document
from pyrunc.errors import Conflict, InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from pyrunc.engine.reference import Reference

_HEX_PREFIX = re.compile(r"^(?:sha256:)?([a-f0-9]{1,64})$")


def short_id(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


def parse_name(text: str) -> Reference:
    """A user's image name as a canonical reference (docker's normalisation, ``latest``)."""
    return reference.parse_docker_ref(text)


def parent_of(record: Any) -> str:
    """The parent image ID an image's record names ("" when none, or when not a string)."""
    parent = record.get("parent")
    return parent if isinstance(parent, str) else ""


class ImageStore:
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        private_dir(self.root)

    def transaction(self, write: bool = True) -> Any:
        return locked_document(self.root, "images.json", lambda: {"images": {}, "refs": {}},
                               write=write)

    def state(self) -> Any:
        """The whole document as read now (a copy: later changes do not show in it)."""
        with self.transaction(write=False) as state:
            return state

    # records --------------------------------------------------------------------------------
    def put(self, image_id: str, manifest: Any, index: Any = None, refs: Any = (),
            size: int | None = None, parent: str | None = None) -> None:
        """Record an image (``manifest`` is its descriptor) and point ``refs`` at it.

        ``parent`` (an image ID in the store, else NotFound) is recorded for a new image only:
        an image already here keeps the parent it was made with, so no loop of parents forms."""
        parse_digest(image_id)
        now = time.time()
        with self.transaction() as state:
            rec = state["images"].get(image_id)
            if parent and parent not in state["images"]:
                raise NotFound("No such image: %s (the parent of %s)" % (parent, image_id))
            if rec is None:
                rec = state["images"][image_id] = {"added": now, "last_tag": None, "size": size}
                if parent and parent != image_id:
                    state["images"][image_id]["parent"] = parent
            rec["manifest"] = manifest
            rec["index"] = index
            if size is not None:
                rec["size"] = size
            for ref in refs:
                state["refs"][str(ref)] = image_id
                if getattr(ref, "tag", None):
                    rec["last_tag"] = now

    def set_size(self, image_id: Any, size: Any) -> None:
        with self.transaction() as state:
            if image_id in state["images"]:
                state["images"][image_id]["size"] = size

    def record(self, image_id: str) -> Any:
        with self.transaction(write=False) as state:
            rec = state["images"].get(image_id)
            if rec is None:
                raise NotFound("No such image: %s" % image_id)
            return rec

    def refs_of(self, image_id: str, state: Any = None) -> Any:
        if state is None:
            state = self.state()
        return sorted(r for r, i in state["refs"].items() if i == image_id)

    def resolve(self, text: str, state: Any = None) -> str:
        """The image ID ``text`` names: a reference, a full ID or an unambiguous ID prefix."""
        if state is None:
            state = self.state()
        if not text:
            raise InvalidArgument("image name must not be empty")
        m = _HEX_PREFIX.match(text)
        if m and (text.startswith("sha256:") or len(m.group(1)) == 64):
            full = "sha256:" + m.group(1)
            if full in state["images"]:
                return full
        try:
            ref = parse_name(text)
        except InvalidArgument:
            ref = None
        if ref is not None:
            image_id = state["refs"].get(str(ref))
            if image_id is None and ref.digest and ref.tag:
                image_id = state["refs"].get(str(reference.Reference(ref.domain, ref.path,
                                                                     None, ref.digest)))
            if image_id is not None:
                return image_id
        if m:
            hits = [i for i in state["images"] if i.split(":", 1)[1].startswith(m.group(1))]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1 and not text.startswith("sha256:") and len(m.group(1)) < 64:
                raise InvalidArgument("image %s: ambiguous ID prefix (matches %d images)"
                                      % (text, len(hits)))
        if ref is None and not m:
            raise InvalidArgument("invalid reference format: %s" % text)
        raise NotFound("No such image: %s" % text)

    def add_ref(self, ref: Reference, image_id: str) -> None:
        with self.transaction() as state:
            if image_id not in state["images"]:
                raise NotFound("No such image: %s" % image_id)
            state["refs"][str(ref)] = image_id
            if ref.tag:
                state["images"][image_id]["last_tag"] = time.time()

    def remove_ref(self, ref: Reference) -> None:
        with self.transaction() as state:
            if state["refs"].pop(str(ref), None) is None:
                raise NotFound("No such image: %s" % ref.familiar)

    def children(self, image_id: str, state: Any = None) -> list[str]:
        """The images whose parent is ``image_id``, sorted."""
        if state is None:
            state = self.state()
        return sorted(i for i, rec in state["images"].items() if rec.get("parent") == image_id)

    def remove_image(self, image_id: str) -> None:
        """Forget an image and its references; Conflict while an image has it as parent."""
        with self.transaction() as state:
            if self.children(image_id, state):
                raise Conflict("conflict: unable to delete %s (cannot be forced) - image has "
                               "dependent child images" % short_id(image_id))
            state["images"].pop(image_id, None)
            for r in [r for r, i in state["refs"].items() if i == image_id]:
                del state["refs"][r]

    def remove_unused_parent(self, image_id: str) -> str | None:
        """Forget ``image_id`` if nothing names it and no image has it as parent (in one
        transaction); returns its own parent ("" if none), None when it was kept."""
        with self.transaction() as state:
            rec = state["images"].get(image_id)
            if rec is None or self.children(image_id, state) or any(
                    i == image_id for i in state["refs"].values()):
                return None
            del state["images"][image_id]
            return parent_of(rec)

    def roots(self) -> set[str]:
        """Content digests the images hold (for the content garbage collector)."""
        state = self.state()
        out = set()
        for image_id, rec in state["images"].items():
            out.add(image_id)
            out.add(rec["manifest"]["digest"])
            if rec.get("index"):
                out.add(rec["index"])
        return out
