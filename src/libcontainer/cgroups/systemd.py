"""The systemd cgroup driver (``--systemd-cgroup``): the container's cgroup is a transient
scope unit that systemd creates, over D-Bus, with ``Delegate=yes``; limits are set both as unit
properties (so systemd keeps them) and in the cgroup files (like the cgroupfs driver).

``cgroupsPath`` is ``slice:prefix:name`` as runc reads it: the unit is ``prefix-name.scope`` in
``slice`` (``system.slice`` when empty); an empty cgroupsPath is
``system.slice:pyrunc:<container id>``. Supported where systemd is PID 1 on a cgroup v2 host;
elsewhere a clear Unavailable error.
"""
from __future__ import annotations

import os
import re
import time

from pyrunc.errors import AlreadyExists, InvalidArgument, SystemFailure, Unavailable
from pyrunc.libcontainer.cgroups import resources as R
from pyrunc.libcontainer.cgroups.manager import read, rmdir_tree, write
from pyrunc.libcontainer.cgroups.v2 import V2Manager

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SYSTEMD_RUNNING = "/run/systemd/system"
MANAGER_PATH = "/org/freedesktop/systemd1"
MANAGER_IFACE = "org.freedesktop.systemd1.Manager"
UNIT_TIMEOUT = 10.0
_UNIT_NAME = re.compile(r"^[A-Za-z0-9:_.\\-]+$")


def _require_systemd():
    if not os.path.isdir(SYSTEMD_RUNNING):
        raise Unavailable("systemd cgroup driver: systemd is not running on this host "
                          "(no %s); run without --systemd-cgroup" % SYSTEMD_RUNNING)


def parse_cgroups_path(cgroups_path: str, container_id: str) -> tuple[Any, ...]:
    """(slice, unit) for a "slice:prefix:name" cgroupsPath."""
    if not cgroups_path:
        return "system.slice", "pyrunc-%s.scope" % container_id
    parts = cgroups_path.split(":")
    if len(parts) != 3:
        raise InvalidArgument('linux.cgroupsPath: "%s" is not "slice:prefix:name" (the form the '
                              "systemd cgroup driver needs)" % cgroups_path)
    slice_, prefix, name = parts
    slice_ = slice_ or "system.slice"
    if name.endswith(".slice"):
        unit = name
    else:
        unit = "%s-%s.scope" % (prefix, name) if prefix else name + ".scope"
    for what, value in (("slice", slice_), ("unit", unit)):
        if not _UNIT_NAME.match(value) or not value.endswith((".slice", ".scope")):
            raise InvalidArgument('linux.cgroupsPath: "%s": %s "%s" is not a valid systemd unit '
                                  "name" % (cgroups_path, what, value))
    if not slice_.endswith(".slice"):
        raise InvalidArgument('linux.cgroupsPath: "%s": "%s" is not a slice' % (cgroups_path, slice_))
    return slice_, unit


def slice_path(slice_: str) -> str:
    """"a-b.slice" -> "/a.slice/a-b.slice" (systemd nests slices by their dashes)."""
    if slice_ == "-.slice":
        return "/"
    stem = slice_[:-len(".slice")]
    if not stem or stem.startswith("-") or stem.endswith("-") or "--" in stem:
        raise InvalidArgument('linux.cgroupsPath: "%s" is not a valid slice name' % slice_)
    parts = stem.split("-")
    return "/" + "/".join("-".join(parts[:i + 1]) + ".slice" for i in range(len(parts)))


def new_manager(cgroups_path: Any, container_id: str) -> SystemdManager:
    _require_systemd()
    from pyrunc.libcontainer.cgroups import hierarchy
    layout = hierarchy.host_layout()
    if layout.version != 2:
        raise Unavailable("systemd cgroup driver: this build supports it on cgroup v2 hosts only; "
                          "run without --systemd-cgroup")
    slice_, unit = parse_cgroups_path(cgroups_path, container_id)
    root = layout.unified.mountpoint
    directory = os.path.join(root + slice_path(slice_).rstrip("/"), unit)
    return SystemdManager(cgroups_path, container_id, {"": directory}, root, slice_, unit)


def load_manager(state: Any) -> SystemdManager:
    return SystemdManager(state.get("path"), state.get("id", ""), state["paths"], state["root"],
                          state["slice"], state["unit"])


