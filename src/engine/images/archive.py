"""``docker save`` and ``docker load``.

``save`` writes one tar that is both a docker-archive and an OCI image layout (the format
docker 25+ writes): ``oci-layout``, ``index.json`` and ``blobs/sha256/*`` with uncompressed
layers, plus ``manifest.json`` and ``repositories`` for docker's loader.

``load`` reads docker-archive tars (old ``<id>/layer.tar`` style and new), OCI layout archives
and OCI layout directories (what ``umoci`` and ``skopeo`` make). Every blob goes through the
content store, whose digest check rejects a tampered archive.
"""
from __future__ import annotations

import errno
import io
import json
import os
import posixpath
import stat
import tarfile
import time
import uuid
import zlib

from pyrunc.engine import imagespec, reference
from pyrunc.engine.content import digest_bytes
from pyrunc.engine.images.service import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST
from pyrunc.engine.platforms import Platform, host_platform
from pyrunc.engine.images.store import parse_name
from pyrunc.engine.layers import LayerError, decompressed, detect
from pyrunc.engine.layers.tarstream import TarReader
from pyrunc.errors import InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from pyrunc.engine.images.service import ImageService

LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_TYPES = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
               "zstd": "application/vnd.oci.image.layer.v1.tar+zstd", "none": LAYER_TAR}
NAME_ANNOTATION = "io.containerd.image.name"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
_JSON_LIMIT = 16 << 20


class _Out:
    """Adds regular files to a streamed tar."""

    def __init__(self, out):
        self.tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT,
                                bufsize=1 << 20)
        self.dirs = set()
        self.now = int(time.time())

    def _dir(self, path):
        parent = posixpath.dirname(path)
        if parent and parent not in self.dirs:
            self._dir(parent)
            ti = tarfile.TarInfo(parent)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, self.now
            self.tar.addfile(ti)
            self.dirs.add(parent)

    def add(self, name, data=None, fileobj=None, size=None):
        self._dir(name)
        ti = tarfile.TarInfo(name)
        ti.mode, ti.mtime = 0o644, self.now
        ti.size = len(data) if data is not None else size
        self.tar.addfile(ti, io.BytesIO(data) if data is not None else fileobj)

    def close(self):
        self.tar.close()


def save(service: Any, names: Any, out: Any) -> None:
    """Write the images ``names`` (names or IDs) as one archive into the binary file ``out``."""
    if not names:
        raise InvalidArgument("save: no images given")
    state = service.store.state()
    images = [(service._image(service.store.resolve(n, state), state), n) for n in names]
    images = [(img, _save_tags(service, img, n, state)) for img, n in images]
    w = _Out(out)
    written = set()
    repositories: dict[Any, Any]
    manifest_json, repositories, index = [], {}, []
    for img, tags in images:
        layer_paths, layer_descs = [], []
        for desc, diff_id in zip(img.manifest.get("layers", []), img.diff_ids):
            path = "blobs/sha256/" + diff_id.split(":", 1)[1]
            if diff_id not in written:
                _write_uncompressed_layer(service, w, desc, path)
                written.add(diff_id)
            layer_paths.append(path)
            layer_descs.append({"mediaType": LAYER_TAR, "digest": diff_id,
                                "size": _uncompressed_size(service, desc, diff_id)})
        config = service.content.read(img.id)
        config_path = "blobs/sha256/" + img.id.split(":", 1)[1]
        if img.id not in written:
            w.add(config_path, config)
            written.add(img.id)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": {"mediaType": OCI_CONFIG, "digest": img.id,
                                          "size": len(config)},
                               "layers": layer_descs}, separators=(",", ":")).encode()
        mdigest = digest_bytes(manifest)
        if mdigest not in written:
            w.add("blobs/sha256/" + mdigest.split(":", 1)[1], manifest)
            written.add(mdigest)
        desc = {"mediaType": OCI_MANIFEST, "digest": mdigest, "size": len(manifest)}
        if tags:
            for t in tags:
                index.append(dict(desc, annotations={NAME_ANNOTATION: str(t),
                                                     REF_ANNOTATION: t.tag}))
                repositories.setdefault(t.familiar_name, {})[t.tag] = \
                    (img.diff_ids[-1] if img.diff_ids else img.id).split(":", 1)[1]
        else:
            index.append(desc)
        manifest_json.append({"Config": config_path,
                              "RepoTags": [t.familiar for t in tags] or None,
                              "Layers": layer_paths})
    w.add("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
    w.add("index.json", json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                    "manifests": index}).encode())
    w.add("manifest.json", json.dumps(manifest_json).encode())
    if repositories:
        w.add("repositories", json.dumps(repositories).encode())
    w.close()


