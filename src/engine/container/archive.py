"""``docker cp`` (archive get/put/stat), ``docker export`` and ``docker diff`` on a container.

Each entry point takes the container service and a container reference (or a Container record)
and works on running and stopped containers alike:

* the container's root is its snapshot: while it runs, the root the service mounted at
  ``Container.rootfs``; otherwise the snapshot is mounted for the call on a scratch directory in
  the container's directory (in the caller's mount namespace, unmounted when the call, or the
  read of its stream, ends);
* over the root, the container's volumes and binds, and the ``hosts``, ``hostname`` and
  ``resolv.conf`` files of its directory, as docker's cp shows them (tmpfs mounts live only in
  the running container and are not part of the view);
* paths are resolved in the container's scope by ``archive_fs.ContainerFS``, never through a
  symlink the container could point at the host.

``changes`` compares the snapshot's own layer with its parents without mounting anything.
"""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile

from pyrunc.engine.container.archive_fs import ContainerFS, MountPoint
from pyrunc.engine.layers.apply import OVERLAY_OPAQUE_XATTR
from pyrunc.engine.snapshots.mount import mount_all, unmount

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Iterator
    from pyrunc.engine.container.service import ContainerService
    from pyrunc.engine.container.store import Container

MODIFIED, ADDED, DELETED = 0, 1, 2
# The mount points the runtime creates in a root that lacks them and mounts over at every start
# (docker keeps them in an "init" layer under the container's own): never a change of the
# container's, so neither diff nor commit reports them.
MOUNT_PLACEHOLDERS = frozenset({("dev", "pts"), ("dev", "shm"), ("dev", "console"), ("proc",),
                                ("sys",), (".dockerenv",), ("etc", "resolv.conf"),
                                ("etc", "hosts"), ("etc", "hostname"), ("etc", "mtab")})
NETWORK_FILES = (("hosts", "/etc/hosts"), ("hostname", "/etc/hostname"),
                 ("resolv.conf", "/etc/resolv.conf"))


def _container(service: ContainerService, container: Any) -> Container:
    return service.get(container) if isinstance(container, str) else service.refresh(container)


def _shown_name(container: Any, c: Container) -> str:
    """The container as docker's errors name it: as the caller referred to it."""
    return container if isinstance(container, str) else c.id


def view_mounts(c: Container) -> list[MountPoint]:
    """The mounts of ``c`` that cp sees, shallowest destination first (as they stack)."""
    out = [MountPoint(m.destination, m.source, m.rw) for m in c.mount_points
           if m.type in ("bind", "volume") and m.source]
    for name, dest in NETWORK_FILES:
        path = os.path.join(c.dir, name)
        if os.path.isfile(path) and not any(m.destination == dest for m in out):
            out.append(MountPoint(dest, path, True))
    out.sort(key=lambda m: len([p for p in m.destination.split("/") if p]))
    return out


@contextlib.contextmanager
def mounted_root(service: ContainerService, c: Container) -> Iterator[str]:
    """A directory holding ``c``'s root filesystem: the running container's own mount, else the
    snapshot mounted for the duration of the block."""
    if os.path.ismount(c.rootfs):
        yield c.rootfs
        return
    scratch = tempfile.mkdtemp(prefix="archive-", dir=c.dir)
    try:
        mount_all(service.images.snapshotter.mounts(c.snapshot_key), scratch)
    except BaseException:
        os.rmdir(scratch)
        raise
    try:
        yield scratch
    finally:
        unmount(scratch)
        os.rmdir(scratch)


@contextlib.contextmanager
def open_view(service: ContainerService, c: Container, name: str,
              with_mounts: bool = True) -> Iterator[ContainerFS]:
    """``c``'s filesystem view (see the module docstring), closed when the block ends."""
    with mounted_root(service, c) as root:
        with ContainerFS(root, view_mounts(c) if with_mounts else (), name=name,
                         readonly_rootfs=bool(c.host_config.get("ReadonlyRootfs")),
                         idmap=service.idmap) as fs:
            yield fs


class TarStream:
    """A tar being read out of a container: iterate it for chunks or ``read(n)`` it like a
    file; ``close()`` (or the end of the data) releases the container's view."""

    def __init__(self, chunks: Iterator[bytes], stack: contextlib.ExitStack) -> None:
        self._chunks = chunks
        self._stack = stack
        self._buf = b""
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        if self._buf:
            buf, self._buf = self._buf, b""
            yield buf
        while not self._done:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self.close()
                return
            except BaseException:
                self.close()
                raise
            if chunk:
                yield chunk

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            return b"".join(self)
        parts = [self._buf]
        have = len(self._buf)
        it = iter(self)
        self._buf = b""
        while have < n:
            try:
                chunk = next(it)
            except StopIteration:
                break
            parts.append(chunk)
            have += len(chunk)
        data = b"".join(parts)
        self._buf = data[n:]
        return data[:n]

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        finally:
            self._stack.close()

    def __del__(self) -> None:
        self.close()            # a stream dropped unread still releases the view

    def __enter__(self) -> TarStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def archive_stat(service: ContainerService, container: Any, path: str) -> dict[str, Any]:
    """docker's HEAD archive: the X-Docker-Container-Path-Stat of ``path`` in the container
    ({"name", "size", "mode" (Go's FileMode bits), "mtime", "linkTarget"})."""
    c = _container(service, container)
    with c.lock():
        with open_view(service, c, _shown_name(container, c)) as fs:
            return fs.stat(path)


