"""Apply a layer (a tar stream, possibly compressed) onto a directory, safely.

Every path is resolved component by component from a directory descriptor with O_NOFOLLOW,
so nothing a layer contains can make us write outside the target:

* names are cleaned lexically; one that climbs above the root (``../x``) is refused;
* a parent component that is a symlink is refused (no write ever goes through a symlink,
  wherever it points), and a symlink as the last component is replaced, never followed;
* hard link targets are resolved the same way, inside the root;
* a member larger than the limit or than the free space is refused before writing, and a
  truncated archive is an error.

Whiteouts come in two formats. ``delete`` (a plain directory holding the merged tree, as in
the copy snapshotter): ``.wh.name`` removes ``name`` and ``.wh..wh..opq`` empties the
directory of what lower layers put there. ``overlay`` (an overlayfs upper directory over
``lowers``): whiteouts become 0/0 character devices and ``trusted.overlay.opaque``.

The diffID (sha256 of the uncompressed tar) is computed while streaming and checked against
``expected_diff_id`` at the end.

With ``idmap`` (a ``pyrunc.engine.idmap.IDMap``, for an engine with ``--userns-remap``) every
owner is shifted to the host ids of the container's: a member's uid:gid and the root of the
tree become ``idmap.to_host(uid, gid)``; an id outside the map refuses the layer.
"""
from __future__ import annotations

import collections
import errno
import os
import shutil
import stat
import zlib

from pyrunc.engine.layers.compression import decompressed, detect
from pyrunc.engine.layers.tarstream import (LayerError, LayerTooLarge, MappedTarReader,
                                            TarReader, _shown)
from pyrunc.errors import InvalidArgument, SystemFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyrunc.engine.idmap import IDMap

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
XATTR_PAX_PREFIX = "SCHILY.xattr."
_CHUNK = 1 << 20
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_DEPTH = 256               # components of a member's path
MAX_COMPONENT = 255           # bytes of one component (NAME_MAX)
MAX_DEFERRED = 64 << 20       # bytes of directory paths whose times are set at the end
MAX_XATTRS = 64 << 10         # names and values of one member's xattrs (Linux's list limit)
# errors the layer's content causes (refused as bad input), not the machine
_INPUT_ERRNOS = {errno.ENAMETOOLONG, errno.EMLINK, errno.EINVAL, errno.E2BIG, errno.ERANGE,
                 errno.ENOTSUP, errno.EOPNOTSUPP, errno.ELOOP, errno.ENOTDIR, errno.EISDIR,
                 errno.EEXIST, errno.ENOTEMPTY}

Result = collections.namedtuple("Result", "diff_id size")


def clean(name: str) -> Any:
    """Lexically clean a member name into components; refuse one that leaves the root, or
    deeper than MAX_DEPTH, or with a component longer than MAX_COMPONENT bytes."""
    parts: list[Any] = []
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                raise LayerError("layer: %s: path escapes the root" % _shown(name))
            parts.pop()
        else:
            if len(comp) > MAX_COMPONENT // 4 and \
                    len(comp.encode("utf-8", "surrogateescape")) > MAX_COMPONENT:
                raise LayerError("layer: %s: a path component is longer than %d bytes"
                                 % (_shown(name), MAX_COMPONENT))
            parts.append(comp)
            if len(parts) > MAX_DEPTH:
                raise LayerError("layer: %s: path deeper than %d components"
                                 % (_shown(name), MAX_DEPTH))
    return parts


