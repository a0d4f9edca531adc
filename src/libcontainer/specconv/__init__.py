"""specconv: a runtime config (``ocispec.Spec``) -> the execution ``Plan`` the native core runs.

Everything is decided and checked here, before anything is created: a bad config fails with one
line naming the JSON path and the reason (``config.json: process.rlimits[1].type: unknown rlimit
"RLIMIT_FOO"``), raised as ``InvalidArgument`` (or ``NotFound``/``Unavailable`` when something
named is missing on this host). The rules are runc's (libcontainer/specconv and its validator):
as with runc, a config without a mount namespace is set up in the runtime's own mount namespace
(the init chroots into the rootfs; its mounts stay behind in that namespace).
"""
from __future__ import annotations

import os

from pyrunc.errors import InvalidArgument, NotFound, Unavailable, warn
from pyrunc.libcontainer import devices as devs
from pyrunc.libcontainer.namespaces import NAMESPACES
from pyrunc.libcontainer.plan import Device, Hook, MountStep, Namespace, Plan
from pyrunc.libcontainer.specconv import mounts as mnt
from pyrunc.libcontainer.specconv import process as proc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from pyrunc.libcontainer.ocispec.spec import Hooks, Spec


HOOK_KINDS = ("prestart", "create_runtime", "create_container", "start_container", "poststart",
              "poststop")
"""Hook lists of ``spec.hooks`` in the order of the lifecycle."""

IPC_SYSCTLS = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
               "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}


def invalid(where: str, reason: str) -> InvalidArgument:
    return InvalidArgument("config.json: %s: %s" % (where, shorten(reason, 300)))


def shorten(text: str, limit: int = 100) -> str:
    """``text`` cut to ``limit`` characters: a value quoted in a message keeps it one short
    line, however long the config made it."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def camel(snake: str) -> str:
    """``create_runtime`` -> ``createRuntime``: JSON paths in messages use the spec's keys."""
    head, *rest = snake.split("_")
    return head + "".join(w.capitalize() for w in rest)


def to_plan(spec: Spec, bundle: str, container_id: str, *, cgroup_manager: Any = None,
            no_pivot: bool = False, state_json: bytes = b"", no_new_keyring: bool = False,
            state_root: str | None = None) -> Plan:
    """Convert ``spec`` (loaded from ``bundle``) into a ``Plan`` for container ``container_id``.

    ``cgroup_manager`` expands ``cgroup``-type mounts (its ``mount_steps``); ``state_json`` is
    the state the child gives to createContainer and startContainer hooks. The init gets a new
    session keyring named after the container, as with runc, unless ``no_new_keyring``.
    ``state_root``: the runtime's state root, where compiled seccomp programs are cached (None:
    ``linux.seccomp`` is compiled every time).
    """
    bundle = os.path.abspath(bundle)
    process = spec.process
    if process is None:
        raise invalid("process", "must be present to create a container")
    plan = Plan(container_id=container_id, bundle=bundle, rootfs=_rootfs(spec, bundle),
                no_pivot=no_pivot, state_json=state_json,
                session_keyring=None if no_new_keyring else "_ses." + container_id)
    plan.readonly_root = bool(spec.root.readonly)
    linux = spec.linux
    if linux is None:
        raise invalid("linux", "must be present on Linux")

    namespaces = _namespaces(linux.namespaces)
    plan.namespaces = list(namespaces.values())
    new_user = "user" in namespaces and namespaces["user"].path is None
    _id_maps(plan, linux, namespaces)
    if "time" in namespaces and namespaces["time"].path is None:
        plan.time_offsets = _time_offsets(linux.time_offsets)
    elif linux.time_offsets:
        raise invalid("linux.timeOffsets", "needs a new time namespace")

    if linux.rootfs_propagation:   # unset: 0, the native core's (and runc's) rslave default
        if linux.rootfs_propagation not in mnt.PROPAGATION:
            raise invalid("linux.rootfsPropagation",
                          "unknown propagation %r" % linux.rootfs_propagation)
        plan.rootfs_propagation = mnt.PROPAGATION[linux.rootfs_propagation]
        if no_pivot and plan.rootfs_propagation & mnt.MS_PRIVATE:
            raise invalid("linux.rootfsPropagation",
                          "[r]private is not safe without pivot_root (--no-pivot)")

    cgroupns = "cgroup" in namespaces and namespaces["cgroup"].path is None
    plan.mounts, dev_is_bind = _mounts(spec.mounts, bundle, cgroup_manager, cgroupns)
    plan.dev_symlinks = not dev_is_bind
    if not dev_is_bind:
        plan.devices = _devices(linux, new_user)
    plan.masked_paths = [mnt.container_path("linux.maskedPaths[%d]" % i, p)
                         for i, p in enumerate(linux.masked_paths)]
    plan.readonly_paths = [mnt.container_path("linux.readonlyPaths[%d]" % i, p)
                           for i, p in enumerate(linux.readonly_paths)]

    for key in ("hostname", "domainname"):
        value = getattr(spec, key)
        if value:
            if "uts" not in namespaces:
                raise invalid(key, "cannot be set without a private UTS namespace")
            setattr(plan, key, value)
    plan.sysctl = _sysctl(linux.sysctl, namespaces)
    proc.convert(plan, process, plan.rootfs)
    _security(plan, linux, state_root)
    hooks = spec.hooks
    if hooks is not None:
        plan.create_container_hooks = hooks_of(hooks, "create_container")
        plan.start_container_hooks = hooks_of(hooks, "start_container")
        for kind in HOOK_KINDS:
            hooks_of(hooks, kind)
    return plan


