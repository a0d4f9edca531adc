"""Write layers: a directory as a tar, and an overlayfs upper directory as an OCI diff.

Entries are sorted, so the same tree gives the same bytes (and the same diffID); hard links
inside the tree are written once and linked after; xattrs go in PAX ``SCHILY.xattr.`` records.

The trees may belong to a running container (``docker diff``, ``commit``, ``export`` of its
snapshot), whose processes can swap a directory for a symbolic link at any moment. So nothing is
reached by path below the root: each directory is opened relative to its parent's descriptor
with ``O_NOFOLLOW | O_DIRECTORY``, each file relative to its directory's with ``O_NOFOLLOW``
(and described from that descriptor), links are read and xattrs listed relative to the
directory's descriptor. An entry that changes kind between the listing and the open is left
out (a directory that became a link has no children), never followed.
"""
from __future__ import annotations

import errno
import os
import stat
import tarfile

from pyrunc.engine.layers.apply import OPAQUE, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX, \
    XATTR_PAX_PREFIX

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from io import BytesIO
    from os import stat_result

_CHUNK = 1 << 20
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# what an entry that changed or vanished since its directory was listed gives
_CHANGED = (errno.ENOENT, errno.ELOOP, errno.ENOTDIR, errno.EINVAL)


def _at(dirfd: int, entry: str) -> str:
    """A path naming ``entry`` of the directory open at ``dirfd``: the kernel resolves the
    descriptor's magic link to that very directory, whatever its path has become."""
    return "/proc/self/fd/%d/%s" % (dirfd, entry)


def _xattrs(dirfd, entry):
    out: dict[Any, Any] = {}
    path = _at(dirfd, entry)
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for name in names:
        if name.startswith("trusted.overlay.") or name == "security.selinux":
            continue
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        out[XATTR_PAX_PREFIX + name] = value.decode("utf-8", "surrogateescape")
    return out


def _lstat(dirfd, entry):
    """The entry's lstat, None when it is gone."""
    try:
        return os.stat(entry, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _open_dir(dirfd, entry):
    """A descriptor of the directory ``entry``, None when it is no longer a directory."""
    try:
        return os.open(entry, _DIR, dir_fd=dirfd)
    except OSError as e:
        if e.errno in _CHANGED:
            return None
        raise


class TarWriter:
    """Adds filesystem entries to a tar stream with their metadata."""

    def __init__(self, out: BytesIO, mtime: int | None = None) -> None:
        self.tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT,
                                bufsize=_CHUNK)
        self.inodes: dict[Any, Any] = {}
        self.mtime = mtime

    def add(self, dirfd: int, entry: str, name: str, st: stat_result) -> None:
        """Add ``entry`` of the directory open at ``dirfd`` as ``name``, described by ``st``
        (its lstat); a regular file is opened and described by its descriptor instead, and
        left out if it is no longer one."""
        f = None
        if stat.S_ISREG(st.st_mode):
            try:
                fd = os.open(entry, _FILE, dir_fd=dirfd)
            except OSError as e:
                if e.errno in _CHANGED:
                    return
                raise
            f = os.fdopen(fd, "rb")
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                f.close()
                return
        try:
            self._add(dirfd, entry, name, st, f)
        finally:
            if f is not None:
                f.close()

    def _add(self, dirfd, entry, name, st, f):
        ti = tarfile.TarInfo(name)
        ti.mode = stat.S_IMODE(st.st_mode)
        ti.uid, ti.gid = st.st_uid, st.st_gid
        ti.uname = ti.gname = ""
        ti.mtime = self.mtime if self.mtime is not None else int(st.st_mtime)
        ti.pax_headers = _xattrs(dirfd, entry)
        data = None
        if stat.S_ISDIR(st.st_mode):
            ti.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(st.st_mode):
            ti.type = tarfile.SYMTYPE
            try:
                ti.linkname = os.readlink(entry, dir_fd=dirfd)
            except OSError as e:
                if e.errno in _CHANGED:
                    return
                raise
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.inodes:
                ti.type = tarfile.LNKTYPE
                ti.linkname = self.inodes[key]
            else:
                if st.st_nlink > 1:
                    self.inodes[key] = name
                ti.type = tarfile.REGTYPE
                ti.size = st.st_size
                data = f
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            ti.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(st.st_mode):
            ti.type = tarfile.FIFOTYPE
        else:
            return
        self.tar.addfile(ti, data)

    def add_whiteout(self, name: str) -> None:
        ti = tarfile.TarInfo(name)
        ti.mtime = self.mtime or 0
        self.tar.addfile(ti)

    def close(self) -> None:
        self.tar.close()


def _add_tree(w, dirfd, rel):
    """Add every entry under the directory open at ``dirfd`` (named ``rel`` in the tar)."""
    for entry in sorted(os.listdir(dirfd)):
        name = rel + "/" + entry if rel else entry
        st = _lstat(dirfd, entry)
        if st is None:
            continue
        w.add(dirfd, entry, name, st)
        if stat.S_ISDIR(st.st_mode):
            _add_subtree(w, dirfd, entry, name)


