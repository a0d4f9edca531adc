"""``docker pull``: resolve a reference, download what is missing, unpack, name the image.

Steps, with docker's progress events:

1. Resolve the tag or digest to a manifest; an index is narrowed to the wanted platform.
2. Fetch the config; check its platform (docker's warning when it is not the one asked for).
3. Layers already stored and unpacked are ``Already exists``; the others are ``Pulling fs
   layer``, downloaded ``max_concurrent_downloads`` at a time (the rest ``Waiting``), with
   ``Downloading`` bytes, ``Verifying Checksum`` and ``Download complete``. Each is unpacked
   into its snapshot as soon as it and the layers below it are in (``Extracting``,
   ``Pull complete``), while the later ones still download.
4. The manifest (and index) join the content store; the image service records the image
   under the name and the repo digest.
5. ``Digest:`` and ``Status: Downloaded newer image for`` / ``Image is up to date for``.

Blobs are written through content-store ingests, so a failed pull leaves no partial blob:
ingests are aborted and the lease taken for the pull is released. Garbage collection running
meanwhile keeps what the pull will reference: the lease names the index, manifest, config and
layer blobs and the layers' snapshots (chain IDs) before any of them is looked for, downloaded
or unpacked, and adding to a lease waits for a collection under way to finish. Nothing holds
off collection, or other pulls, for the length of a download.
"""
from __future__ import annotations

import concurrent.futures
import json
import threading
import time

from pyrunc.errors import InvalidArgument, NotFound, PyruncError, Unavailable

from pyrunc.engine import imagespec
from pyrunc.engine import reference as references
from pyrunc.engine.distribution import progress as events
from pyrunc.engine.platforms import Platform, host_platform, select_manifest
from pyrunc.engine.registry import mediatypes
from pyrunc.engine.registry.client import DOWNLOAD_RETRIES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Callable
    from pyrunc.engine.content.store import ContentStore
    from pyrunc.engine.images.service import ImageService
    from pyrunc.engine.reference import Reference
    from pyrunc.engine.registry.client import Manifest, RegistryService

MAX_CONCURRENT_DOWNLOADS = 3


class PullResult:
    """What a pull resolved and stored."""

    def __init__(self, ref: Reference, digest: str, manifest: Manifest, index: Manifest | None,
                 config_digest: str, config: Any, layers: Any, downloaded: Any, up_to_date: bool,
                 warning: str | None = None) -> None:
        self.ref = ref                      # the Reference pulled (with a tag or a digest)
        self.digest = digest                # what the name points at: the index or manifest
        self.manifest = manifest            # Manifest for the chosen platform
        self.index = index                  # Manifest of the index, or None
        self.config_digest = config_digest  # the image ID
        self.config = config                # parsed config
        self.layers = layers                # layer descriptors, in order
        self.downloaded = downloaded        # digests fetched by this pull
        self.up_to_date = up_to_date
        self.warning = warning

    @property
    def image_id(self) -> str:
        return self.config_digest


class _Cancelled(Exception):
    pass


def _check_descriptor(desc, what, display):
    if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str) \
            or not isinstance(desc.get("size"), int) or desc["size"] < 0:
        raise InvalidArgument("manifest for %s: %s: descriptor needs a digest and a size"
                              % (display, what))
    references.validate_digest(desc["digest"])


def validate_manifest(manifest: Manifest, display: str) -> tuple[Any, ...]:
    """The config and layer descriptors of an image manifest, checked."""
    body = manifest.json
    config = body.get("config")
    _check_descriptor(config, "config", display)
    if config.get("mediaType", mediatypes.OCI_CONFIG) not in mediatypes.CONFIGS:
        raise InvalidArgument("manifest for %s: config media type %s: not a container image"
                              % (display, config["mediaType"]))
    layers = body.get("layers")
    if not isinstance(layers, list):
        raise InvalidArgument("manifest for %s: layers: must be an array" % display)
    for i, layer in enumerate(layers):
        _check_descriptor(layer, "layers[%d]" % i, display)
        media_type = layer.get("mediaType", mediatypes.OCI_LAYER_GZIP)
        if media_type in mediatypes.FOREIGN_LAYERS:
            raise InvalidArgument("manifest for %s: layers[%d]: foreign layers (%s) are not "
                                  "supported" % (display, i, media_type))
        if media_type not in mediatypes.LAYERS:
            raise InvalidArgument("manifest for %s: layers[%d]: unsupported media type %s"
                                  % (display, i, media_type))
    return config, layers


def pull(ref: str, images: ImageService, registries: RegistryService, platform: Any = None,
         progress: Callable | None = None, max_concurrent_downloads: int = MAX_CONCURRENT_DOWNLOADS,
         retries: int = DOWNLOAD_RETRIES) -> Any:
    """``docker pull``: fetch ``ref`` into ``images`` (an ImageService), unpack it, name it.

    ``ref`` is a string or a Reference (``latest`` is added when it has neither tag nor
    digest); ``registries`` a RegistryService; ``platform`` a Platform (default: the host's).
    ``progress`` receives docker's JSON progress events. Returns a :class:`PullResult`.
    """
    return _pull(ref, images.content, registries, images, platform, progress,
                 max_concurrent_downloads, retries)


