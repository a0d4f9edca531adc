"""Checkpoint and restore through CRIU's command line, the way runc and crun drive it.

``dump`` saves a running container's process tree in an image directory; ``restore`` brings
it back as the init of a new container (the container's state and cgroup are the caller's:
``Container.checkpoint`` and ``Factory.restore``). What CRIU needs to be told, as runc and
crun tell it:

* the container's root (``--root``): the rootfs on dump; on restore a private bind mount of
  it (read-only for a read-only root), which CRIU pivots into;
* mounts from outside the container are "external" (``--external mnt[PATH]:KEY`` on dump,
  ``--ext-mount-map KEY:HOST_PATH`` on restore): the cgroup mounts, keyed by hierarchy, so that
  a restored container sees its new cgroup, and the config's bind mounts, keyed by destination;
* stdio that leads outside: a device (``/dev/null``) is an external file on dump
  (``file[MNT_ID:INODE]``) and a pipe keeps its ``pipe:[INODE]``; on restore both are handed
  the restoring process's own descriptor of the same number (``--inherit-fd``), so the
  restored container writes where ``pyrunc restore``'s caller reads. The keys are those of the
  descriptors the container was given (``descriptor_keys``, kept in its state at create and
  restore, as runc keeps its "external descriptors"), not what the init holds as 0-2 when it
  is checkpointed: a shell running ``echo > FILE`` has its stdout on FILE for a moment (the
  original moved to a higher descriptor), and a program may move its stdio for good. They
  go in ``descriptors.json`` in the image directory, as runc keeps them there;
* the cgroup: CRIU freezes the container's cgroup to dump it (``--freeze-cgroup``), ignores
  cgroups otherwise (the restore runs inside the container's new cgroup, made and limited
  from the config, so the restored tree starts there).

``descriptor_keys`` (in ``pyrunc.libcontainer.descriptors``) runs on every create, so it lives
in a module of its own that imports nothing heavy; this one imports ``subprocess`` only where
CRIU runs.
"""
from __future__ import annotations

import errno
import json
import os

from pyrunc.errors import InvalidArgument, NotFound, SystemFailure, Unavailable
from pyrunc.libcontainer.descriptors import descriptor_keys
from pyrunc.libcontainer.mountflags import (
    MNT_DETACH, MS_BIND, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT, mount, umount)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from pyrunc.libcontainer.cgroups.hierarchy import Mount
    from pyrunc.libcontainer.cgroups.manager import Manager

DESCRIPTORS = "descriptors.json"
DUMP_LOG = "dump.log"
RESTORE_LOG = "restore.log"
MANAGE_CGROUPS_MODES = ("soft", "full", "strict", "ignore")


class Options:
    """runc's checkpoint/restore options that pyrunc passes on to CRIU."""

    __slots__ = ("image_path", "work_path", "parent_path", "leave_running", "tcp_established",
                 "ext_unix_sk", "shell_job", "file_locks", "pre_dump", "auto_dedup",
                 "manage_cgroups_mode")

    def __init__(self, image_path: str, work_path: str | None = None,
                 parent_path: str | None = None, leave_running: bool = False,
                 tcp_established: bool = False, ext_unix_sk: bool = False, shell_job: bool = False,
                 file_locks: bool = False, pre_dump: bool = False, auto_dedup: bool = False,
                 manage_cgroups_mode: str | None = None) -> None:
        if manage_cgroups_mode and manage_cgroups_mode not in MANAGE_CGROUPS_MODES:
            raise InvalidArgument("--manage-cgroups-mode: %r is not one of %s"
                                  % (manage_cgroups_mode, ", ".join(MANAGE_CGROUPS_MODES)))
        if parent_path and parent_path.startswith("/"):
            raise InvalidArgument("--parent-path: must be relative to --image-path "
                                  "(%s)" % parent_path)
        self.image_path = os.path.abspath(image_path)
        self.work_path = work_path and os.path.abspath(work_path)
        self.parent_path = parent_path
        self.leave_running = leave_running
        self.tcp_established = tcp_established
        self.ext_unix_sk = ext_unix_sk
        self.shell_job = shell_job
        self.file_locks = file_locks
        self.pre_dump = pre_dump
        self.auto_dedup = auto_dedup
        self.manage_cgroups_mode = manage_cgroups_mode

    def common_args(self, log: str) -> list[str]:
        args = ["-D", self.image_path, "-o", log, "-v4",
                "--manage-cgroups=%s" % (self.manage_cgroups_mode or "ignore")]
        if self.work_path:
            args += ["-W", self.work_path]
        for flag, on in (("--tcp-established", self.tcp_established),
                         ("--ext-unix-sk", self.ext_unix_sk), ("--shell-job", self.shell_job),
                         ("--file-locks", self.file_locks), ("--auto-dedup", self.auto_dedup)):
            if on:
                args.append(flag)
        return args

    def log_path(self, log: Any) -> Any:
        return os.path.join(self.work_path or self.image_path, log)


