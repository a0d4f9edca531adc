"""Settings of the calling process itself (runc's libcontainer/system), made by the native core."""
from pyrunc._core import lib
from pyrunc.errors import SystemFailure


def set_child_subreaper() -> None:
    """prctl(PR_SET_CHILD_SUBREAPER, 1): orphaned descendants are reparented to this process
    (not to the host's init), so it can reap them and collect their exit status."""
    err = lib.core_set_child_subreaper(1)
    if err:
        raise SystemFailure("prctl PR_SET_CHILD_SUBREAPER", -err)