def fetch(ref: str, content: ContentStore, registries: RegistryService,
          platform: Platform | None = None, progress: Callable | None = None,
          max_concurrent_downloads: int = MAX_CONCURRENT_DOWNLOADS,
          retries: int = DOWNLOAD_RETRIES) -> Any:
    """Download ``ref``'s index, manifest, config and layers into a content store only
    (no unpacking, no name recorded); the events are pull's. Returns a :class:`PullResult`."""
    return _pull(ref, content, registries, None, platform, progress,
                 max_concurrent_downloads, retries)


def _pull(ref, content, registries, images, platform, progress, max_concurrent_downloads,
          retries):
    if isinstance(ref, str):
        ref = references.parse_docker_ref(ref)
    else:
        ref = ref.with_default_tag()
    out = events.Progress(progress)
    explicit_platform = platform is not None
    wanted = platform or host_platform()
    display = ref.familiar
    repo = registries.get(ref.domain).repository(ref.path)

    top = repo.get_manifest(ref.object, display=str(ref) if ref.digest else None)
    index, manifest = None, top
    if top.is_index:
        index = top
        chosen = select_manifest(index.json, wanted)
        manifest = repo.get_manifest(chosen["digest"], display=display)
        if manifest.size != chosen["size"]:
            raise InvalidArgument("manifest for %s: %s has %d bytes, the index says %d"
                                  % (display, chosen["digest"], manifest.size, chosen["size"]))
        if manifest.is_index:
            raise InvalidArgument("manifest for %s: an index inside an index is not supported"
                                  % display)
    config_desc, layers = validate_manifest(manifest, display)
    out.emit("Pulling from " + ref.path, id=ref.digest and display or ref.tag)

    lease = content.lease()
    downloaded = []
    try:
        for blob in (top, manifest):
            lease.add(blob.digest)
        config_digest = config_desc["digest"]
        lease.add(config_digest)
        have_image = content.exists(config_digest)
        # the config is checked against its schema before it is stored or used
        if not have_image:
            data = repo.get_blob(config_digest, config_desc["size"])
            config = imagespec.load("config", data, "image config %s" % config_digest)
            _put(content, data, config_digest)
            downloaded.append(config_digest)
        else:
            config = imagespec.load("config", content.read(config_digest),
                                    "image config %s" % config_digest)
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        if len(diff_ids) != len(layers):
            raise InvalidArgument("image config %s: %d diff_ids for %d layers"
                                  % (config_digest, len(diff_ids), len(layers)))
        warning = _platform_warning(ref, config, wanted, explicit_platform)

        for layer in layers:
            lease.add(layer["digest"])
        if images is not None:
            from pyrunc.engine.images.unpack import chain_ids
            for chain in chain_ids(diff_ids):
                lease.add_snapshot(chain)
        present = _present_layers(content, layers, diff_ids, images)
        if images is not None:
            ready = _unpacker(images, layers, diff_ids, out)
        else:
            def ready(i):
                out.layer(events.short_id(layers[i]["digest"]), events.PULL_COMPLETE)
        if not (have_image and all(present)):
            # docker says nothing about the layers of an image it has whole
            downloaded += _fetch_layers(repo, content, layers, present, out,
                                        max_concurrent_downloads, retries, ready)

        for blob in (top, manifest):
            if not content.exists(blob.digest):
                _put(content, blob.data, blob.digest)
                downloaded.append(blob.digest)

        up_to_date = not downloaded
        if images is not None:
            up_to_date = _record(images, ref, top, manifest, index, config_digest) \
                and up_to_date
    finally:
        lease.release()
    if images is not None:
        images.log_event("pull", ref.familiar, ref.familiar_name,
                         (config.get("config") or {}).get("Labels"))

    out.emit("Digest: " + top.digest)
    if up_to_date:
        out.emit("Status: Image is up to date for " + display)
    else:
        out.emit("Status: Downloaded newer image for " + display)
    if warning:
        out.emit(warning)
    return PullResult(ref, top.digest, manifest, index, config_digest, config, layers,
                      downloaded, up_to_date, warning)


def _unpacker(images, layers, diff_ids, out):
    """``ready(i)``: unpack layer ``i`` (all below it are unpacked already) into its snapshot,
    with ``Extracting`` and ``Pull complete``; called in layer order as downloads finish."""
    def ready(i):
        layer = layers[i]
        sid, size = events.short_id(layer["digest"]), layer["size"]

        done = [0]    # layers below i report Already exists first: the (i+1)th is ours

        def unpacked(digest, status):
            if status == events.EXTRACTING:
                out.bytes(sid, events.EXTRACTING, 0, size, force=True)
                return
            done[0] += 1
            if done[0] != i + 1:
                return
            if status == events.PULL_COMPLETE:
                out.bytes(sid, events.EXTRACTING, size, size, force=True)
            out.layer(sid, events.PULL_COMPLETE)

        images.unpack({"layers": layers[:i + 1]}, {"rootfs": {"diff_ids": diff_ids[:i + 1]}},
                      progress=unpacked)

    return ready


