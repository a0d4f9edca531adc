"""The process part of the conversion: a runtime-spec ``process`` object -> the Plan's fields.

Shared by the container's init (``config.json``'s ``process``) and by ``exec`` (a
``process.json``, or the config's process with the command's overrides). Errors name the file and
the JSON path as the caller reads it: ``config.json: process.args: must be a non-empty array``,
``process.json: args: must be a non-empty array``.
"""
from __future__ import annotations

import os

from pyrunc.errors import InvalidArgument, Unavailable, warn
from pyrunc.libcontainer import capabilities as caps
from pyrunc.libcontainer.plan import Capabilities, Rlimit, Scheduler
from pyrunc.libcontainer.rlimits import RLIMITS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from pyrunc.libcontainer.ocispec.spec import Process
    from pyrunc.libcontainer.plan import Plan

# sched_setattr(2) policies and flags (include/uapi/linux/sched.h); SCHED_ISO is reserved, not
# implemented by Linux.
SCHED_POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3,
                  "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02,
               "SCHED_FLAG_DL_OVERRUN": 0x04, "SCHED_FLAG_KEEP_POLICY": 0x08,
               "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
               "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}
# ioprio_set(2): the value is class << IOPRIO_CLASS_SHIFT | priority (0 highest .. 7 lowest)
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
IOPRIO_CLASS_SHIFT = 13


class At:
    """Where a process object was read: the file, and its JSON path in that file."""

    __slots__ = ("source", "path")

    def __init__(self, source: str, path: str) -> None:
        self.source = source
        self.path = path

    def where(self, field: str) -> str:
        return "%s.%s" % (self.path, field) if self.path else field

    def invalid(self, field: str, reason: str) -> InvalidArgument:
        if len(reason) > 300:   # a long value quoted: the message stays one short line
            reason = reason[:297] + "..."
        return InvalidArgument("%s: %s: %s" % (self.source, self.where(field), reason))

    def unavailable(self, field: str, reason: str) -> Unavailable:
        return Unavailable("%s: %s: %s" % (self.source, self.where(field), reason))


IN_CONFIG = At("config.json", "process")


def convert(plan: Plan, process: Process, home_root: str, at: Any = IN_CONFIG) -> None:
    """Set ``plan``'s process fields from ``process`` (an ``ocispec.Process``).

    ``home_root`` is the host path of the container's root, where /etc/passwd gives HOME when
    ``env`` has none.
    """
    if not process.args:
        raise at.invalid("args", "must be a non-empty array")
    for i, a in enumerate(process.args):
        if "\0" in a:
            raise at.invalid("args[%d]" % i, "contains a NUL byte")
    plan.args = list(process.args)
    cwd = process.cwd or ""
    if not os.path.isabs(cwd):
        raise at.invalid("cwd", "must be an absolute path")
    if "\0" in cwd:
        raise at.invalid("cwd", "contains a NUL byte")
    plan.cwd = os.path.normpath("/" + cwd.lstrip("/"))
    plan.terminal = bool(process.terminal)
    if process.console_size is not None:
        for field in ("height", "width"):    # a pty's size is two unsigned shorts
            if getattr(process.console_size, field) > 0xFFFF:
                raise at.invalid("consoleSize." + field, "must be from 0 to 65535")
        plan.console_size = (process.console_size.height, process.console_size.width)
    env, names = [], set()
    for i, entry in enumerate(process.env):
        name, sep, _ = entry.partition("=")
        if not sep:
            raise at.invalid("env[%d]" % i, "invalid environment variable: missing '='")
        if not name:
            raise at.invalid("env[%d]" % i, "invalid environment variable: empty name")
        if "\0" in entry:
            raise at.invalid("env[%d]" % i, "contains a NUL byte")
        names.add(name)
        env.append(entry)
    user = process.user
    plan.uid, plan.gid = (user.uid or 0, user.gid or 0) if user is not None else (0, 0)
    if user is not None:
        plan.additional_gids = list(user.additional_gids)
        if user.umask is not None:
            if not 0 <= user.umask <= 0o777:
                raise at.invalid("user.umask", "must be between 0 and 0777")
            plan.umask = user.umask
    if "HOME" not in names:
        env.append("HOME=" + home_of(home_root, plan.uid))
    plan.env = env
    plan.rlimits = _rlimits(process.rlimits, at)
    if process.oom_score_adj is not None:
        if not -1000 <= process.oom_score_adj <= 1000:
            raise at.invalid("oomScoreAdj", "must be between -1000 and 1000")
        plan.oom_score_adj = process.oom_score_adj
    plan.no_new_privileges = bool(process.no_new_privileges)
    if process.capabilities is not None:
        # A name that is no capability at all is an error (the spec: a value that cannot be
        # mapped to the kernel); a real one this kernel lacks is skipped with a warning, as
        # runc does, so configs written for newer kernels still run.
        for s in caps.SETS:
            for i, name in enumerate(getattr(process.capabilities, s)):
                if name not in caps.NUMBERS:
                    raise at.invalid("capabilities.%s[%d]" % (s, i),
                                     "unknown capability %r" % name)
        ignored: set[Any] = set()
        last = caps.last_cap()
        plan.capabilities = Capabilities(**{
            s: caps.to_mask(getattr(process.capabilities, s), ignored, last) for s in caps.SETS})
        if ignored:
            warn("ignoring capabilities this kernel does not have: %s"
                 % " ".join(sorted(ignored)))
    if process.scheduler is not None:
        plan.scheduler = _scheduler(process.scheduler, at)
    if process.io_priority is not None:
        plan.io_priority = _io_priority(process.io_priority, at)
    _security(process, at)


