"""Perform a snapshot's mounts onto a target (in the caller's private mount namespace)."""
import ctypes
import ctypes.util
import os

from pyrunc.errors import SystemFailure

MS_RDONLY = 0x1
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MNT_DETACH = 0x2

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _mount(source, target, fstype, flags, data):
    if _libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None,
                   ctypes.c_ulong(flags), data.encode() if data else None) != 0:
        e = ctypes.get_errno()
        raise SystemFailure("mount %s on %s" % (source, target), e)


def mount_all(mounts, target):
    for m in mounts:
        if m.type == "bind":
            flags = MS_BIND | (MS_REC if "rbind" in m.options else 0)
            _mount(m.source, target, None, flags, None)
            if "ro" in m.options:
                _mount("none", target, None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
        else:
            flags = MS_RDONLY if "ro" in m.options else 0
            data = ",".join(o for o in m.options if o not in ("ro", "rw"))
            _mount(m.source, target, m.type, flags, data)


def unmount(target):
    if _libc.umount2(os.fsencode(target), MNT_DETACH) != 0:
        e = ctypes.get_errno()
        raise SystemFailure("unmount %s" % target, e)
