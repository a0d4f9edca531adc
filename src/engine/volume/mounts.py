"""A container's mounts, from its host config and its image: docker's rules, parsed and resolved.

Where they come from, in docker's order (a destination may be used once: "Duplicate mount
point: /x"):

* ``Binds`` (``-v``): ``/host:/ctr[:mode]`` is a bind, ``name:/ctr[:mode]`` a named volume and
  ``/ctr`` alone an anonymous volume. The mode is comma-separated words, at most one of each
  kind: ``rw``/``ro`` (also ``ro-non-recursive``, ``ro-force-recursive``, ``rro``), ``z``/``Z``
  (SELinux relabelling: accepted and ignored, no SELinux here), a propagation (``private``,
  ``rprivate``, ``shared``, ``rshared``, ``slave``, ``rslave``), ``nocopy``, a consistency
  (``consistent``, ``cached``, ``delegated``: ignored on Linux, as docker does). A missing host
  path is created (0755) when the container starts, as docker does for ``-v``. A bind of the
  engine's root (or inside it, or above it) is ``rslave`` unless ``rshared`` is asked for;
  another propagation there is refused (docker's rule).
* ``Mounts`` (``--mount``, the API's objects): Type ``bind`` (Source must exist), ``volume``
  (Source is the name; none for an anonymous volume) or ``tmpfs``.
* ``Tmpfs`` (``--tmpfs``): ``{"/run": "rw,size=64m"}``: checked here (destinations,
  options, duplicates) and covering the image's volumes, but not among the results: as in
  docker, they are not the container's mount points (not in inspect's "Mounts"), and the OCI
  spec builder adds them itself.
* the image's ``Volumes``: an anonymous volume each, unless a mount above covers it.

In the OCI config (``MountPoint.to_oci``) a bind or volume is ``bind`` with ``rbind`` (``bind``
for ``BindOptions.NonRecursive``), ``ro`` plus ``rro`` when read-only (``ro`` alone for
``ro-non-recursive``), and a bind's propagation (``rprivate`` unless given); a tmpfs has
docker's ``noexec,nosuid,nodev,rprivate`` with the request's options merged over them.
"""
from __future__ import annotations

import os
import posixpath

from pyrunc.engine.volume.service import DEFAULT_DRIVER, shown
from pyrunc.errors import Conflict, InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from pyrunc.engine.volume.service import VolumeService

RW_MODES = ("rw", "ro", "ro-non-recursive", "ro-force-recursive", "rro")
LABEL_MODES = ("z", "Z")
PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
COPY_MODES = ("nocopy",)
CONSISTENCY_MODES = ("consistent", "cached", "delegated")
DEFAULT_PROPAGATION = "rprivate"
MOUNT_TYPES = ("bind", "volume", "tmpfs")
TMPFS_DEFAULTS = ("noexec", "nosuid", "nodev", DEFAULT_PROPAGATION)
# tmpfs's own key=value options (the rest of a tmpfs option string is mount flags)
TMPFS_DATA = ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol")
# flag words that set or clear the same flag: in a merge the last one of a group wins
_FLAG_GROUPS = (("ro", "rw"), ("suid", "nosuid"), ("dev", "nodev"), ("exec", "noexec"),
                ("sync", "async"), ("dirsync",), ("remount",), ("mand", "nomand"),
                ("atime", "noatime"), ("diratime", "nodiratime"), ("bind",), ("rbind",),
                ("relatime", "norelatime"), ("strictatime", "nostrictatime"),
                ("unbindable", "runbindable") + PROPAGATIONS)
_FLAG_KEY = {word: group[0] for group in _FLAG_GROUPS for word in group}
_MAX_PATH = 4096
_MOUNT_KEYS = ("Type", "Source", "Target", "ReadOnly", "Consistency", "BindOptions",
               "VolumeOptions", "TmpfsOptions")


