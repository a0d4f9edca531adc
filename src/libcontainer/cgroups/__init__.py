"""Control groups: put a container's processes in a cgroup and limit, freeze, watch them.

    from pyrunc.libcontainer import cgroups
    m = cgroups.new_manager(cgroups_path, container_id, systemd=False)
    m.create(); m.set(spec["linux"]["resources"])
    process.spawn_init(plan, ..., cgroup=m.join())     # or m.apply(pid) for a running pid
    ...; m.destroy()
    m = cgroups.load_manager(m.to_state())      # in a later process

The backend is chosen from the host at run time: ``V1Manager`` on a legacy or hybrid host (the
v1 controllers, plus the unified hierarchy joined on a hybrid host, as runc does), ``V2Manager``
on a unified host; ``systemd=True`` asks for the systemd driver (see ``systemd``).

Every manager has: ``version``, ``join()`` (see ``manager.Join``; None for the systemd driver,
the others have ``create()`` for it), ``apply(pid)``, ``set(resources)``, ``destroy()``, ``freeze()``,
``thaw()``, ``freezer_state()``, ``pids()``, ``stats()`` (runc's ``events --stats`` data),
``paths()``, ``to_state()``, ``mount_steps(destination, flags, cgroupns)`` and ``oom_events()``
(see ``events``).
"""
from __future__ import annotations

from pyrunc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def new_manager(cgroups_path: Any, container_id: str, *, systemd: bool = False) -> Any:
    """The manager for a container's cgroup on this host (nothing is created until apply)."""
    from pyrunc.libcontainer.cgroups import hierarchy
    if systemd:
        from pyrunc.libcontainer.cgroups import systemd as driver
        return driver.new_manager(cgroups_path, container_id)
    layout = hierarchy.host_layout()
    dirs = layout.dirs(cgroups_path or "", container_id)
    if layout.version == 2:
        from pyrunc.libcontainer.cgroups.v2 import V2Manager
        return V2Manager(cgroups_path, container_id, dirs, layout.unified.mountpoint)
    from pyrunc.libcontainer.cgroups.v1 import V1Manager
    return V1Manager(cgroups_path, container_id, dirs)


def load_manager(state: Any) -> Any:
    """The manager described by ``to_state()``'s dict (no host probing, no file access)."""
    try:
        version, driver, paths = state["version"], state.get("driver", "cgroupfs"), state["paths"]
        path, container_id = state.get("path"), state.get("id", "")
    except (KeyError, TypeError):
        raise InvalidArgument("cgroup state: not a saved cgroup manager: %r" % (state,)) from None
    if driver == "systemd":
        from pyrunc.libcontainer.cgroups import systemd as sd
        return sd.load_manager(state)
    if version == 2:
        from pyrunc.libcontainer.cgroups.v2 import V2Manager
        return V2Manager(path, container_id, paths, state["root"])
    if version == 1:
        from pyrunc.libcontainer.cgroups.v1 import V1Manager
        return V1Manager(path, container_id, paths)
    raise InvalidArgument("cgroup state: unknown cgroup version %r" % (version,))
