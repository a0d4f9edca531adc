"""Volumes: docker's ``local`` driver, kept on disk so several processes can share one root.

Layout under the service's root (``ENGINE_ROOT/volumes``), as docker's::

    NAME/_data              the volume's content (its Mountpoint)
    .meta/volumes.json      every volume's record, read and written under .meta/lock (flock)
    .trash/                 volumes being deleted (renamed here first, so a crash part way
                            leaves nothing a later call does not finish)

A record holds what inspect shows (CreatedAt, Driver, Labels, Options) and two sets of
container IDs: ``refs``, the containers that use the volume (``acquire``/``release``, taken at
container create and dropped at container remove: a volume with one is "in use" and cannot be
removed, forced or not), and ``mounts``, the containers running with it (``mount``/``unmount``:
a volume with driver options ``type``/``device``/``o`` is mounted on its ``_data`` when the
first one starts and unmounted when the last one stops, as docker's local driver does).

Names follow docker's rule ``[a-zA-Z0-9][a-zA-Z0-9_.-]+`` (at most 255 bytes, a directory
name); a volume created without one (an anonymous volume) gets 64 random hex digits and the
label ``com.docker.volume.anonymous``.

``prune`` removes the unused volumes that are anonymous, as docker >= 23 (API 1.42) does;
with the filter ``all=true`` it removes every unused volume.
"""
from __future__ import annotations

import errno
import os
import shutil
import stat

from pyrunc.engine.metadata import locked_document
from pyrunc.errors import Conflict, InvalidArgument, NotFound, SystemFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_DRIVER = "local"
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
NAME_MAX = 255
_NAME_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_REST = _NAME_FIRST | frozenset("_.-")
# docker's local driver: the options it knows, and which need which
VALID_OPTS = ("type", "device", "o", "size")
_MANDATORY_OPTS = {"device": ("type",), "type": ("device",), "o": ("device", "type")}
_FILTERS = ("dangling", "driver", "label", "name")
_PRUNE_FILTERS = ("label", "label!", "all")


def validate_name(name: Any) -> str:
    """``name`` if it is a valid local volume name, else InvalidArgument with docker's text."""
    if not isinstance(name, str):
        raise InvalidArgument("volume name must be a string")
    if len(name) == 1:
        raise InvalidArgument("volume name is too short, names should be at least two "
                              "alphanumeric characters")
    if not name or name[0] not in _NAME_FIRST or not all(c in _NAME_REST for c in name):
        raise InvalidArgument(
            "%s includes invalid characters for a local volume name, only "
            "\"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host "
            "directory, use absolute path" % _quoted(name))
    if len(name) > NAME_MAX:
        raise InvalidArgument("volume name is too long, names should be at most %d characters"
                              % NAME_MAX)
    return name


def _quoted(text: str) -> str:
    """Go's %q of a string, for error messages (control characters escaped)."""
    out = []
    for c in text[:300]:
        if c in "\"\\":
            out.append("\\" + c)
        elif c.isprintable():
            out.append(c)
        else:
            out.append("\\x%02x" % ord(c) if ord(c) < 0x100 else "\\u%04x" % ord(c))
    return '"%s"' % "".join(out)


def shown(text: Any) -> str:
    """``text`` as it may appear in a one-line message: as it is when printable and short,
    else quoted with escapes."""
    if isinstance(text, str) and text.isprintable() and len(text) <= 300:
        return text
    return _quoted(text if isinstance(text, str) else repr(text))


def _string_map(what: str, value: Any) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidArgument("volume %s must be a map of strings to strings" % what)
    if any("\0" in k or "\0" in v for k, v in value.items()):
        raise InvalidArgument("volume %s: a NUL byte in a key or value" % what)
    return dict(value)


def validate_opts(opts: dict | None) -> None:
    """docker's local driver checks of its options (InvalidArgument, docker's text)."""
    if not opts:
        return
    for key in opts:
        if key not in VALID_OPTS:
            raise InvalidArgument("invalid option: %s" % _quoted(key))
    if "size" in opts:
        # docker's local driver sizes a volume with an XFS project quota, which pyrunc has not
        raise InvalidArgument("quota size requested but no quota support")
    for key, needed in _MANDATORY_OPTS.items():
        if key in opts:
            for other in needed:
                if other not in opts:
                    raise InvalidArgument("missing required option: %s" % _quoted(other))