class MountPoint:
    """One mount of a container: where, what, how (see the module docstring)."""

    __slots__ = ("type", "name", "source", "destination", "rw", "propagation", "mode",
                 "driver", "copy_data", "create_source", "recursive", "ro_recursive",
                 "tmpfs_options", "anonymous")

    def __init__(self, type: str, destination: str, *, source: str = "", name: str = "",
                 rw: bool = True, propagation: str = "", mode: str = "", driver: str = "",
                 copy_data: bool = False, create_source: bool = False, recursive: bool = True,
                 ro_recursive: bool = True, tmpfs_options: list[str] | None = None,
                 anonymous: bool = False) -> None:
        self.type = type
        self.destination = destination
        self.source = source
        self.name = name
        self.rw = rw
        self.propagation = propagation
        self.mode = mode
        self.driver = driver
        self.copy_data = copy_data            # copy the image's content in when empty
        self.create_source = create_source    # a -v bind: create a missing host path
        self.recursive = recursive            # rbind (else bind)
        self.ro_recursive = ro_recursive      # read-only below too (rro)
        self.tmpfs_options = tmpfs_options    # a tmpfs's merged options
        self.anonymous = anonymous            # a volume without a name given (rm -v removes)

    def __repr__(self) -> str:
        return "MountPoint(%s %s -> %s)" % (self.type, self.source or self.name,
                                            self.destination)

    def to_dict(self) -> dict:
        """The record kept in the container's config (``from_dict`` reads it back)."""
        return {k: getattr(self, k) for k in self.__slots__}

    @classmethod
    def from_dict(cls, d: dict) -> MountPoint:
        """The inverse of ``to_dict``."""
        kw = {k: d[k] for k in cls.__slots__ if k in d and k not in ("type", "destination")}
        return cls(d["type"], d["destination"], **kw)

    def to_oci(self) -> dict:
        """The OCI runtime-spec mount, as docker writes it."""
        if self.type == "tmpfs":
            return {"destination": self.destination, "type": "tmpfs", "source": "tmpfs",
                    "options": list(self.tmpfs_options or TMPFS_DEFAULTS)}
        options = ["rbind" if self.recursive else "bind"]
        if not self.rw:
            options.append("ro")
            if self.ro_recursive:
                options.append("rro")
        if self.propagation:
            options.append(self.propagation)
        return {"destination": self.destination, "type": "bind", "source": self.source,
                "options": options}

    def inspect(self) -> dict:
        """The entry of docker inspect's "Mounts" for this mount."""
        out: dict[str, Any] = {"Type": self.type}
        if self.name:
            out["Name"] = self.name
        out["Source"] = self.source
        out["Destination"] = self.destination
        if self.driver:
            out["Driver"] = self.driver
        out["Mode"] = self.mode
        out["RW"] = self.rw
        out["Propagation"] = self.propagation
        return out


def inspect_mounts(mount_points: list[MountPoint]) -> list[dict]:
    """docker inspect's "Mounts" of these mount points, by destination."""
    return [m.inspect() for m in sorted(mount_points, key=lambda m: m.destination)]


# -- validation helpers -----------------------------------------------------------------------

def _clean(path: str) -> str:
    return posixpath.normpath(path) if path else path