def cgroup_resources(spec: Any) -> dict[str, Any]:
    """``linux.resources`` for the cgroup manager, with runc's default device rules appended
    to the spec's device rules, as runc does in every case: the device cgroup starts from
    deny-all, then the spec's rules (none when ``linux.resources`` or its ``devices`` is absent
    or empty), then the defaults. ``linux.devices`` entries get no rule of their own (runc
    gives none: /dev/fuse stays denied); one at a default's path drops that default's rule."""
    linux = spec.linux
    resources = dict(linux.resources or {}) if linux is not None else {}
    rules = resources.get("devices")
    if rules is None or isinstance(rules, list):
        replaced = {d.path for d in linux.devices} if linux is not None else set()
        resources["devices"] = list(rules or []) + [
            dict(rule) for rule, path in devs.DEFAULT_RULES if path not in replaced]
    return resources


def hooks_of(hooks: Hooks | None, kind: str) -> Any:
    """``spec.hooks.<kind>`` as [plan.Hook], checked (absolute path, positive timeout)."""
    out = []
    for i, h in enumerate(getattr(hooks, kind) if hooks is not None else []):
        where = "hooks.%s[%d]" % (camel(kind), i)
        if not h.path or not os.path.isabs(h.path):
            raise invalid(where + ".path", "must be an absolute path")
        if h.timeout is not None and h.timeout <= 0:
            raise invalid(where + ".timeout", "must be greater than zero")
        out.append(Hook(path=h.path, args=list(h.args), env=list(h.env), timeout=h.timeout))
    return out


def _rootfs(spec, bundle):
    root = spec.root
    if root is None or not root.path:
        raise invalid("root.path", "must be set")
    # runc's rule: the rootfs, made absolute from the bundle's real path, must be its own real
    # path: neither a symlink nor below one (a symlink could be swapped to point elsewhere).
    path = os.path.normpath(os.path.join(os.path.realpath(bundle), root.path))
    real = os.path.realpath(path)
    if not os.path.isdir(real):
        raise NotFound("config.json: root.path: %s: no such directory" % shorten(root.path))
    if real != path:
        raise invalid("root.path", "%s is or passes through a symlink (it resolves to %s)"
                      % (shorten(root.path), shorten(real)))
    return real


def _namespaces(entries):
    found = {}
    for i, ns in enumerate(entries):
        where = "linux.namespaces[%d]" % i
        if ns.type not in NAMESPACES:
            raise invalid(where + ".type", "unknown namespace type %r" % ns.type)
        if ns.type in found:
            raise invalid(where + ".type", "duplicate namespace %r" % ns.type)
        path = ns.path or None
        if path is not None:
            if not os.path.isabs(path):
                raise invalid(where + ".path", "must be an absolute path")
            if not os.path.exists(path):
                raise NotFound("config.json: %s.path: %s: no such file" % (where, path))
        found[ns.type] = Namespace(NAMESPACES[ns.type], path)
    mount = found.get("mount")
    if mount and mount.path is not None and _same_file(mount.path, "/proc/self/ns/mnt"):
        raise invalid("linux.namespaces", "the mount namespace to join is the runtime's own")
    if "cgroup" in found and not os.path.exists("/proc/self/ns/cgroup"):
        raise Unavailable("config.json: linux.namespaces: cgroup namespaces are not enabled")
    return found


