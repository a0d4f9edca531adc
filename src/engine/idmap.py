"""User-namespace remapping for the whole engine (docker's ``--userns-remap``).

``parse_remap(value)`` resolves the setting as docker does:

* ``default``: the user and group ``dockremap``. Docker creates them (and their
  /etc/subuid and /etc/subgid entries) on first use; here they must exist already;
* ``USER`` or ``UID``: that user, and the group of the same name (of the same id for a UID);
* ``USER:GROUP``, ``UID:GID`` (or any mix): that user and that group.

The container's ids 0, 1, 2... are then the subordinate ids of the user in /etc/subuid and of
the group in /etc/subgid (entries ``NAME:START:COUNT``, matched by numeric id first, then by
name): every range listed for it, in file order, one after the other. ``root`` (or 0) cannot be
remapped with itself: as in docker, that turns remapping off (``parse_remap`` returns None,
with a warning).

The ranges must make a usable mapping: at least 65536 ids in all (the ids an image's files and
users take), none of them host id 0 or the invalid id 2^32-1, no two ranges overlapping, at
most 340 of them, their uid_map text less than a page (the kernel's limits on uid_map).

A remapped engine keeps its whole tree (images unpacked with shifted owners, containers) under
``ROOT/UID.GID`` (``IDMap.root_dir``), UID and GID being the host ids of the container's root,
as docker does, so an image is unpacked once per mapping and never shared between mappings.
"""
from __future__ import annotations

import os
import stat

from pyrunc.errors import FailedPrecondition, InvalidArgument, warn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

SUBUID = "/etc/subuid"
SUBGID = "/etc/subgid"
DEFAULT_NAME = "dockremap"     # the user and group behind "default"
MIN_IDS = 65536                # ids 0-65535: what images' files and users use
MAX_RANGES = 340               # lines a uid_map/gid_map may hold (Linux >= 4.15)
MAX_ID = (1 << 32) - 2         # (uid_t)-1 is no id
MAX_FILE = 16 << 20            # bytes of /etc/subuid read at most


class IDRange:
    """``size`` ids from ``container_id`` in the container are ``host_id``... on the host."""

    __slots__ = ("container_id", "host_id", "size")

    def __init__(self, container_id: int, host_id: int, size: int) -> None:
        self.container_id = container_id
        self.host_id = host_id
        self.size = size

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IDRange) and (self.container_id, self.host_id, self.size) == (
            other.container_id, other.host_id, other.size)

    def __repr__(self) -> str:
        return "IDRange(%d, %d, %d)" % (self.container_id, self.host_id, self.size)

    def oci(self) -> dict[str, int]:
        """The OCI runtime spec's LinuxIDMapping."""
        return {"containerID": self.container_id, "hostID": self.host_id, "size": self.size}


def _shift(ranges: tuple[IDRange, ...], ident: int, forward: bool) -> int | None:
    for r in ranges:
        start, target = (r.container_id, r.host_id) if forward else (r.host_id, r.container_id)
        if start <= ident < start + r.size:
            return target + ident - start
    return None


