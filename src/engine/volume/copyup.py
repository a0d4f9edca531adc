"""Copy the image's content at a volume's destination into the volume, as docker does when a
container first uses an empty volume (not with ``nocopy``, never for a bind).

The destination is resolved in the container's root filesystem as the container will see it:
symlinks are followed, but inside the rootfs (an absolute link starts again at the rootfs,
``..`` stops at it), so nothing outside is ever read. Every step below works on directory
descriptors with O_NOFOLLOW: a symlink in the tree is copied as a link, never followed.
Ownership, modes, times, hard links, device nodes, fifos and extended attributes (where the
volume's filesystem takes them) are kept; sockets are skipped. Then the volume's own directory
takes the owner and mode of the image's directory (docker's rule, which makes e.g. a database's
data directory keep its owner).
"""
from __future__ import annotations

import errno
import os
import stat

from pyrunc.errors import InvalidArgument, SystemFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from pyrunc.engine.volume.mounts import MountPoint

MAX_LINKS = 40           # symlinks followed while resolving one destination (Linux's limit)
MAX_DEPTH = 512          # directory levels copied
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_PATH = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20


def open_in_root(root: str, path: str) -> int | None:
    """A descriptor (O_RDONLY, a directory) of container ``path`` resolved under ``root`` with
    symlinks kept inside it; None when it does not exist or is not a directory."""
    stack = [os.open(root, _O_DIR)]
    parts = [p for p in path.split("/") if p]
    hops = 0
    try:
        while parts:
            part = parts.pop(0)
            if part == ".":
                continue
            if part == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            try:
                fd = os.open(part, _O_PATH, dir_fd=stack[-1])
            except (FileNotFoundError, NotADirectoryError):
                return None
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                target = os.readlink(part, dir_fd=stack[-1])
                os.close(fd)
                hops += 1
                if hops > MAX_LINKS:
                    raise InvalidArgument("%s: too many levels of symbolic links in the "
                                          "image" % path)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                parts[:0] = [p for p in target.split("/") if p]
                continue
            stack.append(fd)
        if not stat.S_ISDIR(os.fstat(stack[-1]).st_mode):
            return None
        return os.open(".", _O_DIR, dir_fd=stack[-1])
    finally:
        for fd in stack:
            os.close(fd)


def copy_up(mount_points: list[MountPoint], rootfs: str) -> list[str]:
    """For each volume mount that copies (``copy_data``) and whose volume is empty, copy the
    rootfs's content at its destination into the volume (``source``, mounted: after
    ``setup_mounts``). Returns the destinations copied."""
    copied = []
    for mp in mount_points:
        if mp.type != "volume" or not mp.copy_data or not mp.source:
            continue
        src = open_in_root(rootfs, mp.destination)
        if src is None:
            continue
        try:
            dst = os.open(mp.source, _O_DIR)
        except OSError as e:
            os.close(src)
            raise SystemFailure("open volume %s" % mp.name, e.errno) from None
        try:
            if os.listdir(dst):
                continue
            try:
                _Copier(dst).copy_dir(src, dst, "", 0)
                st = os.fstat(src)
                os.fchown(dst, st.st_uid, st.st_gid)
                os.fchmod(dst, stat.S_IMODE(st.st_mode))
            except OSError as e:
                _empty(dst)
                raise SystemFailure("copy the image's content at %s into volume %s"
                                    % (mp.destination, mp.name), e.errno,
                                    e.filename if isinstance(e.filename, str) else None
                                    ) from None
            except BaseException:
                _empty(dst)
                raise
            copied.append(mp.destination)
        finally:
            os.close(src)
            os.close(dst)
    return copied


def _empty(dir_fd: int) -> None:
    """Remove what a failed copy put in the directory ``dir_fd``."""
    for name in os.listdir(dir_fd):
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                fd = os.open(name, _O_DIR, dir_fd=dir_fd)
                try:
                    os.fchmod(fd, 0o700)
                    _empty(fd)
                finally:
                    os.close(fd)
                os.rmdir(name, dir_fd=dir_fd)
            else:
                os.unlink(name, dir_fd=dir_fd)
        except OSError:
            pass


