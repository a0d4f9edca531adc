"""Health checks: the ``Healthcheck`` config, the probe's command, and ``State.Health``.

The config is the Engine API's ``Config.Healthcheck``: ``Test`` (``["NONE"]``, ``["CMD", arg,
...]``, ``["CMD-SHELL", "command"]``, or empty to inherit the image's), and the durations
``Interval``, ``Timeout``, ``StartPeriod``, ``StartInterval`` in nanoseconds with ``Retries``
(0 means docker's default for each: 30 s, 30 s, 0, 5 s, 3).

``State.Health`` is ``{"Status": "starting" | "healthy" | "unhealthy", "FailingStreak": n,
"Log": [{"Start", "End", "ExitCode", "Output"}, ...]}`` (the last 5 probes), updated by
``apply_result`` with dockerd's rules.
"""
from __future__ import annotations

from pyrunc import errors
from pyrunc.libcontainer import timestamps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SECOND = 1_000_000_000
DEFAULT_INTERVAL = 30 * SECOND
DEFAULT_TIMEOUT = 30 * SECOND
DEFAULT_START_PERIOD = 0
DEFAULT_START_INTERVAL = 5 * SECOND
DEFAULT_RETRIES = 3
MIN_DURATION = 1_000_000            # 1 ms: docker's MinimumDuration

MAX_LOG_ENTRIES = 5
MAX_OUTPUT = 4096                   # bytes of a probe's output kept
DEFAULT_SHELL = ["/bin/sh", "-c"]

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
NONE, CMD, CMD_SHELL = "NONE", "CMD", "CMD-SHELL"

_DURATIONS = ("Interval", "Timeout", "StartPeriod", "StartInterval")
_FIELDS = frozenset(("Test", "Retries") + _DURATIONS)
MAX_DURATION = 2 ** 63 - 1          # a Go time.Duration


def go_duration(ns: int) -> str:
    """``ns`` as Go's ``time.Duration.String()`` writes it: ``1ms``, ``1.5s``, ``1m0s``."""
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns == 0:
        return "0s"
    if ns < SECOND:
        for unit, size in (("ns", 1), ("\u00b5s", 1_000), ("ms", 1_000_000)):
            if ns < size * 1000:
                return sign + _fraction(ns, size) + unit
    hours, rest = divmod(ns, 3600 * SECOND)
    minutes, rest = divmod(rest, 60 * SECOND)
    text = ""
    if hours:
        text += "%dh" % hours
    if hours or minutes:
        text += "%dm" % minutes
    return sign + text + _fraction(rest, SECOND) + "s"


def _fraction(value: int, unit: int) -> str:
    whole, part = divmod(value, unit)
    if not part:
        return str(whole)
    digits = str(part).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return "%d.%s" % (whole, digits)


def validate_healthcheck(config: Any) -> dict[str, Any] | None:
    """Check a ``Healthcheck`` document with dockerd's messages; None stays None. Returns a
    copy with every field present (0 where not given)."""
    if config is None:
        return None
    if not isinstance(config, dict):
        raise errors.InvalidArgument("Healthcheck: must be an object")
    unknown = sorted(set(config) - _FIELDS)
    if unknown:
        raise errors.InvalidArgument("Healthcheck: unknown field %r" % unknown[0])
    test = config.get("Test") or []
    if not isinstance(test, list) or not all(isinstance(word, str) for word in test):
        raise errors.InvalidArgument("Healthcheck: Test must be an array of strings")
    if any("\0" in word for word in test):
        raise errors.InvalidArgument("Healthcheck: Test must not contain NUL bytes")
    result: dict[str, Any] = {"Test": list(test)}
    for name in _DURATIONS + ("Retries",):
        value = config.get(name) or 0
        if isinstance(value, bool) or not isinstance(value, int):
            raise errors.InvalidArgument("Healthcheck: %s must be an integer" % name)
        if abs(value) > MAX_DURATION:
            raise errors.InvalidArgument("Healthcheck: %s is out of range" % name)
        result[name] = value
    for name in ("Interval", "Timeout"):
        if result[name] != 0 and result[name] < MIN_DURATION:
            raise errors.InvalidArgument("%s in Healthcheck cannot be less than %s"
                                         % (name, go_duration(MIN_DURATION)))
    if result["Retries"] < 0:
        raise errors.InvalidArgument("Retries in Healthcheck cannot be negative")
    for name in ("StartPeriod", "StartInterval"):
        if result[name] != 0 and result[name] < MIN_DURATION:
            raise errors.InvalidArgument("%s in Healthcheck cannot be less than %s"
                                         % (name, go_duration(MIN_DURATION)))
    return result