def _map_text(where, mappings):
    lines = []
    for i, m in enumerate(mappings):
        for key in ("container_id", "host_id", "size"):
            value = getattr(m, key)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 32:
                raise invalid("%s[%d].%s" % (where, i, camel(key).replace("Id", "ID")),
                              "must be an integer from 0 to 4294967295")
        if m.size == 0:
            raise invalid("%s[%d].size" % (where, i), "must be greater than zero")
        lines.append("%d %d %d\n" % (m.container_id, m.host_id, m.size))
    return "".join(lines)


def _host_id(mappings, container_id):
    for m in mappings:
        if m.container_id <= container_id < m.container_id + m.size:
            return m.host_id + container_id - m.container_id
    return None


def _id_maps(plan, linux, namespaces):
    user = namespaces.get("user")
    if user is None or user.path is not None:
        for key in ("uid_mappings", "gid_mappings"):
            if getattr(linux, key):
                reason = ("needs a new user namespace" if user is None
                          else "must be empty when joining a user namespace by path")
                raise invalid("linux." + camel(key), reason)
        return
    for key in ("uid_mappings", "gid_mappings"):
        if not getattr(linux, key):
            raise invalid("linux." + camel(key), "a new user namespace needs mappings")
    plan.uid_map = _map_text("linux.uidMappings", linux.uid_mappings)
    plan.gid_map = _map_text("linux.gidMappings", linux.gid_mappings)


def _time_offsets(offsets):
    lines = []
    for clock in sorted(offsets or {}):
        if clock not in ("monotonic", "boottime"):
            raise invalid("linux.timeOffsets", "unknown clock %r" % clock)
        value = offsets[clock]
        get = value.get if isinstance(value, dict) else lambda k: getattr(value, k, None)
        secs, nanosecs = get("secs") or 0, get("nanosecs") or 0
        if not 0 <= nanosecs < 1000000000:
            raise invalid("linux.timeOffsets.%s.nanosecs" % clock, "must be below 1000000000")
        lines.append("%s %d %d\n" % (clock, secs, nanosecs))
    return "".join(lines)


def _mounts(entries, bundle, cgroup_manager, cgroupns):
    steps = []
    dev_is_bind = False
    for i, m in enumerate(entries):
        where = "mounts[%d]" % i
        destination = mnt.container_path(where + ".destination", m.destination or "")
        if destination == "/":
            raise invalid(where + ".destination", "must not be / (a mount there would cover "
                          "the root filesystem)")
        options = mnt.Options(m.options)
        for word in options.ignored:
            warn("config.json: %s.options: %r is not supported, ignored" % (where, word))
        if getattr(m, "uid_mappings", None) or getattr(m, "gid_mappings", None):
            raise Unavailable("config.json: %s: id-mapped mounts are not supported" % where)
        kind = m.type or ""
        if "\0" in kind:
            raise invalid(where + ".type", "contains a NUL byte")
        is_bind = bool(options.flags & mnt.MS_BIND) or kind == "bind"
        if kind == "cgroup" and not is_bind:
            if cgroup_manager is None:
                raise Unavailable("config.json: %s: a cgroup mount needs the cgroup manager"
                                  % where)
            steps.extend(cgroup_manager.mount_steps(destination, options.flags, cgroupns))
            continue
        step = MountStep("mount", destination, fstype=kind or None, flags=options.flags,
                         data=options.data, propagation=options.propagation,
                         attr_set=options.attr_set, attr_clr=options.attr_clr)
        if is_bind:
            step.flags |= mnt.MS_BIND
            step.fstype = "bind"
            step.source = mnt.bind_source(where + ".source", m.source, bundle)
            step.source_is_dir = os.path.isdir(step.source)
            if destination == "/dev":
                dev_is_bind = True
        else:
            if not kind and not options.flags & mnt.MS_REMOUNT:
                raise invalid(where + ".type", "must be set for a mount that is not a bind mount")
            step.source = m.source or kind
            if "\0" in step.source:
                raise invalid(where + ".source", "contains a NUL byte")
        steps.append(step)
    return steps, dev_is_bind


