"""Restart policies: parsing, validation and the restart manager's decisions, as dockerd's.

A policy is the Engine API's ``HostConfig.RestartPolicy``: ``{"Name": "no" | "on-failure" |
"always" | "unless-stopped", "MaximumRetryCount": N}`` (``Name`` "" means "no").

``RestartManager`` is the pure part of docker's restart manager: given an exit (its code,
whether a user stopped the container, how long it ran) it says whether to restart and after
how long. The delay starts at 100 ms, doubles with each restart, stops growing at one minute,
and goes back to 100 ms once the container ran for 10 seconds or more.
"""
from __future__ import annotations

from pyrunc import errors

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NO, ON_FAILURE, ALWAYS, UNLESS_STOPPED = "no", "on-failure", "always", "unless-stopped"
POLICIES = (NO, ALWAYS, ON_FAILURE, UNLESS_STOPPED)

INITIAL_DELAY = 0.1         # seconds: docker's defaultTimeout
MAX_DELAY = 60.0            # seconds: docker's maxRestartTimeout
BACKOFF_MULTIPLIER = 2
RESET_AFTER = 10.0          # seconds of running that reset the delay

MAX_RETRY_LIMIT = 2 ** 63 - 1     # docker's MaximumRetryCount is a Go int (64 bits)


def parse_restart_policy(text: str) -> dict[str, Any]:
    """The ``--restart`` flag's value (``on-failure:3``) as a policy document, as the docker CLI
    parses it; the name itself is checked by ``validate_restart_policy``."""
    if not isinstance(text, str):
        raise errors.InvalidArgument("invalid restart policy format: must be a string")
    if text == "":
        return {"Name": "", "MaximumRetryCount": 0}
    name, colon, count_text = text.partition(":")
    if colon and name == "":
        raise errors.InvalidArgument(
            "invalid restart policy format: no policy provided before colon")
    count = 0
    if count_text != "":
        if not _go_atoi_ok(count_text):
            raise errors.InvalidArgument(
                "invalid restart policy format: maximum retry count must be an integer")
        count = int(count_text)
    return {"Name": name, "MaximumRetryCount": count}


def _go_atoi_ok(text: str) -> bool:
    """Whether Go's strconv.Atoi takes ``text`` (optional sign, ASCII digits, fits 64 bits)."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or not all("0" <= c <= "9" for c in digits):
        return False
    return -2 ** 63 <= int(text) < 2 ** 63


def validate_restart_policy(policy: Any) -> dict[str, Any]:
    """Check a ``RestartPolicy`` document (None: none given) with dockerd's messages; returns
    it normalised to ``{"Name", "MaximumRetryCount"}``."""
    if policy is None:
        return {"Name": "", "MaximumRetryCount": 0}
    if not isinstance(policy, dict):
        raise errors.InvalidArgument("invalid restart policy: must be an object")
    unknown = sorted(set(policy) - {"Name", "MaximumRetryCount"})
    if unknown:
        raise errors.InvalidArgument("invalid restart policy: unknown field %r" % unknown[0])
    name = policy.get("Name", "")
    count = policy.get("MaximumRetryCount", 0)
    if name is None:
        name = ""
    if count is None:
        count = 0
    if not isinstance(name, str):
        raise errors.InvalidArgument("invalid restart policy: Name must be a string")
    if isinstance(count, bool) or not isinstance(count, int):
        raise errors.InvalidArgument(
            "invalid restart policy: MaximumRetryCount must be an integer")
    if name in (ALWAYS, UNLESS_STOPPED, NO):
        if count != 0:
            message = ("invalid restart policy: maximum retry count can only be used with "
                       "'on-failure'")
            if count < 0:
                message += " and cannot be negative"
            raise errors.InvalidArgument(message)
    elif name == ON_FAILURE:
        if count < 0:
            raise errors.InvalidArgument(
                "invalid restart policy: maximum retry count cannot be negative")
        if count > MAX_RETRY_LIMIT:
            raise errors.InvalidArgument(
                "invalid restart policy: maximum retry count cannot be more than %d"
                % MAX_RETRY_LIMIT)
    elif name != "":        # "" takes any count: what docker before 25 created
        raise errors.InvalidArgument(
            "invalid restart policy: unknown policy '%s'; use one of '%s', '%s', '%s', or '%s'"
            % (_printable(name), NO, ALWAYS, ON_FAILURE, UNLESS_STOPPED))
    return {"Name": name, "MaximumRetryCount": count}


def _printable(text: str, limit: int = 64) -> str:
    """A name from a request as one short line (an attacker's name may hold anything)."""
    shown = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return shown + ("..." if len(text) > limit else "")


def validate_host_config(host_config: dict[str, Any] | None) -> dict[str, Any]:
    """The restart policy of a create or update request's HostConfig, checked with the rules
    dockerd applies across fields (AutoRemove excludes a restart policy)."""
    host_config = host_config or {}
    policy = validate_restart_policy(host_config.get("RestartPolicy"))
    if host_config.get("AutoRemove") and policy["Name"] not in ("", NO):
        raise errors.InvalidArgument("can't create 'AutoRemove' container with restart policy")
    return policy


def is_none(policy: dict[str, Any]) -> bool:
    return policy.get("Name", "") in ("", NO)


class RestartManager:
    """One container's restart decisions (docker's restartmanager, without the timer).

    ``restart_count`` is the container's RestartCount (the count on-failure:N limits);
    ``delay`` the back-off of the previous restart (0: none yet). Both are plain numbers so
    the supervisor can keep them on disk and a new process continue where one died.
    """

    def __init__(self, policy: dict[str, Any], restart_count: int = 0,
                 delay: float = 0.0) -> None:
        self.policy = validate_restart_policy(policy)
        self.restart_count = restart_count
        self.delay = delay
        self.cancelled = False

    def cancel(self) -> None:
        """A user stopped or killed the container: no restart until the next start."""
        self.cancelled = True

    def should_restart(self, exit_code: int, manually_stopped: bool,
                       ran_for: float) -> tuple[bool, float]:
        """``(restart, after_seconds)`` for an exit with ``exit_code`` after ``ran_for``
        seconds of running; a restart counts towards ``restart_count``."""
        if is_none(self.policy) or self.cancelled:
            return False, 0.0
        if ran_for >= RESET_AFTER:
            self.delay = 0.0
        if self.delay == 0.0:
            self.delay = INITIAL_DELAY
        elif self.delay < MAX_DELAY:
            self.delay *= BACKOFF_MULTIPLIER
        self.delay = min(self.delay, MAX_DELAY)
        name = self.policy["Name"]
        if name == ALWAYS:
            restart = True
        elif name == UNLESS_STOPPED:
            restart = not manually_stopped
        else:
            limit = self.policy["MaximumRetryCount"]
            restart = exit_code != 0 and (limit == 0 or self.restart_count < limit)
        if not restart:
            return False, 0.0
        self.restart_count += 1
        return True, self.delay


def restart_on_boot(policy: dict[str, Any], *, exit_code: int, manually_stopped: bool,
                    restart_count: int, started_before: bool) -> bool:
    """Whether a container found stopped when the daemon (the supervisor) starts is started
    again: dockerd asks a fresh restart manager, so ``always`` restarts even a container a
    user stopped, ``unless-stopped`` does not."""
    if not started_before:
        return False
    manager = RestartManager(policy, restart_count)
    return manager.should_restart(exit_code, manually_stopped, 0.0)[0]