def _add_subtree(w, dirfd, entry, name):
    sub = _open_dir(dirfd, entry)
    if sub is None:
        return
    try:
        _add_tree(w, sub, name)
    finally:
        os.close(sub)


def write_tree(root: str, out: BytesIO, mtime: int | None = None) -> None:
    """Write the whole tree under ``root`` as an uncompressed tar into ``out``."""
    w = TarWriter(out, mtime)
    fd = os.open(root, _DIR)
    try:
        _add_tree(w, fd, "")
    finally:
        os.close(fd)
    w.close()


def write_overlay_diff(upper: str, out: BytesIO, mtime: Any = None) -> None:
    """Write an overlayfs upper directory as an OCI layer (whiteouts in ``.wh.`` form)."""
    w = TarWriter(out, mtime)

    def visit(dirfd, rel):
        for entry in sorted(os.listdir(dirfd)):
            name = rel + "/" + entry if rel else entry
            st = _lstat(dirfd, entry)
            if st is None:
                continue
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                w.add_whiteout((rel + "/" if rel else "") + WHITEOUT_PREFIX + entry)
                continue
            w.add(dirfd, entry, name, st)
            if stat.S_ISDIR(st.st_mode):
                sub = _open_dir(dirfd, entry)
                if sub is None:
                    continue
                try:
                    try:
                        opaque = os.getxattr(sub, OVERLAY_OPAQUE_XATTR) == b"y"
                    except OSError:
                        opaque = False
                    if opaque:
                        w.add_whiteout(name + "/" + OPAQUE)
                    visit(sub, name)
                finally:
                    os.close(sub)

    fd = os.open(upper, _DIR)
    try:
        visit(fd, "")
    finally:
        os.close(fd)
    w.close()


def _same(a_dir, a, b_dir, b, entry):
    """Whether two entries named ``entry`` in the directories open at ``a_dir`` and ``b_dir``
    look unchanged (kind, mode, owner, size, mtime, target, xattrs)."""
    if (a.st_mode, a.st_uid, a.st_gid) != (b.st_mode, b.st_uid, b.st_gid):
        return False
    if stat.S_ISDIR(a.st_mode):
        return _xattrs(a_dir, entry) == _xattrs(b_dir, entry)
    if (a.st_size, a.st_mtime_ns) != (b.st_size, b.st_mtime_ns):
        return False
    if stat.S_ISLNK(a.st_mode):
        try:
            return os.readlink(entry, dir_fd=a_dir) == os.readlink(entry, dir_fd=b_dir)
        except OSError as e:
            if e.errno in _CHANGED:
                return False
            raise
    if stat.S_ISCHR(a.st_mode) or stat.S_ISBLK(a.st_mode):
        if a.st_rdev != b.st_rdev:
            return False
    return _xattrs(a_dir, entry) == _xattrs(b_dir, entry)


def write_tree_diff(lower: str, upper: str, out: BytesIO, mtime: Any = None) -> None:
    """Write what turns the tree ``lower`` into the tree ``upper`` as an OCI layer: new and
    changed entries, and ``.wh.`` whiteouts for removed ones (the copying snapshotter's diff)."""
    w = TarWriter(out, mtime)

    def add_all(up_dir, entry, name, st):
        w.add(up_dir, entry, name, st)
        if stat.S_ISDIR(st.st_mode):
            _add_subtree(w, up_dir, entry, name)

    def visit(up_dir, low_dir, rel):
        ups = set(os.listdir(up_dir))
        lows = set(os.listdir(low_dir))
        for entry in sorted(ups | lows):
            name = rel + "/" + entry if rel else entry
            st = _lstat(up_dir, entry) if entry in ups else None
            if st is None:
                w.add_whiteout((rel + "/" if rel else "") + WHITEOUT_PREFIX + entry)
                continue
            lst = _lstat(low_dir, entry) if entry in lows else None
            if lst is None:
                add_all(up_dir, entry, name, st)
                continue
            if stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(lst.st_mode):
                if not _same(low_dir, lst, up_dir, st, entry):
                    w.add(up_dir, entry, name, st)
                up_sub = _open_dir(up_dir, entry)
                if up_sub is None:
                    continue
                try:
                    low_sub = _open_dir(low_dir, entry)
                    if low_sub is None:
                        _add_tree(w, up_sub, name)
                        continue
                    try:
                        visit(up_sub, low_sub, name)
                    finally:
                        os.close(low_sub)
                finally:
                    os.close(up_sub)
            elif not _same(low_dir, lst, up_dir, st, entry) or \
                    stat.S_ISDIR(st.st_mode) != stat.S_ISDIR(lst.st_mode):
                add_all(up_dir, entry, name, st)

    up_fd = os.open(upper, _DIR)
    try:
        low_fd = os.open(lower, _DIR)
        try:
            visit(up_fd, low_fd, "")
        finally:
            os.close(low_fd)
    finally:
        os.close(up_fd)
    w.close()