def _check_text(what: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidArgument("%s must be a string" % what)
    if "\0" in value:
        raise InvalidArgument("%s %s: contains a NUL byte" % (what, shown(value)))
    if len(value) > _MAX_PATH:
        raise InvalidArgument("%s %s...: longer than %d bytes" % (what, shown(value[:64]),
                                                                   _MAX_PATH))
    return value


def _check_target(target: str) -> str | None:
    """The error of a container path, or None if it is acceptable."""
    if not target:
        return "field Target must not be empty"
    if _clean(target) == "/":
        return "invalid specification: destination can't be '/'"
    if not target.startswith("/"):
        return "invalid mount path: '%s' mount path must be absolute" % shown(target)
    return None


def _mode_words(mode: str) -> list[str] | None:
    """The words of a ``-v`` mode, or None when it is not a valid mode (an unknown word, or two
    of one kind)."""
    if mode == "":
        return []
    words = mode.split(",")
    seen: set[str] = set()
    for word in words:
        for kind, table in (("rw", RW_MODES), ("label", LABEL_MODES), ("prop", PROPAGATIONS),
                            ("copy", COPY_MODES), ("consistency", CONSISTENCY_MODES)):
            if word in table:
                if kind in seen:
                    return None
                seen.add(kind)
                break
        else:
            return None
    return words


class _ConfigError(Exception):
    """A mount's field is wrong: the message is docker's, without its prefix."""


def _config_error(mount_type: Any, message: str) -> InvalidArgument:
    return InvalidArgument("invalid mount config for type \"%s\": %s" % (mount_type, message))


# -- Binds ------------------------------------------------------------------------------------

def parse_bind(raw: Any, volume_driver: str = "", engine_root: str | None = None) -> MountPoint:
    """One ``-v`` string as a MountPoint (no volume created, no path checked on the host);
    InvalidArgument with docker's text when it is not valid. ``engine_root``: see
    ``bind_propagation``."""
    raw = _check_text("volume specification", raw)
    invalid = "invalid volume specification: '%s'" % shown(raw)
    parts = raw.split(":", 3)
    if parts[0] == "":
        raise InvalidArgument(invalid)
    source = mode = ""
    if len(parts) == 1:
        target = parts[0]
    elif len(parts) == 2:
        if _mode_words(parts[1]) is not None:
            # "/foo:rw": a destination and a mode is no valid volume
            raise InvalidArgument(invalid)
        source, target = parts
    elif len(parts) == 3:
        source, target, mode = parts
    else:
        raise InvalidArgument(invalid)
    words = _mode_words(mode)
    if words is None:
        raise InvalidArgument("invalid mode: %s" % shown(mode))
    kind = "bind" if source.startswith("/") else "volume"
    propagation = next((w for w in words if w in PROPAGATIONS), "")
    nocopy = "nocopy" in words
    readonly = [w for w in words if w in RW_MODES and w != "rw"]
    problem = _check_target(target)
    if problem is None and kind == "bind" and nocopy:
        problem = "field VolumeOptions must not be specified"
    if problem is None and kind == "volume" and propagation:
        problem = "field BindOptions must not be specified"
    if problem is not None:
        raise InvalidArgument("%s: %s" % (invalid, _config_error(kind, problem)))
    mp = MountPoint(kind, _clean(target), rw=not readonly, mode=mode,
                    ro_recursive=readonly != ["ro-non-recursive"])
    if kind == "bind":
        mp.source = _clean(source)
        mp.propagation = bind_propagation(propagation, mp.source, engine_root)
        mp.create_source = True
    else:
        mp.name = source
        mp.anonymous = not source
        mp.driver = volume_driver or DEFAULT_DRIVER
        mp.copy_data = not nocopy
        mp.mode = mode or "z"     # docker's mode of a local volume given no mode
    return mp


def _within(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def bind_propagation(given: str, source: str, engine_root: str | None) -> str:
    """A bind's propagation: the one given, else rprivate; but a bind of the engine's root, of
    something inside it or of a directory holding it is ``rslave`` unless ``rshared`` is asked
    for (docker's rule: the engine's later unmounts, of volumes and roots, reach the
    container, which would otherwise keep them busy)."""
    if engine_root and (_within(source, engine_root) or _within(engine_root, source)):
        if given and given not in ("rslave", "rshared"):
            raise InvalidArgument(
                "invalid mount config: must use either propagation mode \"rslave\" or "
                "\"rshared\" when mount source is within the daemon root, daemon root: "
                "\"%s\", bind mount source: \"%s\", propagation: \"%s\""
                % (engine_root, shown(source), given))
        return given or "rslave"
    return given or DEFAULT_PROPAGATION


# -- Mounts -----------------------------------------------------------------------------------

def _object(what: str, value: Any, keys: tuple) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidArgument("%s must be an object" % what)
    for key in value:
        if key not in keys:
            raise InvalidArgument("%s: unknown field %s" % (what, shown(key)))
    return value


def _field(obj: dict | None, key: str, kinds: Any, default: Any, what: str) -> Any:
    if obj is None or obj.get(key) is None:
        return default
    value = obj[key]
    if not isinstance(value, kinds) or (kinds is int and isinstance(value, bool)):
        raise InvalidArgument("%s.%s has the wrong type" % (what, key))
    return value


def convert_tmpfs_options(size: int, mode: int, extra: Any, readonly: bool) -> list[str]:
    """The option words of a Mounts entry of type tmpfs, as docker derives them."""
    words = ["ro"] if readonly else []
    if mode:
        words.append("mode=%o" % mode)
    if size:
        for suffix, divisor in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
            if size % divisor == 0:
                words.append("size=%d%s" % (size // divisor, suffix))
                break
        else:
            words.append("size=%d" % size)
    for option in extra or ():
        if not isinstance(option, list) or not 1 <= len(option) <= 2 or \
                not all(isinstance(x, str) for x in option):
            raise _ConfigError("invalid option array length")
        if option[0] not in ("exec", "noexec"):
            raise _ConfigError("invalid option: " + shown(option[0]))
        words.append("=".join(option))
    return words


def parse_mount(spec: Any, engine_root: str | None = None) -> MountPoint:
    """One ``Mounts`` entry (the API's object) as a MountPoint; InvalidArgument with docker's
    text when it is not valid. A bind's Source must exist (unless CreateMountpoint).
    ``engine_root``: see ``bind_propagation``."""
    spec = _object("mount", spec, _MOUNT_KEYS)
    if spec is None:
        raise InvalidArgument("mount must be an object")
    kind = spec.get("Type")
    shown_kind = shown(kind) if isinstance(kind, str) else kind
    target = _check_text("mount target", spec.get("Target") or "")
    source = _check_text("mount source", spec.get("Source") or "")
    readonly = _field(spec, "ReadOnly", bool, False, "mount")
    if spec.get("Consistency") is not None and \
            spec["Consistency"] not in CONSISTENCY_MODES + ("default",):
        raise InvalidArgument("invalid mount config: unknown consistency %s"
                              % shown(spec["Consistency"]))
    bind = _object("BindOptions", spec.get("BindOptions"),
                   ("Propagation", "NonRecursive", "CreateMountpoint", "ReadOnlyNonRecursive",
                    "ReadOnlyForceRecursive"))
    vol = _object("VolumeOptions", spec.get("VolumeOptions"),
                  ("NoCopy", "Labels", "DriverConfig", "Subpath"))
    tmpfs = _object("TmpfsOptions", spec.get("TmpfsOptions"), ("SizeBytes", "Mode", "Options"))
    if kind not in MOUNT_TYPES:
        raise _config_error(shown_kind, "mount type unknown")
    problem = _check_target(target)
    if problem is not None:
        raise _config_error(kind, problem)
    try:
        if kind == "bind":
            return _bind_mount(source, target, readonly, bind, vol, engine_root)
        if kind == "volume":
            return _volume_mount(source, target, readonly, bind, vol)
        return _tmpfs_mount(source, target, readonly, bind, tmpfs)
    except _ConfigError as e:
        raise _config_error(kind, str(e)) from None


def _bind_mount(source: str, target: str, readonly: bool, bind: dict | None,
                vol: dict | None, engine_root: str | None) -> MountPoint:
    if not source:
        raise _ConfigError("field Source must not be empty")
    propagation = _field(bind, "Propagation", str, "", "BindOptions")
    if propagation and propagation not in PROPAGATIONS:
        raise _ConfigError("invalid propagation mode: %s" % shown(propagation))
    if vol is not None:
        raise _ConfigError("field VolumeOptions must not be specified")
    if not source.startswith("/"):
        raise _ConfigError("invalid mount path: '%s' mount path must be absolute"
                           % shown(source))
    create = _field(bind, "CreateMountpoint", bool, False, "BindOptions")
    if not os.path.lexists(source) and not create:
        raise _ConfigError("bind mount source path does not exist: %s" % shown(source))
    non_recursive_ro = _field(bind, "ReadOnlyNonRecursive", bool, False, "BindOptions")
    force_ro = _field(bind, "ReadOnlyForceRecursive", bool, False, "BindOptions")
    if non_recursive_ro and force_ro:
        raise _ConfigError("cannot set both ReadOnlyNonRecursive and ReadOnlyForceRecursive")
    if (non_recursive_ro or force_ro) and not readonly:
        raise _ConfigError("ReadOnlyNonRecursive and ReadOnlyForceRecursive need ReadOnly")
    return MountPoint("bind", _clean(target), source=_clean(source), rw=not readonly,
                      propagation=bind_propagation(propagation, _clean(source), engine_root),
                      create_source=create,
                      recursive=not _field(bind, "NonRecursive", bool, False, "BindOptions"),
                      ro_recursive=not non_recursive_ro)


def _volume_mount(source: str, target: str, readonly: bool, bind: dict | None,
                  vol: dict | None) -> MountPoint:
    if bind is not None:
        raise _ConfigError("field BindOptions must not be specified")
    if _field(vol, "Subpath", str, "", "VolumeOptions"):
        raise _ConfigError("VolumeOptions.Subpath is not supported by pyrunc")
    if readonly and not source:
        raise _ConfigError("must not set ReadOnly mode when using anonymous volumes")
    driver_config = _object("DriverConfig", _field(vol, "DriverConfig", dict, None,
                                                   "VolumeOptions"), ("Name", "Options"))
    mp = MountPoint("volume", _clean(target), name=source, rw=not readonly,
                    anonymous=not source, mode="z",
                    driver=_field(driver_config, "Name", str, "", "DriverConfig")
                    or DEFAULT_DRIVER,
                    copy_data=not _field(vol, "NoCopy", bool, False, "VolumeOptions"))
    return mp


def _tmpfs_mount(source: str, target: str, readonly: bool, bind: dict | None,
                 tmpfs: dict | None) -> MountPoint:
    if bind is not None:
        raise _ConfigError("field BindOptions must not be specified")
    if source:
        raise _ConfigError("field Source must not be specified")
    size = _field(tmpfs, "SizeBytes", int, 0, "TmpfsOptions")
    mode = _field(tmpfs, "Mode", int, 0, "TmpfsOptions")
    if size < 0:
        raise _ConfigError("TmpfsOptions.SizeBytes must not be negative")
    if not 0 <= mode <= 0o7777:
        raise _ConfigError("TmpfsOptions.Mode must be a file mode (0 to 07777)")
    words = convert_tmpfs_options(size, mode, _field(tmpfs, "Options", list, None,
                                                     "TmpfsOptions"), readonly)
    return MountPoint("tmpfs", _clean(target), rw=not readonly,
                      tmpfs_options=merge_tmpfs_options(list(TMPFS_DEFAULTS) + words))


# -- Tmpfs ------------------------------------------------------------------------------------

def _go_quoted_list(items: list[str]) -> str:
    return "[%s]" % " ".join('"%s"' % shown(i).strip('"') for i in items)


def merge_tmpfs_options(words: list[str]) -> list[str]:
    """Merge tmpfs option words as docker does: for each flag (``ro``/``rw``, ``exec``/
    ``noexec``, one propagation...) and each ``key=value`` the last one wins, kept in order;
    ``defaults`` is dropped; anything else is refused ("invalid tmpfs option")."""
    seen: set[str] = set()
    out: list[str] = []
    for word in reversed(words):
        if word == "defaults":
            continue
        if word in _FLAG_KEY:
            key = _FLAG_KEY[word]
        else:
            parts = word.split("=", 1)
            if len(parts) != 2 or parts[0] not in TMPFS_DATA:
                raise InvalidArgument("invalid tmpfs option %s" % _go_quoted_list(parts))
            key = parts[0] + "="
        if key not in seen:
            seen.add(key)
            out.insert(0, word)
    return out


def parse_tmpfs(target: Any, options: Any) -> MountPoint:
    """One entry of the ``Tmpfs`` map as a MountPoint (checked: destination and options)."""
    target = _check_text("tmpfs destination", target)
    options = _check_text("tmpfs options", options if options is not None else "")
    problem = _check_target(target)
    if problem is not None:
        raise InvalidArgument(problem)
    words = [w for w in options.split(",") if w] if options else []
    merged = merge_tmpfs_options(list(TMPFS_DEFAULTS) + words)
    return MountPoint("tmpfs", _clean(target), rw="ro" not in merged, tmpfs_options=merged)


# -- resolving a container's mounts -------------------------------------------------------------

def _depth(path: str) -> int:
    return path.count("/")


def parse_mounts(host_config: dict | None, image_volumes: Any = None,
                 engine_root: str | None = None) -> list[MountPoint]:
    """The mount points of a container from its host config and its image's Volumes, parsed
    and checked (duplicates included), with no volume created: named and anonymous volumes
    have no source yet. The ``Tmpfs`` map is checked but not returned (see the module
    docstring). Parents come before the mounts below them."""
    host_config = host_config or {}
    if not isinstance(host_config, dict):
        raise InvalidArgument("HostConfig must be an object")
    if host_config.get("VolumesFrom"):
        raise InvalidArgument("VolumesFrom is not supported by pyrunc")
    driver = host_config.get("VolumeDriver") or ""
    if not isinstance(driver, str):
        raise InvalidArgument("HostConfig.VolumeDriver must be a string")
    binds = host_config.get("Binds") or []
    mounts = host_config.get("Mounts") or []
    tmpfs = host_config.get("Tmpfs") or {}
    if not isinstance(binds, list):
        raise InvalidArgument("HostConfig.Binds must be a list of strings")
    if not isinstance(mounts, list):
        raise InvalidArgument("HostConfig.Mounts must be a list of objects")
    if not isinstance(tmpfs, dict):
        raise InvalidArgument("HostConfig.Tmpfs must be a map of paths to options")
    by_destination: dict[str, MountPoint] = {}

    def add(mp: MountPoint) -> None:
        if mp.destination in by_destination:
            raise InvalidArgument("Duplicate mount point: %s" % shown(mp.destination))
        by_destination[mp.destination] = mp

    tmpfs_points = [parse_tmpfs(t, o) for t, o in tmpfs.items()]
    tmpfs_targets = {mp.destination for mp in tmpfs_points}
    for raw in binds:
        mp = parse_bind(raw, driver, engine_root)
        if mp.destination in tmpfs_targets:
            raise InvalidArgument("Duplicate mount point: %s" % shown(mp.destination))
        add(mp)
    for spec in mounts:
        mp = parse_mount(spec, engine_root)
        if mp.destination in tmpfs_targets:
            raise InvalidArgument("Duplicate mount point: %s" % shown(mp.destination))
        add(mp)
    if image_volumes:
        if not isinstance(image_volumes, dict):
            raise InvalidArgument("the image's Volumes must be a map")
        for path in sorted(image_volumes):
            path = _check_text("image volume", path)
            problem = _check_target(path)
            if problem is not None:
                raise InvalidArgument("image volume: %s" % problem)
            destination = _clean(path)
            if destination not in by_destination and destination not in tmpfs_targets:
                by_destination[destination] = MountPoint(
                    "volume", destination, anonymous=True, driver=driver or DEFAULT_DRIVER,
                    copy_data=True)
    return sorted(by_destination.values(), key=lambda m: (_depth(m.destination),
                                                          m.destination))


def resolve_mounts(host_config: dict | None, image_volumes: Any = None, *, container_id: str,
                   volumes: VolumeService) -> list[MountPoint]:
    """``parse_mounts``, then create the named volumes that do not exist yet and an anonymous
    volume for each mount without a name, each referenced by ``container_id`` (so it is in
    use until ``release_mounts``). Anything this call made is undone when it fails."""
    points = parse_mounts(host_config, image_volumes, os.path.dirname(volumes.root))
    done: list[tuple[str, bool]] = []
    try:
        for mp in points:
            if mp.type != "volume":
                continue
            labels = options = None
            spec_volume = _volume_options(host_config, mp)
            if spec_volume is not None:
                labels = spec_volume.get("Labels")
                options = (spec_volume.get("DriverConfig") or {}).get("Options")
            shape, made = volumes.create_for(mp.name or None, mp.driver, options, labels,
                                             container_id)
            done.append((shape["Name"], made))
            mp.name = shape["Name"]
            mp.source = shape["Mountpoint"]
            mp.driver = shape["Driver"]
    except BaseException:
        for name, made in reversed(done):
            volumes.release(name, container_id)
            if made:
                volumes.remove(name, force=True)
        raise
    return points


def _volume_options(host_config: dict | None, mp: MountPoint) -> dict | None:
    """The VolumeOptions of the Mounts entry that made ``mp`` (None for the others)."""
    for spec in (host_config or {}).get("Mounts") or []:
        if spec.get("Type") == "volume" and _clean(spec.get("Target") or "") == mp.destination:
            return spec.get("VolumeOptions")
    return None


def setup_mounts(mount_points: list[MountPoint], volumes: VolumeService,
                 container_id: str) -> None:
    """Before a container starts: mount its volumes that have driver options (the first user
    mounts) and create the missing host paths of its ``-v`` binds (0755), as docker does."""
    mounted = []
    try:
        for mp in mount_points:
            if mp.type == "volume":
                volumes.mount(mp.name, container_id)
                mounted.append(mp.name)
            elif mp.type == "bind" and mp.create_source and not os.path.lexists(mp.source):
                try:
                    os.makedirs(mp.source, 0o755, exist_ok=True)
                except OSError as e:
                    raise InvalidArgument("error while creating mount source path '%s': %s"
                                          % (mp.source, os.strerror(e.errno or 0).lower())
                                          ) from None
    except BaseException:
        for name in mounted:
            volumes.unmount(name, container_id)
        raise


def teardown_mounts(mount_points: list[MountPoint], volumes: VolumeService,
                    container_id: str) -> None:
    """After a container stopped: the last user of a volume with driver options unmounts it."""
    for mp in mount_points:
        if mp.type == "volume":
            volumes.unmount(mp.name, container_id)


def release_mounts(mount_points: list[MountPoint], volumes: VolumeService, container_id: str,
                   remove_anonymous: bool = False) -> None:
    """When a container is removed: drop its use of every volume; with ``remove_anonymous``
    (``docker rm -v``) also remove its anonymous volumes that no other container uses."""
    for mp in mount_points:
        if mp.type != "volume":
            continue
        volumes.release(mp.name, container_id)
        if remove_anonymous and mp.anonymous:
            try:
                volumes.remove(mp.name)
            except (Conflict, NotFound):
                pass
