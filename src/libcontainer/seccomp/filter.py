"""Compiling ``linux.seccomp`` into a BPF program with libseccomp (``pyrunc._seccomp``).

The parent compiles; the native core loads the program in the container's init with
seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog), adding SECCOMP_FILTER_FLAG_NEW_LISTENER when the
program notifies. The rules follow runc's:

* ``SCMP_ACT_KILL`` is ``SCMP_ACT_KILL_THREAD``; ERRNO and TRACE return ``errnoRet`` (EPERM when
  absent), ``defaultErrnoRet`` for the default action.
* A rule whose action equals the default action is left out (libseccomp refuses it).
* A syscall name libseccomp does not know is skipped with a warning.
* Several conditions on the same argument index become one rule per condition (any of them
  matches); otherwise all conditions of a rule must match.
* With a refusing default action, syscalls newer than any the profile names fail with ENOSYS
  (the -ENOSYS stub of ``seccomp.enosys`` goes in front of libseccomp's program).
* ``SCMP_ACT_NOTIFY`` may not be the default action nor apply to ``write``, and needs
  ``listenerPath``. SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is kept only with a listener (the
  kernel refuses it otherwise); TSYNC with a listener adds TSYNC_ESRCH (likewise).

Given the runtime's state root, ``compile`` reuses the program compiled earlier for the same
section (``seccomp.cache``), replaying the warnings that compile printed.
"""
from __future__ import annotations

import errno

from pyrunc.errors import InvalidArgument, SystemFailure, warn
from pyrunc.libcontainer import jsoncodec
from pyrunc.libcontainer.plan import Seccomp

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SECTION = "linux.seccomp"
MAX_ERRNO_RET = 0xFFFF            # SECCOMP_RET_DATA: 16 bits
BPF_MAXINSNS = 4096               # linux/bpf_common.h: the longest program the kernel loads
MAX_ARGS = 6
FLAGS = {                         # the kernel's SECCOMP_FILTER_FLAG_* values
    "SECCOMP_FILTER_FLAG_TSYNC": 1 << 0,
    "SECCOMP_FILTER_FLAG_LOG": 1 << 1,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 1 << 2,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 1 << 5,
}
FLAG_NEW_LISTENER = 1 << 3
FLAG_TSYNC_ESRCH = 1 << 4
FLAG_WAIT_KILLABLE = FLAGS["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
FLAGS_WITHOUT_LISTENER = (FLAGS["SECCOMP_FILTER_FLAG_TSYNC"] | FLAGS["SECCOMP_FILTER_FLAG_LOG"]
                          | FLAGS["SECCOMP_FILTER_FLAG_SPEC_ALLOW"])
"""The load flags a program without a listener can have (those the cache may hold)."""
OPERATORS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
             "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ")


class _Invalid(Exception):
    """A bad value at a JSON path; ``compile`` reports it with the file name."""

    def __init__(self, path, reason):
        super().__init__(path, reason)
        self.path = path
        self.reason = reason


def _bad(path, reason):
    return _Invalid(path, reason)


def _native():
    try:
        from pyrunc import _seccomp  # type: ignore[attr-defined]
    except ImportError as e:
        from pyrunc.errors import Unavailable
        raise Unavailable("seccomp: the libseccomp binding pyrunc._seccomp is not built (%s)"
                          % e) from None
    return _seccomp


