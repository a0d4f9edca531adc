"""One exception hierarchy for every layer.

Each category maps onto a process exit code (for ``pyrunc``, ``pydocker``) and an HTTP status
(for ``pydockerd``'s Docker Engine API). Raise the most specific category; the message is the
one line a user sees, so it names the thing and the reason.
"""
from __future__ import annotations


TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def shown(text: str) -> str:
    """``text`` (a name a client sent) for an error message: as is, but with each unprintable
    character escaped, so that it can never break the message's one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


class PyruncError(Exception):
    """Base of every error this project raises on purpose."""

    category = "Unknown"
    exit_code = 1
    http_status = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self):
        return self.message


class InvalidArgument(PyruncError):
    """The caller asked for something malformed (bad config, bad flag, bad reference)."""

    category = "InvalidArgument"
    exit_code = 2
    http_status = 400


class NotFound(PyruncError):
    """The named thing does not exist."""

    category = "NotFound"
    exit_code = 3
    http_status = 404


class AlreadyExists(PyruncError):
    """The named thing exists already."""

    category = "AlreadyExists"
    exit_code = 4
    http_status = 409


class Conflict(PyruncError):
    """The thing is in use or another operation holds it."""

    category = "Conflict"
    exit_code = 5
    http_status = 409


class FailedPrecondition(PyruncError):
    """The thing is in the wrong state for this operation (e.g. start a running container)."""

    category = "FailedPrecondition"
    exit_code = 6
    http_status = 409


class Unavailable(PyruncError):
    """A component or facility is not there (controller absent, registry unreachable)."""

    category = "Unavailable"
    exit_code = 7
    http_status = 503


class Unauthorized(PyruncError):
    """Credentials are missing or were refused (a registry login, a token server)."""

    category = "Unauthorized"
    exit_code = 8
    http_status = 401


class SystemFailure(PyruncError):
    """A system call failed while doing a named step; carries errno, the step and a hint."""

    category = "Unknown"
    exit_code = 1
    http_status = 500

    def __init__(self, step: str, errno_: int | None, detail: str | None = None, *,
                 hint: str | None = None) -> None:
        import os
        reason = os.strerror(errno_).lower() if errno_ else (detail or "failed")
        message = "%s: %s" % (step, reason)
        if detail and errno_:
            message = "%s: %s" % (message, detail)
        super().__init__(message, hint=hint)
        self.step = step
        self.errno = errno_


CATEGORIES = (InvalidArgument, NotFound, AlreadyExists, Conflict, FailedPrecondition,
              Unavailable, Unauthorized, SystemFailure)


def _stderr_warning(message):
    import sys
    sys.stderr.write("pyrunc: warning: %s\n" % message)


_warning_sink = [_stderr_warning]


def warn(message: str) -> None:
    """Report something skipped or adjusted (an unknown syscall name, a capability this kernel
    lacks) without failing. Commands route these to their log with ``set_warning_sink``."""
    _warning_sink[0](message)


def set_warning_sink(sink: Callable[[str], object]) -> Callable[[str], object]:
    """Send warnings to ``sink(message)`` from now on; returns the previous sink."""
    previous, _warning_sink[0] = _warning_sink[0], sink
    return previous
