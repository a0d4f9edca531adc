"""The container's user: ``--user name[:group]`` and ``--group-add`` resolved against the
image's ``/etc/passwd`` and ``/etc/group``, as docker resolves them.

The files are read from the container's root filesystem, which the image's author controls:
every path is resolved inside the root (``open_in_root``), a symbolic link being read as the
container would read it, relative to its own root, so ``/etc/passwd -> /etc/shadow`` of the host
reads the image's ``/etc/shadow``, and ``../../..`` stops at the root. Only a regular file is
read, and only its first ``MAX_FILE`` bytes.

The rules are runc's ``user.GetExecUser`` as docker uses it:

* ``""`` is root; a numeric user needs no file (its gid is that of the passwd entry with the
  same uid, else 0); a name must be in ``/etc/passwd``
  (``unable to find user NAME: no matching entries in passwd file``).
* ``user:group`` takes the group's gid (a name must be in ``/etc/group``); without a group the
  supplementary groups are those that list the user as a member.
* ``additionalGids`` is the primary gid, then the supplementary groups, then ``GroupAdd``
  (names or numbers), in that order, each once.
"""
from __future__ import annotations

import errno
import os
import stat

from pyrunc.errors import InvalidArgument, SystemFailure

from pyrunc.engine.oci.options import shown

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_FILE = 4 << 20
"""The most read of /etc/passwd or /etc/group: far more than any real one."""
MAX_LINKS = 40
"""Symbolic links followed while resolving one path (the kernel's limit)."""
MAX_ID = 2 ** 31 - 1
"""runc refuses ids above this (``uids and gids must be in range 0-2147483647``)."""

_O_PATH_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


def open_in_root(root: str, path: str, flags: int = os.O_RDONLY) -> int:
    """A descriptor of ``path`` resolved inside ``root`` (symlinks followed as if ``root`` were
    ``/``, never out of it), opened with ``flags`` (the last component is opened with
    O_NOFOLLOW once resolved). OSError as the kernel gives it (ENOENT, ELOOP, ...)."""
    root_fd = os.open(root, _O_PATH_DIR)
    try:
        return _resolve(root_fd, path, flags)
    finally:
        os.close(root_fd)


def _resolve(root_fd: int, path: str, flags: int) -> int:
    todo = [c for c in path.split("/") if c not in ("", ".")]
    todo.reverse()                      # a stack: the next component is todo[-1]
    stack = [os.dup(root_fd)]           # descriptors of the directories walked, root first
    links = 0
    try:
        while todo:
            name = todo.pop()
            if name == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            parent = stack[-1]
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_LINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                target = os.readlink(name, dir_fd=parent)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                parts = [c for c in target.split("/") if c not in ("", ".")]
                todo.extend(reversed(parts))
                continue
            if todo:
                if not stat.S_ISDIR(st.st_mode):
                    raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
                stack.append(os.open(name, _O_PATH_DIR | os.O_NOFOLLOW, dir_fd=parent))
                continue
            return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        # the path was the root itself (or climbed back to it)
        return os.open(".", flags | os.O_CLOEXEC, dir_fd=stack[-1])
    finally:
        for fd in stack:
            os.close(fd)


def read_root_file(root: str, path: str) -> bytes | None:
    """The contents of the regular file ``path`` inside ``root`` (at most MAX_FILE bytes), or
    None when it does not exist or is not a regular file."""
    try:
        fd = open_in_root(root, path, os.O_RDONLY | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENXIO):
            return None
        raise SystemFailure("read %s in the container's root" % path, e.errno) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks = []
        left = MAX_FILE
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class PasswdEntry:
    __slots__ = ("name", "uid", "gid", "home")

    def __init__(self, name: str, uid: int, gid: int, home: str) -> None:
        self.name, self.uid, self.gid, self.home = name, uid, gid, home


class GroupEntry:
    __slots__ = ("name", "gid", "members")

    def __init__(self, name: str, gid: int, members: list[str]) -> None:
        self.name, self.gid, self.members = name, gid, members


def _lines(data: bytes | None) -> list[list[str]]:
    if not data:
        return []
    out = []
    for raw in data.decode("utf-8", "replace").split("\n"):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        out.append(line.split(":"))
    return out


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() and text.isascii() else None


def parse_passwd(data: bytes | None) -> list[PasswdEntry]:
    """The entries of a passwd file (``name:x:uid:gid:gecos:home:shell``); a line whose uid or
    gid is not a number is skipped, as runc's parser reads such a field as 0 only when empty."""
    out = []
    for f in _lines(data):
        f += [""] * (7 - len(f))
        uid = _int(f[2]) if f[2] else 0
        gid = _int(f[3]) if f[3] else 0
        if uid is None or gid is None:
            continue
        out.append(PasswdEntry(f[0], uid, gid, f[5]))
    return out


