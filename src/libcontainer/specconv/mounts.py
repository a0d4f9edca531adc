"""Mount options: the runtime spec's option words -> mount(2) flags, propagation, mount_setattr.

The tables are runc's (libcontainer/specconv): a word either sets or clears an MS_* flag, names a
propagation type, sets or clears a recursive MOUNT_ATTR_* attribute (``rro``, ``rnosuid``...),
or, when it is none of those, is passed to the filesystem as data (``mode=755``, ``size=64k``).
Later words win over earlier ones, as with mount(8).
"""
from __future__ import annotations

import os

from pyrunc.errors import InvalidArgument, NotFound
from pyrunc.libcontainer.mountflags import (  # noqa: F401 (the flags, re-exported)
    MOUNT_ATTR__ATIME, MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME,
    MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NOSYMFOLLOW, MOUNT_ATTR_RDONLY,
    MOUNT_ATTR_RELATIME, MOUNT_ATTR_STRICTATIME, MS_BIND, MS_DIRSYNC, MS_I_VERSION,
    MS_LAZYTIME, MS_MANDLOCK, MS_NOATIME, MS_NODEV, MS_NODIRATIME, MS_NOEXEC, MS_NOSUID,
    MS_NOSYMFOLLOW, MS_POSIXACL, MS_PRIVATE, MS_RDONLY, MS_REC, MS_RELATIME, MS_REMOUNT,
    MS_SHARED, MS_SILENT, MS_SLAVE, MS_STRICTATIME, MS_SYNCHRONOUS, MS_UNBINDABLE)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# word -> (clear, MS_* flag)
FLAGS = {
    "acl": (False, MS_POSIXACL),
    "async": (True, MS_SYNCHRONOUS),
    "atime": (True, MS_NOATIME),
    "bind": (False, MS_BIND),
    "defaults": (False, 0),
    "dev": (True, MS_NODEV),
    "diratime": (True, MS_NODIRATIME),
    "dirsync": (False, MS_DIRSYNC),
    "exec": (True, MS_NOEXEC),
    "iversion": (False, MS_I_VERSION),
    "lazytime": (False, MS_LAZYTIME),
    "loud": (True, MS_SILENT),
    "mand": (False, MS_MANDLOCK),
    "noacl": (True, MS_POSIXACL),
    "noatime": (False, MS_NOATIME),
    "nodev": (False, MS_NODEV),
    "nodiratime": (False, MS_NODIRATIME),
    "noexec": (False, MS_NOEXEC),
    "noiversion": (True, MS_I_VERSION),
    "nolazytime": (True, MS_LAZYTIME),
    "nomand": (True, MS_MANDLOCK),
    "norelatime": (True, MS_RELATIME),
    "nostrictatime": (True, MS_STRICTATIME),
    "nosuid": (False, MS_NOSUID),
    "nosymfollow": (False, MS_NOSYMFOLLOW),
    "rbind": (False, MS_BIND | MS_REC),
    "relatime": (False, MS_RELATIME),
    "remount": (False, MS_REMOUNT),
    "ro": (False, MS_RDONLY),
    "rw": (True, MS_RDONLY),
    "silent": (False, MS_SILENT),
    "strictatime": (False, MS_STRICTATIME),
    "suid": (True, MS_NOSUID),
    "sync": (False, MS_SYNCHRONOUS),
    "symfollow": (True, MS_NOSYMFOLLOW),
}

PROPAGATION = {
    "private": MS_PRIVATE,
    "shared": MS_SHARED,
    "slave": MS_SLAVE,
    "unbindable": MS_UNBINDABLE,
    "rprivate": MS_PRIVATE | MS_REC,
    "rshared": MS_SHARED | MS_REC,
    "rslave": MS_SLAVE | MS_REC,
    "runbindable": MS_UNBINDABLE | MS_REC,
}

