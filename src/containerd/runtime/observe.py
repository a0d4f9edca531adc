"""``pyrunc ps``, ``events`` and ``update``: watching and adjusting a running container."""
from __future__ import annotations

import gc
import sys

from pyrunc.errors import FailedPrecondition, InvalidArgument
from pyrunc.libcontainer import jsoncodec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# runc's update flags: (flag dest, path in linux.resources, parser)
UPDATE_FIELDS = [
    ("blkio_weight", ("blockIO", "weight"), int),
    ("cpu_period", ("cpu", "period"), int),
    ("cpu_quota", ("cpu", "quota"), int),
    ("cpu_share", ("cpu", "shares"), int),
    ("cpu_rt_period", ("cpu", "realtimePeriod"), int),
    ("cpu_rt_runtime", ("cpu", "realtimeRuntime"), int),
    ("cpuset_cpus", ("cpu", "cpus"), str),
    ("cpuset_mems", ("cpu", "mems"), str),
    ("memory", ("memory", "limit"), "bytes"),
    ("memory_reservation", ("memory", "reservation"), "bytes"),
    ("memory_swap", ("memory", "swap"), "bytes"),
    ("pids_limit", ("pids", "limit"), int),
]

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
          "g": 1 << 30, "gb": 1 << 30, "t": 1 << 40, "tb": 1 << 40}


def parse_bytes(flag: Any, text: Any) -> Any:
    """'512m' -> 536870912; '-1' stays -1 (unlimited), as runc's RAMInBytes."""
    s = text.strip().lower()
    if s == "-1":
        return -1
    num = s.rstrip("kmgtb")
    unit = s[len(num):]
    try:
        value = float(num)
    except ValueError:
        value = None
    if value is None or unit not in _UNITS or value < 0:
        raise InvalidArgument("update: --%s: invalid size %r" % (flag.replace("_", "-"), text))
    return int(value * _UNITS[unit])


def resources_from_flags(values: Any) -> Any:
    res: dict[Any, Any] = {}
    for dest, (section, key), kind in UPDATE_FIELDS:
        raw = values.get(dest)
        if raw is None:
            continue
        if kind == "bytes":
            value = parse_bytes(dest, raw)
        elif kind is int:
            try:
                value = int(raw)
            except ValueError:
                raise InvalidArgument("update: --%s: not a number: %r"
                                      % (dest.replace("_", "-"), raw)) from None
        else:
            value = raw
        res.setdefault(section, {})[key] = value
    return res


def resources_from_file(path: Any) -> Any:
    """The ``linux.resources`` object of ``path`` (``-``: stdin), read and checked as
    config.json's is (size, depth, NUL, the model's types and ranges): one-line
    InvalidArgument errors naming the JSON path."""
    from pyrunc.libcontainer.ocispec.fields import ConfigError, Invalid, Raw
    from pyrunc.libcontainer.ocispec.load import MAX_BYTES, decode, read_limited
    from pyrunc.libcontainer.ocispec.spec import Resources
    source = "update: --resources %s" % path
    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_BYTES + 1)
        else:
            data = read_limited(path, source)
    except OSError as e:
        raise InvalidArgument("%s: %s" % (source, (e.strerror or str(e)).lower())) from None
    doc = decode(data, source)
    try:
        return Raw(Resources).decode(doc, "")
    except Invalid as e:
        raise ConfigError(source, e.path, e.reason) from None


def update(container: Any, values: Any) -> None:
    if values["resources"]:
        res = resources_from_file(values["resources"])
        if not isinstance(res, dict):
            raise InvalidArgument("update: --resources: must be a JSON object")
        # runc update ignores "devices": the device cgroup stays the config's (deny-all, its
        # rules, runc's defaults); applied here, an allow-all rule would open every device
        res = {k: v for k, v in res.items() if k != "devices"}
    else:
        res = resources_from_flags(values)
    if container.status == "stopped":
        raise FailedPrecondition("container %s is not running" % container.id)
    from pyrunc.errors import SystemFailure
    from pyrunc.libcontainer.container import REFUSED_VALUE
    try:
        container.manager.set(res)
    except SystemFailure as e:   # the kernel refused a value given: the caller's fault
        if e.errno in REFUSED_VALUE:
            raise InvalidArgument("update: %s" % e) from None
        raise


def ps(container: Any, fmt: Any, ps_args: Any) -> Any:
    pids = container.manager.pids()
    if fmt == "json":
        sys.stdout.write(jsoncodec.dumps(pids) + "\n")
        return
    if fmt != "table":
        raise InvalidArgument('ps: invalid format option %r: must be "table" or "json"' % fmt)
    import subprocess
    out = subprocess.run(["ps"] + (ps_args or ["-ef"]), capture_output=True, text=True)
    if out.returncode != 0:
        raise InvalidArgument("ps: %s" % out.stderr.strip())
    lines = out.stdout.splitlines()
    if not lines:
        return
    header = lines[0].split()
    if "PID" not in header:
        raise InvalidArgument("ps: the ps output has no PID column")
    col = header.index("PID")
    wanted = set(pids)
    sys.stdout.write(lines[0] + "\n")
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in wanted:
            sys.stdout.write(line + "\n")


def _event(event):
    sys.stdout.write(jsoncodec.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def parse_interval(text: Any) -> Any:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for suffix in ("ms", "s", "m", "h"):
        if text.endswith(suffix) and text[:-len(suffix)].replace(".", "", 1).isdigit():
            value = float(text[:-len(suffix)]) * units[suffix]
            if value > 0:
                return value
    raise InvalidArgument("events: --interval: invalid duration %r (e.g. 5s, 500ms)" % text)


def events(container: Any, stats_once: Any, interval: Any) -> Any:
    """runc's events: one stats event with --stats, else stats every interval and OOM events
    as they happen, until the container's cgroup is gone."""
    if container.status == "stopped":
        raise FailedPrecondition("container %s is not running" % container.id)
    if stats_once:
        _event({"type": "stats", "id": container.id, "data": container.manager.stats()})
        return
    from pyrunc.libcontainer.cgroups.events import stream
    gc.enable()         # bin/pyrunc turns it off for short commands; a stream may run for days
    for event in stream(container.manager, parse_interval(interval)):
        _event(event)
