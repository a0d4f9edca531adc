"""Settings of the calling process itself (runc's libcontainer/system), made by the native core."""
from pyrunc._core import lib
from pyrunc.errors import SystemFailure


def set_child_subreaper() -> None:
    """prctl(PR_SET_CHILD_SUBREAPER, 1): orphaned descendants are reparented to this process
    (not to the host's init), so it can reap them and collect their exit status."""
    err = lib.core_set_child_subreaper(1)
    if err:
        raise SystemFailure("prctl PR_SET_CHILD_SUBREAPER", -err)


def unshare_net() -> None:
    """unshare(CLONE_NEWNET) for the calling thread only: it (not the process's other threads)
    is now in a new network namespace, its /proc/thread-self/ns/net."""
    err = lib.core_unshare(lib.CLONE_NEWNET)
    if err:
        raise SystemFailure("unshare network namespace", -err)


def setns_net(fd: int) -> None:
    """setns(fd, CLONE_NEWNET) for the calling thread only: it joins the network namespace
    ``fd`` refers to."""
    err = lib.core_setns(fd, lib.CLONE_NEWNET)
    if err:
        raise SystemFailure("join network namespace", -err)
