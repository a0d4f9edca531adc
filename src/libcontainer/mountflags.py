"""The one table of the kernel's mount flags in Python, and mount(2) for the parent's own use.

The values are ``<sys/mount.h>``'s, read by the native core's build (``native/build_core.py``)
rather than written here as numbers: ``MS_*`` for mount(2), ``MOUNT_ATTR_*`` for
mount_setattr(2), ``MNT_*`` for umount2(2). The option words that map onto them are in
``pyrunc.libcontainer.specconv.mounts``. Every layer that mounts (libcontainer's cgroups and
checkpoint/restore, the engine's snapshots) takes its flags from here.
"""
import os

from pyrunc._core import ffi, lib

MS_RDONLY = lib.MS_RDONLY
MS_NOSUID = lib.MS_NOSUID
MS_NODEV = lib.MS_NODEV
MS_NOEXEC = lib.MS_NOEXEC
MS_SYNCHRONOUS = lib.MS_SYNCHRONOUS
MS_REMOUNT = lib.MS_REMOUNT
MS_MANDLOCK = lib.MS_MANDLOCK
MS_DIRSYNC = lib.MS_DIRSYNC
MS_NOSYMFOLLOW = lib.MS_NOSYMFOLLOW
MS_NOATIME = lib.MS_NOATIME
MS_NODIRATIME = lib.MS_NODIRATIME
MS_BIND = lib.MS_BIND
MS_MOVE = lib.MS_MOVE
MS_REC = lib.MS_REC
MS_SILENT = lib.MS_SILENT
MS_POSIXACL = lib.MS_POSIXACL
MS_UNBINDABLE = lib.MS_UNBINDABLE
MS_PRIVATE = lib.MS_PRIVATE
MS_SLAVE = lib.MS_SLAVE
MS_SHARED = lib.MS_SHARED
MS_RELATIME = lib.MS_RELATIME
MS_I_VERSION = lib.MS_I_VERSION
MS_STRICTATIME = lib.MS_STRICTATIME
MS_LAZYTIME = lib.MS_LAZYTIME

MOUNT_ATTR_RDONLY = lib.MOUNT_ATTR_RDONLY
MOUNT_ATTR_NOSUID = lib.MOUNT_ATTR_NOSUID
MOUNT_ATTR_NODEV = lib.MOUNT_ATTR_NODEV
MOUNT_ATTR_NOEXEC = lib.MOUNT_ATTR_NOEXEC
MOUNT_ATTR__ATIME = lib.MOUNT_ATTR__ATIME
MOUNT_ATTR_RELATIME = lib.MOUNT_ATTR_RELATIME
MOUNT_ATTR_NOATIME = lib.MOUNT_ATTR_NOATIME
MOUNT_ATTR_STRICTATIME = lib.MOUNT_ATTR_STRICTATIME
MOUNT_ATTR_NODIRATIME = lib.MOUNT_ATTR_NODIRATIME
MOUNT_ATTR_NOSYMFOLLOW = lib.MOUNT_ATTR_NOSYMFOLLOW

MNT_FORCE = lib.MNT_FORCE
MNT_DETACH = lib.MNT_DETACH


def _path(p):
    return ffi.NULL if p is None else os.fsencode(p)


def mount(source: "str | bytes | None", target: "str | bytes", fstype: "str | bytes | None",
          flags: int, data: "str | bytes | None" = None) -> int:
    """mount(2) in the caller's mount namespace; 0 or the errno (None: a NULL argument)."""
    return -lib.core_mount(_path(source), _path(target), _path(fstype), flags,
                           _path(data or None))


def umount(target: "str | bytes", flags: int = 0) -> int:
    """umount2(2); 0 or the errno."""
    return -lib.core_umount(_path(target), flags)
