"""``build_spec``: the OCI runtime config of a container from its merged Config and its
HostConfig, as dockerd writes it for runc (moby's default Linux spec and its ``With*``
options), accepted by pyrunc, runc and crun alike.
"""
from __future__ import annotations

import os
import posixpath

from pyrunc.errors import InvalidArgument, shown
from pyrunc.libcontainer.ocispec.fields import ConfigError
from pyrunc.libcontainer.ocispec.load import from_dict

from pyrunc.engine import initbin
from pyrunc.engine.oci import defaults, options, seccomp
from pyrunc.engine.oci.user import resolve_user

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

OCI_VERSION = "1.0.2-dev"
"""What dockerd 20.10 writes; Debian's crun refuses "1.2.0"."""
ETC_FILES = (("/etc/resolv.conf", "resolv.conf"), ("/etc/hostname", "hostname"),
             ("/etc/hosts", "hosts"))
"""The files dockerd bind-mounts from the container's directory (the engine writes them)."""
NETWORK_SYSCTLS = (("net.ipv4.ip_unprivileged_port_start", "0"),
                   ("net.ipv4.ping_group_range", "0 2147483647"))
"""Set in a container with its own network namespace unless HostConfig.Sysctls sets them."""


def _mode(host_config: dict[str, Any], key: str) -> str:
    value = host_config.get(key)
    if value is None:
        return ""
    if type(value) is not str:
        raise InvalidArgument("HostConfig.%s: must be a string" % key)
    return value


def _depth(mount: dict[str, Any]) -> int:
    return len([p for p in mount["destination"].split("/") if p])


def _cgroup2() -> bool:
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def process_args(config: dict[str, Any]) -> list[str]:
    """Entrypoint + Cmd of a merged Config; InvalidArgument ``no command specified``."""
    args: list[str] = []
    for key in ("Entrypoint", "Cmd"):
        value = config.get(key)
        if value is None:
            continue
        if type(value) is str:
            value = [value]
        if type(value) is not list or any(type(v) is not str for v in value):
            raise InvalidArgument("Config.%s: must be an array of strings" % key)
        args += value
    if not args:
        raise InvalidArgument("no command specified")
    if any("\0" in a for a in args):
        raise InvalidArgument("invalid command: an argument contains a NUL byte")
    return args


def working_dir(config: dict[str, Any]) -> str:
    """Config.WorkingDir cleaned (``/`` when unset); docker's error when not absolute."""
    wd = config.get("WorkingDir") or ""
    if type(wd) is not str:
        raise InvalidArgument("Config.WorkingDir: must be a string")
    if not wd:
        return "/"
    if not wd.startswith("/") or "\0" in wd:
        raise InvalidArgument("the working directory '%s' is invalid, it needs to be an "
                              "absolute path" % shown(wd))
    return posixpath.normpath(wd).replace("//", "/")


def validate_host_config(host_config: dict[str, Any]) -> list[str]:
    """Check every option build_spec reads (all but the user, which needs the root
    filesystem) as docker does at create; the warnings docker would return."""
    warnings: list[str] = []
    _linux_options(host_config, warnings)
    return warnings


class _Options:
    __slots__ = ("privileged", "caps", "security", "resources", "devices", "device_rules",
                 "rlimits", "sysctls", "tmpfs", "shm_size", "oom_score_adj", "network",
                 "ipc", "pid", "uts", "cgroupns", "readonly_rootfs", "masked", "readonly_paths",
                 "init", "seccomp")
    privileged: bool
    caps: list[str]
    security: options.SecurityOptions
    resources: dict[str, Any]
    devices: list[dict[str, Any]]
    device_rules: list[dict[str, Any]]
    rlimits: list[dict[str, Any]]
    sysctls: dict[str, str]
    tmpfs: list[dict[str, Any]]
    shm_size: int
    oom_score_adj: int
    network: str
    ipc: str
    pid: str
    uts: str
    cgroupns: str
    readonly_rootfs: bool
    masked: list[str]
    readonly_paths: list[str]
    init: bool
    seccomp: dict[str, Any] | None