def _filter_values(filters: Any, allowed: tuple) -> dict[str, list[str]]:
    """Docker's filters (``{"key": ["v", ...]}`` or the API's ``{"key": {"v": true}}``) as lists,
    refusing keys other than ``allowed``."""
    out: dict[str, list[str]] = {}
    if not filters:
        return out
    if not isinstance(filters, dict):
        raise InvalidArgument("filters must be a map of names to lists of values")
    for key, values in filters.items():
        if key not in allowed:
            raise InvalidArgument("invalid filter '%s'" % key)
        if isinstance(values, str):
            values = [values]
        elif isinstance(values, dict):
            values = [v for v, on in values.items() if on]
        if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) for v in values):
            raise InvalidArgument("invalid filter '%s': values must be strings" % key)
        out[key] = list(values)
    return out


def _bool_filter(key: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise InvalidArgument("invalid filter '%s=%s'" % (key, value))


def _label_matches(labels: dict | None, spec: str) -> bool:
    key, sep, value = spec.partition("=")
    labels = labels or {}
    if key not in labels:
        return False
    return not sep or labels[key] == value


def _name_matches(name: str, pattern: str) -> bool:
    """docker's name filter, a regular expression searched in the name, for the patterns a
    volume name can match: a literal with ``^`` and ``$`` anchors (a general expression is
    not run here: Python's engine backtracks, Go's does not)."""
    start = pattern.startswith("^")
    end = pattern.endswith("$") and not pattern.endswith("\\$")
    literal = pattern[1 if start else 0:len(pattern) - 1 if end else len(pattern)]
    literal = literal.replace("\\.", ".")
    if start and end:
        return name == literal
    if start:
        return name.startswith(literal)
    if end:
        return name.endswith(literal)
    return literal in name


def _mountinfo_targets() -> set[str]:
    """The mount points of the caller's mount namespace."""
    targets = set()
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            fields = line.split(b" ")
            if len(fields) > 4:
                targets.add(_unescape(fields[4]))
    return targets


def _unescape(field: bytes) -> str:
    """mountinfo's octal escapes (``\\040`` for a space) undone."""
    out = bytearray()
    i = 0
    while i < len(field):
        if field[i:i + 1] == b"\\" and i + 3 < len(field) and field[i + 1:i + 4].isdigit():
            out.append(int(field[i + 1:i + 4], 8))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return os.fsdecode(bytes(out))


def tree_size(path: str) -> int:
    """Bytes of the files under ``path`` (each inode once; directories not counted), as docker
    reports a volume's size."""
    seen = set()
    total = 0
    for dirpath, dirs, files in os.walk(path):
        for name in files + dirs:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) or (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def _rmtree(path: str) -> None:
    """Remove ``path`` and everything below, also where a mode forbids it (a volume's content
    comes from containers); what another process removed meanwhile is no error."""
    def onerror(func: Any, p: str, exc_info: Any) -> None:
        if isinstance(exc_info[1], FileNotFoundError):
            return
        if func in (os.rmdir, os.unlink, os.remove):
            try:
                os.chmod(os.path.dirname(p), 0o700)
                func(p)
            except OSError:
                pass
    if os.path.lexists(path):
        shutil.rmtree(path, onerror=onerror)


class VolumeService:
    """The volumes of one engine root (``ENGINE_ROOT/volumes``); see the module docstring."""

    def __init__(self, root: str, *, owner: tuple[int, int] | None = None) -> None:
        """``owner``: the host uid and gid a new volume's ``_data`` is given (the remapped root
        with --userns-remap, as docker does); root's when None."""
        self.root = os.path.abspath(root)
        self.owner = owner
        self._meta = os.path.join(self.root, ".meta")
        self._trash = os.path.join(self.root, ".trash")
        os.makedirs(self._meta, mode=0o700, exist_ok=True)
        os.makedirs(self._trash, mode=0o700, exist_ok=True)
        os.chmod(self.root, 0o701)
        self._empty_trash()

    # -- the document --------------------------------------------------------------------

    def _doc(self, write: bool = True) -> Any:
        return locked_document(self._meta, "volumes.json", lambda: {"volumes": {}}, write)

    def _path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def mountpoint(self, name: str) -> str:
        """The host path of volume ``name``'s content."""
        return os.path.join(self.root, name, "_data")

    def _shape(self, name: str, rec: dict) -> dict:
        return {"CreatedAt": rec["CreatedAt"], "Driver": rec["Driver"], "Labels": rec["Labels"],
                "Mountpoint": self.mountpoint(name), "Name": name, "Options": rec["Options"],
                "Scope": "local"}

    def _empty_trash(self) -> None:
        for entry in os.listdir(self._trash):
            _rmtree(os.path.join(self._trash, entry))

    def _discard(self, name: str) -> None:
        """Move volume ``name``'s directory to the trash (under the lock); emptied later."""
        path = self._path(name)
        if os.path.lexists(path):
            os.rename(path, os.path.join(self._trash, "%s-%s" % (name, os.urandom(8).hex())))

    # -- the API -------------------------------------------------------------------------

    def create(self, name: str | None = None, driver: str | None = DEFAULT_DRIVER,
               driver_opts: dict | None = None, labels: dict | None = None) -> dict:
        """Create volume ``name`` (an anonymous one when None) and return its Volume document.
        An existing volume of that name is returned as it is (docker's rule)."""
        return self.create_for(name, driver, driver_opts, labels)[0]

    def create_for(self, name: str | None, driver: str | None = DEFAULT_DRIVER,
                   driver_opts: dict | None = None, labels: dict | None = None,
                   container_id: str | None = None) -> tuple[dict, bool]:
        """``create``, also recording ``container_id`` (when given) as a user in the same
        step; returns the Volume document and whether this call made the volume."""
        driver = driver or DEFAULT_DRIVER
        if driver != DEFAULT_DRIVER:
            raise NotFound("error looking up volume plugin %s: plugin %s not found"
                           % (shown(driver), _quoted(driver)))
        if container_id is not None:
            _check_container_id(container_id)
        if name is None or name == "":
            name = os.urandom(32).hex()
            labels = dict(_string_map("labels", labels) or {})
            labels[ANONYMOUS_LABEL] = ""
        else:
            try:
                validate_name(name)
            except InvalidArgument as e:
                raise InvalidArgument("create %s: %s" % (shown(name), e)) from None
        opts = _string_map("driver options", driver_opts)
        labels = _string_map("labels", labels)
        try:
            validate_opts(opts)
        except InvalidArgument as e:
            raise InvalidArgument("create %s: %s" % (name, e)) from None
        from pyrunc.libcontainer.timestamps import now
        made = False
        with self._doc() as doc:
            volumes = doc["volumes"]
            rec = volumes.get(name)
            if rec is None:
                # a directory without a record is what a crashed create or remove left
                self._discard(name)
                path = self._path(name)
                try:
                    os.mkdir(path, 0o701)
                    os.mkdir(os.path.join(path, "_data"), 0o755)
                    if self.owner is not None:
                        os.chown(os.path.join(path, "_data"), *self.owner)
                except OSError as e:
                    _rmtree(path)
                    raise SystemFailure("create volume %s" % name, e.errno) from None
                rec = {"CreatedAt": now(nano=False), "Driver": driver, "Labels": labels,
                       "Options": opts, "refs": [], "mounts": []}
                volumes[name] = rec
                made = True
            if container_id is not None and container_id not in rec["refs"]:
                rec["refs"].append(container_id)
            shape = self._shape(name, rec)
        self._empty_trash()
        return shape, made

    def _get(self, doc: dict, name: Any) -> dict:
        if not isinstance(name, str) or name not in doc["volumes"]:
            raise NotFound("get %s: no such volume" % shown(name))
        return doc["volumes"][name]

    def inspect(self, name: str) -> dict:
        """Volume ``name``'s document; NotFound "get NAME: no such volume"."""
        with self._doc(write=False) as doc:
            return self._shape(name, self._get(doc, name))

    def exists(self, name: str) -> bool:
        """Whether volume ``name`` exists."""
        with self._doc(write=False) as doc:
            return name in doc["volumes"]

    def references(self, name: str) -> list[str]:
        """The IDs of the containers using volume ``name``."""
        with self._doc(write=False) as doc:
            return list(self._get(doc, name)["refs"])

    def list(self, filters: Any = None) -> dict:
        """``{"Volumes": [...], "Warnings": []}``; filters dangling, driver, label, name (a
        substring of the name, ``^`` and ``$`` anchoring it)."""
        wanted = _filter_values(filters, _FILTERS)
        dangling = None
        for value in wanted.get("dangling", ()):
            dangling = _bool_filter("dangling", value)
        with self._doc(write=False) as doc:
            items = sorted(doc["volumes"].items())
        out = []
        for name, rec in items:
            if dangling is not None and (not rec["refs"]) != dangling:
                continue
            if "driver" in wanted and rec["Driver"] not in wanted["driver"]:
                continue
            if "name" in wanted and not any(_name_matches(name, v) for v in wanted["name"]):
                continue
            if not all(_label_matches(rec["Labels"], v) for v in wanted.get("label", ())):
                continue
            out.append(self._shape(name, rec))
        return {"Volumes": out, "Warnings": []}

    def remove(self, name: str, force: bool = False) -> None:
        """Remove volume ``name`` and its content. Refused while a container uses it
        (Conflict "remove NAME: volume is in use - [ID, ...]"), forced or not; ``force`` only
        makes a missing volume no error."""
        with self._doc() as doc:
            try:
                rec = self._get(doc, name)
            except NotFound:
                if force:
                    return
                raise
            if rec["refs"]:
                raise Conflict("remove %s: volume is in use - [%s]"
                               % (name, ", ".join(rec["refs"])))
            self._unmount_driver(name, rec)
            self._discard(name)
            del doc["volumes"][name]
        self._empty_trash()

    def prune(self, filters: Any = None) -> dict:
        """Remove the unused anonymous volumes (every unused one with ``all=true``), filtered by
        ``label``/``label!``; ``{"VolumesDeleted": [names], "SpaceReclaimed": bytes}``."""
        wanted = _filter_values(filters, _PRUNE_FILTERS)
        every = False
        for value in wanted.get("all", ()):
            every = _bool_filter("all", value)
        deleted = []
        reclaimed = 0
        with self._doc() as doc:
            for name, rec in sorted(doc["volumes"].items()):
                if rec["refs"]:
                    continue
                labels = rec["Labels"] or {}
                if not every and ANONYMOUS_LABEL not in labels:
                    continue
                if not all(_label_matches(labels, v) for v in wanted.get("label", ())):
                    continue
                if any(_label_matches(labels, v) for v in wanted.get("label!", ())):
                    continue
                self._unmount_driver(name, rec)
                reclaimed += tree_size(self.mountpoint(name))
                self._discard(name)
                del doc["volumes"][name]
                deleted.append(name)
        self._empty_trash()
        return {"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}

    def acquire(self, name: str, container_id: str) -> None:
        """Record that container ``container_id`` uses volume ``name`` (NotFound if none)."""
        _check_container_id(container_id)
        with self._doc() as doc:
            rec = self._get(doc, name)
            if container_id not in rec["refs"]:
                rec["refs"].append(container_id)

    def release(self, name: str, container_id: str) -> None:
        """Drop container ``container_id``'s use of volume ``name`` (and its mount, if it still
        has one); a volume or use that is not there is no error."""
        with self._doc() as doc:
            rec = doc["volumes"].get(name)
            if rec is None:
                return
            if container_id in rec["mounts"]:
                rec["mounts"].remove(container_id)
                if not rec["mounts"]:
                    self._unmount_driver(name, rec)
            if container_id in rec["refs"]:
                rec["refs"].remove(container_id)

    def mount(self, name: str, container_id: str) -> str:
        """Make volume ``name`` ready for a starting container and return its Mountpoint: with
        driver options, the first user mounts the device on ``_data``."""
        _check_container_id(container_id)
        with self._doc() as doc:
            rec = self._get(doc, name)
            if rec["Options"] and not self._is_mounted(name):
                self._mount_driver(name, rec)
            if container_id not in rec["mounts"]:
                rec["mounts"].append(container_id)
        return self.mountpoint(name)

    def unmount(self, name: str, container_id: str) -> None:
        """Container ``container_id`` stopped using volume ``name``; the last one unmounts."""
        with self._doc() as doc:
            rec = doc["volumes"].get(name)
            if rec is None or container_id not in rec["mounts"]:
                return
            rec["mounts"].remove(container_id)
            if not rec["mounts"]:
                self._unmount_driver(name, rec)

    # -- the local driver's mounts ---------------------------------------------------------

    def _is_mounted(self, name: str) -> bool:
        return self.mountpoint(name) in _mountinfo_targets()

    def _mount_driver(self, name: str, rec: dict) -> None:
        from pyrunc.libcontainer.mountflags import MS_BIND, MS_RDONLY, MS_REMOUNT, mount
        from pyrunc.libcontainer.specconv.mounts import Options
        opts = rec["Options"]
        words = [w for w in opts.get("o", "").split(",") if w]
        parsed = Options(words)
        target = self.mountpoint(name)
        device, fstype = opts["device"], opts["type"]
        if parsed.flags & MS_BIND:
            err = mount(device, target, None, parsed.flags, None)
            if not err and parsed.flags & MS_RDONLY:
                err = mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
        else:
            err = mount(device, target, fstype, parsed.flags, parsed.data or None)
        if err:
            raise SystemFailure("error while mounting volume '%s': mount %s (type %s, options "
                                "%s) on %s" % (name, device, fstype, opts.get("o", ""), target),
                                err)

    def _unmount_driver(self, name: str, rec: dict) -> None:
        if not rec["Options"]:
            return
        from pyrunc.libcontainer.mountflags import MNT_DETACH, umount
        target = self.mountpoint(name)
        while target in _mountinfo_targets():
            err = umount(target, MNT_DETACH)
            if err and err != errno.EINVAL:
                raise SystemFailure("unmount volume %s" % name, err)
            if err:
                break


def _check_container_id(container_id: Any) -> None:
    if not isinstance(container_id, str) or not container_id or len(container_id) > 128 or \
            not all(c in _NAME_REST for c in container_id):
        raise InvalidArgument("invalid container ID %r for a volume reference"
                              % (container_id,))


