"""A container's filesystem as ``docker cp`` sees it, read and written without ever letting the
kernel follow a symlink the container controls.

The view is the container's root (its snapshot, mounted) with its volumes and bind mounts over
it, as moby's daemon builds for cp. Nothing is mounted for the mount points: they are a table
(canonical container path -> host source) consulted while walking.

Resolution (CVE-2018-15664, CVE-2019-14271): a path is walked one component at a time from
directory descriptors opened ``O_PATH | O_NOFOLLOW``. A symlink met on the way is read
(readlinkat on its own descriptor) and its target walked again from the container's root
(absolute) or from the directory holding it (relative); ``..`` pops the walk's own stack, so
it never climbs above the root. Every later open is relative to a descriptor already held, with
``O_NOFOLLOW``: a container that swaps a component for a symlink to ``/`` after the walk makes
the open fail or lands on the link itself, never on the host's files. The same holds while a
tree is read for a tar and while a tar is extracted (the bounded layer applier, rooted at the
resolved descriptor). Python runs no chroot'ed helper: nothing here depends on the process's
root or working directory.
"""
from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import stat
import tarfile
import tempfile
import zlib

from pyrunc.engine.layers.apply import _INPUT_ERRNOS, Applier, LayerError, WHITEOUT_PREFIX, \
    clean
from pyrunc.engine.layers.compression import decompressed
from pyrunc.engine.layers.tarstream import MappedTarReader, TarReader, _shown
from pyrunc.errors import InvalidArgument, NotFound, SystemFailure
from pyrunc.libcontainer import timestamps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Iterable, Iterator
    from pyrunc.engine.idmap import IDMap

MAX_LINKS = 40                # symlinks followed in one resolution (Linux's MAXSYMLINKS)
OVERFLOW_ID = 65534           # the kernel's overflowuid/overflowgid
MAX_DEPTH = 256               # directory levels written into a tar (what the layer reader takes)
_CHUNK = 1 << 20
_BLOCK = 512
_PATH = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_GONE = (errno.ENOENT, errno.ELOOP, errno.ENOTDIR, errno.ENXIO)

# Go's os.FileMode bits (what the X-Docker-Container-Path-Stat header carries)
GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27
GO_MODE_DEVICE = 1 << 26
GO_MODE_NAMED_PIPE = 1 << 25
GO_MODE_SOCKET = 1 << 24
GO_MODE_SETUID = 1 << 23
GO_MODE_SETGID = 1 << 22
GO_MODE_CHAR_DEVICE = 1 << 21
GO_MODE_STICKY = 1 << 20


def go_file_mode(st_mode: int) -> int:
    """``st_mode`` as Go's ``os.FileMode`` (type bits high, then setuid/setgid/sticky, then the
    permission bits), as docker puts it in the path stat."""
    mode = st_mode & 0o777
    if st_mode & stat.S_ISUID:
        mode |= GO_MODE_SETUID
    if st_mode & stat.S_ISGID:
        mode |= GO_MODE_SETGID
    if st_mode & stat.S_ISVTX:
        mode |= GO_MODE_STICKY
    kind = stat.S_IFMT(st_mode)
    mode |= {stat.S_IFDIR: GO_MODE_DIR, stat.S_IFLNK: GO_MODE_SYMLINK,
             stat.S_IFBLK: GO_MODE_DEVICE, stat.S_IFCHR: GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE,
             stat.S_IFIFO: GO_MODE_NAMED_PIPE, stat.S_IFSOCK: GO_MODE_SOCKET}.get(kind, 0)
    return mode


class MountPoint:
    """One mount of the view: ``source`` (a host path) shown at ``destination``."""

    __slots__ = ("destination", "source", "rw")

    def __init__(self, destination: str, source: str, rw: bool = True) -> None:
        self.destination = destination
        self.source = source
        self.rw = rw


class Node:
    """A resolved entry: an ``O_PATH`` descriptor (owned), its canonical container path, its
    lstat and the mount point it lies in (None: the root filesystem)."""

    __slots__ = ("fd", "path", "st", "mount")

    def __init__(self, fd: int, path: str, st: os.stat_result, mount: MountPoint | None) -> None:
        self.fd = fd
        self.path = path
        self.st = st
        self.mount = mount

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def reopen(self, flags: int) -> int:
        """A new descriptor of the same object opened with ``flags`` (through the descriptor's
        own /proc link, which names the object, not a path)."""
        return _reopen(self.fd, stat.S_ISDIR(self.st.st_mode), flags)