def archive_get(service: ContainerService, container: Any,
                path: str) -> tuple[dict[str, Any], TarStream]:
    """docker's GET archive: (path stat, tar of ``path``). A path ending in ``/.`` gives a
    directory's contents. The container stays locked for the setup only; the stream keeps its
    own descriptors (and the scratch mount of a stopped container) until it is closed.
    Emits docker's "archive-path" event (PUT: "extract-to-dir", export: "export")."""
    c = _container(service, container)
    stack = contextlib.ExitStack()
    try:
        with c.lock():
            fs = stack.enter_context(open_view(service, c, _shown_name(container, c)))
            info, chunks = fs.archive(path)
        service._emit(c, "archive-path")
        return info, TarStream(chunks, stack)
    except BaseException:
        stack.close()
        raise


def archive_put(service: ContainerService, container: Any, path: str, stream: Any,
                no_overwrite_dir_non_dir: bool = False, copy_uid_gid: bool = False,
                max_size: int | None = None) -> None:
    """docker's PUT archive: extract the tar read from ``stream`` (plain or compressed) into
    the directory ``path`` of the container. With ``copy_uid_gid`` every entry is owned by the
    container's configured user (docker cp -a), else by the ids the tar names."""
    c = _container(service, container)
    with c.lock():
        with open_view(service, c, _shown_name(container, c)) as fs:
            owner = None
            if copy_uid_gid and c.config.get("User"):
                owner = _user_ids(fs, c.config["User"])
            fs.extract(path, stream, no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
                       owner=owner, max_size=max_size, spool_dir=c.dir)
    service._emit(c, "extract-to-dir")


def _user_ids(fs: ContainerFS, user: str) -> tuple[int, int]:
    from pyrunc.engine.oci.user import resolve_user
    u = resolve_user(fs.root, user)
    return u.uid, u.gid


def export(service: ContainerService, container: Any) -> TarStream:
    """docker export: the container's root filesystem as a tar (volumes and binds are not in
    it, as in docker's)."""
    c = _container(service, container)
    stack = contextlib.ExitStack()
    try:
        with c.lock():
            fs = stack.enter_context(open_view(service, c, _shown_name(container, c),
                                               with_mounts=False))
            chunks = fs.export()
        service._emit(c, "export")
        return TarStream(chunks, stack)
    except BaseException:
        stack.close()
        raise


# docker diff ------------------------------------------------------------------------------
def changes(service: ContainerService, container: Any) -> list[dict[str, Any]]:
    """docker diff: [{"Path", "Kind"}] (0 modified, 1 added, 2 deleted) of the container's
    filesystem against its image, parents before children."""
    c = _container(service, container)
    return snapshot_changes(service.images.snapshotter, c.snapshot_key)


def snapshot_changes(snapshotter: Any, key: str) -> list[dict[str, Any]]:
    """docker diff's list for the active snapshot ``key`` (see ``found_changes``)."""
    found = found_changes(snapshotter, key)
    return [{"Path": "/" + "/".join(p), "Kind": k} for p, k in sorted(found.items())]


def found_changes(snapshotter: Any, key: str) -> dict[tuple[str, ...], int]:
    """The changes of the active snapshot ``key`` over its parents as {path components: kind}:
    an overlay upper directory read with its whiteouts and opaque directories, or a copied tree
    compared with its parent's."""
    upper = snapshotter.writable_dir(key)
    lowers = snapshotter.lower_dirs(key)
    if snapshotter.whiteouts == "overlay":
        return _overlay_changes(upper, lowers)
    return _tree_changes(lowers[0] if lowers else None, upper)


def _same_time(a: os.stat_result, b: os.stat_result) -> bool:
    """Go's sameFsTime: equal, or the same second with one side's nanoseconds lost."""
    if a.st_mtime_ns == b.st_mtime_ns:
        return True
    return a.st_mtime_ns // 10**9 == b.st_mtime_ns // 10**9 and \
        (a.st_mtime_ns % 10**9 == 0 or b.st_mtime_ns % 10**9 == 0)


def _capability(path: str) -> bytes | None:
    try:
        return os.getxattr(path, "security.capability", follow_symlinks=False)
    except OSError:
        return None


