"""A container's ``State`` document (the Engine API's ContainerState) and its status text.

docker's states: created, running, paused, restarting, removing, exited, dead. The document is
kept in the container's config.v2.json; these functions change it in place.
"""
from __future__ import annotations

import functools

from pyrunc.libcontainer import timestamps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CREATED, RUNNING, PAUSED, RESTARTING = "created", "running", "paused", "restarting"
REMOVING, EXITED, DEAD = "removing", "exited", "dead"
STATUSES = (CREATED, RUNNING, PAUSED, RESTARTING, REMOVING, EXITED, DEAD)
ZERO_TIME = "0001-01-01T00:00:00Z"      # Go's zero time.Time, as docker writes it


@functools.lru_cache(maxsize=4096)
def time_ns(text: str) -> int:
    """``timestamps.parse_ns`` of a time kept in a record (Created, StartedAt, FinishedAt),
    remembered: a listing reads the same few texts of every container each time."""
    return timestamps.parse_ns(text)


def new_state() -> dict[str, Any]:
    return {"Status": CREATED, "Running": False, "Paused": False, "Restarting": False,
            "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
            "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME}


def set_running(state: dict[str, Any], pid: int, started_at: str) -> None:
    state.update(Status=RUNNING, Running=True, Paused=False, Restarting=False, OOMKilled=False,
                 Dead=False, Pid=pid, ExitCode=0, Error="", StartedAt=started_at)


def set_paused(state: dict[str, Any], paused: bool) -> None:
    state.update(Status=PAUSED if paused else RUNNING, Paused=paused)


def set_exited(state: dict[str, Any], exit_code: int, finished_at: str | None,
               oom_killed: bool = False) -> None:
    state.update(Status=EXITED, Running=False, Paused=False, Restarting=False, Pid=0,
                 ExitCode=exit_code, OOMKilled=bool(oom_killed),
                 FinishedAt=finished_at or timestamps.now())
    if state.get("Health"):
        state["Health"]["Status"] = "unhealthy"


def set_start_failed(state: dict[str, Any], exit_code: int, error: str) -> None:
    """A process that could not start: docker keeps the status it had (created or exited)
    and records the reason and the exit code."""
    state.update(Running=False, Paused=False, Restarting=False, Pid=0, ExitCode=exit_code,
                 Error=error)


def is_active(state: dict[str, Any]) -> bool:
    """Running or paused: a task exists that has not been seen exiting."""
    return state["Status"] in (RUNNING, PAUSED, RESTARTING) and state.get("Running", False)


def human_duration(seconds: float) -> str:
    """docker's units.HumanDuration."""
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
    hours = round(s / 3600)
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
    return "%d years" % (hours // 24 // 365)


def _since(text: str, now_ns: int) -> float:
    return max(0, now_ns - time_ns(text)) / timestamps.NS


def status_text(state: dict[str, Any], now_ns: int | None = None) -> str:
    """The ``Status`` column of ``docker ps`` ("Up 3 seconds", "Exited (0) 2 minutes ago")."""
    now_ns = timestamps.now_ns() if now_ns is None else now_ns
    status = state["Status"]
    if status in (RUNNING, PAUSED):
        text = "Up " + human_duration(_since(state["StartedAt"], now_ns))
        if status == PAUSED:
            return text + " (Paused)"
        health = (state.get("Health") or {}).get("Status")
        if health == "starting":
            return text + " (health: starting)"
        if health in ("healthy", "unhealthy"):
            return text + " (%s)" % health
        return text
    if status == RESTARTING:
        return "Restarting (%d) %s ago" % (state["ExitCode"],
                                           human_duration(_since(state["FinishedAt"], now_ns)))
    if status == REMOVING:
        return "Removal In Progress"
    if status == DEAD:
        return "Dead"
    if status == EXITED or state["FinishedAt"] != ZERO_TIME:
        return "Exited (%d) %s ago" % (state["ExitCode"],
                                       human_duration(_since(state["FinishedAt"], now_ns)))
    return "Created"