class _Tree:
    """The target directory, walked only through descriptors."""

    def __init__(self, root, lowers, root_owner=(0, 0)):
        self.root = root
        self.fd = os.open(root, _O_DIR)
        self.lowers = list(lowers)
        self.root_owner = root_owner   # host ids of the container's 0:0
        self._dirs = {}

    def close(self):
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()
        os.close(self.fd)

    def cached(self):
        return len(self._dirs)

    def forget(self, parts=()):
        """Drop cached descriptors of directories below ``parts`` (after removing them)."""
        n = len(parts)
        for key in [k for k in self._dirs if len(k) > n and k[:n] == tuple(parts)]:
            os.close(self._dirs.pop(key))

    def dir(self, parts, name, create=True):
        """The descriptor of the directory ``parts`` (refusing symlinks), made if missing."""
        parts = tuple(parts)
        fd = self._dirs.get(parts)
        if fd is not None:
            return fd
        if not parts:
            return self.fd
        # the deepest cached ancestor, then down one component at a time (no recursion)
        depth = len(parts) - 1
        while depth and parts[:depth] not in self._dirs:
            depth -= 1
        fd = self._dirs[parts[:depth]] if depth else self.fd
        for depth in range(depth + 1, len(parts) + 1):
            fd = self._child(fd, parts[:depth], name, create)
        return fd

    def _child(self, parent, parts, name, create):
        comp = parts[-1]
        try:
            fd = os.open(comp, _O_DIR, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            self._make_dir(parent, parts, name)
            fd = os.open(comp, _O_DIR, dir_fd=parent)
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            st = os.lstat(comp, dir_fd=parent)
            where = _shown("/".join(parts))
            if stat.S_ISLNK(st.st_mode):
                raise LayerError("layer: %s: refusing to write through symlink %s"
                                 % (_shown(name), where)) from None
            raise LayerError("layer: %s: %s is not a directory" % (_shown(name), where)) \
                from None
        self._dirs[parts] = fd
        return fd

    def _make_dir(self, parent, parts, name):
        """Create a missing parent; in an overlay upper, copy the lower directory's metadata."""
        lower = self.lower_lookup(parts, name)
        mode, (uid, gid) = 0o755, self.root_owner
        if lower is not None:
            path, st = lower
            if stat.S_ISLNK(st.st_mode):
                raise LayerError("layer: %s: refusing to write through symlink %s"
                                 % (name, "/".join(parts)))
            if not stat.S_ISDIR(st.st_mode):
                raise LayerError("layer: %s: %s is not a directory" % (name, "/".join(parts)))
            mode, uid, gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
        os.mkdir(parts[-1], 0o700, dir_fd=parent)
        os.chown(parts[-1], uid, gid, dir_fd=parent, follow_symlinks=False)
        os.chmod(parts[-1], mode, dir_fd=parent)
        if lower is not None:
            os.utime(parts[-1], ns=(lower[1].st_atime_ns, lower[1].st_mtime_ns), dir_fd=parent,
                     follow_symlinks=False)

    def lower_lookup(self, parts, name):
        """(path, lstat) of ``parts`` in the merged view of the lower layers, or None."""
        for lower in self.lowers:
            path = lower
            opaque = False
            for i, comp in enumerate(parts):
                path = os.path.join(path, comp)
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    break
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    return None
                if i == len(parts) - 1:
                    return path, st
                if not stat.S_ISDIR(st.st_mode):
                    if stat.S_ISLNK(st.st_mode):
                        raise LayerError("layer: %s: refusing to write through symlink %s"
                                         % (name, "/".join(parts[:i + 1])))
                    return None
                try:
                    opaque = os.getxattr(path, OVERLAY_OPAQUE_XATTR) == b"y"
                except OSError:
                    opaque = False
            if opaque:
                return None
        return None


def _remove(parent_fd, comp):
    """Remove ``comp`` (file, symlink or whole directory) from the directory ``parent_fd``."""
    try:
        st = os.lstat(comp, dir_fd=parent_fd)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        fd = os.open(comp, _O_DIR, dir_fd=parent_fd)
        try:
            _empty(fd)
        finally:
            os.close(fd)
        os.rmdir(comp, dir_fd=parent_fd)
    else:
        os.unlink(comp, dir_fd=parent_fd)
    return True


def _empty(dir_fd, keep=()):
    for entry in os.listdir(dir_fd):
        if entry not in keep:
            _remove(dir_fd, entry)


def _set_xattrs(parent_fd, comp, member):
    total = sum(len(k) - len(XATTR_PAX_PREFIX) + len(v) for k, v in member.pax_headers.items()
                if k.startswith(XATTR_PAX_PREFIX))
    if total > MAX_XATTRS:
        raise LayerError("layer: %s: xattrs of more than %d bytes"
                         % (_shown(member.name), MAX_XATTRS))
    for key, value in member.pax_headers.items():
        if not key.startswith(XATTR_PAX_PREFIX):
            continue
        attr = key[len(XATTR_PAX_PREFIX):]
        if attr.startswith("trusted.overlay."):
            continue
        raw = value.encode("utf-8", "surrogateescape")
        if not attr or "\0" in attr or len(attr) > 255:
            raise LayerError("layer: %s: invalid xattr name %s" % (_shown(member.name),
                                                                   _shown(attr)))
        try:
            os.setxattr("/proc/self/fd/%d/%s" % (parent_fd, comp), attr, raw,
                        follow_symlinks=False)
        except OSError as e:
            if e.errno in (errno.ENOTSUP, errno.EPERM) and member.issym():
                continue
            # (ENOSPC: no room left for this file's xattrs, e.g. ext4's one block per inode)
            if e.errno in (errno.E2BIG, errno.ERANGE, errno.EINVAL, errno.ENOTSUP,
                           errno.EOPNOTSUPP, errno.ENOSPC):
                raise LayerError("layer: %s: xattr %s refused: %s" % (
                    _shown(member.name), _shown(attr), os.strerror(e.errno).lower())) from None
            raise SystemFailure("layer: %s: set xattr %s" % (_shown(member.name), attr),
                                e.errno) from None


class Applier:
    """One application of one layer onto ``root``."""

    def __init__(self, root: str, whiteouts: str = "delete", lowers: Any = (),
                 max_size: int | None = None, idmap: IDMap | None = None) -> None:
        if whiteouts not in ("delete", "overlay"):
            raise InvalidArgument("layer: unknown whiteout format %r" % whiteouts)
        self.idmap = idmap
        self.tree = _Tree(root, lowers, idmap.root if idmap is not None else (0, 0))
        if idmap is not None:
            os.fchown(self.tree.fd, *idmap.root)
        self.whiteouts = whiteouts
        self.max_size = max_size
        self.size = 0
        # hashes of the paths this layer made (whiteouts must not remove them): a bounded
        # cost per member, whatever the names' length
        self.created: set[Any] = set()
        self.dir_times: dict[str, float] = {}  # directory path -> mtime, set once the layer is applied
        self._deferred = 0           # bytes of those paths
        self.current = None          # the member being applied, for error messages

    def member(self, tf: Any, m: Any) -> Any:
        """Apply the member ``m``; ``tf`` (a TarReader) supplies its data."""
        self.current = m.name
        parts = clean(m.name)
        if self.idmap is not None:
            try:
                m.uid, m.gid = self.idmap.to_host(m.uid, m.gid)
            except InvalidArgument as e:
                raise LayerError("layer: %s: %s" % (_shown(m.name), e)) from None
        if self.tree.cached() > 512:
            self.tree.forget()
        if not parts:
            if m.isdir():
                return
            raise LayerError("layer: %s: not a valid name" % m.name)
        base = parts[-1]
        parent = self.tree.dir(parts[:-1], m.name)
        if base.startswith(WHITEOUT_PREFIX):
            return self._whiteout(parts, parent, m)
        path = "/".join(parts)
        if m.isdir():
            self._directory(parts, parent, m)
        else:
            self._replace(parent, parts)
            if m.isreg():
                self._regular(tf, parent, base, m)
            elif m.issym():
                if not m.linkname:
                    raise LayerError("layer: %s: symlink with an empty target" % _shown(m.name))
                os.symlink(m.linkname, base, dir_fd=parent)
            elif m.islnk():
                self._hardlink(parent, base, m)
                self.created.add(hash(path))
                return
            elif m.ischr() or m.isblk() or m.isfifo():
                kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
                os.mknod(base, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=parent)
            else:
                raise LayerError("layer: %s: unsupported member type %r" % (m.name, m.type))
            self._metadata(parent, base, m)
        self.created.add(hash(path))

    def _replace(self, parent, parts):
        base = parts[-1]
        try:
            st = os.lstat(base, dir_fd=parent)
        except FileNotFoundError:
            return
        _remove(parent, base)
        if stat.S_ISDIR(st.st_mode):
            self.tree.forget(parts[:-1])

    def _directory(self, parts, parent, m):
        base = parts[-1]
        try:
            st = os.lstat(base, dir_fd=parent)
            if not stat.S_ISDIR(st.st_mode):
                _remove(parent, base)
                raise FileNotFoundError
        except FileNotFoundError:
            os.mkdir(base, 0o700, dir_fd=parent)
        fd = self.tree.dir(parts, m.name)
        os.fchown(fd, m.uid, m.gid)
        os.fchmod(fd, m.mode & 0o7777)
        self._xattrs_and_time(parent, base, m, defer_time=True)

    def _regular(self, tf, parent, base, m):
        if self.max_size is not None and self.size + m.size > self.max_size:
            raise LayerTooLarge("layer: %s: %d bytes exceed the layer limit of %d bytes"
                             % (m.name, m.size, self.max_size))
        vfs = os.statvfs(parent) if m.size >= _CHUNK else None
        if vfs is not None and m.size > vfs.f_bavail * vfs.f_frsize:
            raise LayerError("layer: %s: %d bytes do not fit in the %d bytes free"
                             % (m.name, m.size, vfs.f_bavail * vfs.f_frsize))
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=parent)
        try:
            tf.copy_to(fd, m)
            self.size += m.size
            os.fchown(fd, m.uid, m.gid)
            os.fchmod(fd, m.mode & 0o7777)
        finally:
            os.close(fd)

    def _hardlink(self, parent, base, m):
        target = clean(m.linkname)
        if not target:
            raise LayerError("layer: %s: hard link to the root" % m.name)
        tparent = self.tree.dir(target[:-1], m.name, create=False) \
            if self._exists_dir(target[:-1], m.name) else None
        tname = target[-1]
        st = None
        if tparent is not None:
            try:
                st = os.lstat(tname, dir_fd=tparent)
            except FileNotFoundError:
                st = None
        if st is None and self.whiteouts == "overlay":
            lower = self.tree.lower_lookup(target, m.name)
            if lower is not None and not stat.S_ISDIR(lower[1].st_mode):
                tparent = self.tree.dir(target[:-1], m.name)
                self._copy_up(lower, tparent, tname)
                st = os.lstat(tname, dir_fd=tparent)
        if st is None:
            raise LayerError("layer: %s: hard link target %s not found" % (m.name, m.linkname))
        if stat.S_ISDIR(st.st_mode):
            raise LayerError("layer: %s: hard link to directory %s" % (m.name, m.linkname))
        os.link(tname, base, src_dir_fd=tparent, dst_dir_fd=parent, follow_symlinks=False)

    def _exists_dir(self, parts, name):
        try:
            self.tree.dir(parts, name, create=False)
            return True
        except FileNotFoundError:
            return False

    def _copy_up(self, lower, parent, name):
        path, st = lower
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(path), name, dir_fd=parent)
        elif stat.S_ISREG(st.st_mode):
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600,
                         dir_fd=parent)
            try:
                with open(path, "rb") as src, os.fdopen(os.dup(fd), "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
                os.fchmod(fd, stat.S_IMODE(st.st_mode))
            finally:
                os.close(fd)
        else:
            os.mknod(name, st.st_mode, st.st_rdev, dir_fd=parent)
        os.chown(name, st.st_uid, st.st_gid, dir_fd=parent, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=parent)
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=parent, follow_symlinks=False)

    def _metadata(self, parent, base, m):
        if not m.isreg():
            os.chown(base, m.uid, m.gid, dir_fd=parent, follow_symlinks=False)
            if not m.issym():
                os.chmod(base, m.mode & 0o7777, dir_fd=parent, follow_symlinks=True)
        self._xattrs_and_time(parent, base, m)

    def _xattrs_and_time(self, parent, base, m, defer_time=False):
        if m.pax_headers:
            _set_xattrs(parent, base, m)
        if defer_time:
            path = "/".join(clean(m.name))
            if path not in self.dir_times:
                self._deferred += len(path) + 64
                if self._deferred > MAX_DEFERRED:
                    raise LayerError("layer: %s: too many directories (their paths exceed %d "
                                     "bytes)" % (_shown(m.name), MAX_DEFERRED))
            self.dir_times[path] = m.mtime
        else:
            ns = int(m.mtime * 1e9)
            os.utime(base, ns=(ns, ns), dir_fd=parent, follow_symlinks=False)

    def _whiteout(self, parts, parent, m):
        base = parts[-1]
        dir_path = "/".join(parts[:-1])
        if base == OPAQUE:
            fd = self.tree.dir(parts[:-1], m.name)
            prefix = dir_path + "/" if dir_path else ""
            keep = {e for e in os.listdir(fd) if hash(prefix + e) in self.created}
            _empty(fd, keep)
            self.tree.forget(parts[:-1])
            if self.whiteouts == "overlay":
                os.setxattr(fd, OVERLAY_OPAQUE_XATTR, b"y")
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return          # aufs bookkeeping (.wh..wh.plnk and the like): nothing to apply
        name = base[len(WHITEOUT_PREFIX):]
        if name in ("", ".", "..") or "/" in name:
            raise LayerError("layer: %s: invalid whiteout" % m.name)
        target = (dir_path + "/" if dir_path else "") + name
        if hash(target) in self.created:
            return
        self._replace(parent, parts[:-1] + [name])
        if self.whiteouts == "overlay":
            os.mknod(name, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=parent)

    def finish(self) -> None:
        for path, mtime in reversed(self.dir_times.items()):
            try:
                fd = self.tree.dir(path.split("/") if path else [], path, create=False)
            except (FileNotFoundError, NotADirectoryError, LayerError):
                continue
            ns = int(mtime * 1e9)
            os.utime(fd, ns=(ns, ns))

    def close(self) -> None:
        self.tree.close()