def _record(images, ref, top, manifest, index, config_digest):
    """Name the image (its layers are unpacked); True when ``ref`` named it already."""
    try:
        previous = images.store.resolve(str(ref))
    except NotFound:
        previous = None
    refs = [ref.repository().with_digest(top.digest)]
    if ref.tag:
        refs.insert(0, ref.repository().with_tag(ref.tag))
    image_id = images.add(manifest.digest, refs=refs,
                          index_digest=index.digest if index else None)
    return previous == image_id == config_digest


def _platform_warning(ref, config, wanted, explicit):
    actual = Platform.from_json(config)
    if not actual.os:
        return None
    if wanted.matches(actual):
        return None
    if explicit:
        return ("WARNING: image with reference %s was found but does not match the specified "
                "platform: wanted %s, actual: %s" % (ref.familiar_name, wanted, actual))
    if actual.os != wanted.os:
        raise InvalidArgument('image operating system "%s" cannot be used on this platform'
                              % actual.os)
    return None


def _present_layers(content, layers, diff_ids, images):
    """For each layer, whether it is here already: its blob is stored and, with an image
    service, it is unpacked (its chain's snapshot exists)."""
    from pyrunc.engine.images.unpack import chain_ids
    chains = chain_ids(diff_ids)
    present = []
    for layer, chain in zip(layers, chains):
        have = content.exists(layer["digest"])
        if have and images is not None:
            try:
                images.snapshotter.stat(chain)
            except NotFound:
                have = False
        present.append(have)
    return present


def _fetch_layers(repo, content, layers, present, out, max_concurrent, retries, ready):
    """Download the missing layers concurrently (``Already exists`` for the others) and call
    ``ready(i)`` for each of them in layer order as soon as it is in; the digests fetched.
    Layers stored but not unpacked get ``Pulling fs layer`` and no download."""
    missing = [i for i, have in enumerate(present) if not have]
    seen = set()
    for i, layer in enumerate(layers):
        if present[i] and layer["digest"] not in seen:
            out.layer(events.short_id(layer["digest"]), events.ALREADY_EXISTS)
        seen.add(layer["digest"])
    announced = []
    for i in missing:
        sid = events.short_id(layers[i]["digest"])
        if sid not in announced:
            out.layer(sid, events.PULLING_FS_LAYER)
            announced.append(sid)
    cancel = threading.Event()
    jobs = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(max_concurrent, 1),
                                               thread_name_prefix="pull") as pool:
        started = 0
        for i in missing:
            digest = layers[i]["digest"]
            if digest in jobs:
                continue
            if content.exists(digest):
                out.layer(events.short_id(digest), events.DOWNLOAD_COMPLETE)
                continue
            if started >= max_concurrent:
                out.layer(events.short_id(digest), events.WAITING)
            jobs[digest] = pool.submit(_download, repo, content, layers[i], out, cancel, retries)
            started += 1
        try:
            for i in missing:
                job = jobs.get(layers[i]["digest"])
                if job is not None:
                    job.result()
                ready(i)
        except BaseException:
            cancel.set()
            for job in jobs.values():
                job.cancel()
            raise
    return list(jobs)


def _download(repo, content, layer, out, cancel, retries):
    digest, size = layer["digest"], layer["size"]
    sid = events.short_id(digest)
    def report(current):
        if cancel.is_set():
            raise _Cancelled()
        out.bytes(sid, events.DOWNLOADING, current, size)

    try:
        writer = _writer(content, digest, size, cancel)
    except _Cancelled:
        raise Unavailable("pull cancelled")
    if writer is None:
        out.layer(sid, events.DOWNLOAD_COMPLETE)
        return
    try:
        if writer.offset > size:
            writer.truncate(0)
        repo.fetch_blob(digest, size, writer, progress=report, retries=retries,
                        verifying=lambda: out.layer(sid, events.VERIFYING))
    except InvalidArgument as err:
        writer.abort()
        if "digest mismatch" in str(err):
            raise InvalidArgument("filesystem layer verification failed for digest %s" % digest)
        raise
    except _Cancelled:
        writer.abort()
        raise Unavailable("pull cancelled")
    except BaseException as err:
        writer.abort()
        if isinstance(err, PyruncError):
            raise
        raise Unavailable("blob %s: %s" % (digest, err))
    out.layer(sid, events.DOWNLOAD_COMPLETE)


def _writer(content, digest, size, cancel, poll=0.1):
    """The ingest writer for a blob; None once the blob is in the store. While another pull
    holds the ingest, wait for it to finish (or fail, then take over)."""
    while True:
        if content.exists(digest):
            return None
        try:
            return content.writer("pull-" + digest, digest, size)
        except Unavailable:
            if cancel.wait(poll):
                raise _Cancelled()


def _put(content, data, digest, wait=30.0, poll=0.05):
    """Store a small verified blob; another pull storing the same one at the same time is
    waited for."""
    deadline = time.monotonic() + wait
    while not content.exists(digest):
        try:
            content.put(data, digest)
        except Unavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(poll)