class _Copier:
    """One tree copy: remembers the first copy of each hard-linked inode."""

    def __init__(self, top: int) -> None:
        self.top = top
        self.links: dict[tuple[int, int], str] = {}

    def copy_dir(self, src: int, dst: int, rel: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise InvalidArgument("copy into volume: the image's tree is deeper than %d "
                                  "directories" % MAX_DEPTH)
        for name in sorted(os.listdir(src)):
            st = os.stat(name, dir_fd=src, follow_symlinks=False)
            path = rel + "/" + name if rel else name
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                os.mkdir(name, 0o700, dir_fd=dst)
                sfd = os.open(name, _O_DIR, dir_fd=src)
                try:
                    dfd = os.open(name, _O_DIR, dir_fd=dst)
                    try:
                        self.copy_dir(sfd, dfd, path, depth + 1)
                        _attributes(sfd, dfd, st)
                    finally:
                        os.close(dfd)
                finally:
                    os.close(sfd)
                continue
            if stat.S_ISSOCK(mode):
                continue
            if st.st_nlink > 1 and not stat.S_ISLNK(mode):
                first = self.links.get((st.st_dev, st.st_ino))
                if first is not None:
                    self._link(first, dst, name)
                    continue
                self.links[(st.st_dev, st.st_ino)] = path
            if stat.S_ISLNK(mode):
                os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
                os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
                os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst,
                         follow_symlinks=False)
            elif stat.S_ISREG(mode):
                self._file(src, dst, name, st)
            else:
                # a device node or a fifo: made, never opened
                os.mknod(name, stat.S_IFMT(mode) | 0o600, st.st_rdev, dir_fd=dst)
                os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
                os.chmod(name, stat.S_IMODE(mode), dir_fd=dst, follow_symlinks=False)
                os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst,
                         follow_symlinks=False)

    def _file(self, src: int, dst: int, name: str, st: Any) -> None:
        sfd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                      dir_fd=src)
        try:
            if not stat.S_ISREG(os.fstat(sfd).st_mode):
                raise OSError(errno.EINVAL, "changed while copied", name)
            dfd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                          | os.O_CLOEXEC, 0o600, dir_fd=dst)
            try:
                _copy_data(sfd, dfd)
                _attributes(sfd, dfd, st)
            finally:
                os.close(dfd)
        finally:
            os.close(sfd)

    def _link(self, first: str, dst: int, name: str) -> None:
        """Hard-link ``name`` in ``dst`` to the earlier copy at ``first`` (relative to the
        volume), whose parents are opened one by one without following anything."""
        *parents, last = first.split("/")
        fds = [self.top]
        try:
            for comp in parents:
                fds.append(os.open(comp, _O_DIR, dir_fd=fds[-1]))
            os.link(last, name, src_dir_fd=fds[-1], dst_dir_fd=dst, follow_symlinks=False)
        finally:
            for fd in fds[1:]:
                os.close(fd)


def _copy_data(src: int, dst: int) -> None:
    try:
        while True:
            n = os.copy_file_range(src, dst, _CHUNK)
            if n == 0:
                return
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
            raise
    while True:
        chunk = os.read(src, _CHUNK)
        if not chunk:
            return
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view):]


def _attributes(src: int, dst: int, st: Any) -> None:
    """Owner, mode, extended attributes and times of ``src`` onto ``dst`` (descriptors), in
    that order: a change of owner clears set-id bits and file capabilities."""
    os.fchown(dst, st.st_uid, st.st_gid)
    os.fchmod(dst, stat.S_IMODE(st.st_mode))
    try:
        names = os.listxattr(src)
    except OSError:
        names = []
    for key in names:
        try:
            os.setxattr(dst, key, os.getxattr(src, key))
        except OSError as e:
            if e.errno not in (errno.ENOTSUP, errno.EPERM, errno.EOPNOTSUPP, errno.EACCES,
                               errno.EINVAL, errno.ENODATA):
                raise
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