def _tar_reader(stream):
    """The mapped reader for an uncompressed layer in a regular file, else the streaming one."""
    try:
        fd = stream.fileno()
        regular = stat.S_ISREG(os.fstat(fd).st_mode) and stream.seekable()
    except (AttributeError, OSError, ValueError):
        regular = False
    if regular:
        offset = stream.tell()
        if detect(os.pread(fd, 6, offset)) == "none":
            return MappedTarReader(fd, offset)
    return TarReader(decompressed(stream))


def apply_layer(stream: Any, root: str, *, whiteouts: str = "delete", lowers: Any = (),
                expected_diff_id: Any = None, max_size: Any = None,
                idmap: IDMap | None = None) -> Any:
    """Apply the layer read from ``stream`` onto the directory ``root``; returns Result.

    ``max_size`` bounds both the uncompressed stream and the file data written: past it the
    layer is refused with LayerTooLarge (a compressed layer that expands without end).

    On error ``root`` may hold part of the layer: callers unpack into a fresh snapshot and
    remove it on failure (see ``pyrunc.engine.images.unpack``).
    """
    reader = _tar_reader(stream)
    reader.limit = max_size
    applier = Applier(root, whiteouts, lowers, max_size, idmap)
    try:
        try:
            for m in reader:
                applier.member(reader, m)
            reader.drain()
        except EOFError as e:
            raise LayerError("layer: truncated or corrupt archive: %s" % (e or "unexpected end"))\
                from None
        except OSError as e:
            where = _shown(applier.current) if applier.current else root
            if e.errno is None:
                raise LayerError("layer: corrupt compressed stream: %s" % e) from None
            if e.errno in _INPUT_ERRNOS:
                raise LayerError("layer: %s: %s" % (where, os.strerror(e.errno).lower())) \
                    from None
            raise SystemFailure("layer: %s" % where, e.errno) from None
        except zlib.error as e:
            raise LayerError("layer: corrupt compressed stream: %s" % e) from None
        except (ValueError, OverflowError, RecursionError, UnicodeError) as e:
            # a last line of defence: the reader refuses these inputs by name before this
            raise LayerError("layer: %s: %s" % (
                _shown(applier.current) if applier.current else "archive",
                _shown(str(e)))) from None
        except Exception as e:
            if type(e).__name__ in ("ZstdError", "LZMAError"):
                raise LayerError("layer: corrupt compressed stream: %s" % e) from None
            raise
        applier.finish()
    finally:
        applier.close()
        reader.close()
    diff_id = "sha256:" + reader.hexdigest()
    if expected_diff_id and diff_id != expected_diff_id:
        raise LayerError("layer: diffID mismatch: got %s, expected %s"
                         % (diff_id, expected_diff_id))
    return Result(diff_id, applier.size)
