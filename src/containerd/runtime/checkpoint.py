"""``pyrunc checkpoint`` / ``restore``: runc's commands over ``pyrunc.libcontainer.criu``.

Both first ask ``criu check`` whether CRIU can run on this kernel and, where it cannot, fail
with CRIU's own reason in one line (Debian 12's CRIU 3.17 cannot on newer kernels). runc's
flags that pyrunc does not pass on (lazy pages, page server, status fd, empty namespaces, LSM
profiles) are refused by name.
"""
from __future__ import annotations

import os

from pyrunc.errors import (AlreadyExists, FailedPrecondition, InvalidArgument, NotFound,
                           Unavailable)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

UNSUPPORTED = {"lazy_pages": "--lazy-pages", "page_server": "--page-server",
               "status_fd": "--status-fd", "empty_ns": "--empty-ns",
               "lsm_profile": "--lsm-profile", "lsm_mount_context": "--lsm-mount-context",
               "console_socket": "--console-socket"}


def _options(flags, what):
    from pyrunc.libcontainer import criu
    for key, name in UNSUPPORTED.items():
        if flags.get(key):
            raise Unavailable("%s: %s is not supported by pyrunc" % (what, name))
    return criu.Options(
        flags["image_path"] or "checkpoint", work_path=flags["work_path"],
        parent_path=flags.get("parent_path"), leave_running=flags.get("leave_running", False),
        tcp_established=flags["tcp_established"], ext_unix_sk=flags["ext_unix_sk"],
        shell_job=flags["shell_job"], file_locks=flags["file_locks"],
        pre_dump=flags.get("pre_dump", False), auto_dedup=flags["auto_dedup"],
        manage_cgroups_mode=flags["manage_cgroups_mode"])


def _need_criu(what, criu_path):
    from pyrunc.libcontainer import criu
    problem = criu.problem(criu_path)
    if problem:
        raise Unavailable("%s: CRIU cannot run on this host: %s" % (what, problem))


def checkpoint(ctx: Any, flags: Any, container_id: str) -> None:
    container = ctx.load(container_id)
    options = _options(flags, "checkpoint")
    if container.status not in ("running", "paused"):      # before asking CRIU
        raise FailedPrecondition("container %s is not running" % container_id)
    _need_criu("checkpoint", ctx.criu)
    container.checkpoint(options, ctx.criu)


def restore(ctx: Any, flags: Any, container_id: str) -> Any:
    """Restore into a new container; in the foreground, wait for it and return its exit
    code as ``run`` does."""
    try:
        ctx.load(container_id)
    except NotFound:
        pass
    else:
        raise AlreadyExists("container with id %s already exists" % container_id)
    options = _options(flags, "restore")
    if flags["no_subreaper"] and not flags["detach"]:
        raise InvalidArgument("restore: --no-subreaper needs --detach (in the foreground "
                              "pyrunc reaps the restored init as a child subreaper)")
    _need_criu("restore", ctx.criu)
    bundle = os.path.abspath(flags["bundle"] or ".")
    pid_file = flags["pid_file"] and os.path.abspath(flags["pid_file"])
    factory = ctx.factory()
    if flags["detach"]:
        factory.restore(container_id, bundle, options, ctx.criu, pid_file=pid_file)
        return 0
    from pyrunc.containerd.runtime import foreground
    foreground.set_child_subreaper()
    with foreground.Signals() as signals:
        container = factory.restore(container_id, bundle, options, ctx.criu,
                                    pid_file=pid_file)
        try:
            return foreground.supervise(signals, container.pid, None)
        finally:
            container.destroy(force=True)