def _devices(linux, new_user):
    entries = linux.devices
    root_uid = root_gid = 0
    if new_user:
        root_uid = _host_id(linux.uid_mappings, 0)
        root_gid = _host_id(linux.gid_mappings, 0)
        if root_uid is None or root_gid is None:
            raise invalid("linux.uidMappings", "a user namespace with devices needs a mapping "
                          "for the container's root (id 0)")
    paths = {d.path for d in entries}
    out = []
    for d in devs.DEFAULT_DEVICES:
        if d.path not in paths:
            out.append(Device(d.path, d.kind, d.major, d.minor, d.mode, root_uid, root_gid,
                              bind=new_user))
    for i, d in enumerate(entries):
        where = "linux.devices[%d]" % i
        path = mnt.container_path(where + ".path", d.path or "")
        if d.type not in devs.KINDS:
            raise invalid(where + ".type", "unknown device type %r (want c, b, u or p)" % d.type)
        kind = devs.KINDS[d.type]
        if kind != "p" and (d.major is None or d.minor is None):
            raise invalid(where, "a %s device needs major and minor numbers" % kind)
        # Linux device numbers: a 12-bit major and a 20-bit minor (mknod refuses larger ones)
        for field, value, high in (("major", d.major, 0xFFF), ("minor", d.minor, 0xFFFFF)):
            if value is not None and not 0 <= value <= high:
                raise invalid("%s.%s" % (where, field), "must be from 0 to %d" % high)
        mode = 0o666 if d.file_mode is None else d.file_mode & 0o7777
        uid = root_uid if d.uid is None else d.uid
        gid = root_gid if d.gid is None else d.gid
        out.append(Device(path, kind, d.major or 0, d.minor or 0, mode, uid, gid,
                          bind=new_user))
    return out


def _sysctl_name(name):
    """runc's rule: a name whose first separator is '/' uses '/' between fields."""
    for ch in name:
        if ch == ".":
            return name
        if ch == "/":
            return name.translate(str.maketrans("./", "/."))
    return name


def _sysctl(sysctl, namespaces):
    out = []
    for key in sorted(sysctl or {}):
        name = _sysctl_name(key)
        where = "linux.sysctl.%s" % key
        if not name or name.startswith(".") or ".." in name or "\0" in name:
            raise invalid(where, "invalid sysctl name")
        if name in IPC_SYSCTLS or name.startswith("fs.mqueue."):
            if "ipc" not in namespaces:
                raise invalid(where, "not allowed in the host's IPC namespace")
        elif name.startswith("net."):
            net = namespaces.get("network")
            if net is None or (net.path and _same_file(net.path, "/proc/self/ns/net")):
                raise invalid(where, "not allowed in the host's network namespace")
        elif name == "kernel.domainname" and "uts" in namespaces:
            pass
        elif name == "kernel.hostname" and "uts" in namespaces:
            raise invalid(where, "conflicts with the hostname field")
        else:
            raise invalid(where, "not in a separate kernel namespace")
        value = sysctl[key]
        if not isinstance(value, str) or "\0" in value:
            raise invalid(where, "must be a string")
        out.append((name, value))
    return out


def _same_file(a, b):
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


# personality(2) execution domains and flags (include/uapi/linux/personality.h)
PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}
PERSONALITY_FLAGS = {"UNAME26": 0x0020000, "ADDR_NO_RANDOMIZE": 0x0040000,
                     "FDPIC_FUNCPTRS": 0x0080000, "MMAP_PAGE_ZERO": 0x0100000,
                     "ADDR_COMPAT_LAYOUT": 0x0200000, "READ_IMPLIES_EXEC": 0x0400000,
                     "ADDR_LIMIT_32BIT": 0x0800000, "SHORT_INODE": 0x1000000,
                     "WHOLE_SECONDS": 0x2000000, "STICKY_TIMEOUTS": 0x4000000,
                     "ADDR_LIMIT_3GB": 0x8000000}


def _personality(personality):
    """linux.personality (the JSON dict) -> the personality(2) value."""
    value = PERSONALITY_DOMAINS[personality["domain"]]
    for i, name in enumerate(personality.get("flags") or []):
        if name not in PERSONALITY_FLAGS:
            raise invalid("linux.personality.flags[%d]" % i, "unknown flag %r" % name)
        value |= PERSONALITY_FLAGS[name]
    return value


def _security(plan, linux, state_root):
    if linux.intel_rdt:
        raise Unavailable("config.json: linux.intelRdt: Intel RDT is not supported")
    if linux.personality:
        plan.personality = _personality(linux.personality)
    unsupported = [("linux.mountLabel", linux.mount_label),
                   ("linux.netDevices", getattr(linux, "net_devices", None))]
    for where, value in unsupported:
        if value:
            raise Unavailable("config.json: %s: not supported by pyrunc" % where)
    if linux.seccomp:
        try:
            from pyrunc.libcontainer import seccomp
        except ImportError:
            raise Unavailable("config.json: linux.seccomp: seccomp support is not installed")
        plan.seccomp = seccomp.compile(linux.seccomp, state_root=state_root)
