"""The cgroup v1 backend: one directory per controller hierarchy (and, on a hybrid host, one in
the unified hierarchy too, which holds the container's processes but no limits)."""
from __future__ import annotations

import errno
import os

from pyrunc.errors import InvalidArgument, SystemFailure, warn
from pyrunc.libcontainer.cgroups import resources as R
from pyrunc.libcontainer.cgroups.manager import (
    Join, Manager, mkdir_p, procs_in_tree, read, read_int, read_keyed, remove_created, rmdir_tree,
    unavailable, write)
from pyrunc.libcontainer.mountflags import (
    MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from pyrunc.libcontainer.cgroups.events import V1OOMNotifier
    from pyrunc.libcontainer.plan import MountStep

PER_MOUNT_FLAGS = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC


def planned_writes(res: dict[str, Any]) -> Any:
    """[(controller, file or (alternatives...), value, field)] for a resources dict, in the order
    they are written. Raises InvalidArgument for any malformed field before anything is written."""
    if not isinstance(res, dict):
        raise InvalidArgument("linux.resources: must be an object")
    w: list[Any] = []

    mem = R.section(res, "memory")
    limit = R.integer(mem, "limit", "memory.limit")
    swap = R.integer(mem, "swap", "memory.swap")
    reservation = R.integer(mem, "reservation", "memory.reservation")
    if limit:
        w.append(("memory", "memory.limit_in_bytes", limit, "memory.limit"))
    if swap or (limit == -1 and swap is None):
        if swap and swap != -1 and limit and limit != -1 and swap < limit:
            raise R.bad("memory.swap", "%d is below memory.limit %d (swap is memory+swap)"
                        % (swap, limit))
        w.append(("memory", "memory.memsw.limit_in_bytes", swap or -1, "memory.swap"))
    if reservation:
        w.append(("memory", "memory.soft_limit_in_bytes", reservation, "memory.reservation"))
    if R.integer(mem, "kernel", "memory.kernel"):
        warn("linux.resources.memory.kernel: ignored (kernel memory limits are deprecated and "
             "not enforced by this kernel)")
    kernel_tcp = R.integer(mem, "kernelTCP", "memory.kernelTCP")
    if kernel_tcp:
        w.append(("memory", "memory.kmem.tcp.limit_in_bytes", kernel_tcp, "memory.kernelTCP"))
    swappiness = R.integer(mem, "swappiness", "memory.swappiness", minimum=0, maximum=100)
    if swappiness is not None:
        w.append(("memory", "memory.swappiness", swappiness, "memory.swappiness"))
    if R.boolean(mem, "disableOOMKiller", "memory.disableOOMKiller"):
        w.append(("memory", "memory.oom_control", 1, "memory.disableOOMKiller"))
    if R.boolean(mem, "useHierarchy", "memory.useHierarchy"):
        w.append(("memory", "memory.use_hierarchy", 1, "memory.useHierarchy"))
    R.boolean(mem, "checkBeforeUpdate", "memory.checkBeforeUpdate")

    cpu = R.section(res, "cpu")
    shares = R.integer(cpu, "shares", "cpu.shares", minimum=0)
    if shares:
        w.append(("cpu", "cpu.shares", shares, "cpu.shares"))
    period = R.integer(cpu, "period", "cpu.period", minimum=0)
    quota = R.integer(cpu, "quota", "cpu.quota")
    if period:
        w.append(("cpu", "cpu.cfs_period_us", period, "cpu.period"))
    if quota:
        w.append(("cpu", "cpu.cfs_quota_us", quota if quota > 0 else -1, "cpu.quota"))
    burst = R.integer(cpu, "burst", "cpu.burst", minimum=0)
    if burst is not None:
        w.append(("cpu", "cpu.cfs_burst_us", burst, "cpu.burst"))
    rt_period = R.integer(cpu, "realtimePeriod", "cpu.realtimePeriod", minimum=0)
    rt_runtime = R.integer(cpu, "realtimeRuntime", "cpu.realtimeRuntime")
    if rt_period:
        w.append(("cpu", "cpu.rt_period_us", rt_period, "cpu.realtimePeriod"))
    if rt_runtime:
        w.append(("cpu", "cpu.rt_runtime_us", rt_runtime, "cpu.realtimeRuntime"))
    w.extend(R.idle_and_cpuset(cpu))

    pids = R.section(res, "pids")
    pids_limit = R.integer(pids, "limit", "pids.limit")
    if pids_limit:
        w.append(("pids", "pids.max", pids_limit if pids_limit > 0 else "max", "pids.limit"))

    blkio = R.section(res, "blockIO")
    weight = R.integer(blkio, "weight", "blockIO.weight", minimum=0, maximum=1000)
    if weight:
        if weight < 10:
            raise R.bad("blockIO.weight", "%d is out of range [10, 1000]" % weight)
        w.append(("blkio", ("blkio.bfq.weight", "blkio.weight"), weight, "blockIO.weight"))
    leaf = R.integer(blkio, "leafWeight", "blockIO.leafWeight", minimum=0, maximum=1000)
    if leaf:
        w.append(("blkio", "blkio.leaf_weight", leaf, "blockIO.leafWeight"))
    for i, entry in enumerate(R.array(blkio, "weightDevice", "blockIO.weightDevice")):
        name = "blockIO.weightDevice[%d]" % i
        major, minor = R.device_numbers(entry, name)
        dw = R.integer(entry, "weight", name + ".weight", minimum=0, maximum=1000)
        if dw:
            w.append(("blkio", ("blkio.bfq.weight_device", "blkio.weight_device"),
                      "%d:%d %d" % (major, minor, dw), name))
        lw = R.integer(entry, "leafWeight", name + ".leafWeight", minimum=0, maximum=1000)
        if lw:
            w.append(("blkio", "blkio.leaf_weight_device", "%d:%d %d" % (major, minor, lw), name))
    for key, file in THROTTLES:
        for i, entry in enumerate(R.array(blkio, key, "blockIO." + key)):
            name = "blockIO.%s[%d]" % (key, i)
            major, minor = R.device_numbers(entry, name)
            rate = R.integer(entry, "rate", name + ".rate", minimum=0)
            w.append(("blkio", "blkio.throttle." + file, "%d:%d %d" % (major, minor, rate or 0), name))

    for size, hl in R.hugepage_limits(res):
        w.append(("hugetlb", "hugetlb.%s.limit_in_bytes" % size, hl, "hugepageLimits"))

    net = R.section(res, "network")
    class_id = R.integer(net, "classID", "network.classID", minimum=0, maximum=(1 << 32) - 1)
    if class_id is not None:
        w.append(("net_cls", "net_cls.classid", class_id, "network.classID"))
    for i, prio in enumerate(R.array(net, "priorities", "network.priorities")):
        name = "network.priorities[%d]" % i
        if not isinstance(prio, dict):
            raise R.bad(name, "must be an object")
        iface = R.string(prio, "name", name + ".name")
        value = R.integer(prio, "priority", name + ".priority", minimum=0, maximum=(1 << 32) - 1)
        if not iface:
            raise R.bad(name + ".name", "is required")
        w.append(("net_prio", "net_prio.ifpriomap", "%s %d" % (iface, value or 0), name))

    for device, limits in R.rdma_limits(res):
        w.append(("rdma", "rdma.max", "%s %s" % (device, limits), "rdma." + device))

    if R.section(res, "unified"):
        raise R.bad("unified", "needs cgroup v2; this host uses cgroup v1 controllers")

    if "devices" in res:
        from pyrunc.libcontainer.cgroups import devices
        for file, line in devices.v1_writes(devices.parse_rules(res)):
            w.append(("devices", file, line, "devices"))
    return w


THROTTLES = (("throttleReadBpsDevice", "read_bps_device"),
             ("throttleWriteBpsDevice", "write_bps_device"),
             ("throttleReadIOPSDevice", "read_iops_device"),
             ("throttleWriteIOPSDevice", "write_iops_device"))


class V1Manager(Manager):
    version = 1

    def create(self) -> Any:
        """Make the cgroup in every hierarchy; returns the directories made."""
        created = []
        try:
            for directory in self._unique_dirs():
                created.extend(mkdir_p(directory, self._init_cpuset if directory ==
                                       self._dirs.get("cpuset") else None))
        except BaseException:
            remove_created(created)
            raise
        return created

    def join(self) -> Join:
        """v1 ``tasks`` files, the freezer's last (a frozen cgroup stops its joiner there and
        then), and on a hybrid host the cgroup2 directory."""
        unified = self._dirs.get("")
        freezer = self._dirs.get("freezer")
        dirs = [d for d in self._unique_dirs() if d != unified]
        dirs.sort(key=lambda d: d == freezer)
        return Join([os.path.join(d, "tasks") for d in dirs], unified)

    @staticmethod
    def _init_cpuset(directory):
        """A new v1 cpuset starts empty: give it its parent's cpus and mems, as runc does."""
        parent = os.path.dirname(directory)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if not read(os.path.join(directory, name)).strip():
                write(directory, name, read(os.path.join(parent, name)).strip() or "\n")

    def set(self, resources: Any) -> None:
        writes = planned_writes(resources or {})
        for controller in {c for c, _, _, _ in writes}:
            if controller not in self._dirs:
                raise unavailable(controller)
        writes = self._order_memory(writes)
        device_writes = [(f, v) for c, f, v, _ in writes if c == "devices"]
        if device_writes:
            self._set_devices(self._dirs["devices"], device_writes)
        for i, (controller, file, value, what) in enumerate(writes):
            if controller == "devices":
                continue
            directory = self._dirs[controller]
            if isinstance(file, tuple):
                file = next((f for f in file if os.path.exists(os.path.join(directory, f))),
                            file[-1])
            if (file == "memory.memsw.limit_in_bytes" and value == -1
                    and not os.path.exists(os.path.join(directory, file))):
                continue                # no swap accounting: unlimited is what there is
            if file == "cpu.cfs_period_us":
                self._write_period(directory, value, writes[i + 1:])
            elif file == "memory.limit_in_bytes":
                self._write_memory_limit(directory, value)
            else:
                write(directory, file, value, what)

    @staticmethod
    def _set_devices(directory, device_writes):
        """Give the devices cgroup the rules' device list without a moment of deny-all for a
        running container: the kernel itself computes the target list in a scratch sibling
        cgroup; the live one is left alone when it matches, else moved there by adding the
        missing entries before removing the extra ones (a full rewrite when the rules allow by
        default, whose exceptions the list does not show, when the default changes, or when the
        edit does not land exactly)."""
        def apply(d):
            for file, line in device_writes:
                write(d, file, line, "devices")

        def listed(d):
            return set(read(os.path.join(d, "devices.list")).splitlines())

        if not read(os.path.join(directory, "cgroup.procs")).split():
            apply(directory)            # nothing runs there yet
            return
        scratch = "%s.pyrunc-devices-%d" % (directory, os.getpid())
        os.mkdir(scratch)
        try:
            apply(scratch)
            target = listed(scratch)
        finally:
            os.rmdir(scratch)
        current = listed(directory)
        everything = "a *:* rwm"    # an allow-by-default list shows only this, not its exceptions
        if everything in target:
            apply(directory)
            return
        if current == target:
            return
        if everything not in current:
            for line in sorted(target - current):
                write(directory, "devices.allow", line, "devices")
            for line in sorted(current - target):
                write(directory, "devices.deny", line, "devices")
            if listed(directory) == target:
                return
        apply(directory)

    def _order_memory(self, writes):
        """memory+swap before memory when raising (or unlimiting) both, as the kernel needs."""
        limit = next((x for x in writes if x[1] == "memory.limit_in_bytes"), None)
        swap = next((x for x in writes if x[1] == "memory.memsw.limit_in_bytes"), None)
        if limit is None or swap is None or "memory" not in self._dirs:
            return writes
        current = read_int(os.path.join(self._dirs["memory"], "memory.limit_in_bytes"))
        if swap[2] == -1 or current < swap[2]:
            rest = [x for x in writes if x is not swap]
            rest.insert(rest.index(limit), swap)
            return rest
        return writes

    def _write_memory_limit(self, directory, value):
        try:
            write(directory, "memory.limit_in_bytes", value, "memory.limit")
        except SystemFailure as e:
            if e.errno != errno.EBUSY:
                raise
            usage = read_int(os.path.join(directory, "memory.usage_in_bytes"))
            raise InvalidArgument("linux.resources.memory.limit: %d bytes is below the %d bytes "
                                  "the container already uses" % (value, usage)) from None

    @staticmethod
    def _write_period(directory, period, later):
        """A shorter period can be refused while the old quota is larger: set the quota first."""
        try:
            write(directory, "cpu.cfs_period_us", period, "cpu.period")
        except InvalidArgument:
            quota = next((x[2] for x in later if x[1] == "cpu.cfs_quota_us"), None)
            if quota is None:
                raise
            write(directory, "cpu.cfs_quota_us", quota, "cpu.quota")
            write(directory, "cpu.cfs_period_us", period, "cpu.period")

    def destroy(self) -> None:
        for directory in reversed(self._unique_dirs()):
            rmdir_tree(directory)

    # ---- freezer ---------------------------------------------------------------------------
    def _freezer(self):
        if "freezer" not in self._dirs:
            raise unavailable("freezer")
        return self._dirs["freezer"]

    def freeze(self) -> None:
        d = self._freezer()

        def frozen():
            # a task in a sleep the freezer cannot interrupt keeps it FREEZING: ask again
            if self._state(d) == "FROZEN":
                return True
            write(d, "freezer.state", "FROZEN")
            return False

        write(d, "freezer.state", "FROZEN")
        self._wait_frozen(frozen, "freeze %s" % d)

    def thaw(self) -> None:
        d = self._freezer()
        write(d, "freezer.state", "THAWED")
        self._wait_frozen(lambda: self._state(d) == "THAWED", "thaw %s" % d)

    @staticmethod
    def _state(d):
        return read(os.path.join(d, "freezer.state")).strip()

    def freezer_state(self) -> str:
        return "FROZEN" if self._state(self._freezer()) == "FROZEN" else "THAWED"

    # ---- processes, stats, events ----------------------------------------------------------
    def pids(self) -> Any:
        for controller in ("devices", "freezer", "pids", "memory", "cpu"):
            if controller in self._dirs:
                return procs_in_tree(self._dirs[controller])
        return procs_in_tree(self._unique_dirs()[0])

    def stats(self) -> dict[str, Any]:
        from pyrunc.libcontainer.cgroups import stats
        return stats.v1_stats(self._dirs)

    def _oom_kills(self):
        return read_keyed(os.path.join(self._dirs.get("memory", "/nonexistent"),
                                       "memory.oom_control")).get("oom_kill", 0)

    def _memory_limit(self):
        limit = read_int(os.path.join(self._dirs.get("memory", "/nonexistent"),
                                      "memory.limit_in_bytes"))
        return 0 if limit >= R.INT64_MAX - 4096 else limit     # unlimited reads as ~2^63

    def _pids_limit_hits(self):
        return read_keyed(os.path.join(self._dirs.get("pids", "/nonexistent"),
                                       "pids.events")).get("max", 0)

    def _pids_limit(self):
        return read_int(os.path.join(self._dirs.get("pids", "/nonexistent"), "pids.max"))

    def oom_events(self) -> V1OOMNotifier:
        from pyrunc.libcontainer.cgroups.events import V1OOMNotifier
        if "memory" not in self._dirs:
            raise unavailable("memory")
        return V1OOMNotifier(self._dirs["memory"])

    # ---- the view from inside the container ------------------------------------------------
    def mount_steps(self, destination: str, flags: int = 0,
                    cgroupns: bool = False) -> list[MountStep]:
        """runc's layout: a tmpfs with one directory per hierarchy (the container's own cgroup,
        bound from the host, or the hierarchy mounted afresh inside a cgroup namespace) and
        symlinks for co-mounted controllers ("cpu" -> "cpu,cpuacct")."""
        from pyrunc.libcontainer.plan import MountStep
        layout = self._layout()
        per_mount = flags & PER_MOUNT_FLAGS
        steps = [MountStep("mount", destination, "tmpfs", "tmpfs",
                           (flags & ~MS_RDONLY) | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755")]
        links: list[Any] = []
        for name, controllers, host_dir in layout:
            target = os.path.join(destination, name)
            steps.append(MountStep("mkdir", target))
            if cgroupns:
                steps.append(MountStep("mount", target, "cgroup", "cgroup",
                                       per_mount | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                                       ",".join(controllers)))
            else:
                steps.append(MountStep("mount", target, host_dir, None,
                                       MS_BIND | MS_REC | per_mount | MS_NOSUID | MS_NODEV | MS_NOEXEC))
            if len(controllers) > 1:
                links.extend((c, name) for c in controllers if c != name)
        for link, target in links:
            steps.append(MountStep("symlink", os.path.join(destination, link), target))
        if flags & MS_RDONLY:
            steps.append(MountStep("mount", destination, None, None,
                                   MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC))
        return steps

    def _layout(self):
        """[(name under the tmpfs, controllers, host dir)] for the v1 hierarchies in use."""
        from pyrunc.libcontainer.cgroups.hierarchy import host_layout
        host = host_layout()
        out, seen = [], set()
        for controller, directory in self._dirs.items():
            mount = host.v1.get(controller)
            if mount is None or mount.mountpoint in seen:
                continue
            seen.add(mount.mountpoint)
            out.append((os.path.basename(mount.mountpoint), mount.controllers, directory))
        return out