def container_ids(idmap: IDMap, uid: int, gid: int) -> tuple[int, int]:
    """The container's view of host ids: an id outside the map shows as the overflow id
    65534, as the kernel shows it inside the user namespace."""
    try:
        cuid, _ = idmap.to_container(uid, idmap.root[1])
    except InvalidArgument:
        cuid = OVERFLOW_ID
    try:
        _, cgid = idmap.to_container(idmap.root[0], gid)
    except InvalidArgument:
        cgid = OVERFLOW_ID
    return cuid, cgid


def _reopen(fd: int, is_dir: bool, flags: int) -> int:
    """Open again the object the descriptor ``fd`` holds, through its /proc link (which jumps to
    that very object, whatever its path has become); a file's link is itself a symlink, so
    ``O_NOFOLLOW`` is dropped for it."""
    if is_dir:
        return os.open("/proc/self/fd/%d/." % fd, flags)
    return os.open("/proc/self/fd/%d" % fd, flags & ~os.O_NOFOLLOW)


def _join(parent: str, name: str) -> str:
    return parent.rstrip("/") + "/" + name


def clean_path(path: str) -> str:
    """The container path ``path`` as docker cleans it: absolute, normalised, a trailing
    ``/`` or ``/.`` kept (they ask for a directory's contents)."""
    out = posixpath.normpath("/" + path.lstrip("/"))
    if path.endswith("/.") and out != "/":
        return out + "/."
    if path.endswith("/") and out != "/":
        return out + "/"
    return out