class IDMap:
    """The remapping of an engine: container ids to host ids for users and groups."""

    def __init__(self, uid_ranges: Iterable[IDRange], gid_ranges: Iterable[IDRange],
                 user: str = "", group: str = "") -> None:
        self.uid_ranges = tuple(uid_ranges)
        self.gid_ranges = tuple(gid_ranges)
        self.user = user
        self.group = group
        for kind, ranges in (("uid", self.uid_ranges), ("gid", self.gid_ranges)):
            if _shift(ranges, 0, True) is None:
                raise InvalidArgument("userns-remap: container %s 0 is not mapped" % kind)

    def __repr__(self) -> str:
        return "IDMap(%r, %r, user=%r, group=%r)" % (self.uid_ranges, self.gid_ranges,
                                                      self.user, self.group)

    @property
    def remap(self) -> str:
        """The resolved setting, ``user:group`` (docker shows it so in ``docker info``)."""
        return "%s:%s" % (self.user, self.group)

    @property
    def uid_mappings(self) -> list[dict[str, int]]:
        """The OCI ``linux.uidMappings``."""
        return [r.oci() for r in self.uid_ranges]

    @property
    def gid_mappings(self) -> list[dict[str, int]]:
        """The OCI ``linux.gidMappings``."""
        return [r.oci() for r in self.gid_ranges]

    def to_host(self, uid: int, gid: int) -> tuple[int, int]:
        """The host ids of the container's ``uid``:``gid``; InvalidArgument if unmapped."""
        host_uid = _shift(self.uid_ranges, uid, True)
        host_gid = _shift(self.gid_ranges, gid, True)
        if host_uid is None:
            raise InvalidArgument("userns-remap: container uid %d cannot be mapped to a host "
                                  "uid" % uid)
        if host_gid is None:
            raise InvalidArgument("userns-remap: container gid %d cannot be mapped to a host "
                                  "gid" % gid)
        return host_uid, host_gid

    def to_container(self, uid: int, gid: int) -> tuple[int, int]:
        """The container's ids of host ``uid``:``gid``; InvalidArgument if outside the map."""
        cuid = _shift(self.uid_ranges, uid, False)
        cgid = _shift(self.gid_ranges, gid, False)
        if cuid is None:
            raise InvalidArgument("userns-remap: host uid %d is not mapped in the container"
                                  % uid)
        if cgid is None:
            raise InvalidArgument("userns-remap: host gid %d is not mapped in the container"
                                  % gid)
        return cuid, cgid

    @property
    def root(self) -> tuple[int, int]:
        """The host uid and gid of the container's root."""
        return self.to_host(0, 0)

    @property
    def dir_name(self) -> str:
        """``UID.GID`` of the remapped root: the name of the engine's tree for this map."""
        return "%d.%d" % self.root

    def root_dir(self, root: str) -> str:
        """Where an engine rooted at ``root`` keeps everything under this mapping."""
        return os.path.join(root, self.dir_name)

    def make_root_dir(self, root: str) -> str:
        """Make ``root`` (0711: others may pass through it, not list it) and ``root/UID.GID``
        (0710, group the remapped root's gid: the container's root may pass through it to
        its own rootfs, nobody else may); returns the latter. Like docker's."""
        os.makedirs(root, 0o711, exist_ok=True)
        _owned_dir(root, 0o711, 0)
        path = self.root_dir(root)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        _owned_dir(path, 0o710, self.root[1])
        return path


def _owned_dir(path, mode, gid):
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise FailedPrecondition("userns-remap: %s: not a directory of this user" % path)
    if st.st_gid != gid:
        os.chown(path, -1, gid, follow_symlinks=False)
    if stat.S_IMODE(st.st_mode) != mode:
        os.chmod(path, mode)


# ---------------------------------------------------------------------------------------------
# the setting and the host's files

def _numeric(text: str) -> int | None:
    if text.isascii() and text.isdigit() and len(text) <= 10:
        value = int(text)
        if value <= MAX_ID:
            return value
    return None


def _check_name(text: str, value: str) -> None:
    if not text or len(text) > 256 or not text.isprintable() or any(c.isspace() for c in text):
        raise InvalidArgument("Invalid user/group specification in --userns-remap: %r" % value)


def _user(text: str, value: str) -> tuple[str, int]:
    import pwd
    uid = _numeric(text)
    try:
        entry = pwd.getpwuid(uid) if uid is not None else pwd.getpwnam(text)
    except KeyError:
        if uid is not None:
            raise FailedPrecondition("userns-remap: uid %d has no entry in /etc/passwd"
                                     % uid) from None
        if text == DEFAULT_NAME and value == "default":
            raise FailedPrecondition(
                "userns-remap: user %s not found: docker creates it for --userns-remap=default; "
                "here create it (with a group of the same name) and give it ranges in %s and %s"
                % (DEFAULT_NAME, SUBUID, SUBGID)) from None
        raise FailedPrecondition("userns-remap: Error during uid lookup for %r: no such user"
                                 % text) from None
    return entry.pw_name, entry.pw_uid


def _group(text: str) -> tuple[str, int]:
    import grp
    gid = _numeric(text)
    try:
        entry = grp.getgrgid(gid) if gid is not None else grp.getgrnam(text)
    except KeyError:
        if gid is not None:
            raise FailedPrecondition("userns-remap: gid %d has no entry in /etc/group"
                                     % gid) from None
        raise FailedPrecondition("userns-remap: Error during gid lookup for %r: no such group"
                                 % text) from None
    return entry.gr_name, entry.gr_gid


