"""docker top and docker stats for a container's processes, read from the host's /proc."""
from __future__ import annotations

import os
import pwd
import subprocess
import time

from pyrunc.engine.container.state import ZERO_TIME
from pyrunc.errors import InvalidArgument, SystemFailure
from pyrunc.libcontainer import timestamps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PS_TITLES = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _boot_time() -> float:
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def _tty_name(tty_nr: int) -> str:
    major, minor = (tty_nr >> 8) & 0xfff, (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00)
    if tty_nr == 0:
        return "?"
    if 136 <= major <= 143:
        return "pts/%d" % (minor + (major - 136) * 256)
    if major == 4:
        return "tty%d" % minor
    return "?"


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _row(pid: int, boot: float, now: float) -> list[str] | None:
    """One ``ps -ef`` row for ``pid``, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmdline = f.read()
        st = os.stat("/proc/%d" % pid)
    except (FileNotFoundError, ProcessLookupError):
        return None
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2:].split()
    ppid, tty_nr = int(fields[1]), int(fields[4])
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    started = boot + int(fields[19]) / CLK_TCK
    elapsed = max(now - started, 1e-9)
    start_tm = time.localtime(started)
    stime = (time.strftime("%H:%M", start_tm) if now - started < 86400
             else time.strftime("%b%d", start_tm))
    total = int(cpu)
    cputime = "%02d:%02d:%02d" % (total // 3600, total // 60 % 60, total % 60)
    if total >= 86400:
        cputime = "%d-%s" % (total // 86400, "%02d:%02d:%02d" % (total // 3600 % 24,
                                                                  total // 60 % 60, total % 60))
    args = [a.decode(errors="replace") for a in cmdline.split(b"\0") if a]
    cmd = " ".join(args) if args else "[%s]" % comm
    return [_user(st.st_uid), str(pid), str(ppid), str(int(cpu * 100 / elapsed)), stime,
            _tty_name(tty_nr), cputime, cmd]


def top(pids: list[int], ps_args: str | None = None) -> dict[str, Any]:
    """{"Titles", "Processes"} of ``pids``: ``ps -ef``'s columns read from /proc, or with
    ``ps_args`` the host's ps run with them (docker's way), keeping the rows of ``pids``."""
    if ps_args:
        return _host_ps(pids, ps_args)
    boot, now = _boot_time(), time.time()
    rows = [r for r in (_row(p, boot, now) for p in sorted(pids)) if r is not None]
    return {"Titles": list(PS_TITLES), "Processes": rows}


def _host_ps(pids, ps_args):
    args = ps_args.split()
    if any("\0" in a for a in args):
        raise InvalidArgument("ps options: must not contain NUL bytes")
    try:
        proc = subprocess.run(["ps"] + args, capture_output=True, timeout=30)
    except FileNotFoundError:
        raise SystemFailure("ps", None, "ps is not installed on the host") from None
    if proc.returncode:
        raise InvalidArgument("Error running ps: %s" % proc.stderr.decode(errors="replace")
                              .strip())
    lines = proc.stdout.decode(errors="replace").splitlines()
    if not lines:
        return {"Titles": [], "Processes": []}
    titles = lines[0].split()
    if "PID" not in titles:
        raise InvalidArgument("Couldn't find PID field in ps output")
    index = titles.index("PID")
    wanted = {str(p) for p in pids}
    rows = []
    for line in lines[1:]:
        fields = line.split()
        if len(fields) <= index or fields[index] not in wanted:
            continue
        rows.append(fields[:len(titles) - 1] + [" ".join(fields[len(titles) - 1:])])
    return {"Titles": titles, "Processes": rows}


def _system_cpu_ns() -> int:
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:8]
    return sum(int(x) for x in fields) * 1000000000 // CLK_TCK


def _host_memory() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def stats_document(container_id: str, name: str, raw: dict[str, Any] | None,
                   previous: dict[str, Any] | None) -> dict[str, Any]:
    """The Engine API's stats document from ``read_stats``' figures (None: not running, all
    zero as docker reports a stopped container); ``previous`` gives the precpu figures."""
    empty_cpu = {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0,
                               "usage_in_usermode": 0},
                 "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    blkio = {k: None for k in ("io_service_bytes_recursive", "io_serviced_recursive",
                               "io_queue_recursive", "io_service_time_recursive",
                               "io_wait_time_recursive", "io_merged_recursive",
                               "io_time_recursive", "sectors_recursive")}
    doc: dict[str, Any] = {
        "name": name, "id": container_id, "read": ZERO_TIME,
        "preread": previous["read"] if previous else ZERO_TIME,
        "pids_stats": {}, "blkio_stats": blkio, "num_procs": 0, "storage_stats": {},
        "cpu_stats": empty_cpu, "precpu_stats": previous["cpu_stats"] if previous else empty_cpu,
        "memory_stats": {}, "networks": {},
    }
    if raw is None:
        return doc
    doc["read"] = timestamps.now()
    pids = raw.get("pids") or {}
    doc["pids_stats"] = {k: v for k, v in (("current", pids.get("current")),
                                           ("limit", pids.get("limit"))) if v is not None}
    cpu = raw.get("cpu") or {}
    doc["cpu_stats"] = {
        "cpu_usage": {"total_usage": cpu.get("usage_ns") or 0, "usage_in_kernelmode": 0,
                      "usage_in_usermode": 0},
        "system_cpu_usage": _system_cpu_ns(), "online_cpus": len(os.sched_getaffinity(0)),
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    memory = raw.get("memory") or {}
    if memory:
        doc["memory_stats"] = {"usage": memory.get("usage") or 0,
                               "limit": min(memory.get("limit") or _host_memory(),
                                            _host_memory()),
                               "stats": {}}
        if memory.get("max_usage") is not None:
            doc["memory_stats"]["max_usage"] = memory["max_usage"]
    return doc
