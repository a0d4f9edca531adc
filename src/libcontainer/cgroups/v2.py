"""The cgroup v2 backend: one directory in the unified hierarchy, controllers enabled on the way
down from the root, devices through an eBPF program."""
from __future__ import annotations

import os

from pyrunc.errors import InvalidArgument, SystemFailure, Unavailable, warn
from pyrunc.libcontainer.cgroups import resources as R
from pyrunc.libcontainer.cgroups.manager import (
    Join, Manager, mkdir_p, procs_in_tree, read, read_int, read_keyed, remove_created, rmdir_tree,
    unavailable, write)
from pyrunc.libcontainer.cgroups.v1 import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_REC, THROTTLES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEVICE_PROGRAM = "<eBPF device program>"    # not a file: the rules go to ebpf.set_device_rules
IO_MAX_KEYS = {"throttleReadBpsDevice": "rbps", "throttleWriteBpsDevice": "wbps",
               "throttleReadIOPSDevice": "riops", "throttleWriteIOPSDevice": "wiops"}


def planned_writes(res: dict[str, Any]) -> list[Any]:
    """[(controller, file or (alternatives...), value or (per alternative...), field)] in write
    order; InvalidArgument for any malformed field before anything is written. The device rules
    come last as (None, DEVICE_PROGRAM, [Rule], "devices")."""
    if not isinstance(res, dict):
        raise InvalidArgument("linux.resources: must be an object")
    w: list[Any] = []

    mem = R.section(res, "memory")
    limit = R.integer(mem, "limit", "memory.limit")
    swap = R.integer(mem, "swap", "memory.swap")
    swap_v2 = R.swap_for_v2(swap, limit)
    if limit:
        w.append(("memory", "memory.max", R.v2_limit(limit), "memory.limit"))
    if swap_v2 is not None:
        w.append(("memory", "memory.swap.max", R.v2_limit(swap_v2), "memory.swap"))
    reservation = R.integer(mem, "reservation", "memory.reservation")
    if reservation:
        w.append(("memory", "memory.low", R.v2_limit(reservation), "memory.reservation"))
    R.integer(mem, "swappiness", "memory.swappiness", minimum=0, maximum=100)
    for key in ("kernel", "kernelTCP"):
        if R.integer(mem, key, "memory." + key):
            warn("linux.resources.memory.%s: ignored (no kernel memory limit on cgroup v2)" % key)
    if R.boolean(mem, "disableOOMKiller", "memory.disableOOMKiller"):
        warn("linux.resources.memory.disableOOMKiller: ignored (cgroup v2 cannot disable the OOM killer)")
    R.boolean(mem, "useHierarchy", "memory.useHierarchy")
    R.boolean(mem, "checkBeforeUpdate", "memory.checkBeforeUpdate")

    cpu = R.section(res, "cpu")
    weight = R.shares_to_weight(R.integer(cpu, "shares", "cpu.shares", minimum=0))
    if weight:
        w.append(("cpu", "cpu.weight", weight, "cpu.shares"))
    quota = R.integer(cpu, "quota", "cpu.quota")
    period = R.integer(cpu, "period", "cpu.period", minimum=0)
    if quota or period:
        value = str(quota) if quota and quota > 0 else "max"
        if period:
            value += " %d" % period
        w.append(("cpu", "cpu.max", value, "cpu.quota"))
    burst = R.integer(cpu, "burst", "cpu.burst", minimum=0)
    if burst is not None:
        w.append(("cpu", "cpu.max.burst", burst, "cpu.burst"))
    for key in ("realtimeRuntime", "realtimePeriod"):
        if R.integer(cpu, key, "cpu." + key):
            raise Unavailable("linux.resources.cpu.%s: realtime scheduling limits are not available "
                              "on cgroup v2" % key)
    w.extend(R.idle_and_cpuset(cpu))

    pids_limit = R.integer(R.section(res, "pids"), "limit", "pids.limit")
    if pids_limit:
        w.append(("pids", "pids.max", R.v2_limit(pids_limit), "pids.limit"))

    blkio = R.section(res, "blockIO")
    bw = R.integer(blkio, "weight", "blockIO.weight", minimum=0, maximum=1000)
    if bw:
        if bw < 10:
            raise R.bad("blockIO.weight", "%d is out of range [10, 1000]" % bw)
        w.append(("io", ("io.bfq.weight", "io.weight"),
                  (str(bw), "default %d" % R.blkio_weight_to_io_weight(bw)), "blockIO.weight"))
    if R.integer(blkio, "leafWeight", "blockIO.leafWeight", minimum=0, maximum=1000):
        warn("linux.resources.blockIO.leafWeight: ignored (no leaf weight on cgroup v2)")
    for i, entry in enumerate(R.array(blkio, "weightDevice", "blockIO.weightDevice")):
        name = "blockIO.weightDevice[%d]" % i
        major, minor = R.device_numbers(entry, name)
        dw = R.integer(entry, "weight", name + ".weight", minimum=0, maximum=1000)
        R.integer(entry, "leafWeight", name + ".leafWeight", minimum=0, maximum=1000)
        if dw:
            w.append(("io", ("io.bfq.weight", "io.weight"),
                      ("%d:%d %d" % (major, minor, dw),
                       "%d:%d %d" % (major, minor, R.blkio_weight_to_io_weight(dw))), name))
    for key, _ in THROTTLES:
        for i, entry in enumerate(R.array(blkio, key, "blockIO." + key)):
            name = "blockIO.%s[%d]" % (key, i)
            major, minor = R.device_numbers(entry, name)
            rate = R.integer(entry, "rate", name + ".rate", minimum=0)
            w.append(("io", "io.max", "%d:%d %s=%s" % (major, minor, IO_MAX_KEYS[key],
                                                      rate if rate else "max"), name))

    for size, hl in R.hugepage_limits(res):
        w.append(("hugetlb", "hugetlb.%s.max" % size, hl, "hugepageLimits"))

    net = R.section(res, "network")
    if net.get("classID") is not None or net.get("priorities"):
        raise Unavailable('cgroup controller "net_cls" is not available on cgroup v2 '
                          "(for linux.resources.network)")

    for device, limits in R.rdma_limits(res):
        w.append(("rdma", "rdma.max", "%s %s" % (device, limits), "rdma." + device))

    for key, value in R.unified_entries(res):
        w.append((key.split(".", 1)[0], key, value, "unified." + key))
    if "devices" in res:
        from pyrunc.libcontainer.cgroups import devices
        w.append((None, DEVICE_PROGRAM, devices.parse_rules(res), "devices"))
    return w


