"""``pyrunc checkpoint`` / ``restore``: what CRIU allows on this host, said in one line.

pyrunc does not drive CRIU yet. The commands take runc's flags, check the container and CRIU,
and fail with the reason: CRIU's own when it cannot run on this kernel (Debian 12's CRIU 3.17
cannot on newer kernels), otherwise that pyrunc has no checkpoint support (docs/unsupported.md).
"""
import subprocess

from pyrunc.errors import AlreadyExists, FailedPrecondition, NotFound, Unavailable

def criu_problem(criu):
    """Why CRIU cannot checkpoint here (its first error line), or None if ``criu check`` passes."""
    try:
        r = subprocess.run([criu, "check"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        return "%s: not found (install Debian's criu package)" % criu
    except subprocess.TimeoutExpired:
        return "%s check: timed out" % criu
    if r.returncode == 0:
        return None
    lines = [line for line in (r.stderr + r.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error")]
    return (errors or lines or ["exit status %d" % r.returncode])[0]


def _unsupported(what, criu):
    problem = criu_problem(criu)
    if problem:
        raise Unavailable("%s: CRIU cannot run on this host: %s" % (what, problem))
    raise Unavailable("%s: not supported by pyrunc (checkpoint/restore through CRIU is not "
                      "built)" % what)


def checkpoint(ctx, container_id, criu):
    container = ctx.load(container_id)
    if container.status not in ("running", "paused"):
        raise FailedPrecondition("container %s is not running" % container_id)
    _unsupported("checkpoint", criu)


def restore(ctx, container_id, criu):
    try:
        ctx.load(container_id)
    except NotFound:
        _unsupported("restore", criu)
    raise AlreadyExists("container with id %s already exists" % container_id)