def _linux_options(host_config: dict[str, Any], warnings: list[str]) -> _Options:
    if not isinstance(host_config, dict):
        raise InvalidArgument("HostConfig: must be an object")
    o = _Options()
    privileged = host_config.get("Privileged") or False
    if privileged is not True and privileged is not False:
        raise InvalidArgument("HostConfig.Privileged: must be a boolean")
    o.privileged = privileged
    o.caps = options.capabilities(options.list_field(host_config, "CapAdd"),
                                  options.list_field(host_config, "CapDrop"), privileged)
    o.security = options.security_options(options.list_field(host_config, "SecurityOpt"))
    for opt in o.security.ignored:
        warnings.append("security option %s ignored: this engine has no AppArmor or SELinux "
                        "support" % opt)
    o.resources = options.resources(host_config, warnings)
    o.devices, o.device_rules = options.devices(options.list_field(host_config, "Devices", dict))
    o.device_rules += options.device_cgroup_rules(options.list_field(host_config,
                                                                "DeviceCgroupRules"))
    o.rlimits = options.rlimits(options.list_field(host_config, "Ulimits", dict))
    o.network = _mode(host_config, "NetworkMode")
    o.ipc = _mode(host_config, "IpcMode")
    o.pid = _mode(host_config, "PidMode")
    o.uts = _mode(host_config, "UTSMode")
    o.cgroupns = _mode(host_config, "CgroupnsMode")
    for key, value, allowed in (("IpcMode", o.ipc, ("", "private", "shareable", "host", "none")),
                                ("PidMode", o.pid, ("", "private", "host")),
                                ("UTSMode", o.uts, ("", "private", "host")),
                                ("CgroupnsMode", o.cgroupns, ("", "private", "host"))):
        if value not in allowed:
            raise InvalidArgument("invalid %s: %s" % (key, shown(value)))
    if o.network == "container:":
        raise InvalidArgument("invalid NetworkMode: %s" % o.network)
    sysctls = host_config.get("Sysctls") or {}
    if not isinstance(sysctls, dict):
        raise InvalidArgument("HostConfig.Sysctls: must be an object")
    o.sysctls = options.sysctls(sysctls, host_network=o.network == "host",
                                host_ipc=o.ipc == "host")
    tmpfs = host_config.get("Tmpfs") or {}
    if not isinstance(tmpfs, dict):
        raise InvalidArgument("HostConfig.Tmpfs: must be an object")
    o.tmpfs = options.tmpfs_mounts(tmpfs)
    shm = options.int_field(host_config, "ShmSize")
    if shm < 0:
        raise InvalidArgument("SHM size can not be less than 0")
    o.shm_size = shm or defaults.DEFAULT_SHM_SIZE
    adj = options.int_field(host_config, "OomScoreAdj")
    if not -1000 <= adj <= 1000:
        raise InvalidArgument("Invalid value %d, range for oom score adj is [-1000, 1000]" % adj)
    o.oom_score_adj = adj
    readonly = host_config.get("ReadonlyRootfs") or False
    if readonly is not True and readonly is not False:
        raise InvalidArgument("HostConfig.ReadonlyRootfs: must be a boolean")
    o.readonly_rootfs = readonly
    init = host_config.get("Init")
    if init is not None and init is not True and init is not False:
        raise InvalidArgument("HostConfig.Init: must be a boolean")
    o.init = bool(init)
    if privileged or o.security.unconfined_paths:
        o.masked, o.readonly_paths = [], []
    else:
        masked = host_config.get("MaskedPaths")
        ro = host_config.get("ReadonlyPaths")
        o.masked = options.list_field(host_config, "MaskedPaths") if masked is not None \
            else defaults.masked_paths()
        o.readonly_paths = options.list_field(host_config, "ReadonlyPaths") if ro is not None \
            else list(defaults.READONLY_PATHS)
    if privileged or o.security.seccomp == "unconfined":
        o.seccomp = None
    else:
        profile = seccomp.parse_profile(o.security.seccomp) if o.security.seccomp \
            else seccomp.default_profile()
        o.seccomp = seccomp.to_oci(profile, o.caps)
    return o