def _save_tags(service, img, name, state):
    """The tags saved with ``img`` for the argument ``name``: the tag given, every tag of the
    repository given without one, none for an ID."""
    t = name[7:] if name.startswith("sha256:") else name
    if t and img.id[7:].startswith(t) and all(c in "0123456789abcdef" for c in t):
        return []
    ref = reference.parse_normalized(name)
    if ref.tag or ref.digest:
        return [r for r in img.tags if r == ref.with_default_tag()] or \
            ([ref] if ref.tag else [])
    return [r for r in img.tags if r.name == ref.name]


def _uncompressed_size(service, desc, diff_id):
    if detect(_head(service, desc["digest"])) == "none":
        return desc["size"]
    n = 0
    with service.content.open(desc["digest"]) as f:
        plain = decompressed(f)
        while True:
            chunk = plain.read(1 << 20)
            if not chunk:
                return n
            n += len(chunk)


def _head(service, digest):
    with service.content.open(digest) as f:
        return f.read(6)


def _write_uncompressed_layer(service, w, desc, path):
    size = _uncompressed_size(service, desc, None)
    with service.content.open(desc["digest"]) as f:
        w.add(path, fileobj=decompressed(f), size=size)


# load ----------------------------------------------------------------------------------------

class _Archive:
    """The members of an archive: small JSON documents in memory, blobs in the content store."""

    def __init__(self, service):
        self.service = service
        self.docs = {}          # path -> bytes (json, oci-layout, repositories)
        self.blobs = {}         # path -> (digest, size)
        self.links = {}         # path -> target path (old docker-archive layer symlinks)
        self.kind = "archive"   # or "directory"

    def add_member(self, name, fileobj, size):
        name = _inside(name)
        if name in ("manifest.json", "index.json", "oci-layout", "repositories"):
            if size > _JSON_LIMIT:
                raise InvalidArgument("load: %s: too large (%d bytes)" % (name, size))
            self.docs[name] = fileobj.read()
            return
        expected = None
        parts = name.split("/")
        if len(parts) == 3 and parts[0] == "blobs":
            expected = parts[1] + ":" + parts[2]
            if self.service.content.exists(expected):
                self.blobs[name] = (expected, size)
                return
        info = self.service.content.ingest_file(fileobj, ref="load-" + uuid.uuid4().hex,
                                                expected_digest=expected, expected_size=size)
        self.blobs[name] = (info.digest, info.size)

    def add_link(self, name, target):
        """A symlink of the archive: a name for another member, never followed outside."""
        name = _inside(name)
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
        if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
            raise InvalidArgument("load: %s: symlink to %s leaves the %s"
                                  % (name, _short(target), self.kind))
        self.links[name] = resolved

    def blob(self, path):
        path = posixpath.normpath(path)
        seen = 0
        while path in self.links and seen < 10:
            path, seen = self.links[path], seen + 1
        if path not in self.blobs:
            raise InvalidArgument("load: archive is missing %s" % path)
        return self.blobs[path]


def load(service: ImageService, source: Any, progress: Any = None) -> list[str]:
    """Load a docker-archive or OCI archive from the binary file ``source`` (or an OCI layout
    directory path); returns the loaded image references and IDs like docker prints them:
    ["Loaded image: busybox:latest", "Loaded image ID: sha256:..."]."""
    try:
        with service.holding_gc():
            arch = _Archive(service)
            if isinstance(source, str) and os.path.isdir(source):
                _read_dir(arch, source)
            else:
                _read_tar(arch, source)
            if "manifest.json" in arch.docs:
                return _load_docker(service, arch, progress)
            if "index.json" in arch.docs:
                return _load_oci(service, arch, progress)
            raise InvalidArgument("load: not a docker or OCI image archive "
                                  "(no manifest.json or index.json)")
    finally:
        service.gc()


def _inside(name):
    """A member name of the archive, refused when it would name something outside it."""
    clean = posixpath.normpath(name)
    if clean.startswith("/") or clean == ".." or clean.startswith("../"):
        raise InvalidArgument("load: %s: a name outside the archive" % _short(name))
    return clean


