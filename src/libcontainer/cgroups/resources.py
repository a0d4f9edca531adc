"""Reading OCI ``linux.resources`` (the spec's JSON shape) with errors that name the field.

Every accessor takes the section dict and a dotted field name and returns the value or ``None``
when the field is absent (``null`` counts as absent); a value of the wrong type or range raises
``InvalidArgument("linux.resources.<field>: ...")``. The conversions between cgroup v1 and v2 units
follow runc's, so a config means the same on both.
"""
from __future__ import annotations

from pyrunc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PREFIX = "linux.resources"
INT64_MAX = (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1


def field(name: str) -> str:
    return "%s.%s" % (PREFIX, name)


def bad(name: Any, reason: Any) -> InvalidArgument:
    return InvalidArgument("%s: %s" % (field(name), reason))


def section(parent: Any, key: Any, name: Any = None) -> Any:
    """The sub-object ``parent[key]`` as a dict ({} when absent)."""
    name = name or key
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad(name, "must be an object")
    return value


def array(parent: dict[str, Any], key: str, name: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad(name, "must be an array")
    return value


def integer(parent: dict[str, Any], key: str, name: str, *, minimum: Any = -INT64_MAX - 1,
            maximum: Any = UINT64_MAX) -> int | None:
    value = parent.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(name, "must be an integer, not %s" % _json_type(value))
    if not minimum <= value <= maximum:
        raise bad(name, "%d is out of range [%d, %d]" % (value, minimum, maximum))
    return value


def boolean(parent: dict[str, Any], key: str, name: str) -> bool | None:
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise bad(name, "must be a boolean, not %s" % _json_type(value))
    return value


def string(parent: dict[str, Any], key: str, name: str) -> str | None:
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad(name, "must be a string, not %s" % _json_type(value))
    return value


def _json_type(value):
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            float: "a number", int: "an integer", type(None): "null"}.get(type(value), "a value")


def _digits(text):
    return text.isascii() and text.isdigit()


def _is_cpu_list(value):
    """Comma-separated numbers and "a-b" ranges, blanks allowed around the commas."""
    for part in value.split(","):
        bounds = part.strip().split("-")
        if len(bounds) > 2 or not all(_digits(b) for b in bounds):
            return False
    return True


def cpu_list(parent: dict[str, Any], key: str, name: str) -> str | None:
    """A cpuset list such as "0-3,5" (returned unchanged) or None."""
    value = string(parent, key, name)
    if value is None or value == "":
        return None
    if not _is_cpu_list(value):
        raise bad(name, "%r is not a cpu/node list like \"0-3,5\"" % value)
    for part in value.split(","):
        bounds = part.strip().split("-")
        if len(bounds) == 2 and int(bounds[0]) > int(bounds[1]):
            raise bad(name, "%r: range %s is backwards" % (value, part.strip()))
    return value


def parse_cpu_list(text: str) -> list[int]:
    """"0-3,5" -> [0, 1, 2, 3, 5]"""
    out: list[Any] = []
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    return out


def idle_and_cpuset(cpu: Any) -> Any:
    """The writes both versions share: cpu.idle, cpuset.cpus, cpuset.mems (same file names)."""
    writes: list[Any] = []
    idle = integer(cpu, "idle", "cpu.idle", minimum=0, maximum=1)
    if idle is not None:
        writes.append(("cpu", "cpu.idle", idle, "cpu.idle"))
    for key, filename in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        value = cpu_list(cpu, key, "cpu." + key)
        if value:
            writes.append(("cpuset", filename, value, "cpu." + key))
    return writes


def device_numbers(entry: Any, name: str) -> tuple[Any, ...]:
    """(major, minor) of a blockIO per-device entry."""
    if not isinstance(entry, dict):
        raise bad(name, "must be an object")
    major = integer(entry, "major", name + ".major", minimum=0, maximum=(1 << 32) - 1)
    minor = integer(entry, "minor", name + ".minor", minimum=0, maximum=(1 << 32) - 1)
    if major is None or minor is None:
        raise bad(name, "needs major and minor")
    return major, minor


# ---- unit conversions between v1 and v2 (runc's formulas) --------------------------------------

def shares_to_weight(shares: int | None) -> int:
    """cpu.shares [2, 262144] -> cpu.weight [1, 10000]; 0 means unset."""
    if not shares:
        return 0
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    """blkio.weight [10, 1000] -> io.weight [1, 10000]; 0 means unset."""
    if not weight:
        return 0
    return 1 + ((weight - 10) * 9999) // 990


def swap_for_v2(swap: int | None, limit: int | None) -> int | None:
    """memory.swap.max from the spec's memory+swap total; -1 unlimited, None unset."""
    if limit == -1 and not swap:
        return -1
    if swap is None or swap in (-1, 0):
        return swap or None
    if not limit or limit == -1:
        raise bad("memory.swap", "a swap limit needs a memory limit")
    if swap < limit:
        raise bad("memory.swap", "%d is below memory.limit %d (swap is memory+swap)" % (swap, limit))
    return swap - limit


def v2_limit(value: int) -> str:
    """A v2 "max"-style value: -1 (or below) is "max"."""
    return "max" if value is None or value < 0 else str(value)


def hugepage_limits(res: dict[str, Any]) -> Any:
    """[(pagesize "2MB", limit)] from hugepageLimits."""
    out = []
    for i, entry in enumerate(array(res, "hugepageLimits", "hugepageLimits")):
        name = "hugepageLimits[%d]" % i
        if not isinstance(entry, dict):
            raise bad(name, "must be an object")
        size = string(entry, "pageSize", name + ".pageSize")
        if not size or size[-2:] not in ("KB", "MB", "GB") or not _digits(size[:-2]):
            raise bad(name + ".pageSize", "%r is not a page size like \"2MB\"" % (size,))
        limit = integer(entry, "limit", name + ".limit", minimum=0)
        out.append((size, 0 if limit is None else limit))
    return out


def rdma_limits(res: dict[str, Any]) -> Any:
    """[(device, "hca_handle=N hca_object=M")] from rdma."""
    out = []
    for device, entry in sorted(section(res, "rdma").items()):
        name = "rdma.%s" % device
        if not isinstance(entry, dict):
            raise bad(name, "must be an object")
        parts = []
        for key, file_key in (("hcaHandles", "hca_handle"), ("hcaObjects", "hca_object")):
            value = integer(entry, key, "%s.%s" % (name, key), minimum=0, maximum=(1 << 32) - 1)
            if value is not None:
                parts.append("%s=%d" % (file_key, value))
        if parts:
            out.append((device, " ".join(parts)))
    return out


def unified_entries(res: dict[str, Any]) -> Any:
    """[(file, value)] from unified, with the keys checked."""
    out = []
    for key, value in sorted(section(res, "unified").items()):
        name = "unified.%s" % key
        if "/" in key or key in ("", ".", "..") or "." not in key:
            raise bad(name, "%r is not a cgroup v2 file name like \"memory.high\"" % key)
        if key.startswith("cgroup."):
            raise bad(name, "cgroup core files cannot be set")
        if not isinstance(value, str):
            raise bad(name, "must be a string")
        out.append((key, value))
    return out