def check_config(config: Any, what: str) -> None:
    """What pyrunc cannot checkpoint or restore, refused before CRIU runs."""
    if (config.get("process") or {}).get("terminal"):
        raise Unavailable("%s: a container with a terminal (process.terminal) is not supported"
                          % what)
    for ns in (config.get("linux") or {}).get("namespaces") or []:
        if ns.get("path"):
            raise Unavailable("%s: a container that joins a %s namespace by path is not "
                              "supported" % (what, ns.get("type")))


def cgroup_key(mount: Mount) -> str:
    """The external-mount key of a cgroup mount (a ``hierarchy.Mount``): "cgroup2", or
    "cgroup-<first controller>" ("cgroup-cpu" for cpu,cpuacct; "cgroup-name=systemd")."""
    if mount.fstype == "cgroup2":
        return "cgroup2"
    return "cgroup-" + (mount.controllers[0] if mount.controllers else "unknown")


def cgroup_mounts(pid: int) -> list[Any]:
    """[(mountpoint, key)] of the cgroup mounts in ``pid``'s mount namespace, as it sees them."""
    from pyrunc.libcontainer.cgroups import hierarchy
    with open("/proc/%d/mountinfo" % pid) as f:
        return [(m.mountpoint, cgroup_key(m)) for m in hierarchy.parse_mountinfo(f.read())]


def cgroup_mount_map(manager: Manager) -> dict[str, str]:
    """{key: host directory} of the container's new cgroup, for every key ``cgroup_key`` makes."""
    out = {}
    for controller, directory in manager.paths().items():
        out["cgroup2" if controller == "" else "cgroup-" + controller] = directory
    return out


def bind_mounts(config: Any) -> list[tuple[str, str]]:
    """[(destination, source)] of the config's bind mounts."""
    out = []
    for m in config.get("mounts") or []:
        options = m.get("options") or []
        if m.get("type") == "bind" or "bind" in options or "rbind" in options:
            out.append((m["destination"], m.get("source", "")))
    return out


def stdio_keys(recorded: list[str] | None) -> list[str]:
    """The keys for ``descriptors.json`` from a container's recorded stdio (its state's
    "stdio", ``descriptor_keys`` of what it was given); refused here where CRIU cannot
    restore them."""
    if recorded is None:
        raise Unavailable("checkpoint: the container's state does not record its stdio "
                          "(made by an older pyrunc): restart it to checkpoint it")
    for fd, key in enumerate(recorded):
        if key.startswith("/"):
            # CRIU (3.17) cannot hand a restored process an inherited regular file
            raise Unavailable("checkpoint: the container's descriptor %d is a regular file "
                              "(%s): CRIU restores pipes and devices as stdio, not files"
                              % (fd, key))
    return recorded


def run(criu: Any, args: Any, what: Any, log: Any, preexec_fn: Any = None,
        pass_fds: Any = ()) -> None:
    """Run CRIU; a failure is one line with CRIU's first error and where its log is."""
    import subprocess
    try:
        r = subprocess.run([criu] + args, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=600, preexec_fn=preexec_fn, pass_fds=pass_fds)
    except FileNotFoundError:
        raise Unavailable("%s: %s: not found (install Debian's criu package)"
                          % (what, criu)) from None
    if r.returncode != 0:
        raise SystemFailure("%s: criu %s" % (what, args[0]), 0, "%s (log: %s)"
                            % (first_error(log, r.stderr), log))


def first_error(log: Any, stderr: str = "") -> Any:
    """The first "Error" line of a CRIU log (the tun probe's is noise), or of its stderr."""
    try:
        with open(log, errors="replace") as f:
            text = f.read()
    except OSError:
        text = ""
    for line in (text + "\n" + stderr).splitlines():
        if "Error" in line and "tun:" not in line:
            return line.split(": ", 1)[-1].strip() if "):" in line else line.strip()
    return "failed"


def dump(pid: int, rootfs: Any, config: Any, manager: Any, options: Any, criu: Any,
         stdio: list[str] | None) -> None:
    """Checkpoint ``pid``'s tree (the container's init) into ``options.image_path``; ``stdio``
    is the container's recorded stdio (``descriptor_keys`` at create). Without
    ``leave_running`` CRIU kills the tree once it is saved."""
    check_config(config, "checkpoint")
    keys = stdio_keys(stdio)
    for what, path in (("image", options.image_path), ("work", options.work_path)):
        if path:
            try:
                os.makedirs(path, 0o700, exist_ok=True)
            except OSError as e:
                raise SystemFailure("checkpoint: create %s directory %s" % (what, path),
                                    e.errno) from None
    args = ["pre-dump" if options.pre_dump else "dump", "-t", str(pid), "--root", rootfs]
    args += options.common_args(DUMP_LOG)
    if options.parent_path:
        args += ["--prev-images-dir", options.parent_path]
    if options.pre_dump or options.parent_path:
        args.append("--track-mem")
    if options.leave_running and not options.pre_dump:   # a pre-dump always leaves it running
        args.append("--leave-running")
    freezer = manager.freezer_dir()
    if freezer:
        args += ["--freeze-cgroup", freezer]
    for mountpoint, key in cgroup_mounts(pid):
        args += ["--external", "mnt[%s]:%s" % (mountpoint, key)]
    for destination, _ in bind_mounts(config):
        args += ["--external", "mnt[%s]:%s" % (destination, destination)]
    for key in keys:
        if key.startswith("file["):
            args += ["--external", key]
    if not options.pre_dump:
        with open(os.path.join(options.image_path, DESCRIPTORS), "w") as f:
            json.dump(keys, f)
    run(criu, args, "checkpoint", options.log_path(DUMP_LOG))


