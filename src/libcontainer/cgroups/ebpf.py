"""Loading a device program and attaching it to a cgroup v2 directory (bpf(2) via pyrunc._cgroups).

The new program is attached next to the old ones (BPF_F_ALLOW_MULTI) before they are detached,
so an update never leaves the container without a device policy, not even for an instant.
"""
from __future__ import annotations

import os

from pyrunc.errors import SystemFailure, Unavailable
from pyrunc.libcontainer.cgroups import devices

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

INSN_SIZE = 8
LOG_SIZE = 1 << 16


def _native():
    try:
        from pyrunc import _cgroups  # type: ignore[attr-defined]
    except ImportError:
        raise Unavailable("cgroup v2 device control needs the native module pyrunc._cgroups; "
                          "rebuild pyrunc") from None
    return _cgroups


def attached(cgroup_fd: int) -> list[Any]:
    """ids of the device programs attached to the cgroup."""
    native = _native()
    room = 64
    ids = native.ffi.new("unsigned int[]", room)
    count = native.ffi.new("unsigned int *", room)
    r = native.lib.pyrunc_bpf_query_device_programs(cgroup_fd, ids, count)
    if r < 0:
        raise SystemFailure("query the device programs of a cgroup", -r)
    return [ids[i] for i in range(min(count[0], room))]


def set_device_rules(cgroup_dir: str, rules: Any) -> None:
    """Make ``rules`` the device policy of ``cgroup_dir``, replacing any earlier program."""
    native = _native()
    ffi, lib = native.ffi, native.lib
    code = devices.program(rules)
    log = ffi.new("char[]", LOG_SIZE)
    prog_fd = lib.pyrunc_bpf_load_device_program(code, len(code) // INSN_SIZE, log, LOG_SIZE)
    if prog_fd < 0:
        lines = ffi.string(log).decode(errors="replace").strip().splitlines()
        reasons = [x for x in lines if x and not x[0].isdigit() and not x.startswith("processed")]
        raise SystemFailure("load the cgroup device program", -prog_fd,
                            reasons[-1] if reasons else None)
    cgroup_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        old = attached(cgroup_fd)
        r = lib.pyrunc_bpf_attach_device_program(prog_fd, cgroup_fd, lib.BPF_F_ALLOW_MULTI)
        if r < 0:
            raise SystemFailure("attach the device program to %s" % cgroup_dir, -r)
        for prog_id in old:
            old_fd = lib.pyrunc_bpf_program_fd(prog_id)
            if old_fd < 0:
                continue            # gone meanwhile
            try:
                r = lib.pyrunc_bpf_detach_device_program(old_fd, cgroup_fd)
                if r < 0:
                    raise SystemFailure("detach the old device program from %s" % cgroup_dir, -r)
            finally:
                os.close(old_fd)
    finally:
        os.close(cgroup_fd)
        os.close(prog_fd)