class SystemdManager(V2Manager):
    driver = "systemd"

    def __init__(self, cgroups_path: Any, container_id: str, dirs: Any, root: Any, slice_: Any,
                 unit: Any) -> None:
        super().__init__(cgroups_path, container_id, dirs, root)
        self.slice = slice_
        self.unit = unit

    def to_state(self) -> Any:
        state = super().to_state()
        state.update(slice=self.slice, unit=self.unit)
        return state

    def join(self) -> None:
        """None: the scope is a unit that only systemd makes, and a scope starts with its first
        pid, so the first child is placed by ``apply`` (a directory made here would be one
        systemd does not know, in a slice it owns)."""
        return None

    def _connect(self):
        from pyrunc.libcontainer.cgroups.dbus import Connection
        _require_systemd()
        return Connection()

    def apply(self, pid: int) -> Any:
        from pyrunc.libcontainer.cgroups.dbus import DBusError
        props = [("Description", ("s", "pyrunc container %s" % self.container_id)),
                 ("PIDs", ("au", [pid])), ("Delegate", ("b", True)),
                 ("DefaultDependencies", ("b", False)),
                 ("MemoryAccounting", ("b", True)), ("CPUAccounting", ("b", True)),
                 ("IOAccounting", ("b", True)), ("TasksAccounting", ("b", True))]
        if self.unit.endswith(".scope"):
            props.append(("Slice", ("s", self.slice)))
        if os.path.isdir(self.dir):
            # the scope runs already (exec into the container): join its cgroup
            write(self.dir, "cgroup.procs", pid)
            return
        with self._connect() as bus:
            try:
                bus.call(MANAGER_PATH, MANAGER_IFACE, "StartTransientUnit", "ssa(sv)a(sa(sv))",
                         self.unit, "replace", props, [])
            except DBusError as e:
                if e.name.endswith("UnitExists"):
                    raise AlreadyExists('systemd unit "%s" exists already' % self.unit) from None
                raise SystemFailure('start systemd unit "%s"' % self.unit, 0, e.message) from None
        self._wait(lambda: os.path.isdir(self.dir) and
                   str(pid) in read(os.path.join(self.dir, "cgroup.procs")).split(),
                   'systemd unit "%s" to take pid %d' % (self.unit, pid))

    def set(self, resources: Any) -> None:
        resources = resources or {}
        self._check(resources)                 # nothing reaches systemd that the files refuse
        props = unit_properties(resources)
        if props:
            from pyrunc.libcontainer.cgroups.dbus import DBusError
            with self._connect() as bus:
                try:
                    bus.call(MANAGER_PATH, MANAGER_IFACE, "SetUnitProperties", "sba(sv)",
                             self.unit, True, props)
                except DBusError as e:
                    raise SystemFailure('set properties of systemd unit "%s"' % self.unit, 0,
                                        e.message) from None
        super().set(resources)

    def destroy(self) -> Any:
        from pyrunc.libcontainer.cgroups.dbus import DBusError
        if not os.path.isdir(self.dir):
            # a scope whose processes are all gone is stopped and collected by systemd, with
            # its cgroup; asking for it then only gets an error (and systemd 252 may leave the
            # first error of its life unanswered)
            return
        with self._connect() as bus:
            try:
                bus.call(MANAGER_PATH, MANAGER_IFACE, "StopUnit", "ss", self.unit, "replace")
            except DBusError as e:
                if not e.name.endswith(("NoSuchUnit", "UnitNotLoaded")):
                    raise SystemFailure('stop systemd unit "%s"' % self.unit, 0, e.message) from None
            except SystemFailure:
                if os.path.isdir(self.dir):
                    raise           # else: collected meanwhile, and the error went unanswered
        self._wait(lambda: not os.path.isdir(self.dir) or not self.pids(),
                   'systemd unit "%s" to stop' % self.unit)
        rmdir_tree(self.dir)

    @staticmethod
    def _wait(check, what):
        deadline = time.monotonic() + UNIT_TIMEOUT
        delay = 0.002
        while not check():
            if time.monotonic() > deadline:
                raise SystemFailure("wait for %s" % what, 0, "timed out after %gs" % UNIT_TIMEOUT)
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def unit_properties(res: dict[str, dict[str, int]]) -> list[tuple[str, tuple[str, int]]]:
    """The systemd unit properties for the limits systemd itself manages (the rest only go to
    the cgroup files)."""
    props = []
    mem = R.section(res, "memory")
    limit = R.integer(mem, "limit", "memory.limit")
    if limit:
        props.append(("MemoryMax", ("t", limit if limit > 0 else R.UINT64_MAX)))
    reservation = R.integer(mem, "reservation", "memory.reservation")
    if reservation:
        props.append(("MemoryLow", ("t", reservation if reservation > 0 else R.UINT64_MAX)))
    swap = R.swap_for_v2(R.integer(mem, "swap", "memory.swap"), limit)
    if swap is not None:
        props.append(("MemorySwapMax", ("t", swap if swap >= 0 else R.UINT64_MAX)))
    pids = R.integer(R.section(res, "pids"), "limit", "pids.limit")
    if pids:
        props.append(("TasksMax", ("t", pids if pids > 0 else R.UINT64_MAX)))
    cpu = R.section(res, "cpu")
    weight = R.shares_to_weight(R.integer(cpu, "shares", "cpu.shares", minimum=0))
    if weight:
        props.append(("CPUWeight", ("t", weight)))
    quota = R.integer(cpu, "quota", "cpu.quota")
    period = R.integer(cpu, "period", "cpu.period", minimum=0)
    if period:
        props.append(("CPUQuotaPeriodUSec", ("t", period)))
    if quota:
        per_sec = R.UINT64_MAX
        if quota > 0:
            # systemd takes quota per second of wall time, in steps of 10 ms
            per_sec = quota * 1_000_000 // (period or 100_000)
            per_sec = max(10_000, -(-per_sec // 10_000) * 10_000)
        props.append(("CPUQuotaPerSecUSec", ("t", per_sec)))
    return props