def _short(text, limit=200):
    text = text if text.isprintable() else repr(text)[1:-1]
    return text if len(text) <= limit else text[:limit] + "..."


def _read_tar(arch, source):
    """The members of a tar (any compression), read by the layers' reader: the same limits
    on headers, names and member counts, and memory bounded whatever the archive holds."""
    if isinstance(source, str):
        try:
            with open(source, "rb") as f:
                return _read_tar(arch, f)
        except FileNotFoundError:
            raise NotFound("load: %s: no such file" % source) from None
    try:
        reader = TarReader(decompressed(source))
        for m in reader:
            if m.isreg():
                arch.add_member(m.name, reader.data(m), m.size)
            elif m.issym():
                arch.add_link(m.name, m.linkname)
    except LayerError as e:
        raise InvalidArgument("load: not a valid archive: %s"
                              % str(e).removeprefix("layer: ")) from None
    except (EOFError, zlib.error) as e:
        raise InvalidArgument("load: not a valid archive: %s" % (e or "unexpected end")) \
            from None
    except OSError as e:
        if e.errno is not None:
            raise
        raise InvalidArgument("load: not a valid archive: %s" % e) from None
    except Exception as e:
        if type(e).__name__ in ("ZstdError", "LZMAError"):
            raise InvalidArgument("load: not a valid archive: %s" % e) from None
        raise


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_DIR_DEPTH = 16         # an OCI layout needs 3 levels, a docker archive 2
_MAX_DIR_ENTRIES = 1 << 20


def _read_dir(arch, root):
    """The regular files under ``root``, opened without following any symlink; a symlink
    is recorded as a name for another file of the directory, refused if it leaves it;
    anything else (fifos, sockets, devices) is ignored."""
    arch.kind = "directory"
    top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        pending = [""]
        seen = 0
        while pending:
            rel = pending.pop()
            fd = _open_subdir(top, rel)
            try:
                for name in sorted(os.listdir(fd)):
                    seen += 1
                    if seen > _MAX_DIR_ENTRIES:
                        raise InvalidArgument("load: %s: more than %d entries"
                                              % (root, _MAX_DIR_ENTRIES))
                    path = rel + "/" + name if rel else name
                    st = os.lstat(name, dir_fd=fd)
                    if stat.S_ISDIR(st.st_mode):
                        if path.count("/") + 1 >= _MAX_DIR_DEPTH:
                            raise InvalidArgument("load: %s: directories nested deeper than %d"
                                                  % (_short(path), _MAX_DIR_DEPTH))
                        pending.append(path)
                    elif stat.S_ISLNK(st.st_mode):
                        arch.add_link(path, os.readlink(name, dir_fd=fd))
                    elif stat.S_ISREG(st.st_mode):
                        ffd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                                      | os.O_CLOEXEC, dir_fd=fd)
                        with os.fdopen(ffd, "rb") as fh:
                            arch.add_member(path, fh, os.fstat(ffd).st_size)
            finally:
                os.close(fd)
    finally:
        os.close(top)


def _open_subdir(top, rel):
    """The descriptor of ``rel`` under ``top``, opened one component at a time, never
    through a symlink."""
    fd = os.dup(top)
    for comp in rel.split("/") if rel else ():
        try:
            nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
        except (NotADirectoryError, FileNotFoundError) as e:
            raise InvalidArgument("load: %s: %s while it was read" % (
                _short(rel), "replaced (by a symlink or a file)"
                if isinstance(e, NotADirectoryError) else "removed")) from None
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
            raise InvalidArgument("load: %s: replaced (by a symlink or a file) while it was "
                                  "read" % _short(rel)) from None
        finally:
            os.close(fd)
        fd = nfd
    return fd


def _layer_descriptor(service, digest, size):
    with service.content.open(digest) as f:
        kind = detect(f.read(6))
    return {"mediaType": LAYER_TYPES[kind], "digest": digest, "size": size}


