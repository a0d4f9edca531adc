"""docker commit: a container's changes become a new layer on top of its image's, with the
image config updated as docker's commit updates it.

The layer is written from the same change list ``docker diff`` shows (``archive.found_changes``):
added and modified entries as they are in the snapshot's own directory, deleted ones as OCI
whiteouts; so the runtime's mount placeholders stay out of the image, as docker's init layer
keeps them out. Entries are read through descriptors opened ``O_NOFOLLOW`` from the snapshot's
directory, so a running container (``pause=False``) cannot make the commit read host files.
"""
from __future__ import annotations

import os
import stat
import tempfile

from pyrunc.engine import imagespec
from pyrunc.engine.container.archive import DELETED, _container, found_changes
from pyrunc.engine.container.archive_fs import TarChunks
from pyrunc.engine.images.importer import apply_changes, ingest_layer
from pyrunc.engine.images.service import rfc3339_now
from pyrunc.engine.images.store import parse_name
from pyrunc.engine.layers.apply import WHITEOUT_PREFIX
from pyrunc.errors import InvalidArgument, SystemFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Iterator
    from pyrunc.engine.container.service import ContainerService
    from pyrunc.engine.idmap import IDMap

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def commit(service: ContainerService, container: Any, repo_tag: str | None = None,
           comment: str | None = None, author: str | None = None,
           changes: list[str] | None = None, pause: bool = True,
           config: dict[str, Any] | None = None) -> str:
    """Commit the container's changes as a new image (tagged ``repo_tag`` when given, ``latest``
    by default); returns the image ID. ``changes`` are ``docker commit --change`` lines,
    ``config`` a Config whose fields win over the container's; a running container is paused
    while its changes are read unless ``pause`` is false. Emits docker's "commit" event."""
    c = _container(service, container)
    ref = None
    if repo_tag:
        ref = parse_name(repo_tag)
        if ref.digest:
            raise InvalidArgument("refusing to create a tag with a digest reference")
    images = service.images
    parent = images.get(c.image_id)
    new_config = merge_config(apply_changes(dict(config or {}), changes or ()), c.config)
    paused = False
    if pause and c.state.get("Running") and not c.state.get("Paused"):
        service.pause(c.id)
        paused = True
    with images.holding_gc():
        with tempfile.TemporaryFile(dir=images.root) as f:
            try:
                empty = not write_layer(images.snapshotter, c.snapshot_key, f, service.idmap)
            finally:
                if paused:
                    service.unpause(c.id)
            f.seek(0)
            layer = None if empty else ingest_layer(images.content, f)
        created = rfc3339_now()
        cfg = {k: v for k, v in parent.config.items()
               if k not in ("created", "author", "comment", "config", "container",
                            "container_config", "rootfs", "history")}
        history = list(parent.config.get("history") or [])
        entry: dict[str, Any] = {"created": created,
                                 "created_by": " ".join(c.config.get("Cmd") or [])}
        if author:
            entry["author"] = author
            cfg["author"] = author
        if comment:
            entry["comment"] = comment
            cfg["comment"] = comment
        if empty:
            entry["empty_layer"] = True
        history.append(entry)
        diff_ids = list(parent.diff_ids) + ([layer[1]] if layer else [])
        cfg.update(created=created, config=new_config, container=c.id,
                   rootfs={"type": "layers", "diff_ids": diff_ids}, history=history)
        imagespec.validate("config", cfg, "commit: image config")
        layers = list(parent.manifest.get("layers") or []) + ([layer[0]] if layer else [])
        image_id = images.put_image(cfg, layers, [ref] if ref else [], parent=parent.id)
    service._emit(c, "commit", {"comment": comment or "", "imageID": image_id,
                                "imageRef": ref.familiar if ref else ""})
    return image_id