def read_descriptors(options: Any) -> Any:
    path = os.path.join(options.image_path, DESCRIPTORS)
    try:
        with open(path) as f:
            keys = json.load(f)
    except FileNotFoundError:
        raise NotFound("restore: %s: not a checkpoint (no %s)"
                       % (options.image_path, DESCRIPTORS)) from None
    except (OSError, ValueError) as e:
        raise InvalidArgument("restore: %s: %s" % (path, e)) from None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise InvalidArgument("restore: %s: not a list of descriptor keys" % path)
    return keys


def restore(rootfs: Any, readonly: Any, config: Any, manager: Any, join: Any, options: Any,
            criu: Any, work_dir: Any) -> tuple[int, list[str]]:
    """Restore the tree saved in ``options.image_path`` inside the container's cgroup (made
    by the caller; ``join`` is its ``Join``, which CRIU takes before it restores). Returns the
    restored init's pid and the new container's stdio to record: the keys of the descriptors
    handed to CRIU in place of the saved ones (the saved key where none was). The init is
    reparented to the nearest child subreaper (the caller, if it is one) as CRIU exits."""
    check_config(config, "restore")
    keys = read_descriptors(options)
    root = os.path.join(work_dir, "criu-root")
    pidfile = os.path.join(work_dir, "criu.pid")
    os.mkdir(root, 0o755)
    try:
        _bind(rootfs, root, readonly)
        try:
            args = ["restore", "-d", "--root", root, "--pidfile", pidfile]
            args += options.common_args(RESTORE_LOG)
            for key, directory in sorted(cgroup_mount_map(manager).items()):
                args += ["--ext-mount-map", "%s:%s" % (key, directory)]
            for destination, source in bind_mounts(config):
                args += ["--ext-mount-map", "%s:%s" % (destination, source)]
            # our stdio, as CRIU's descriptors above 2 (its own stdio is captured)
            stdio = []
            handed = list(keys)
            for fd, key in enumerate(keys):
                if key.startswith(("pipe:", "file[")):
                    try:
                        stdio.append(os.dup(fd))
                    except OSError:     # closed here: CRIU's own (/dev/null) stands in
                        continue
                    args += ["--inherit-fd", "fd[%d]:%s" % (stdio[-1], key)]
                    handed[fd] = descriptor_keys([fd])[0]
            try:
                run(criu, args, "restore", options.log_path(RESTORE_LOG), _entering(join),
                    pass_fds=stdio)
            finally:
                for fd in stdio:
                    os.close(fd)
        finally:
            _umount(root)
    finally:
        os.rmdir(root)
    try:
        with open(pidfile) as f:
            return int(f.read().strip()), handed
    except (OSError, ValueError):
        raise SystemFailure("restore: criu restore", 0, "no pid file") from None
    finally:
        if os.path.exists(pidfile):
            os.unlink(pidfile)


def _entering(join):
    """A pre-exec step that puts CRIU in the container's cgroup, where it restores the tree."""
    def enter():
        if join.cgroup2_dir:
            with open(os.path.join(join.cgroup2_dir, "cgroup.procs"), "w") as f:
                f.write("0")
        for tasks in join.tasks_files:
            with open(tasks, "w") as f:
                f.write("0")
    return enter


def _bind(source, target, readonly):
    """A private recursive bind of ``source`` on ``target`` (read-only if asked)."""
    steps = [(source, target, MS_BIND | MS_REC, "bind %s" % source),
             (None, target, MS_PRIVATE | MS_REC, "make %s private" % target)]
    if readonly:
        steps.append((None, target, MS_REMOUNT | MS_BIND | MS_RDONLY, "remount %s read-only"
                      % target))
    for i, (src, tgt, flags, step) in enumerate(steps):
        err = mount(src, tgt, None, flags)
        if err:
            if i:
                _umount(target)
            raise SystemFailure("restore: %s" % step, err)


def _umount(target):
    err = umount(target, MNT_DETACH)
    if err and err != errno.EINVAL:
        raise SystemFailure("restore: unmount %s" % target, err)


def problem(criu: Any) -> Any:
    """Why CRIU cannot run here (``criu check``'s first error), or None."""
    import subprocess
    try:
        r = subprocess.run([criu, "check"], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=60)
    except FileNotFoundError:
        return "%s: not found (install Debian's criu package)" % criu
    except subprocess.TimeoutExpired:
        return "%s check: timed out" % criu
    if r.returncode == 0:
        return None
    return first_error("", r.stderr + r.stdout)