class ContainerFS:
    """The view of ``root`` (a mounted container root) with ``mounts`` over it. ``name`` is
    what error messages call the container; ``readonly_rootfs`` refuses writes outside the
    read-write mounts, as docker's ``--read-only`` does for cp; ``idmap`` (a ``--userns-remap``
    engine's) shifts owners: tars read out carry the container's ids, tars copied in are
    written with the host's."""

    def __init__(self, root: str, mounts: Iterable[MountPoint] = (), *, name: str = "",
                 readonly_rootfs: bool = False, idmap: IDMap | None = None) -> None:
        self.root = root
        self.idmap = idmap
        self.name = name
        self.readonly_rootfs = readonly_rootfs
        self.mounts: dict[str, MountPoint] = {}
        self._root = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            self._root_st = os.fstat(self._root)
            # destinations resolve in the container as the runtime mounts them: in order, each
            # over the view the earlier ones made
            for m in mounts:
                dest = self.canonical(m.destination)
                if dest != "/":
                    self.mounts[dest] = m
        except BaseException:
            os.close(self._root)
            raise

    def close(self) -> None:
        if self._root >= 0:
            os.close(self._root)
            self._root = -1

    def __enter__(self) -> ContainerFS:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # resolution ---------------------------------------------------------------------------
    def _root_node(self) -> Node:
        return Node(os.dup(self._root), "/", self._root_st, None)

    def _open_child(self, cur: Node, comp: str) -> tuple[int, MountPoint | None]:
        path = _join(cur.path, comp)
        m = self.mounts.get(path)
        if m is not None:
            # a mount's source is a host path the engine chose (a volume) or the admin named
            # (a bind): the container does not control it
            return os.open(m.source, os.O_PATH | os.O_CLOEXEC), m
        return os.open(comp, _PATH, dir_fd=cur.fd), cur.mount

    def _walk(self, path: str, follow_last: bool) -> tuple[list[Node], list[str]]:
        """Walk ``path``; returns the stack of nodes reached (root first) and the components
        left when one is missing (empty when the whole path resolved)."""
        todo = [c for c in reversed(path.split("/")) if c]
        stack = [self._root_node()]
        links = 0
        try:
            while todo:
                comp = todo.pop()
                cur = stack[-1]
                if not stat.S_ISDIR(cur.st.st_mode):      # "file/x", "file/.", "file/.."
                    raise NotADirectoryError(errno.ENOTDIR, "not a directory", cur.path)
                if comp == ".":
                    continue
                if comp == "..":
                    if len(stack) > 1:
                        stack.pop().close()
                    continue
                try:
                    fd, mount = self._open_child(cur, comp)
                except FileNotFoundError:
                    todo.append(comp)
                    return stack, list(reversed(todo))
                st = os.fstat(fd)
                if stat.S_ISLNK(st.st_mode) and (follow_last or todo):
                    links += 1
                    try:
                        target = os.readlink("", dir_fd=fd)
                    finally:
                        os.close(fd)
                    if links > MAX_LINKS:
                        raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
                    if target.startswith("/"):
                        while len(stack) > 1:
                            stack.pop().close()
                    todo.extend(c for c in reversed(target.split("/")) if c)
                    continue
                stack.append(Node(fd, _join(cur.path, comp), st, mount))
            return stack, []
        except BaseException:
            for n in stack:
                n.close()
            raise

    def resolve(self, path: str, follow_last: bool = False) -> Node:
        """The entry at the container path ``path`` (symlinks followed in the container's scope;
        the last one too with ``follow_last``); NotFound if it does not exist."""
        if path.endswith("/") or path.endswith("/."):
            follow_last = True          # "dir/" and "dir/." name the directory a link points to
        try:
            stack, missing = self._walk(path, follow_last)
        except (NotADirectoryError, OSError) as e:
            if e.errno in (errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG):
                raise self.not_found(path) from None
            raise SystemFailure("resolve %s in container %s" % (path, self.name), e.errno) \
                from None
        node = stack.pop()
        for n in stack:
            n.close()
        if missing:
            node.close()
            raise self.not_found(path)
        if (path.endswith("/") or path.endswith("/.")) and not stat.S_ISDIR(node.st.st_mode):
            node.close()
            raise self.not_found(path)
        return node

    def canonical(self, path: str) -> str:
        """``path`` with every symlink resolved in the container's scope, as far as it exists
        (the rest joined as it is: Go's FollowSymlinkInScope)."""
        try:
            stack, missing = self._walk(path, True)
        except OSError:
            return posixpath.normpath("/" + path)
        where = stack[-1].path
        for n in stack:
            n.close()
        out = where
        for comp in missing:
            out = posixpath.normpath(_join(out, comp))
        return out

    def not_found(self, path: str) -> NotFound:
        return NotFound("Could not find the file %s in container %s" % (path, self.name))

    # stat ---------------------------------------------------------------------------------
    def stat(self, path: str) -> dict[str, Any]:
        """docker's ContainerPathStat of ``path``: the entry itself (a symlink is not followed),
        with the fully resolved target of a symlink in ``linkTarget``."""
        cleaned = clean_path(path)
        node = self.resolve(path)
        try:
            st = node.st
            target = self.canonical(cleaned) if stat.S_ISLNK(st.st_mode) else ""
        finally:
            node.close()
        if cleaned.endswith("/."):
            name = "."
        else:
            name = posixpath.basename(cleaned.rstrip("/")) or "/"
        return {"name": name, "size": st.st_size, "mode": go_file_mode(st.st_mode),
                "mtime": timestamps.format_ns(st.st_mtime_ns), "linkTarget": target}

    # reading: a tar of a path -------------------------------------------------------------
    def archive(self, path: str) -> tuple[dict[str, Any], Iterator[bytes]]:
        """(stat, tar chunks) of ``path`` as docker's GET archive gives them: a directory as
        ``base/...`` (its contents alone for ``dir/.``), anything else as the single entry
        ``base``. The chunks come as the tree is read; close the iterator to stop early."""
        info = self.stat(path)
        cleaned = clean_path(path)
        node = self.resolve(path)
        try:
            if stat.S_ISDIR(node.st.st_mode):
                top = "." if cleaned.endswith("/.") else (
                    posixpath.basename(cleaned.rstrip("/")) or ".")
            else:
                top = info["name"]
        except BaseException:
            node.close()
            raise
        return info, self._tar(node, top)

    def export(self) -> Iterator[bytes]:
        """The whole view as tar chunks, the root's entries at the top (``bin/``, ``etc/``...)."""
        return self._tar(self._root_node(), "")

    def _tar(self, node: Node, top: str) -> Iterator[bytes]:
        writer = TarChunks(self.idmap)
        try:
            if stat.S_ISDIR(node.st.st_mode):
                fd = node.reopen(_DIR)
                try:
                    st = os.fstat(fd)
                    if top:
                        yield writer.header(top, st, fd=fd)
                    # the contents of "dir/." (and of "/") are named as in the directory
                    yield from self._tree(writer, fd, node.path, "" if top == "." else top, 1)
                finally:
                    os.close(fd)
            else:
                yield from self._entry(writer, node.fd, "", node.path, top, node.st, 0,
                                       at_fd=True)
            yield writer.end()
        finally:
            node.close()

    def _tree(self, writer: TarChunks, dfd: int, path: str, name: str,
              depth: int) -> Iterator[bytes]:
        if depth > MAX_DEPTH:
            raise InvalidArgument("copy from container %s: %s: directories nested deeper "
                                  "than %d levels" % (self.name, path, MAX_DEPTH))
        for entry in sorted(os.listdir(dfd)):
            child = _join(path, entry)
            child_name = name + "/" + entry if name else entry
            m = self.mounts.get(child)
            try:
                if m is not None:
                    fd = os.open(m.source, os.O_PATH | os.O_CLOEXEC)
                    try:
                        yield from self._entry(writer, fd, "", child, child_name,
                                               os.fstat(fd), depth, at_fd=True)
                    finally:
                        os.close(fd)
                    continue
                st = os.lstat(entry, dir_fd=dfd)
                yield from self._entry(writer, dfd, entry, child, child_name, st, depth)
            except OSError as e:
                if e.errno in _GONE:
                    continue        # removed or replaced while we read: as if not there
                raise SystemFailure("copy from container %s: read %s" % (self.name, child),
                                    e.errno) from None

    def _entry(self, writer: TarChunks, dfd: int, entry: str, path: str, name: str,
               st: os.stat_result, depth: int, at_fd: bool = False) -> Iterator[bytes]:
        """One entry (``entry`` in the directory ``dfd``, or the object ``dfd`` itself with
        ``at_fd``), and what a directory holds."""
        kind = stat.S_IFMT(st.st_mode)
        if kind == stat.S_IFSOCK:
            return                  # tar has no sockets (docker skips them too)
        if kind == stat.S_IFLNK:
            target = os.readlink(entry, dir_fd=dfd)
            yield writer.header(name, st, link=target)
            return
        if kind not in (stat.S_IFDIR, stat.S_IFREG):
            yield writer.header(name, st)
            return
        if at_fd:
            fd = _reopen(dfd, kind == stat.S_IFDIR, _DIR if kind == stat.S_IFDIR else _FILE)
        else:
            fd = os.open(entry, _DIR if kind == stat.S_IFDIR else _FILE, dir_fd=dfd)
        try:
            st = os.fstat(fd)
            if stat.S_IFMT(st.st_mode) != kind:
                return              # replaced between the lstat and the open
            if kind == stat.S_IFDIR:
                yield writer.header(name, st, fd=fd)
                yield from self._tree(writer, fd, path, name, depth + 1)
            else:
                yield from writer.file(name, st, fd)
        finally:
            os.close(fd)

    # writing: extract a tar into a directory ----------------------------------------------
    def extract(self, path: str, stream: Any, *, no_overwrite_dir_non_dir: bool = False,
                owner: tuple[int, int] | None = None, max_size: int | None = None,
                spool_dir: str | None = None) -> int:
        """Extract the tar (plain or compressed) read from ``stream`` into the directory
        ``path`` (symlinks followed in the container's scope, the last one too), docker's PUT
        archive. ``owner`` (uid, gid) replaces every member's; ``max_size`` bounds the bytes
        read. Returns the bytes of file data written.

        The archive is read twice: first whole, into a spool file in ``spool_dir``, checking
        every member (names that climb out, a member through a symlink the archive made,
        devices, whiteouts, truncation, sizes), so a bad archive is refused before anything is
        written; then applied. Only what the container's own files cause (a symlink on the
        way, a directory where NoOverwriteDirNonDir forbids replacing it, a full disk) can stop
        the second pass part way, as in docker."""
        node = self.resolve(path, follow_last=True)
        try:
            if not stat.S_ISDIR(node.st.st_mode):
                raise InvalidArgument("extraction point is not a directory")
            if node.mount is not None:
                if not node.mount.rw:
                    raise InvalidArgument("mounted volume is marked read-only")
            elif self.readonly_rootfs:
                raise InvalidArgument("container rootfs is marked read-only")
            here = node.path.rstrip("/") + "/"
            nested = sorted(p[len(here):] for p in self.mounts if p.startswith(here))
            with tempfile.TemporaryFile(dir=spool_dir) as spool:
                with self._input_errors(path, None):
                    _check_archive(decompressed(stream), spool, nested, max_size)
                spool.flush()
                reader = MappedTarReader(spool.fileno(), 0)
                applier = _CopyApplier("/proc/self/fd/%d/." % node.fd, no_overwrite_dir_non_dir,
                                       owner, node.path, self.idmap)
                try:
                    with self._input_errors(path, applier):
                        for member in reader:
                            applier.member(reader, member)
                        applier.finish()
                finally:
                    applier.close()
                    reader.close()
                return applier.size
        finally:
            node.close()

    @contextlib.contextmanager
    def _input_errors(self, path: str, applier: Applier | None) -> Iterator[None]:
        """Turn what reading or applying an archive raises into one-line errors."""
        where = self.name
        try:
            yield
        except LayerError as e:
            raise InvalidArgument("copy to container %s: %s"
                                  % (where, str(e).removeprefix("layer: "))) from None
        except EOFError as e:
            raise InvalidArgument("copy to container %s: truncated archive: %s"
                                  % (where, e or "unexpected end")) from None
        except zlib.error as e:
            raise InvalidArgument("copy to container %s: corrupt compressed stream: %s"
                                  % (where, e)) from None
        except OSError as e:
            member = (applier.current if applier is not None else None) or path
            if e.errno is None:
                raise InvalidArgument("copy to container %s: corrupt compressed stream: %s"
                                      % (where, e)) from None
            if e.errno in _INPUT_ERRNOS:
                raise InvalidArgument("copy to container %s: %s: %s" % (
                    where, member, os.strerror(e.errno).lower())) from None
            raise SystemFailure("copy to container %s: %s" % (where, member), e.errno) \
                from None