def merge_config(user: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    """docker commit's merge: the fields the request (with its changes applied) leaves empty
    come from the container's Config; Env by key, Labels by name, ExposedPorts and Volumes as
    unions, Cmd with Entrypoint only when the request sets neither."""
    out = dict(user)
    for key in ("User", "WorkingDir", "StopSignal"):
        if not out.get(key) and container.get(key):
            out[key] = container[key]
    for key in ("ExposedPorts", "Volumes"):
        merged = dict(container.get(key) or {})
        merged.update(out.get(key) or {})
        if merged:
            out[key] = merged
    env = list(out.get("Env") or [])
    names = {e.split("=", 1)[0] for e in env}
    env += [e for e in container.get("Env") or [] if e.split("=", 1)[0] not in names]
    if env:
        out["Env"] = env
    labels = dict(container.get("Labels") or {})
    labels.update(out.get("Labels") or {})
    out["Labels"] = labels
    if not out.get("Entrypoint"):
        if not out.get("Cmd"):
            out["Cmd"] = container.get("Cmd")
        if out.get("Entrypoint") is None:
            out["Entrypoint"] = container.get("Entrypoint")
    if container.get("Healthcheck"):
        check = dict(out.get("Healthcheck") or {})
        for key, value in container["Healthcheck"].items():
            if not check.get(key):
                check[key] = value
        out["Healthcheck"] = check
    return out


def write_layer(snapshotter: Any, key: str, out: Any, idmap: IDMap | None = None) -> bool:
    """Write the changes of the active snapshot ``key`` as an OCI layer tar into ``out`` (owners
    as the container sees them when ``idmap`` shifts them); False (and nothing written) when
    there are none."""
    found = found_changes(snapshotter, key)
    if not found:
        return False
    root = os.open(snapshotter.writable_dir(key), _DIR)
    try:
        for chunk in _layer_chunks(root, found, idmap):
            out.write(chunk)
    finally:
        os.close(root)
    return True


def _layer_chunks(root: int, found: dict[tuple[str, ...], int],
                  idmap: IDMap | None) -> Iterator[bytes]:
    writer = TarChunks(idmap)
    dirs: dict[tuple[str, ...], int] = {(): root}
    try:
        for parts, kind in sorted(found.items()):
            for k in [k for k in dirs if k and k != parts[:len(k)]]:
                os.close(dirs.pop(k))       # keep only the current path's directories open
            *parent, name = parts
            tar_name = "/".join(parts)
            if kind == DELETED:
                yield writer.whiteout("/".join(parent + [WHITEOUT_PREFIX + name]))
                continue
            dfd = _dir(dirs, tuple(parent))
            try:
                st = os.lstat(name, dir_fd=dfd)
                if stat.S_ISLNK(st.st_mode):
                    yield writer.header(tar_name, st, link=os.readlink(name, dir_fd=dfd))
                elif stat.S_ISDIR(st.st_mode):
                    fd = _dir(dirs, tuple(parts))
                    yield writer.header(tar_name + "/", os.fstat(fd), fd=fd)
                elif stat.S_ISREG(st.st_mode):
                    fd = os.open(name, _FILE, dir_fd=dfd)
                    try:
                        yield from writer.file(tar_name, os.fstat(fd), fd)
                    finally:
                        os.close(fd)
                elif not stat.S_ISSOCK(st.st_mode):
                    yield writer.header(tar_name, st)
            except OSError as e:
                raise SystemFailure("commit: read /%s" % tar_name, e.errno) from None
        yield writer.end()
    finally:
        for key, fd in dirs.items():
            if key:
                os.close(fd)


def _dir(dirs: dict[tuple[str, ...], int], parts: tuple[str, ...]) -> int:
    """The descriptor of the directory ``parts`` of the snapshot, opened one component at a
    time with O_NOFOLLOW (a symlink on the way fails with ELOOP or ENOTDIR)."""
    fd = dirs.get(parts)
    if fd is None:
        fd = os.open(parts[-1], _DIR, dir_fd=_dir(dirs, parts[:-1]))
        dirs[parts] = fd
    return fd
