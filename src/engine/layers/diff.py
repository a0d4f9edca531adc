"""Write layers: a directory as a tar, and an overlayfs upper directory as an OCI diff.

Entries are sorted, so the same tree gives the same bytes (and the same diffID); hard links
inside the tree are written once and linked after; xattrs go in PAX ``SCHILY.xattr.`` records.
"""
from __future__ import annotations

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


def _xattrs(path):
    out: dict[Any, Any] = {}
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


class TarWriter:
    """Adds filesystem entries to a tar stream with their metadata."""

    def __init__(self, out: BytesIO, mtime: int | None = None) -> None:
        self.tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT,
                                bufsize=_CHUNK)
        self.inodes: dict[Any, Any] = {}
        self.mtime = mtime

    def add(self, path: str, name: str, st: stat_result | None = None) -> None:
        st = st or os.lstat(path)
        ti = tarfile.TarInfo(name)
        ti.mode = stat.S_IMODE(st.st_mode)
        ti.uid, ti.gid = st.st_uid, st.st_gid
        ti.uname = ti.gname = ""
        ti.mtime = self.mtime if self.mtime is not None else int(st.st_mtime)
        ti.pax_headers = _xattrs(path)
        data = None
        if stat.S_ISDIR(st.st_mode):
            ti.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(st.st_mode):
            ti.type = tarfile.SYMTYPE
            ti.linkname = os.readlink(path)
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
                data = path
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            ti.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(st.st_mode):
            ti.type = tarfile.FIFOTYPE
        else:
            return
        if data is None:
            self.tar.addfile(ti)
        else:
            with open(data, "rb") as f:
                self.tar.addfile(ti, f)

    def add_whiteout(self, name: str) -> None:
        ti = tarfile.TarInfo(name)
        ti.mtime = self.mtime or 0
        self.tar.addfile(ti)

    def close(self) -> None:
        self.tar.close()


def _walk_sub(root, rel):
    for entry in sorted(os.listdir(os.path.join(root, rel))):
        child = rel + "/" + entry
        st = os.lstat(os.path.join(root, child))
        yield child, os.path.join(root, child), st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk_sub(root, child)


def write_tree(root: str, out: BytesIO, mtime: int | None = None) -> None:
    """Write the whole tree under ``root`` as an uncompressed tar into ``out``."""
    w = TarWriter(out, mtime)
    for entry in sorted(os.listdir(root)):
        st = os.lstat(os.path.join(root, entry))
        w.add(os.path.join(root, entry), entry, st)
        if stat.S_ISDIR(st.st_mode):
            for name, path, sub in _walk_sub(root, entry):
                w.add(path, name, sub)
    w.close()


def write_overlay_diff(upper: str, out: BytesIO, mtime: Any = None) -> None:
    """Write an overlayfs upper directory as an OCI layer (whiteouts in ``.wh.`` form)."""
    w = TarWriter(out, mtime)

    def visit(rel):
        for entry in sorted(os.listdir(os.path.join(upper, rel) if rel else upper)):
            name = rel + "/" + entry if rel else entry
            path = os.path.join(upper, name)
            st = os.lstat(path)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                w.add_whiteout((rel + "/" if rel else "") + WHITEOUT_PREFIX + entry)
                continue
            w.add(path, name, st)
            if stat.S_ISDIR(st.st_mode):
                try:
                    opaque = os.getxattr(path, OVERLAY_OPAQUE_XATTR) == b"y"
                except OSError:
                    opaque = False
                if opaque:
                    w.add_whiteout(name + "/" + OPAQUE)
                visit(name)

    visit("")
    w.close()


def _same(a_path, a, b_path, b):
    """Whether two entries look unchanged (kind, mode, owner, size, mtime, target, xattrs)."""
    if (a.st_mode, a.st_uid, a.st_gid) != (b.st_mode, b.st_uid, b.st_gid):
        return False
    if stat.S_ISDIR(a.st_mode):
        return _xattrs(a_path) == _xattrs(b_path)
    if (a.st_size, a.st_mtime_ns) != (b.st_size, b.st_mtime_ns):
        return False
    if stat.S_ISLNK(a.st_mode):
        return os.readlink(a_path) == os.readlink(b_path)
    if stat.S_ISCHR(a.st_mode) or stat.S_ISBLK(a.st_mode):
        if a.st_rdev != b.st_rdev:
            return False
    return _xattrs(a_path) == _xattrs(b_path)


def write_tree_diff(lower: str, upper: str, out: BytesIO, mtime: Any = None) -> None:
    """Write what turns the tree ``lower`` into the tree ``upper`` as an OCI layer: new and
    changed entries, and ``.wh.`` whiteouts for removed ones (the copying snapshotter's diff)."""
    w = TarWriter(out, mtime)

    def add_all(name, path, st):
        w.add(path, name, st)
        if stat.S_ISDIR(st.st_mode):
            for sub_name, sub_path, sub in _walk_sub(upper, name):
                w.add(sub_path, sub_name, sub)

    def visit(rel):
        up_dir = os.path.join(upper, rel) if rel else upper
        low_dir = os.path.join(lower, rel) if rel else lower
        ups = set(os.listdir(up_dir))
        lows = set(os.listdir(low_dir))
        for entry in sorted(ups | lows):
            name = rel + "/" + entry if rel else entry
            if entry not in ups:
                w.add_whiteout((rel + "/" if rel else "") + WHITEOUT_PREFIX + entry)
                continue
            up_path = os.path.join(upper, name)
            st = os.lstat(up_path)
            if entry not in lows:
                add_all(name, up_path, st)
                continue
            low_path = os.path.join(lower, name)
            lst = os.lstat(low_path)
            if stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(lst.st_mode):
                if not _same(low_path, lst, up_path, st):
                    w.add(up_path, name, st)
                visit(name)
            elif not _same(low_path, lst, up_path, st) or \
                    stat.S_ISDIR(st.st_mode) != stat.S_ISDIR(lst.st_mode):
                add_all(name, up_path, st)

    visit("")
    w.close()