def parse_group(data: bytes | None) -> list[GroupEntry]:
    """The entries of a group file (``name:x:gid:member,member``)."""
    out = []
    for f in _lines(data):
        f += [""] * (4 - len(f))
        gid = _int(f[2]) if f[2] else 0
        if gid is None:
            continue
        out.append(GroupEntry(f[0], gid, [m for m in f[3].split(",") if m]))
    return out


def _atoi(text: str) -> int | None:
    """``text`` as Go's strconv.Atoi reads it (an optional sign, ASCII digits, within 64 bits),
    else None: such a user or group is a name."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or not (digits.isascii() and digits.isdigit()):
        return None
    value = int(text)
    return value if -2 ** 63 <= value < 2 ** 63 else None


def _in_range(value: int) -> int:
    if value < 0 or value > MAX_ID:
        raise InvalidArgument("uids and gids must be in range 0-%d" % MAX_ID)
    return value


class ExecUser:
    """A resolved user: ``uid``, ``gid``, ``additional_gids`` (docker's order), ``home``."""

    __slots__ = ("uid", "gid", "additional_gids", "home")

    def __init__(self, uid: int, gid: int, additional_gids: list[int], home: str) -> None:
        self.uid, self.gid, self.additional_gids, self.home = uid, gid, additional_gids, home

    def to_oci(self) -> dict[str, Any]:
        """``process.user`` of the runtime spec."""
        return {"uid": self.uid, "gid": self.gid, "additionalGids": list(self.additional_gids)}

    def __repr__(self) -> str:
        return "ExecUser(uid=%d, gid=%d, additional_gids=%r, home=%r)" % (
            self.uid, self.gid, self.additional_gids, self.home)


def resolve_user(rootfs: str, user: str | None, group_add: list[str] | None = None) -> ExecUser:
    """Resolve ``user`` (``""``, ``name``, ``uid``, ``name:group``, ``uid:gid``) and ``group_add``
    against ``rootfs``'s /etc/passwd and /etc/group; InvalidArgument with docker's message."""
    user = user or ""
    name, _, group = user.partition(":")
    passwd: list[PasswdEntry] | None = None
    groups: list[GroupEntry] | None = None

    def passwd_entries() -> list[PasswdEntry]:
        nonlocal passwd
        if passwd is None:
            passwd = parse_passwd(read_root_file(rootfs, "/etc/passwd"))
        return passwd

    def group_entries() -> list[GroupEntry]:
        nonlocal groups
        if groups is None:
            groups = parse_group(read_root_file(rootfs, "/etc/group"))
        return groups

    uid, gid, home, username = 0, 0, "/", ""
    uid_number = _atoi(name)
    if name:    # a number is always a uid, never a name
        match = next((p for p in passwd_entries()
                      if (p.uid == uid_number if uid_number is not None else p.name == name)),
                     None)
    else:
        match = next((p for p in passwd_entries() if p.uid == 0), None)
    if match is not None:
        uid, gid, home, username = match.uid, match.gid, match.home, match.name
    elif uid_number is not None:
        uid = _in_range(uid_number)
    elif name:
        raise InvalidArgument("unable to find user %s: no matching entries in passwd file"
                              % shown(name))
    supplementary: list[int] = []
    if group:
        gid_number = _atoi(group)
        gmatch = next((g for g in group_entries()
                       if (g.gid == gid_number if gid_number is not None else g.name == group)),
                      None)
        if gmatch is not None:
            gid = gmatch.gid
        elif gid_number is not None:
            gid = _in_range(gid_number)
        else:
            raise InvalidArgument("unable to find group %s: no matching entries in group file"
                                  % shown(group))
    elif username:
        supplementary = [g.gid for g in group_entries() if username in g.members]
    added: list[int] = []
    for entry in group_add or []:
        gmatch = next((g for g in group_entries() if g.name == entry or str(g.gid) == entry),
                      None)
        if gmatch is not None:
            extra = gmatch.gid
        else:
            number = _atoi(entry)
            if number is None:
                raise InvalidArgument("Unable to find group %s: no matching entries in group file"
                                      % shown(entry))
            extra = _in_range(number)
        if extra not in added:
            added.append(extra)
    gids: list[int] = []
    for g in [gid] + supplementary + added:
        if g not in gids:
            gids.append(g)
    return ExecUser(uid, gid, gids, home)