def build_spec(*, config: dict[str, Any], host_config: dict[str, Any], rootfs: str,
               container_dir: str, mounts: list[dict[str, Any]], cgroups_path: str,
               hostname: str, netns: str | None = None, idmap: Any | None = None,
               init_path: str | None = None) -> dict[str, Any]:
    """The runtime config (``config.json`` as a dict) of a container.

    ``config`` is the merged Config, ``host_config`` the HostConfig, ``rootfs`` the mounted
    root filesystem (its /etc/passwd and /etc/group resolve the user), ``container_dir`` holds
    the ``hosts``, ``hostname`` and ``resolv.conf`` files bound into the container, ``mounts``
    the OCI mounts of binds, volumes and ``--mount`` tmpfs. ``netns``: a network namespace to
    join (else a new one, none with NetworkMode ``host``); ``idmap``: the engine's user
    namespace remapping (``pyrunc.engine.idmap.IDMap``); ``init_path``: the init bound at
    /sbin/docker-init when HostConfig.Init is set (the engine's own by default).
    InvalidArgument with docker's message for a bad option."""
    if not isinstance(config, dict):
        raise InvalidArgument("Config: must be an object")
    warnings: list[str] = []
    o = _linux_options(host_config, warnings)
    args = process_args(config)
    cwd = working_dir(config)
    tty = config.get("Tty") or False
    if tty is not True and tty is not False:
        raise InvalidArgument("Config.Tty: must be a boolean")
    env = config.get("Env") or []
    if type(env) is not list:
        raise InvalidArgument("Config.Env: must be an array of strings")
    user_spec = config.get("User") or ""
    if type(user_spec) is not str:
        raise InvalidArgument("Config.User: must be a string")
    group_add = options.list_field(host_config, "GroupAdd")
    user = resolve_user(rootfs, user_spec, group_add)

    process: dict[str, Any] = {
        "terminal": tty,
        "user": user.to_oci(),
        "args": args,
        "env": options.environment(env, hostname=hostname, tty=tty),
        "cwd": cwd,
        "capabilities": {"bounding": list(o.caps), "effective": list(o.caps),
                         "permitted": list(o.caps)},
        "noNewPrivileges": o.security.no_new_privileges,
        "oomScoreAdj": o.oom_score_adj,
    }
    if o.rlimits:
        process["rlimits"] = o.rlimits
    if o.init:
        process["args"] = [initbin.INIT_DESTINATION, "--"] + args

    # mounts: docker's defaults (minus those a user mount replaces), then the container's own
    # sorted by depth so that a parent is mounted before what goes inside it
    own: list[dict[str, Any]] = []
    for i, m in enumerate(mounts):
        if not isinstance(m, dict) or type(m.get("destination")) is not str:
            raise InvalidArgument("mounts[%d]: must be an OCI mount with a destination" % i)
        own.append(dict(m))
    own += o.tmpfs
    taken = {posixpath.normpath(m["destination"]) for m in own}
    for dest, name in ETC_FILES:
        if dest not in taken:
            opts = ["rbind"] + (["ro"] if o.readonly_rootfs else []) + ["rprivate"]
            own.append({"destination": dest, "type": "bind",
                        "source": os.path.join(container_dir, name), "options": opts})
    if o.init:
        own.append({"destination": initbin.INIT_DESTINATION, "type": "bind",
                    "source": init_path or initbin.INIT_PATH, "options": ["bind", "ro"]})
    taken = {posixpath.normpath(m["destination"]) for m in own}
    default = [m for m in defaults.default_mounts(o.shm_size, privileged=o.privileged)
               if m["destination"] not in taken
               and not ("/dev" in taken and m["destination"].startswith("/dev/"))]
    if o.ipc == "none":
        default = [m for m in default if m["destination"] != "/dev/shm"]
    own.sort(key=_depth)

    namespaces: list[dict[str, Any]] = [{"type": "mount"}]
    if o.network != "host":
        namespaces.append({"type": "network", "path": netns} if netns else {"type": "network"})
    if o.ipc != "host":
        namespaces.append({"type": "ipc"})
    if o.pid != "host":
        namespaces.append({"type": "pid"})
    if o.uts != "host":
        namespaces.append({"type": "uts"})
    if o.cgroupns == "private" or (o.cgroupns == "" and _cgroup2()):
        namespaces.append({"type": "cgroup"})

    resources = dict(o.resources)
    if o.privileged:
        devices = options.host_devices()
        resources["devices"] = [{"allow": False, "access": "rwm"},
                                {"allow": True, "access": "rwm"}]
    else:
        devices = o.devices
        resources["devices"] = [{"allow": False, "access": "rwm"}] + o.device_rules
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": cgroups_path,
        "maskedPaths": o.masked,
        "readonlyPaths": o.readonly_paths,
    }
    if devices:
        linux["devices"] = devices
    sysctl = dict(o.sysctls)
    if o.network != "host" and not o.network.startswith("container:"):
        # a network namespace of its own: unprivileged ports and ping, as docker sets them
        for key, value in NETWORK_SYSCTLS:
            # in a user namespace the group range must be of mapped ids: not set there
            if idmap is None or key != "net.ipv4.ping_group_range":
                sysctl.setdefault(key, value)
    if sysctl:
        linux["sysctl"] = sysctl
    if idmap is not None:
        namespaces.append({"type": "user"})
        linux["uidMappings"] = list(idmap.uid_mappings)
        linux["gidMappings"] = list(idmap.gid_mappings)
    if o.seccomp is not None:
        linux["seccomp"] = o.seccomp

    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": rootfs, "readonly": o.readonly_rootfs},
        "hostname": hostname if o.uts != "host" else "",
        "mounts": default + own,
        "linux": linux,
    }
    domain = config.get("Domainname")
    if domain:
        if type(domain) is not str:
            raise InvalidArgument("Config.Domainname: must be a string")
        spec["domainname"] = domain
    if not spec["hostname"]:
        del spec["hostname"]
    try:
        from_dict(spec, source="runtime config")
    except ConfigError as e:
        raise InvalidArgument(str(e)) from None
    return spec