class _Tee:
    """A readable that copies what is read through it into ``out``."""

    def __init__(self, f: Any, out: Any) -> None:
        self._f = f
        self._out = out

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self._out.write(data)
        return data


def _check_archive(plain: Any, spool: Any, nested: list[str], max_size: int | None) -> None:
    """Read the whole uncompressed tar ``plain`` into ``spool``, refusing any member cp must not
    apply (see ``_check_member``); a truncated archive fails here too."""
    reader = TarReader(_Tee(plain, spool))
    limit: Any = max_size
    reader.limit = limit
    links: set[int] = set()
    for member in reader:
        _check_member(member, nested, links)
    reader.drain()


def _check_member(m: Any, nested: list[str], links: set[int]) -> None:
    """cp's rules for one member: a clean name (nothing climbs above the target), no whiteout
    (a ``.wh.`` name would delete, not copy), no device node, no path at or below a mount point
    nested in the target (it would land under the mount), nothing through a symlink the
    archive itself made (``links``: hashes of their paths, kept up to date here, so the
    memory is bounded per member whatever the names' length)."""
    parts = clean(m.name)
    if any(p.startswith(WHITEOUT_PREFIX) for p in parts):
        raise LayerError("layer: %s: whiteout names (%s...) cannot be copied into a container"
                         % (_shown(m.name), WHITEOUT_PREFIX))
    if m.ischr() or m.isblk():
        raise LayerError("layer: %s: refusing to create a device node" % _shown(m.name))
    if not (m.isreg() or m.isdir() or m.issym() or m.islnk() or m.isfifo()):
        raise LayerError("layer: %s: unsupported member type %r" % (_shown(m.name), m.type))
    rel = "/".join(parts)
    for n in nested:
        if rel == n or rel.startswith(n + "/"):
            raise LayerError("layer: %s: /%s is a mount point of its own: copy to it directly"
                             % (_shown(m.name), n))
    paths = [parts]
    if m.islnk():
        paths.append(clean(m.linkname))
    for p in paths:
        for i in range(1, len(p)):
            if hash("/".join(p[:i])) in links:
                raise LayerError("layer: %s: refusing to write through symlink %s"
                                 % (_shown(m.name), _shown("/".join(p[:i]))))
    if m.issym():
        links.add(hash(rel))
    else:
        links.discard(hash(rel))