def probe_command(config: dict[str, Any] | None,
                  shell: list[str] | None = None) -> list[str] | None:
    """The argv a probe runs in the container (``CMD-SHELL`` through the container's Shell,
    ``/bin/sh -c`` by default), or None when the container has no health check to run."""
    if not config or not config.get("Test"):
        return None
    kind, args = config["Test"][0], config["Test"][1:]
    if kind == CMD:
        return list(args)
    if kind == CMD_SHELL:
        return list(shell or DEFAULT_SHELL) + [" ".join(args)]
    return None         # NONE, or a kind docker ignores with a warning


def settings(config: dict[str, Any]) -> dict[str, int]:
    """The config's durations (nanoseconds) and retries with docker's defaults applied."""
    def pick(name, default):
        value = config.get(name) or 0
        return value if value > 0 else default
    return {"Interval": pick("Interval", DEFAULT_INTERVAL),
            "Timeout": pick("Timeout", DEFAULT_TIMEOUT),
            "StartPeriod": pick("StartPeriod", DEFAULT_START_PERIOD),
            "StartInterval": pick("StartInterval", DEFAULT_START_INTERVAL),
            "Retries": pick("Retries", DEFAULT_RETRIES)}


def next_interval(config: dict[str, Any], status: str, started_at_ns: int,
                  now_ns: int) -> int:
    """Nanoseconds until the next probe: StartInterval while starting within the start
    period, Interval otherwise (dockerd's monitor)."""
    s = settings(config)
    if now_ns - started_at_ns >= s["StartPeriod"] or status != STARTING:
        return s["Interval"]
    return s["StartInterval"]


def reset(health: dict[str, Any] | None) -> dict[str, Any]:
    """``State.Health`` for a container (re)started: starting, no failing streak; the log of
    earlier probes is kept, as dockerd keeps it."""
    log = list(health.get("Log") or []) if health else []
    return {"Status": STARTING, "FailingStreak": 0, "Log": log}


def stopped(health: dict[str, Any] | None) -> dict[str, Any] | None:
    """``State.Health`` once the container stopped: dockerd reports unhealthy when its monitor
    ends."""
    if health is None:
        return None
    return dict(health, Status=UNHEALTHY)


def limit_output(data: bytes) -> str:
    """A probe's combined output as dockerd keeps it: the first 4096 bytes, "..." after them
    when there was more."""
    text = data[:MAX_OUTPUT].decode("utf-8", "replace")
    return text + "..." if len(data) > MAX_OUTPUT else text


def result(start_ns: int, end_ns: int, exit_code: int, output: str) -> dict[str, Any]:
    """One ``State.Health.Log`` entry."""
    return {"Start": timestamps.format_ns(start_ns), "End": timestamps.format_ns(end_ns),
            "ExitCode": exit_code, "Output": output}


def timeout_result(start_ns: int, end_ns: int, timeout_ns: int, output: bytes) -> dict[str, Any]:
    """The entry of a probe that ran past its timeout (exit code -1, as dockerd records)."""
    message = "Health check exceeded timeout (%s)" % go_duration(timeout_ns)
    if output:
        message += ": " + limit_output(output)
    return result(start_ns, end_ns, -1, message)


def apply_result(health: dict[str, Any], entry: dict[str, Any], config: dict[str, Any],
                 started_at_ns: int) -> str | None:
    """Record a probe's ``entry`` in ``health`` (changed in place) with dockerd's rules;
    returns the new status when it changed (the ``health_status`` event's), else None.

    A success makes the container healthy and ends the failing streak. A failure (any other
    exit code) lengthens the streak, unless the container has never been healthy and the
    probe started within the start period; ``Retries`` failures in a row make it unhealthy.
    """
    s = settings(config)
    old = health.get("Status") or UNHEALTHY
    log = list(health.get("Log") or [])
    log.append(entry)
    health["Log"] = log[-MAX_LOG_ENTRIES:]
    if entry["ExitCode"] == 0:
        health["FailingStreak"] = 0
        health["Status"] = HEALTHY
    else:
        counts = True
        if old == STARTING:
            since_start = timestamps.parse_ns(entry["Start"]) - started_at_ns
            counts = since_start >= s["StartPeriod"]
        if counts:
            health["FailingStreak"] = health.get("FailingStreak", 0) + 1
            if health["FailingStreak"] >= s["Retries"]:
                health["Status"] = UNHEALTHY
        health.setdefault("Status", old)
    return health["Status"] if health["Status"] != old else None