class _Compiler:
    def __init__(self, native, section):
        self.ffi = native.ffi
        self.lib = native.lib
        self.section = section
        lib = self.lib
        self.simple_actions = {
            "SCMP_ACT_KILL": lib.SCMP_ACT_KILL_THREAD,
            "SCMP_ACT_KILL_THREAD": lib.SCMP_ACT_KILL_THREAD,
            "SCMP_ACT_KILL_PROCESS": lib.SCMP_ACT_KILL_PROCESS,
            "SCMP_ACT_TRAP": lib.SCMP_ACT_TRAP,
            "SCMP_ACT_ALLOW": lib.SCMP_ACT_ALLOW,
            "SCMP_ACT_LOG": lib.SCMP_ACT_LOG,
            "SCMP_ACT_NOTIFY": lib.SCMP_ACT_NOTIFY,
        }
        self.operators = {name: getattr(lib, name) for name in OPERATORS}

    def action(self, name, errno_ret, path, errno_key):
        """The libseccomp action word of ``name`` (with its errno for ERRNO/TRACE)."""
        if not isinstance(name, str):
            raise _bad(path, "must be a string")
        if name in self.simple_actions:
            return self.simple_actions[name]
        if name in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
            if errno_ret is None:
                errno_ret = errno.EPERM
            elif type(errno_ret) is not int or not 0 <= errno_ret <= MAX_ERRNO_RET:
                raise _bad(errno_key, "must be an integer from 0 to %d" % MAX_ERRNO_RET)
            if name == "SCMP_ACT_ERRNO":
                return self.lib.pyrunc_scmp_act_errno(errno_ret)
            return self.lib.pyrunc_scmp_act_trace(errno_ret)
        raise _bad(path, '%s is not a seccomp action (one of %s)'
                   % (_quote(name), ", ".join(sorted(set(self.simple_actions)
                                             | {"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"}))))

    def arch(self, name, path):
        if not isinstance(name, str) or not name.startswith("SCMP_ARCH_"):
            raise _bad(path, '%s is not a seccomp architecture (SCMP_ARCH_*)' % _quote(name))
        token = self.lib.seccomp_arch_resolve_name(name[len("SCMP_ARCH_"):].lower().encode())
        if not token:
            raise _bad(path, '%s is not an architecture libseccomp %s knows'
                       % (_quote(name), version_string()))
        return token

    def conditions(self, args, path):
        """The (index, op, a, b) tuples of a rule's ``args``."""
        if not isinstance(args, list):
            raise _bad(path, "must be an array")
        out = []
        for i, arg in enumerate(args):
            where = "%s[%d]" % (path, i)
            if not isinstance(arg, dict):
                raise _bad(where, "must be an object")
            index = arg.get("index")
            if type(index) is not int or not 0 <= index < MAX_ARGS:
                raise _bad(where + ".index", "must be an integer from 0 to %d" % (MAX_ARGS - 1))
            values = []
            for key in ("value", "valueTwo"):
                v = arg.get(key, 0)
                if type(v) is not int or not 0 <= v < 2 ** 64:
                    raise _bad("%s.%s" % (where, key), "must be an integer from 0 to 2^64-1")
                values.append(v)
            op = arg.get("op")
            if op not in self.operators:
                raise _bad(where + ".op", '%s is not a seccomp operator (one of %s)'
                           % (_quote(op), ", ".join(OPERATORS)))
            out.append((index, self.operators[op], values[0], values[1]))
        return out

    def add_rule(self, ctx, action, number, conditions, name, path):
        ffi = self.ffi
        cmp = ffi.new("struct scmp_arg_cmp[]", max(len(conditions), 1))
        for i, (index, op, a, b) in enumerate(conditions):
            cmp[i].arg, cmp[i].op, cmp[i].datum_a, cmp[i].datum_b = index, op, a, b
        rc = self.lib.seccomp_rule_add_array(ctx, action, number, len(conditions), cmp)
        if rc < 0:
            raise _bad(path, 'libseccomp refused the rule for %s: %s'
                       % (_quote(name), _strerror(-rc)))


def _quote(value):
    """A config value as JSON (one line, whatever it holds)."""
    try:
        return jsoncodec.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _strerror(code):
    import os
    return os.strerror(code).lower()


def version() -> tuple[Any, ...]:
    """libseccomp's (major, minor, micro)."""
    v = _native().lib.seccomp_version()
    return (v.major, v.minor, v.micro)


def version_string() -> str:
    return "%d.%d.%d" % version()


def compile(config: dict[str, Any], section: str = SECTION, source: str = "config.json", *,
            state_root: str | None = None) -> Seccomp | None:
    """A ``plan.Seccomp`` (BPF program and load flags) for a ``linux.seccomp`` dict.

    Raises InvalidArgument naming the file and the JSON path for unknown actions,
    architectures, operators and flags (``config.json: linux.seccomp.syscalls[2].action:
    "SCMP_ACT_X" is not a seccomp action (...)``). Returns None for a profile runc also treats
    as no seccomp (no default action and no syscalls). With ``state_root`` (the runtime's
    ``--root``; ``config`` decoded JSON), the program is taken from the cache there when it
    has it, and stored there when it is compiled (see ``seccomp.cache``).
    """
    warnings: list[str] = []
    try:
        if state_root is None:
            return _compile(config, section, warnings)
        return _cached(config, section, state_root, warnings)
    except _Invalid as e:
        where = ": ".join(p for p in (source, e.path) if p)
        raise InvalidArgument("%s: %s" % (where, e.reason)) from None
    finally:
        for message in warnings:
            warn(message)


