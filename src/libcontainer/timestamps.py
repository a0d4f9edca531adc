"""Timestamps as text: RFC 3339 in UTC, written the way Go's ``time.RFC3339Nano`` writes them.

Every layer writes and reads its times here, as integer nanoseconds since the Unix epoch:
runc's state ``created``, the task events and exit records, image ``created`` and the Engine
API's times. Written form: ``2024-01-02T03:04:05.123456789Z``, the fraction's trailing zeros
dropped and no fraction at all on a whole second (what runc's ``state`` and Docker's JSON
show); ``nano=False`` gives whole seconds (``time.RFC3339``, as runc's json log lines use).

Read form: any RFC 3339 ``date-time`` (a fraction of 1 to 9 digits, more are truncated as Go
does; ``Z`` or a ``+hh:mm``/``-hh:mm`` offset; ``T``/``t`` and ``Z``/``z`` in either case).

Only ``time`` (built in) is imported: the runtime's hot path formats ``created``.
"""
from __future__ import annotations

import time

from pyrunc.errors import InvalidArgument

NS = 1_000_000_000
_DIGITS = "0123456789"


def now_ns() -> int:
    """Nanoseconds since the epoch, now (the wall clock)."""
    return time.time_ns()


def format_ns(ns: int, nano: bool = True) -> str:
    """``ns`` (nanoseconds since the epoch, UTC) as RFC 3339 text; see the module docstring."""
    seconds, fraction = divmod(ns, NS)
    days, rest = divmod(seconds, 86400)
    year, month, day = _civil(days)
    if not 0 <= year <= 9999:
        raise InvalidArgument("timestamp %d: year %d is outside 0000-9999" % (ns, year))
    text = "%04d-%02d-%02dT%02d:%02d:%02d" % (year, month, day, rest // 3600,
                                               rest // 60 % 60, rest % 60)
    if nano and fraction:
        text += ("." + "%09d" % fraction).rstrip("0")
    return text + "Z"


def now(nano: bool = True) -> str:
    """The time now as RFC 3339 text."""
    return format_ns(time.time_ns(), nano)


def parse_ns(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 ``date-time``; InvalidArgument if it is not
    one."""
    if not isinstance(text, str):
        raise InvalidArgument("timestamp %r: not a string" % (text,))
    if (len(text) < 20 or text[4] != "-" or text[7] != "-" or text[10] not in "Tt"
            or text[13] != ":" or text[16] != ":"):
        raise InvalidArgument("timestamp %r: not RFC 3339 (YYYY-MM-DDThh:mm:ss[.frac]Z)"
                              % text)
    year, month, day = _number(text, 0, 4), _number(text, 5, 7), _number(text, 8, 10)
    hour, minute, second = _number(text, 11, 13), _number(text, 14, 16), _number(text, 17, 19)
    i, fraction = 19, 0
    if text[i] == ".":
        j = i + 1
        while j < len(text) and text[j] in _DIGITS:
            j += 1
        if j == i + 1:
            raise InvalidArgument("timestamp %r: a '.' without digits" % text)
        fraction = int(text[i + 1:min(j, i + 10)].ljust(9, "0"))
        i = j
    zone = text[i:]
    if zone in ("Z", "z"):
        offset = 0
    elif (len(zone) == 6 and zone[0] in "+-" and zone[3] == ":"):
        oh, om = _number(zone, 1, 3), _number(zone, 4, 6)
        if oh > 23 or om > 59:
            raise InvalidArgument("timestamp %r: offset out of range" % text)
        offset = (oh * 3600 + om * 60) * (1 if zone[0] == "+" else -1)
    else:
        raise InvalidArgument("timestamp %r: the zone must be Z or +hh:mm/-hh:mm" % text)
    if not (1 <= month <= 12 and 1 <= day <= _month_days(year, month) and hour <= 23
            and minute <= 59 and second <= 59):
        raise InvalidArgument("timestamp %r: a field is out of range" % text)
    seconds = (_days(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset)
    return seconds * NS + fraction


def _number(text: str, start: int, end: int) -> int:
    part = text[start:end]
    if len(part) != end - start or any(c not in _DIGITS for c in part):
        raise InvalidArgument("timestamp %r: not RFC 3339 (YYYY-MM-DDThh:mm:ss[.frac]Z)"
                              % text)
    return int(part)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _month_days(year: int, month: int) -> int:
    if month == 2:
        return 29 if _leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to the proleptic Gregorian date (H. Hinnant's days_from_civil)."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil(days: int) -> tuple[int, int, int]:
    """The proleptic Gregorian (year, month, day) ``days`` after 1970-01-01."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (month <= 2), month, day