def _scheduler(s, at):
    """process.scheduler -> plan.Scheduler, checked as runc checks it."""
    if s.policy not in SCHED_POLICIES:
        raise at.unavailable("scheduler.policy", "%s is not implemented by Linux" % s.policy)
    policy = SCHED_POLICIES[s.policy]
    nice = s.nice or 0
    if not -20 <= nice <= 19:
        raise at.invalid("scheduler.nice", "must be between -20 and 19")
    priority = s.priority or 0
    if policy in (1, 2):
        if not 1 <= priority <= 99:
            raise at.invalid("scheduler.priority", "must be between 1 and 99 for %s" % s.policy)
    elif priority:
        raise at.invalid("scheduler.priority", "can only be set for SCHED_FIFO or SCHED_RR")
    deadline = (s.runtime or 0, s.deadline or 0, s.period or 0)
    if policy == 6:
        if not deadline[0] or not deadline[0] <= deadline[1] <= (deadline[2] or deadline[1]):
            raise at.invalid("scheduler", "SCHED_DEADLINE needs 0 < runtime <= deadline "
                                          "<= period (period 0: the deadline)")
    elif any(deadline):
        raise at.invalid("scheduler", "runtime, deadline and period can only be set for "
                                      "SCHED_DEADLINE")
    flags = 0
    for name in s.flags:
        flags |= SCHED_FLAGS[name]
    return Scheduler(policy=policy, nice=nice, priority=priority, flags=flags,
                     runtime=deadline[0], deadline=deadline[1], period=deadline[2])


def _io_priority(p, at):
    """process.ioPriority -> the ioprio_set(2) value."""
    priority = p.priority or 0
    if not 0 <= priority <= 7:
        raise at.invalid("ioPriority.priority", "must be between 0 and 7")
    return IOPRIO_CLASSES[p.class_] << IOPRIO_CLASS_SHIFT | priority


def _rlimits(entries, at):
    out, seen = [], set()
    for i, r in enumerate(entries):
        where = "rlimits[%d]" % i
        if r.type not in RLIMITS:
            raise at.invalid(where + ".type", "unknown rlimit %r" % r.type)
        if r.type in seen:
            raise at.invalid(where + ".type", "duplicate rlimit %r" % r.type)
        seen.add(r.type)
        for key in ("soft", "hard"):
            value = getattr(r, key)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 64:
                raise at.invalid("%s.%s" % (where, key), "must be an integer from 0 to 2^64-1")
        if r.soft > r.hard:
            raise at.invalid(where, "soft limit %d is above the hard limit %d"
                             % (r.soft, r.hard))
        out.append(Rlimit(RLIMITS[r.type], r.soft, r.hard))
    return out


def _security(process, at):
    """Refuse what pyrunc cannot honour for the process. pyrunc applies no AppArmor profile and
    no SELinux label, so a config asking for one is refused whatever the host has: accepting it
    would run the process unconfined."""
    unsupported = [("apparmorProfile", process.apparmor_profile),
                   ("selinuxLabel", process.selinux_label),
                   ("execCPUAffinity", getattr(process, "exec_cpu_affinity", None))]
    for field, value in unsupported:
        if value:
            raise at.unavailable(field, "not supported by pyrunc")


def home_of(rootfs: str, uid: int) -> str:
    """The home directory of ``uid`` in the container's /etc/passwd ("/" when there is none)."""
    path = resolve_in_root(rootfs, "/etc/passwd")
    try:
        with open(path, errors="replace") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid) and fields[5]:
                    return fields[5]
    except OSError:
        pass
    return "/"


def resolve_in_root(root: str, path: str) -> str:
    """Host path of container ``path`` with symlinks resolved as if ``root`` were /."""
    parts = [p for p in path.split("/") if p]
    done: list[Any] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = os.path.join(root, *done, part)
        if os.path.islink(candidate):
            hops += 1
            if hops > 40:
                break
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        done.append(part)
    return os.path.join(root, *done)