def _cached(config, section, state_root, warnings):
    """``_compile`` through the cache under ``state_root``."""
    from pyrunc.libcontainer.seccomp import cache
    digest = cache.key(config, section, _native().lib)
    if digest is not None:
        entry = cache.load(state_root, digest, FLAGS_WITHOUT_LISTENER)
        if entry is not None:
            # the section compiled once as it is: listenerPath and listenerMetadata were
            # checked then (strings or absent), and no rule notifies
            warnings.extend(entry.warnings)
            return Seccomp(bpf=entry.bpf, flags=entry.flags, notify=False,
                           listener_path=config.get("listenerPath") or None,
                           listener_metadata=config.get("listenerMetadata") or "")
    result = _compile(config, section, warnings)
    if digest is not None and result is not None and not result.notify:
        cache.store(state_root, digest, result.bpf, result.flags, warnings)
    return result


def _compile(config, section, warnings):
    if not isinstance(config, dict):
        raise _bad(section, "must be an object")
    syscalls = config.get("syscalls") or []
    if not isinstance(syscalls, list):
        raise _bad(section + ".syscalls", "must be an array")
    if not config.get("defaultAction") and not syscalls:
        return None
    if "defaultAction" not in config:
        raise _bad(section + ".defaultAction", "is required")
    native = _native()
    c = _Compiler(native, section)
    lib, ffi = native.lib, native.ffi

    default = c.action(config.get("defaultAction"), config.get("defaultErrnoRet"),
                       section + ".defaultAction", section + ".defaultErrnoRet")
    if default == lib.SCMP_ACT_NOTIFY:
        raise _bad(section + ".defaultAction", "SCMP_ACT_NOTIFY cannot be the default action")

    flags = 0
    for i, flag in enumerate(_list(config, "flags", section)):
        if flag not in FLAGS:
            raise _bad("%s.flags[%d]" % (section, i), "%s is not a seccomp filter flag (one of %s)"
                       % (_quote(flag), ", ".join(FLAGS)))
        flags |= FLAGS[flag]

    arches = [c.arch(a, "%s.architectures[%d]" % (section, i))
              for i, a in enumerate(_list(config, "architectures", section))]

    ctx = lib.seccomp_init(default)
    if ctx == ffi.NULL:
        raise SystemFailure("seccomp: create filter", errno.ENOMEM)
    try:
        lib.seccomp_attr_set(ctx, lib.SCMP_FLTATR_CTL_NNP, 0)  # the native core decides NNP
        for i, token in enumerate(arches):
            rc = lib.seccomp_arch_add(ctx, token)
            if rc == -errno.EDOM:
                raise _bad("%s.architectures[%d]" % (section, i),
                           "%s cannot share a filter with this host's architecture (byte order)"
                           % _quote(config["architectures"][i]))
            if rc < 0 and rc != -errno.EEXIST:
                raise _bad("%s.architectures[%d]" % (section, i),
                           "cannot add the architecture: %s" % _strerror(-rc))
        notify, names = _add_syscalls(c, ctx, syscalls, default, section, warnings)
        size = ffi.new("unsigned char **")
        n = lib.pyrunc_seccomp_export(ctx, size)
        if n < 0:
            raise SystemFailure("seccomp: export filter", -n)
        try:
            bpf = bytes(ffi.buffer(size[0], n))
        finally:
            lib.free(size[0])
    finally:
        lib.seccomp_release(ctx)
    allowing = (lib.SCMP_ACT_ALLOW, lib.SCMP_ACT_LOG, lib.pyrunc_scmp_act_errno(errno.ENOSYS))
    if default not in allowing and default & 0xFFFF0000 != lib.pyrunc_scmp_act_trace(0):
        from pyrunc.libcontainer.seccomp import enosys
        tokens = list(dict.fromkeys([lib.seccomp_arch_native()] + arches))
        bpf = enosys.stub(lib, tokens, names) + bpf
    if len(bpf) // 8 > BPF_MAXINSNS:
        raise _bad(section, "the program has %d instructions, more than the %d the kernel "
                   "loads" % (len(bpf) // 8, BPF_MAXINSNS))

    listener = config.get("listenerPath") or None
    metadata = config.get("listenerMetadata") or ""
    for key, value in (("listenerPath", listener), ("listenerMetadata", metadata)):
        if value is not None and not isinstance(value, str):
            raise _bad("%s.%s" % (section, key), "must be a string")
    if notify:
        if not listener:
            raise _bad(section + ".listenerPath", "is required when an action is SCMP_ACT_NOTIFY")
        if flags & FLAGS["SECCOMP_FILTER_FLAG_TSYNC"]:
            flags |= FLAG_TSYNC_ESRCH  # the kernel refuses TSYNC with a listener without it
    else:
        flags &= ~FLAG_WAIT_KILLABLE   # only meaningful (and only accepted) with a listener
    return Seccomp(bpf=bpf, flags=flags, notify=notify, listener_path=listener,
                   listener_metadata=metadata)


def _list(config, key, section):
    value = config.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad("%s.%s" % (section, key), "must be an array")
    return value


def _add_syscalls(c, ctx, syscalls, default, section, warnings):
    """Add every rule: (whether some rule notifies, every syscall name the profile names);
    the warnings go to ``warnings``."""
    lib = c.lib
    notify = False
    every_name = []
    for i, rule in enumerate(syscalls):
        path = "%s.syscalls[%d]" % (section, i)
        if not isinstance(rule, dict):
            raise _bad(path, "must be an object")
        action = c.action(rule.get("action"), rule.get("errnoRet"), path + ".action",
                          path + ".errnoRet")
        names = rule.get("names")
        if not isinstance(names, list) or not names:
            raise _bad(path + ".names", "must be a non-empty array")
        conditions = c.conditions(rule.get("args") or [], path + ".args")
        indexes = [cond[0] for cond in conditions]
        if len(set(indexes)) < len(indexes):
            groups = [[cond] for cond in conditions]   # runc: one rule per condition
        else:
            groups = [conditions]
        for j, name in enumerate(names):
            where = "%s.names[%d]" % (path, j)
            if not isinstance(name, str) or not name:
                raise _bad(where, "must be a syscall name")
            if action == lib.SCMP_ACT_NOTIFY and name == "write":
                raise _bad(where, "SCMP_ACT_NOTIFY cannot be used for the write syscall")
            every_name.append(name)
            if action == default:
                continue
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number == lib.__NR_SCMP_ERROR:
                warnings.append("%s: unknown syscall %s skipped" % (where, _quote(name)))
                continue
            notify = notify or action == lib.SCMP_ACT_NOTIFY
            for group in groups:
                c.add_rule(ctx, action, number, group, name, where)
    return notify, every_name


def syscall_names(arch: str | None = None, upto: int = 1024) -> list[str]:
    """Every syscall name libseccomp knows for ``arch`` (SCMP_ARCH_*; default: this host's)."""
    native = _native()
    lib, ffi = native.lib, native.ffi
    try:
        token = lib.seccomp_arch_native() if arch is None else _Compiler(native, SECTION).arch(
            arch, "seccomp: architecture")
    except _Invalid as e:
        raise InvalidArgument("%s: %s" % (e.path, e.reason)) from None
    names = []
    for number in range(upto):
        name = lib.seccomp_syscall_resolve_num_arch(token, number)
        if name != ffi.NULL:
            names.append(ffi.string(name).decode())
            lib.free(name)
    return names


def features() -> dict[str, Any]:
    """The ``linux.seccomp`` part of ``pyrunc features`` (runc's shape), for this host."""
    from pyrunc.libcontainer.ocispec.spec import SECCOMP_ACTIONS, SECCOMP_ARCHES
    lib = _native().lib
    archs = [a for a in SECCOMP_ARCHES
             if lib.seccomp_arch_resolve_name(a[len("SCMP_ARCH_"):].lower().encode())]
    return {"enabled": True,
            "actions": sorted(SECCOMP_ACTIONS),
            "operators": sorted(OPERATORS),
            "archs": sorted(archs),
            "knownFlags": list(FLAGS),
            "supportedFlags": [name for name, bit in FLAGS.items()
                               if lib.pyrunc_seccomp_flag_supported(
                                   bit | (FLAG_NEW_LISTENER if bit == FLAG_WAIT_KILLABLE else 0))]}


def load_filter(bpf: Any, flags: int = 0) -> Any:
    """Load ``bpf`` into the calling thread (tests; the container's init does this in C).

    Returns the listener fd when ``flags`` has SECCOMP_FILTER_FLAG_NEW_LISTENER, else 0.
    """
    native = _native()
    if len(bpf) % 8:
        raise InvalidArgument("seccomp: a BPF program is a whole number of 8-byte instructions")
    rc = native.lib.pyrunc_seccomp_load(bpf, len(bpf) // 8, flags)
    if rc < 0:
        raise SystemFailure("seccomp: load filter", -rc)
    return rc