def _load_docker(service, arch, progress):
    try:
        entries = json.loads(arch.docs["manifest.json"])
    except (ValueError, RecursionError):
        raise InvalidArgument("load: manifest.json: not valid JSON") from None
    if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("Config"), str)
            and isinstance(e.get("Layers", []), list) for e in entries):
        raise InvalidArgument("load: manifest.json: not a docker image manifest")
    out = []
    for e in entries:
        config_digest, _ = arch.blob(e["Config"])
        try:
            config = imagespec.load("config", service.content.read(config_digest),
                                    "load: %s" % e["Config"])
        except ValueError:
            raise InvalidArgument("load: %s: not valid JSON" % e["Config"]) from None
        layers = [_layer_descriptor(service, *arch.blob(p)) for p in e.get("Layers", [])]
        tags = [parse_name(t) for t in e.get("RepoTags") or []]
        notes = _moved_tags(service, tags, config_digest)
        if len(layers) != len(config.get("rootfs", {}).get("diff_ids", [])):
            raise InvalidArgument("load: %s: %d layers for %d diff_ids in the config"
                                  % (e["Config"], len(layers),
                                     len(config.get("rootfs", {}).get("diff_ids", []))))
        image_id = _put_with_config(service, config_digest, layers, tags, progress)
        out += notes
        out += ["Loaded image: %s" % t.familiar for t in tags] or ["Loaded image ID: %s" % image_id]
    return out


def _put_with_config(service, config_digest, layers, tags, progress):
    """Keep the archive's config bytes (so the image ID is unchanged) under a new manifest."""
    size = service.content.info(config_digest).size
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": size},
                "layers": layers}
    mdigest = service.content.put(json.dumps(manifest, separators=(",", ":")).encode())
    return service.add(mdigest, tags, progress=progress)


def _moved_tags(service, refs, image_id):
    """docker load moves a tag from the image that had it (which may become dangling) and
    says so: the lines to print for ``refs`` about to point at ``image_id``."""
    out = []
    for ref in refs:
        try:
            previous = service.store.resolve(str(ref))
        except NotFound:
            continue
        if previous != image_id:
            out.append("The image %s already exists, renaming the old one with ID %s to "
                       "empty string" % (ref.familiar, previous))
    return out


def _load_oci(service, arch, progress):
    try:
        index = imagespec.load("index", arch.docs["index.json"], "load: index.json")
    except ValueError:
        raise InvalidArgument("load: index.json: not valid JSON") from None
    if not isinstance(index, dict) or not all(
            isinstance(d, dict) and isinstance(d.get("digest"), str)
            for d in index.get("manifests", [])):
        raise InvalidArgument("load: index.json: not an OCI image index")
    out = []
    for desc in index.get("manifests", []):
        out += _load_oci_descriptor(service, arch, desc, desc.get("annotations") or {}, progress)
    return out


_MAX_NESTING = 8            # indexes within indexes (docker and containerd make one level)


def _load_oci_descriptor(service, arch, desc, annotations, progress, depth=0):
    if depth > _MAX_NESTING:
        raise InvalidArgument("load: %s: indexes nested deeper than %d"
                              % (desc.get("digest"), _MAX_NESTING))
    media = desc.get("mediaType")
    digest = desc["digest"]
    if not service.content.exists(digest):
        raise InvalidArgument("load: archive is missing blob %s" % digest)
    if media in (OCI_INDEX, "application/vnd.docker.distribution.manifest.list.v2+json"):
        sub = imagespec.load(imagespec.kind_for_media_type(media), service.content.read(digest),
                             "load: index %s" % digest)
        out = []
        want = host_platform()
        for m in sub.get("manifests", []):
            p = m.get("platform") or {}
            if p and not want.matches(Platform.from_json(p)):
                continue
            out += _load_oci_descriptor(service, arch, m, annotations, progress, depth + 1)
            break
        return out
    name = annotations.get(NAME_ANNOTATION) or ""
    ref_name = annotations.get(REF_ANNOTATION) or ""
    refs = []
    if name:
        refs = [parse_name(name)]
    elif ref_name:
        try:
            r = reference.parse_normalized(ref_name)
            if r.tag or r.digest:
                refs = [r]
        except InvalidArgument:
            refs = []
    manifest = imagespec.load(imagespec.kind_for_media_type(media, "manifest"),
                              service.content.read(digest), "load: manifest %s" % digest)
    imagespec.load("config", service.content.read(manifest["config"]["digest"]),
                   "load: image config %s" % manifest["config"]["digest"])
    for layer in manifest.get("layers", []):
        if not service.content.exists(layer["digest"]):
            raise InvalidArgument("load: archive is missing layer %s" % layer["digest"])
    notes = _moved_tags(service, refs, (manifest.get("config") or {}).get("digest"))
    image_id = service.add(digest, refs, progress=progress)
    return notes + (["Loaded image: %s" % r.familiar for r in refs]
                    or ["Loaded image ID: %s" % image_id])