class _CopyApplier(Applier):
    """The layer applier (no whiteouts reach it: ``_check_member`` refused them) with docker's
    NoOverwriteDirNonDir, an optional owner for every entry, and the owners shifted to the
    host ids of a ``--userns-remap`` container (the applier's own idmap would also chown the
    target directory, which cp must leave as it is)."""

    def __init__(self, root: str, no_overwrite: bool, owner: tuple[int, int] | None,
                 where: str, idmap: IDMap | None) -> None:
        super().__init__(root, "delete", ())
        self.no_overwrite = no_overwrite
        self.owner = owner
        self.where = where
        self.shift = idmap
        if idmap is not None:
            self.tree.root_owner = idmap.root      # of the parents a member implies

    def member(self, tf: Any, m: Any) -> Any:
        self.current = m.name
        parts = clean(m.name)
        if self.no_overwrite and parts:
            self._check_overwrite(parts, m)
        if self.owner is not None:
            m.uid, m.gid = self.owner
        if self.shift is not None:
            try:
                m.uid, m.gid = self.shift.to_host(m.uid, m.gid)
            except InvalidArgument as e:
                raise LayerError("layer: %s: %s" % (_shown(m.name), e)) from None
        return super().member(tf, m)

    def _check_overwrite(self, parts: list[str], m: Any) -> None:
        try:
            parent = self.tree.dir(parts[:-1], m.name, create=False)
            st = os.lstat(parts[-1], dir_fd=parent)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode) and not m.isdir():
            raise LayerError("layer: %s: cannot overwrite directory %s with non-directory"
                             % (_shown(m.name), _join(self.where, "/".join(parts))))
        if m.isdir() and not stat.S_ISDIR(st.st_mode):
            raise LayerError("layer: %s: cannot overwrite non-directory %s with directory"
                             % (_shown(m.name), _join(self.where, "/".join(parts))))