# word -> (clear, MOUNT_ATTR_* attribute), applied recursively with mount_setattr(2)
RECURSIVE_ATTRS = {
    "rro": (False, MOUNT_ATTR_RDONLY),
    "rrw": (True, MOUNT_ATTR_RDONLY),
    "rnosuid": (False, MOUNT_ATTR_NOSUID),
    "rsuid": (True, MOUNT_ATTR_NOSUID),
    "rnodev": (False, MOUNT_ATTR_NODEV),
    "rdev": (True, MOUNT_ATTR_NODEV),
    "rnoexec": (False, MOUNT_ATTR_NOEXEC),
    "rexec": (True, MOUNT_ATTR_NOEXEC),
    "rnodiratime": (False, MOUNT_ATTR_NODIRATIME),
    "rdiratime": (True, MOUNT_ATTR_NODIRATIME),
    "rrelatime": (False, MOUNT_ATTR_RELATIME),
    "rnorelatime": (True, MOUNT_ATTR_RELATIME),
    "rnoatime": (False, MOUNT_ATTR_NOATIME),
    "ratime": (True, MOUNT_ATTR_NOATIME),
    "rstrictatime": (False, MOUNT_ATTR_STRICTATIME),
    "rnostrictatime": (True, MOUNT_ATTR_STRICTATIME),
    "rnosymfollow": (False, MOUNT_ATTR_NOSYMFOLLOW),
    "rsymfollow": (True, MOUNT_ATTR_NOSYMFOLLOW),
}


UNSUPPORTED = {"tmpcopyup"}
"""runc's extension words pyrunc does not implement: dropped with a warning, never passed to the
filesystem as data (which would make the mount fail)."""


def known_options() -> list[str]:
    """Every option word with a meaning of its own (for ``pyrunc features``)."""
    return sorted(set(FLAGS) | set(PROPAGATION) | set(RECURSIVE_ATTRS))


class Options:
    """The parsed ``options`` of one mount."""

    def __init__(self, words: Any) -> None:
        self.flags = 0
        self.propagation = 0
        self.attr_set = 0
        self.attr_clr = 0
        self.ignored = []
        data = []
        for word in words:
            if word in FLAGS:
                clear, flag = FLAGS[word]
                self.flags = self.flags & ~flag if clear else self.flags | flag
            elif word in PROPAGATION:
                self.propagation = PROPAGATION[word]
            elif word in RECURSIVE_ATTRS:
                clear, attr = RECURSIVE_ATTRS[word]
                if clear:
                    self.attr_clr |= attr
                    self.attr_set &= ~attr
                else:
                    self.attr_set |= attr
                    if attr & MOUNT_ATTR__ATIME == attr:
                        # an access-time mode is set by clearing the whole atime field first
                        self.attr_clr |= MOUNT_ATTR__ATIME
                    else:
                        self.attr_clr &= ~attr
            elif word in UNSUPPORTED:
                self.ignored.append(word)
            else:
                data.append(word)
        self.data = ",".join(data)


def container_path(where: str, path: str) -> str:
    """A clean absolute container path; runc accepts a relative one as relative to /."""
    if "\0" in path:
        raise InvalidArgument("config.json: %s: contains a NUL byte" % where)
    if not path:
        raise InvalidArgument("config.json: %s: must not be empty" % where)
    return os.path.normpath("/" + path.lstrip("/"))


def bind_source(where: str, source: str | None, bundle: str) -> str:
    """The absolute host path of a bind mount's source (relative ones are in the bundle)."""
    if not source:
        raise InvalidArgument("config.json: %s: a bind mount needs a source" % where)
    if "\0" in source:
        raise InvalidArgument("config.json: %s: contains a NUL byte" % where)
    path = source if os.path.isabs(source) else os.path.join(bundle, source)
    try:
        os.stat(path)
    except OSError as e:
        raise NotFound("config.json: %s: %s: %s" % (where, source, os.strerror(e.errno).lower()))  # type: ignore[arg-type]
    return path
