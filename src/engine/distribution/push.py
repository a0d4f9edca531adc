"""``docker push``: upload an image's blobs and manifest from the content store to a registry.

Each layer is checked first (HEAD: ``Layer already exists``), then mounted from another
repository of the same registry when one is known to hold it (``Mounted from <repo>``), else
uploaded (``Pushing`` with bytes, ``Pushed``), ``max_concurrent_uploads`` at a time. The config
follows, then the manifest by tag (and by digest when the reference has one). An index is
pushed as its manifests (by digest) and then the index itself.
"""
from __future__ import annotations

import concurrent.futures
import json

from pyrunc.errors import InvalidArgument, NotFound

from pyrunc.engine import imagespec
from pyrunc.engine import reference as references
from pyrunc.engine.distribution import progress as events
from pyrunc.engine.registry import mediatypes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_CONCURRENT_UPLOADS = 5


class PushResult:
    def __init__(self, ref: Any, digest: Any, size: Any, pushed: Any, mounted: Any,
                 existing: Any) -> None:
        self.ref = ref
        self.digest = digest        # the manifest (or index) digest the tag now points at
        self.size = size
        self.pushed = pushed        # digests uploaded
        self.mounted = mounted      # digests mounted from another repository
        self.existing = existing    # digests the registry had already


def _load(content, digest):
    try:
        data = content.read(digest)
    except NotFound:
        raise NotFound("content %s is not in the local store" % digest)
    imagespec.check_limits(data, "manifest %s" % digest)
    try:
        body = json.loads(data)
    except ValueError:
        raise InvalidArgument("manifest %s: invalid JSON" % digest)
    if not isinstance(body, dict):
        raise InvalidArgument("manifest %s: not a JSON object" % digest)
    media_type = body.get("mediaType")
    if media_type is None:
        media_type = mediatypes.OCI_INDEX if "manifests" in body else mediatypes.OCI_MANIFEST
    if media_type not in mediatypes.MANIFESTS + mediatypes.INDEXES:
        raise InvalidArgument("manifest %s: cannot push media type %s" % (digest, media_type))
    # a registry would refuse a malformed one only after the layers went up
    imagespec.validate(imagespec.kind_for_media_type(media_type), body, "manifest %s" % digest)
    return media_type, data, body


def _local_manifest(images, ref):
    """The manifest digest of the local image named ``ref`` (docker's error when none)."""
    missing = NotFound("An image does not exist locally with the tag: %s" % ref.familiar_name)
    if images is None:
        raise missing
    try:
        image_id = images.store.resolve(str(ref))
    except NotFound:
        raise missing from None
    return images.store.record(image_id)["manifest"]["digest"]


def push(ref: Any, content: Any, registries: Any, manifest_digest: Any = None, progress: Any = None,
         images: Any = None, mount_from: Any = (), chunk_size: Any = None,
         max_concurrent_uploads: Any = MAX_CONCURRENT_UPLOADS) -> Any:
    """Push the image ``manifest_digest`` (default: the image ``images``, an ImageService,
    has under the name ``ref``) as ``ref``.

    ``mount_from`` lists repositories (paths) on the same registry that may hold the layers
    already. ``chunk_size`` switches uploads to chunked PATCHes. Returns a :class:`PushResult`.
    """
    if isinstance(ref, str):
        ref = references.parse_docker_ref(ref)
    else:
        ref = ref.with_default_tag()
    if manifest_digest is None:
        manifest_digest = _local_manifest(images, ref)
    out = events.Progress(progress)
    media_type, data, body = _load(content, manifest_digest)
    sources = [p for p in mount_from if p != ref.path]
    repo = registries.get(ref.domain).repository(ref.path, for_push=True,
                                                 extra_pull_scopes=sources)
    out.emit("The push refers to repository [%s]" % ref.name)
    result = PushResult(ref, manifest_digest, len(data), [], [], [])
    if media_type in mediatypes.INDEXES:
        for desc in body.get("manifests") or []:
            child_type, child_data, child_body = _load(content, desc["digest"])
            if child_type in mediatypes.INDEXES:
                raise InvalidArgument("index %s: nested indexes are not supported"
                                      % manifest_digest)
            _push_image(repo, content, child_body, sources, out, result, chunk_size,
                        max_concurrent_uploads)
            repo.put_manifest(desc["digest"], child_type, child_data)
    else:
        _push_image(repo, content, body, sources, out, result, chunk_size,
                    max_concurrent_uploads)
    if ref.tag:
        repo.put_manifest(ref.tag, media_type, data)
    if ref.digest:
        repo.put_manifest(ref.digest, media_type, data)
    out.emit("%s: digest: %s size: %d" % (ref.tag or ref.digest, manifest_digest, len(data)))
    return result


def _push_image(repo, content, body, sources, out, result, chunk_size, max_concurrent):
    layers = body.get("layers") or []
    for layer in layers:
        if not content.exists(layer["digest"]):
            raise NotFound("layer %s is not in the local store" % layer["digest"])
    unique: list[Any] = []
    for layer in reversed(layers):
        if layer["digest"] not in [u["digest"] for u in unique]:
            unique.append(layer)
    for layer in unique:
        out.layer(events.short_id(layer["digest"]), events.PREPARING)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(max_concurrent, 1),
                                               thread_name_prefix="push") as pool:
        jobs = []
        for n, layer in enumerate(unique):
            if n >= max_concurrent:
                out.layer(events.short_id(layer["digest"]), events.WAITING)
            jobs.append(pool.submit(_push_blob, repo, content, layer, sources, out, result,
                                    chunk_size, True))
        for job in jobs:
            job.result()
    _push_blob(repo, content, body["config"], (), out, result, chunk_size, False)


def _push_blob(repo, content, desc, sources, out, result, chunk_size, visible):
    digest, size = desc["digest"], desc["size"]
    sid = events.short_id(digest)
    if repo.blob_size(digest) is not None:
        result.existing.append(digest)
        if visible:
            out.layer(sid, events.LAYER_EXISTS)
        return
    for source in sources:
        if repo.mount_blob(digest, source):
            result.mounted.append(digest)
            if visible:
                out.layer(sid, "Mounted from " + source)
            return
    report = (lambda done: out.bytes(sid, events.PUSHING, done, size)) if visible else None
    repo.upload_blob(digest, size, lambda: content.open(digest), chunk_size=chunk_size,
                     progress=report)
    result.pushed.append(digest)
    if visible:
        out.layer(sid, events.PUSHED)