class TarChunks:
    """PAX tar headers and data as bytes, member by member (so a tree streams without
    buffering a whole file); hard links to an inode already written become link entries."""

    def __init__(self, idmap: IDMap | None = None) -> None:
        self.inodes: dict[tuple[int, int], str] = {}
        self.idmap = idmap

    def _info(self, name: str, st: os.stat_result) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.mode = stat.S_IMODE(st.st_mode)
        ti.uid, ti.gid = st.st_uid, st.st_gid
        if self.idmap is not None:
            ti.uid, ti.gid = container_ids(self.idmap, st.st_uid, st.st_gid)
        ti.uname = ti.gname = ""
        ti.mtime = int(st.st_mtime)
        return ti

    @staticmethod
    def _bytes(ti: tarfile.TarInfo) -> bytes:
        return ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")

    def header(self, name: str, st: os.stat_result, link: str = "",
               fd: int | None = None) -> bytes:
        ti = self._info(name, st)
        kind = stat.S_IFMT(st.st_mode)
        if kind == stat.S_IFDIR:
            ti.type = tarfile.DIRTYPE
        elif kind == stat.S_IFLNK:
            ti.type = tarfile.SYMTYPE
            ti.linkname = link
        elif kind in (stat.S_IFCHR, stat.S_IFBLK):
            ti.type = tarfile.CHRTYPE if kind == stat.S_IFCHR else tarfile.BLKTYPE
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif kind == stat.S_IFIFO:
            ti.type = tarfile.FIFOTYPE
        if fd is not None:
            ti.pax_headers = _xattrs(fd)
        return self._bytes(ti)

    def file(self, name: str, st: os.stat_result, fd: int) -> Iterator[bytes]:
        ti = self._info(name, st)
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self.inodes:
            ti.type = tarfile.LNKTYPE
            ti.linkname = self.inodes[key]
            yield self._bytes(ti)
            return
        if st.st_nlink > 1:
            self.inodes[key] = name
        ti.type = tarfile.REGTYPE
        ti.size = st.st_size
        ti.pax_headers = _xattrs(fd)
        yield self._bytes(ti)
        left = st.st_size
        while left:
            data = os.read(fd, min(left, _CHUNK))
            if not data:            # the file shrank while we read: keep the size we wrote
                data = bytes(min(left, _CHUNK))
            left -= len(data)
            yield data
        pad = -st.st_size % _BLOCK
        if pad:
            yield bytes(pad)

    def whiteout(self, name: str) -> bytes:
        """An OCI whiteout entry (an empty regular file) named ``name``."""
        ti = tarfile.TarInfo(name)
        ti.mtime = 0
        return self._bytes(ti)

    @staticmethod
    def end() -> bytes:
        return bytes(2 * _BLOCK)


def _xattrs(fd: int) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        names = os.listxattr(fd)
    except OSError:
        return out
    for name in names:
        if name.startswith("trusted.overlay.") or name == "security.selinux":
            continue
        try:
            value = os.getxattr(fd, name)
        except OSError:
            continue
        out["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
    return out
