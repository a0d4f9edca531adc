"""Where the cgroup hierarchies are and where a container's cgroup goes in them.

The host layout is read from ``/proc/self/mountinfo`` (which hierarchies are mounted, where, and
at which root) and ``/proc/self/cgroup`` (the cgroup this process is in on each hierarchy). Three
layouts exist:

* ``legacy``: cgroup v1 only, one hierarchy per controller (or per co-mounted group);
* ``hybrid``: cgroup v1 controllers plus a cgroup2 hierarchy (systemd mounts it at
  ``/sys/fs/cgroup/unified``), which holds no or few controllers; the v1 controllers are used and
  the container is also placed in the unified hierarchy, as runc does;
* ``unified``: cgroup v2 only.

Path rules (runc's): the configured ``cgroupsPath`` is cleaned so it cannot climb out of the
hierarchy; an absolute path is taken from the hierarchy's root, a relative one from the cgroup
this process is in (on cgroup v2 from its parent when that is a systemd ``.scope``); an empty one
is the container id, relative.
"""
from __future__ import annotations

import posixpath

from pyrunc.errors import InvalidArgument, Unavailable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MOUNTINFO = "/proc/self/mountinfo"
PROC_CGROUP = "/proc/self/cgroup"

# The v1 controllers runc knows, in the order it applies them; named hierarchies come after.
V1_CONTROLLERS = ("cpuset", "cpu", "cpuacct", "memory", "devices", "freezer", "blkio", "pids",
                  "net_cls", "net_prio", "hugetlb", "perf_event", "rdma", "misc")
NAMED_SYSTEMD = "name=systemd"


class Mount:
    """One mounted cgroup hierarchy: where it is mounted (/sys/fs/cgroup/memory), the cgroup at
    that mountpoint (not "/" inside a cgroup namespace), "cgroup" or "cgroup2", and the v1
    controllers it holds (("cpu", "cpuacct"), ("name=systemd",); () for cgroup2)."""

    __slots__ = ("mountpoint", "root", "fstype", "controllers")

    def __init__(self, mountpoint: str, root: str, fstype: str, controllers: Any) -> None:
        self.mountpoint = mountpoint
        self.root = root
        self.fstype = fstype
        self.controllers = controllers

    def __eq__(self, other):
        return type(other) is Mount and all(
            getattr(self, a) == getattr(other, a) for a in self.__slots__)

    def __repr__(self):
        return "Mount(%r, %r, %r, %r)" % (self.mountpoint, self.root, self.fstype,
                                          self.controllers)

    def host_dir(self, cgroup_path: str) -> str:
        """The directory of ``cgroup_path`` (as /proc/PID/cgroup names it) under this mount."""
        rel = posixpath.relpath(cgroup_path, self.root)
        if rel == ".":
            return self.mountpoint
        if rel.startswith(".."):
            # outside what this mount shows (another cgroup namespace): take it from the root
            rel = cgroup_path.lstrip("/")
        return posixpath.join(self.mountpoint, rel)


def _unescape(field):
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        code = field[i + 1:i + 4]
        if field[i] == "\\" and len(code) == 3 and all(c in "01234567" for c in code):
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: Any) -> Any:
    """The cgroup mounts listed in a mountinfo text, in order, as [Mount]."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        if sep < 6 or len(fields) < sep + 4:
            continue
        fstype = fields[sep + 1]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        controllers = ()
        if fstype == "cgroup":
            known = []
            for opt in fields[sep + 3].split(","):
                if opt in V1_CONTROLLERS or opt.startswith("name="):
                    known.append(opt)
            controllers = tuple(known)
        mounts.append(Mount(_unescape(fields[4]), _unescape(fields[3]), fstype, controllers))
    return mounts


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """``/proc/PID/cgroup`` as {controller: path}; the cgroup2 entry is under "" ."""
    paths = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            paths[""] = path
        else:
            for c in controllers.split(","):
                paths[c] = path
    return paths


def clean_path(path: str) -> str:
    """runc's CleanPath: lexically clean; a relative path cannot climb above its start."""
    if not path:
        return ""
    absolute = path.startswith("/")
    cleaned = posixpath.normpath("/" + path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if absolute:
        return cleaned
    rel = cleaned.lstrip("/")
    return rel or "."


class Layout:
    """The cgroup layout of this host, seen from this process."""

    def __init__(self, mode: str, v1: Any, unified: Any, own: dict[str, str]) -> None:
        self.mode = mode            # "legacy" | "hybrid" | "unified"
        self.v1 = v1                # controller -> Mount (v1 and named hierarchies)
        self.unified = unified      # the cgroup2 Mount, or None
        self.own = own              # controller -> this process's cgroup path ("" for cgroup2)

    @property
    def version(self) -> int:
        return 2 if self.mode == "unified" else 1

    def dirs(self, cgroups_path: str, container_id: str) -> dict[str, str]:
        """{controller: host dir} for the container's cgroup (runc's rules; see module doc)."""
        inner = clean_path(cgroups_path) if cgroups_path else container_id
        if not inner or inner in (".", "/"):
            raise InvalidArgument("linux.cgroupsPath: %r names the root cgroup; a container needs "
                                  "its own cgroup" % (cgroups_path,))
        dirs = {}
        if self.mode == "unified":
            dirs[""] = self._dir(self.unified, "", inner, parent_of_scope=True)
            return dirs
        seen = {}
        for controller, mount in self.v1.items():
            if mount.mountpoint not in seen:
                seen[mount.mountpoint] = self._dir(mount, controller, inner)
            dirs[controller] = seen[mount.mountpoint]
        if self.unified is not None:
            dirs[""] = self._dir(self.unified, "", inner, parent_of_scope=True)
        return dirs

    def _dir(self, mount, controller, inner, parent_of_scope=False):
        if inner.startswith("/"):
            return posixpath.join(mount.mountpoint, inner.lstrip("/"))
        own = self.own.get(controller, "/")
        if parent_of_scope and own.endswith(".scope"):
            own = posixpath.dirname(own)
        return posixpath.join(mount.host_dir(own), inner)


def layout_from(mountinfo_text: str, proc_cgroup_text: str) -> Layout:
    """The Layout described by a mountinfo text and a /proc/self/cgroup text."""
    v1: dict[Any, Any]
    v1, unified = {}, None
    for mount in parse_mountinfo(mountinfo_text):
        if mount.fstype == "cgroup2":
            if unified is None:
                unified = mount
            continue
        for controller in mount.controllers:
            v1.setdefault(controller, mount)
    own = parse_proc_cgroup(proc_cgroup_text)
    if any(c in v1 for c in V1_CONTROLLERS):
        mode = "hybrid" if unified is not None else "legacy"
    elif unified is not None:
        mode = "unified"
        v1 = {}
    else:
        raise Unavailable("cgroups: no cgroup hierarchy is mounted on this host")
    return Layout(mode, v1, unified, own)


def host_layout() -> Any:
    """The Layout of this host, read now."""
    with open(MOUNTINFO) as f:
        mountinfo = f.read()
    with open(PROC_CGROUP) as f:
        proc_cgroup = f.read()
    return layout_from(mountinfo, proc_cgroup)