def read_ranges(path: str, name: str, ident: int) -> list[tuple[int, int]]:
    """The (start, count) entries of ``path`` (/etc/subuid or /etc/subgid) for the numeric id
    ``ident`` or, if it has none, for ``name``; malformed lines are refused, as docker does."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE + 1)
    except FileNotFoundError:
        raise FailedPrecondition("userns-remap: %s: no such file: it must give %s its "
                                 "subordinate ids" % (path, name)) from None
    except OSError as e:
        raise FailedPrecondition("userns-remap: %s: %s" % (path, e.strerror)) from None
    if len(data) > MAX_FILE:
        raise InvalidArgument("userns-remap: %s: larger than %d bytes" % (path, MAX_FILE))
    by_id: list[tuple[int, int, int]] = []
    by_name: list[tuple[int, int, int]] = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        line = raw.decode("utf-8", "surrogateescape").strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) != 3:
            raise InvalidArgument("userns-remap: %s line %d: not NAME:START:COUNT" % (path,
                                                                                     number))
        if fields[0] not in (str(ident), name):
            continue
        start, count = _numeric(fields[1]), _numeric(fields[2])
        if start is None or count is None:
            raise InvalidArgument("userns-remap: %s line %d: START and COUNT must be decimal "
                                  "ids below 2^32-1" % (path, number))
        (by_id if fields[0] == str(ident) else by_name).append((start, count, number))
    return _checked(path, by_id or by_name)


def _checked(path: str, entries: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
    if len(entries) > MAX_RANGES:
        raise InvalidArgument("userns-remap: %s: %d ranges; a user namespace takes at most %d"
                              % (path, len(entries), MAX_RANGES))
    spans = []
    for start, count, number in entries:
        where = "userns-remap: %s line %d" % (path, number)
        if count == 0:
            raise InvalidArgument("%s: an empty range" % where)
        if start == 0:
            raise InvalidArgument("%s: the range holds host id 0 (root)" % where)
        if start + count - 1 > MAX_ID:
            raise InvalidArgument("%s: the range %d-%d passes the last id, %d"
                                  % (where, start, start + count - 1, MAX_ID))
        spans.append((start, count, number))
    ordered = sorted(spans)
    for (s1, c1, n1), (s2, _, n2) in zip(ordered, ordered[1:]):
        if s2 < s1 + c1:
            raise InvalidArgument("userns-remap: %s lines %d and %d: the ranges overlap"
                                  % (path, min(n1, n2), max(n1, n2)))
    return [(s, c) for s, c, _ in entries]


def _ranges(path: str, kind: str, name: str, ident: int) -> list[IDRange]:
    entries = read_ranges(path, name, ident)
    if not entries:
        raise FailedPrecondition("userns-remap: Can't create ID mappings: no sub%s ranges found "
                                 "for %s %r in %s" % (kind, "user" if kind == "uid" else
                                                      "group", name, path))
    out, next_id = [], 0
    for start, count in entries:
        out.append(IDRange(next_id, start, count))
        next_id += count
    if next_id < MIN_IDS:
        raise InvalidArgument("userns-remap: the sub%s ranges of %r in %s hold %d ids; at least "
                              "%d are needed" % (kind, name, path, next_id, MIN_IDS))
    if next_id - 1 > MAX_ID:
        raise InvalidArgument("userns-remap: the sub%s ranges of %r in %s hold %d ids, more "
                              "than there are" % (kind, name, path, next_id))
    size = len("".join("%d %d %d\n" % (r.container_id, r.host_id, r.size) for r in out))
    page = os.sysconf("SC_PAGE_SIZE")
    if size >= page:
        raise InvalidArgument("userns-remap: the sub%s ranges of %r in %s make a %s_map of %d "
                              "bytes; the kernel takes less than %d"
                              % (kind, name, path, kind, size, page))
    return out


def parse_remap(value: str, *, subuid: str = SUBUID, subgid: str = SUBGID) -> IDMap | None:
    """The IDMap of the ``--userns-remap`` setting ``value`` (see the module's text); None
    when ``value`` is root's, which turns remapping off as in docker."""
    if not isinstance(value, str) or not value:
        raise InvalidArgument("Invalid user/group specification in --userns-remap: %r" % value)
    parts = value.split(":")
    if len(parts) > 2:
        raise InvalidArgument("Invalid user/group specification in --userns-remap: %r" % value)
    for part in parts:
        _check_name(part, value)
    user_text = DEFAULT_NAME if parts[0] == "default" else parts[0]
    user, uid = _user(user_text, value)
    if len(parts) == 2:
        group, gid = _group(parts[1])
    elif _numeric(parts[0]) is not None:
        group, gid = _group(str(uid))
    else:
        group, gid = _group(user_text)
    if user == "root" or uid == 0:
        warn("User namespaces: root cannot be remapped with itself; user namespaces are OFF")
        return None
    return IDMap(_ranges(subuid, "uid", user, uid), _ranges(subgid, "gid", group, gid),
                 user, group)
