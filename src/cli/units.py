"""docker's human units: sizes ("1.99MB", "736KiB") and durations ("2 seconds", "About an hour")."""
from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime
else:
    # datetime's C core: the datetime module defines everything in Python before it imports
    # this (1-2 ms of a short command)
    from _datetime import datetime

_DECIMAL = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
_BINARY = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]


def _go_g(value: float, precision: int) -> str:
    text = "%.*g" % (precision, value)
    if "e" in text:                   # Go writes e+03 as Python does, two digits at least
        mant, _, exp = text.partition("e")
        sign = exp[0]
        text = "%se%s%02d" % (mant, sign, int(exp[1:]))
    return text


def human_size(size: float, precision: int = 3) -> str:
    """Decimal units, ``precision`` significant digits: 2040000 -> "2.04MB"."""
    i = 0
    while size >= 1000.0 and i < len(_DECIMAL) - 1:
        size /= 1000.0
        i += 1
    return _go_g(size, precision) + _DECIMAL[i]


def bytes_size(size: float) -> str:
    """Binary units, 4 significant digits: 754688 -> "737KiB"."""
    i = 0
    while size >= 1024.0 and i < len(_BINARY) - 1:
        size /= 1024.0
        i += 1
    return _go_g(size, 4) + _BINARY[i]


def human_duration(seconds: float) -> str:
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return "%d seconds" % s
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return "%d minutes" % minutes
    hours = int(round(seconds / 3600.0))
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return "%d hours" % hours
    if hours < 24 * 7 * 2:
        return "%d days" % (hours // 24)
    if hours < 24 * 30 * 2:
        return "%d weeks" % (hours // 24 // 7)
    if hours < 24 * 365 * 2:
        return "%d months" % (hours // 24 // 30)
    return "%d years" % (int(seconds / 3600) // 24 // 365)


def ago(unix_seconds: float, now: float | None = None) -> str:
    return human_duration((time.time() if now is None else now) - unix_seconds) + " ago"


def parse_timestamp(text: str) -> float:
    """RFC 3339 with nanoseconds ("2026-12-05T19:08:15.126666821Z") to unix seconds."""
    if not text or text.startswith("0001-01-01"):
        return 0.0
    main, _, rest = text.partition(".")
    frac = ""
    tz = "Z"
    if rest:
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        frac, tz = rest[:i], rest[i:] or "Z"
    else:
        for sep in ("Z", "+", "-"):
            k = main.rfind(sep)
            if k > 10:
                main, tz = main[:k], main[k:]
                break
    if tz == "Z":
        tz = "+00:00"
    dt = datetime.fromisoformat(main + tz)
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)


def go_time(unix_seconds: float) -> str:
    """Go's time.Time String() of a local time without monotonic part: "2026-12-05 19:08:15
    +0000 UTC"."""
    dt = datetime.fromtimestamp(int(unix_seconds)).astimezone()
    return dt.strftime("%Y-%m-%d %H:%M:%S %z ") + (dt.tzname() or "")


def parse_bytes(text: str) -> int:
    """docker's RAMInBytes: "64m", "1g", "512k", "100" (binary multiples)."""
    t = text.strip().lower()
    mult = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
    num = t.rstrip("bkmgtpi")
    suffix = t[len(num):].rstrip("b").rstrip("i") or "b"
    if suffix not in mult or not num:
        raise ValueError("invalid size: '%s'" % text)
    try:
        value = float(num)
    except ValueError:
        raise ValueError("invalid size: '%s'" % text) from None
    if value < 0:
        raise ValueError("invalid size: '%s'" % text)
    return int(value * mult[suffix])
