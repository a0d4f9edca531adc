"""Perform a snapshot's mounts onto a target (in the caller's private mount namespace)."""
from pyrunc.errors import SystemFailure
from pyrunc.libcontainer.mountflags import (
    MNT_DETACH, MS_BIND, MS_RDONLY, MS_REMOUNT, mount, umount)
from pyrunc.libcontainer.specconv.mounts import Options


def _mount(source: "str | None", target: str, fstype: "str | None", flags: int,
           data: "str | None") -> None:
    err = mount(source, target, fstype, flags, data)
    if err:
        raise SystemFailure("mount %s on %s" % (source, target), err)


def mount_all(mounts: list, target: str) -> None:
    """Mount each snapshot mount on ``target``; its options are mount(8)'s words, parsed by the
    runtime's own table (``rbind``, ``ro``...; the rest is the filesystem's data)."""
    for m in mounts:
        opts = Options(m.options)
        if m.type == "bind":
            # a bind mount ignores every flag but MS_REC: read-only takes a remount
            _mount(m.source, target, None, opts.flags | MS_BIND, None)
            if opts.flags & MS_RDONLY:
                _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
        else:
            _mount(m.source, target, m.type, opts.flags, opts.data)


def unmount(target: str) -> None:
    """Detach the mount on ``target`` (lazily, as containerd does)."""
    err = umount(target, MNT_DETACH)
    if err:
        raise SystemFailure("unmount %s" % target, err)