class V2Manager(Manager):
    version = 2

    def __init__(self, cgroups_path: Any, container_id: str, dirs: Any, root: Any) -> None:
        super().__init__(cgroups_path, container_id, dirs)
        self.root = root            # the unified hierarchy's mountpoint

    @property
    def dir(self) -> Any:
        return self._dirs[""]

    def to_state(self) -> Any:
        state = super().to_state()
        state["root"] = self.root
        return state

    def create(self) -> Any:
        """Make the cgroup, handing the controllers down on the way; returns the directories
        made."""
        created = []
        try:
            rel = os.path.relpath(self.dir, self.root)
            current = self.root
            for part in rel.split("/"):
                self._enable_controllers(current)
                current = os.path.join(current, part)
                created.extend(mkdir_p(current))
        except BaseException:
            remove_created(created)
            raise
        return created

    def join(self) -> Join | None:
        return Join((), self.dir)

    @staticmethod
    def _enable_controllers(directory):
        """Hand every controller ``directory`` has down to its children (best effort, per
        controller: a parent with processes in it cannot delegate domain controllers)."""
        available = read(os.path.join(directory, "cgroup.controllers")).split()
        enabled = set(read(os.path.join(directory, "cgroup.subtree_control")).split())
        for controller in available:
            if controller in enabled:
                continue
            try:
                write(directory, "cgroup.subtree_control", "+" + controller)
            except (SystemFailure, Unavailable):
                continue

    def controllers(self) -> Any:
        return set(read(os.path.join(self.dir, "cgroup.controllers")).split())

    def _check(self, resources):
        """The planned writes, after checking that every controller is there and that a new
        memory limit is not below what the cgroup uses."""
        writes = planned_writes(resources)
        have = self.controllers()
        for controller in {c for c, _, _, _ in writes}:
            if controller is not None and controller not in have:
                raise unavailable(controller)
        for _, file, value, _ in writes:
            if file == "memory.max" and value != "max":
                self._check_memory_limit(int(value))
        return writes

    def set(self, resources: Any) -> None:
        for controller, file, value, what in self._check(resources or {}):
            if file == DEVICE_PROGRAM:
                from pyrunc.libcontainer.cgroups import ebpf
                ebpf.set_device_rules(self.dir, value)
                continue
            if isinstance(file, tuple):
                index = next((i for i, f in enumerate(file)
                              if os.path.exists(os.path.join(self.dir, f))), len(file) - 1)
                file, value = file[index], value[index]
            write(self.dir, file, value, what)

    def _check_memory_limit(self, limit):
        """v2 does not refuse a limit below usage (it reclaims, then OOM-kills): refuse it here,
        as v1's kernel does, with the same message."""
        usage = read_int(os.path.join(self.dir, "memory.current"))
        if self.pids() and limit < usage:
            raise InvalidArgument("linux.resources.memory.limit: %d bytes is below the %d bytes "
                                  "the container already uses" % (limit, usage))

    def destroy(self) -> None:
        rmdir_tree(self.dir)

    def freeze(self) -> None:
        write(self.dir, "cgroup.freeze", 1)
        self._wait_frozen(lambda: self._frozen(), "freeze %s" % self.dir)

    def thaw(self) -> None:
        write(self.dir, "cgroup.freeze", 0)
        self._wait_frozen(lambda: not self._frozen(), "thaw %s" % self.dir)

    def _frozen(self):
        return read_keyed(os.path.join(self.dir, "cgroup.events")).get("frozen") == 1

    def freezer_state(self) -> Any:
        return "FROZEN" if self._frozen() else "THAWED"

    def pids(self) -> Any:
        return procs_in_tree(self.dir)

    def stats(self) -> Any:
        from pyrunc.libcontainer.cgroups import stats
        return stats.v2_stats(self.dir)

    def _oom_kills(self):
        return read_keyed(os.path.join(self.dir, "memory.events")).get("oom_kill", 0)

    def _memory_limit(self):
        return read_int(os.path.join(self.dir, "memory.max"))

    def _pids_limit_hits(self):
        return read_keyed(os.path.join(self.dir, "pids.events")).get("max", 0)

    def _pids_limit(self):
        return read_int(os.path.join(self.dir, "pids.max"))

    def oom_events(self) -> Any:
        from pyrunc.libcontainer.cgroups.events import V2OOMNotifier
        if not os.path.exists(os.path.join(self.dir, "memory.events")):
            raise unavailable("memory")
        return V2OOMNotifier(self.dir)

    def mount_steps(self, destination: Any, flags: int = 0, cgroupns: bool = False) -> list[Any]:
        """Inside a cgroup namespace a fresh cgroup2 mount shows the container's cgroup as the
        root; without one, the container's directory is bound there."""
        from pyrunc.libcontainer.plan import MountStep
        flags |= MS_NOSUID | MS_NODEV | MS_NOEXEC
        if cgroupns:
            return [MountStep("mount", destination, "cgroup2", "cgroup2", flags)]
        return [MountStep("mount", destination, self.dir, None, flags | MS_BIND | MS_REC)]