def _differs(old_path: str, old: os.stat_result, new_path: str, new: os.stat_result) -> bool:
    """docker's statDifferent plus the file capability: kind, mode, owner, device number, and
    for a non-directory its size and modification time."""
    if (old.st_mode, old.st_uid, old.st_gid, old.st_rdev) != \
            (new.st_mode, new.st_uid, new.st_gid, new.st_rdev):
        return True
    if not stat.S_ISDIR(new.st_mode) and (old.st_size != new.st_size or
                                          not _same_time(old, new)):
        return True
    if stat.S_ISLNK(new.st_mode):
        return os.readlink(old_path) != os.readlink(new_path)
    return _capability(old_path) != _capability(new_path)


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OVERLAY_OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _lower_entry(lowers: list[str], parts: tuple[str, ...]) -> tuple[str, Any] | None:
    """(path, lstat) of ``parts`` in the merged view of the overlay ``lowers`` (nearest first),
    or None where it is absent, whited out, or hidden by an opaque directory or a file."""
    for lower in lowers:
        path = lower
        for i, comp in enumerate(parts):
            parent = path
            path = os.path.join(path, comp)
            try:
                st = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                if i and _opaque(parent):
                    return None
                break
            if _is_whiteout(st):
                return None
            if i == len(parts) - 1:
                return path, st
            if not stat.S_ISDIR(st.st_mode):
                return None
    return None


def _lower_names(lowers: list[str], parts: tuple[str, ...]) -> set[str]:
    names: set[str] = set()
    for lower in lowers:
        try:
            names.update(os.listdir(os.path.join(lower, *parts)))
        except (FileNotFoundError, NotADirectoryError):
            continue
    return {n for n in names if _lower_entry(lowers, parts + (n,)) is not None}


def _all_added(found: dict[tuple[str, ...], int], root: str, parts: tuple[str, ...]) -> None:
    for name in os.listdir(os.path.join(root, *parts)):
        child = parts + (name,)
        if child in MOUNT_PLACEHOLDERS:
            continue
        found[child] = ADDED
        if stat.S_ISDIR(os.lstat(os.path.join(root, *child)).st_mode):
            _all_added(found, root, child)


def _overlay_changes(upper: str, lowers: list[str]) -> dict[tuple[str, ...], int]:
    found: dict[tuple[str, ...], int] = {}

    def visit(parts: tuple[str, ...], hidden: bool) -> bool:
        """Record the changes under the upper directory ``parts``; ``hidden``: an opaque
        directory at or above it hides the lowers' entries not copied up."""
        here = os.path.join(upper, *parts)
        names = os.listdir(here)
        changed = False
        if hidden:
            for gone in _lower_names(lowers, parts) - set(names):
                if parts + (gone,) in MOUNT_PLACEHOLDERS:
                    continue
                found[parts + (gone,)] = DELETED
                changed = True
        for name in names:
            child = parts + (name,)
            if child in MOUNT_PLACEHOLDERS:
                continue
            path = os.path.join(upper, *child)
            st = os.lstat(path)
            low = _lower_entry(lowers, child)
            if _is_whiteout(st):
                if low is not None:
                    found[child] = DELETED
                    changed = True
                continue
            if low is None:
                found[child] = ADDED
                if stat.S_ISDIR(st.st_mode):
                    _all_added(found, upper, child)
                changed = True
                continue
            if stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(low[1].st_mode):
                below = visit(child, hidden or _opaque(path))
                if below or _differs(low[0], low[1], path, st):
                    found[child] = MODIFIED
                    changed = True
            elif _differs(low[0], low[1], path, st):
                found[child] = MODIFIED
                if stat.S_ISDIR(st.st_mode):
                    _all_added(found, upper, child)
                changed = True
        return changed

    visit((), False)
    return found


def _tree_changes(lower: str | None, upper: str) -> dict[tuple[str, ...], int]:
    found: dict[tuple[str, ...], int] = {}
    if lower is None:
        _all_added(found, upper, ())
        return found

    def visit(parts: tuple[str, ...]) -> bool:
        ups = set(os.listdir(os.path.join(upper, *parts)))
        lows = set(os.listdir(os.path.join(lower, *parts)))
        changed = False
        for name in ups | lows:
            child = parts + (name,)
            if child in MOUNT_PLACEHOLDERS:
                continue
            if name not in ups:
                found[child] = DELETED
                changed = True
                continue
            path = os.path.join(upper, *child)
            st = os.lstat(path)
            if name not in lows:
                found[child] = ADDED
                if stat.S_ISDIR(st.st_mode):
                    _all_added(found, upper, child)
                changed = True
                continue
            low_path = os.path.join(lower, *child)
            low = os.lstat(low_path)
            if stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(low.st_mode):
                below = visit(child)
                if below or _differs(low_path, low, path, st):
                    found[child] = MODIFIED
                    changed = True
            elif _differs(low_path, low, path, st):
                found[child] = MODIFIED
                if stat.S_ISDIR(st.st_mode):
                    _all_added(found, upper, child)
                changed = True
        return changed

    visit(())
    return found
