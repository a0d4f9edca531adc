"""The parent side of container creation: hand a Plan to the native core and drive it.

Like CPython's ``_posixsubprocess``, Python prepares everything (C structures, namespace
descriptors, the socketpair) and C runs the children without any Python (``native/core``).
The handshake is described in ``pyrunc.libcontainer.protocol``.

The container init is created with ``CLONE_PARENT``: it is a child of the process that called
``spawn_init``, which therefore reaps it (``os.waitpid(pid, 0)``) and gets its exit status.
"""
from __future__ import annotations

import errno
import mmap
import os

from pyrunc._core import ffi, lib
from pyrunc.errors import InvalidArgument, SystemFailure
from pyrunc.libcontainer import protocol
from pyrunc.libcontainer.plan import Namespace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from pyrunc.libcontainer.plan import Plan

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000

SIGKILL = 9  # (the signal module is not imported on this path)

_DEVICE_TYPES = {"c": 0o020000, "u": 0o020000, "b": 0o060000, "p": 0o010000}

_SYSCTL_SEPARATORS = str.maketrans("./", "/.")

_cap_last: list[Any] = []


def cap_last() -> int:
    """The highest capability number this kernel knows."""
    if not _cap_last:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            _cap_last.append(int(f.read()))
    return _cap_last[0]


class _Config:
    """A ``struct core_config`` and every buffer it points to (kept alive with it)."""

    def __init__(self):
        self.keep = []
        self.c = ffi.new("struct core_config *")
        self.c.cgroup2_fd = -1
        self.cgroup2_dir = None

    def str(self, s):
        if s is None:
            return ffi.NULL
        b = s.encode() if isinstance(s, str) else s
        if b"\0" in b:    # the config's checks refuse NUL; C would end the string there
            raise InvalidArgument("plan: a string for the native core contains a NUL byte: %r"
                                  % b[:60])
        b = ffi.new("char[]", b)
        self.keep.append(b)
        return b

    def strv(self, items):
        arr = ffi.new("char *[]", len(items) + 1)
        for i, item in enumerate(items):
            arr[i] = self.str(item)
        self.keep.append(arr)
        return arr

    def array(self, ctype, n):
        arr = ffi.new("%s[]" % ctype, max(n, 1))
        self.keep.append(arr)
        return arr


def _hooks(cfg, hooks):
    arr = cfg.array("struct core_hook", len(hooks))
    for i, h in enumerate(hooks):
        arr[i].path = cfg.str(h.path)
        arr[i].argv = cfg.strv(list(h.args) or [h.path])
        arr[i].envp = cfg.strv(list(h.env))
        arr[i].timeout = h.timeout or 0
    return arr


def _build(plan, cfg, ns_fds, namespaces, exec_mode=False):
    c = cfg.c
    c.exec_mode = exec_mode
    new_flags = 0
    joins = []
    for ns in namespaces:
        if ns.path:
            joins.append(ns)
        else:
            new_flags |= ns.flag
    # The user namespace is joined first: it owns the others.
    joins.sort(key=lambda ns: ns.flag != CLONE_NEWUSER)
    if len(joins) > len(c.join_fds):
        raise InvalidArgument("plan: namespaces: at most %d to join" % len(c.join_fds))
    for i, ns in enumerate(joins):
        try:
            fd = os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise SystemFailure("open namespace %s" % ns.path, e.errno) from None
        ns_fds.append(fd)
        c.join_fds[i] = fd
        c.join_types[i] = ns.flag
    c.n_join = len(joins)
    c.shared_mount_ns = bool(not exec_mode and plan.rootfs
                             and not any(ns.flag == CLONE_NEWNS for ns in plan.namespaces))
    c.new_userns = 1 if new_flags & CLONE_NEWUSER else 0
    c.unshare_flags = new_flags & ~CLONE_NEWUSER
    c.time_offsets = cfg.str(plan.time_offsets or None)

    c.rootfs = cfg.str(None if exec_mode else (plan.rootfs or None))
    c.rootfs_propagation = plan.rootfs_propagation
    c.readonly_root = plan.readonly_root
    c.no_pivot = plan.no_pivot
    mounts = cfg.array("struct core_mount", len(plan.mounts))
    kinds = {"mount": lib.CORE_MOUNT_MOUNT, "mkdir": lib.CORE_MOUNT_MKDIR,
             "symlink": lib.CORE_MOUNT_SYMLINK}
    for i, m in enumerate(plan.mounts):
        if m.kind not in kinds:
            raise InvalidArgument("plan: mounts[%d]: unknown kind %r" % (i, m.kind))
        mounts[i].kind = kinds[m.kind]
        mounts[i].destination = cfg.str(m.destination)
        mounts[i].source = cfg.str(m.source)
        mounts[i].fstype = cfg.str(m.fstype)
        mounts[i].flags = m.flags
        mounts[i].data = cfg.str(m.data or None)
        mounts[i].propagation = m.propagation
        mounts[i].attr_set = m.attr_set
        mounts[i].attr_clr = m.attr_clr
        mounts[i].source_is_dir = m.source_is_dir
        mounts[i].mode = m.mode
    c.mounts = mounts
    c.n_mounts = len(plan.mounts)
    devices = cfg.array("struct core_device", len(plan.devices))
    for i, d in enumerate(plan.devices):
        if d.kind not in _DEVICE_TYPES:
            raise InvalidArgument("plan: devices[%d]: unknown type %r" % (i, d.kind))
        devices[i].path = cfg.str(d.path)
        devices[i].type = _DEVICE_TYPES[d.kind]
        devices[i].major = d.major
        devices[i].minor = d.minor
        devices[i].mode = d.mode
        devices[i].uid = d.uid
        devices[i].gid = d.gid
        devices[i].bind = d.bind
    c.devices = devices
    c.n_devices = len(plan.devices)
    c.dev_symlinks = plan.dev_symlinks
    c.kcore = os.path.exists("/proc/kcore")
    c.masked_paths = cfg.strv(plan.masked_paths)
    c.n_masked = len(plan.masked_paths)
    c.readonly_paths = cfg.strv(plan.readonly_paths)
    c.n_readonly = len(plan.readonly_paths)

    c.hostname = cfg.str(plan.hostname)
    c.domainname = cfg.str(plan.domainname)
    # sysctl(8) naming: "." separates fields, "/" stands for a dot inside one (eth0/100).
    paths = ["/proc/sys/" + name.translate(_SYSCTL_SEPARATORS) for name, _ in plan.sysctl]
    c.sysctl_paths = cfg.strv(paths)
    c.sysctl_values = cfg.strv([str(v) for _, v in plan.sysctl])
    c.n_sysctl = len(plan.sysctl)
    rlimits = cfg.array("struct core_rlimit", len(plan.rlimits))
    for i, r in enumerate(plan.rlimits):
        rlimits[i].resource = r.resource
        rlimits[i].soft = r.soft
        rlimits[i].hard = r.hard
    c.rlimits = rlimits
    c.n_rlimits = len(plan.rlimits)
    if plan.oom_score_adj is not None:
        c.has_oom_score_adj = 1
        c.oom_score_adj = plan.oom_score_adj

    if plan.personality is not None:
        c.has_personality = 1
        c.personality = plan.personality
    if plan.io_priority is not None:
        c.has_io_priority = 1
        c.io_priority = plan.io_priority
    if plan.scheduler is not None:
        s = plan.scheduler
        c.has_scheduler = 1
        c.sched_policy = s.policy
        c.sched_flags = s.flags
        c.sched_nice = s.nice
        c.sched_priority = s.priority
        c.sched_runtime = s.runtime
        c.sched_deadline = s.deadline
        c.sched_period = s.period
    if plan.console_size:
        c.console_height, c.console_width = plan.console_size

    caps = plan.capabilities
    if caps is not None:
        c.has_caps = 1
        c.cap_bounding = caps.bounding
        c.cap_effective = caps.effective
        c.cap_permitted = caps.permitted
        c.cap_inheritable = caps.inheritable
        c.cap_ambient = caps.ambient
        c.cap_last = cap_last()
    c.no_new_privileges = plan.no_new_privileges
    c.uid = plan.uid
    c.gid = plan.gid
    gids = cfg.array("unsigned int", len(plan.additional_gids))
    for i, g in enumerate(plan.additional_gids):
        gids[i] = g
    c.gids = gids
    c.n_gids = len(plan.additional_gids)
    c.set_groups = not plan.setgroups_deny
    c.umask = 0o022 if plan.umask is None else plan.umask
    c.cwd = cfg.str(plan.cwd or None)
    if not plan.args:
        raise InvalidArgument("plan: args: must be a non-empty list")
    c.env = cfg.strv(plan.env)
    c.args = cfg.strv(plan.args)
    c.terminal = plan.terminal

    if plan.seccomp is not None and plan.seccomp.bpf:
        if len(plan.seccomp.bpf) % 8:
            raise InvalidArgument("plan: seccomp: bpf length %d is not a multiple of 8"
                                  % len(plan.seccomp.bpf))
        from pyrunc.libcontainer.seccomp.filter import BPF_MAXINSNS
        if len(plan.seccomp.bpf) // 8 > BPF_MAXINSNS:   # (the core's sock_fprog.len is 16 bits)
            raise InvalidArgument("plan: seccomp: %d instructions, more than the %d the kernel "
                                  "loads" % (len(plan.seccomp.bpf) // 8, BPF_MAXINSNS))
        bpf = ffi.new("unsigned char[]", plan.seccomp.bpf)
        cfg.keep.append(bpf)
        c.seccomp_bpf = bpf
        c.seccomp_len = len(plan.seccomp.bpf) // 8
        c.seccomp_flags = plan.seccomp.flags
        c.seccomp_notify = plan.seccomp.notify

    c.create_hooks = _hooks(cfg, plan.create_container_hooks)
    c.n_create_hooks = len(plan.create_container_hooks)
    c.start_hooks = _hooks(cfg, plan.start_container_hooks)
    c.n_start_hooks = len(plan.start_container_hooks)
    state = cfg.str(plan.state_json or b"")
    c.state = state
    c.state_len = len(plan.state_json or b"")
    if plan.session_keyring:
        c.session_keyring = cfg.str(plan.session_keyring)
        # runc's permissions for the init's new keyring: searchable by the container's uid, or
        # by anyone ("other") when the uid is another user namespace's; a process joining the
        # container joins the same keyring as it is
        user_ns = any(ns.flag == CLONE_NEWUSER for ns in plan.namespaces)
        c.keyring_perm_add = 0 if exec_mode else 0x8 if user_ns else 0x80000
    c.test_pause = plan.test_pause


def _write_id_maps(plan, pid):
    files = []
    if plan.setgroups_deny:
        files.append(("setgroups", "deny"))
    files += [("uid_map", plan.uid_map), ("gid_map", plan.gid_map)]
    for name, text in files:
        if not text:
            continue
        try:
            fd = os.open("/proc/%d/%s" % (pid, name), os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, text.encode())
            finally:
                os.close(fd)
        except OSError as e:
            raise SystemFailure("write %s of the user namespace" % name, e.errno) from None


def _hint(step, err):
    """A next step for the user, for the failures people meet most."""
    if step.startswith("create ") and step.endswith(" namespace"):
        if err == errno.ENOSPC:
            return "a namespace limit is reached (/proc/sys/user/max_*_namespaces)"
        if err in (errno.EPERM, errno.EACCES) and "user" in step:
            return "user namespaces may be disabled (sysctl user.max_user_namespaces)"
    if step.startswith("mount ") and err == errno.ENODEV:
        return "the kernel does not know this filesystem type (see /proc/filesystems)"
    if step == "pivot_root" and err == errno.EINVAL:
        return "pivot_root cannot move this root (a ramfs or the host's /): try --no-pivot"
    if step.startswith("find the exec fifo"):
        return "the container needs a proc file system mounted at /proc (see mounts)"
    if step.startswith("exec ") and err in (0, errno.ENOENT):
        return "check process.args and the PATH in process.env"
    return None


def _describe(status):
    if os.WIFEXITED(status):
        return "exited with status %d" % os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return "killed by signal %d" % os.WTERMSIG(status)
    return "status %d" % status


def _reap(pid):
    """Wait for our child pid; its status, or None when someone else reaped it."""
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return None


def _kill_and_reap(pid):
    try:
        os.kill(pid, SIGKILL)
    except ProcessLookupError:
        pass
    _reap(pid)


def spawn_init(plan: Plan, *, exec_fifo_fd: Any, console_socket_fd: Any = None,
               preserve_fds: int = 0, stdio: tuple[int, ...] = (0, 1, 2), cgroup: Any = None,
               on_pid: Any = None, on_hooks: Any = None, on_seccomp_fd: Any = None) -> int:
    """Create the container's namespaces and init from ``plan``; return the init's pid.

    The init is a child of the caller (reap it with ``os.waitpid``) and waits, set up, until
    something opens ``exec_fifo_fd``'s fifo for reading (``-1``: no fifo, exec at once).

    * ``cgroup``: a ``cgroups.Join``: the first child puts itself in the container's cgroup
      as its first act (the init and its namespaces are created inside it).
    * ``on_pid(pid)``: called with the first child's pid before it does anything else; without
      ``cgroup``, put it in the container's cgroup here.
    * ``on_hooks(init_pid)``: called once the mounts are done, before pivot_root; run the
      prestart and createRuntime hooks here. It may return the state (bytes) that the init
      gives on stdin to its createContainer and startContainer hooks, instead of
      ``plan.state_json`` (which cannot know the pid).
    * ``on_seccomp_fd(fd)``: the seccomp notification listener; the callee owns ``fd``.

    Any failure raises ``SystemFailure`` naming the failed step, with every child killed and
    reaped and every descriptor closed.
    """
    if plan.terminal and console_socket_fd is None:
        raise InvalidArgument("plan: process.terminal needs a console socket")
    cfg = _Config()
    c = cfg.c
    c.root_fd = -1
    ns_fds: list[Any] = []
    try:
        _build(plan, cfg, ns_fds, plan.namespaces)
        _set_io(c, console_socket_fd, exec_fifo_fd, preserve_fds, stdio)
        _set_cgroup(cfg, ns_fds, cgroup)
        return _Spawn(plan, cfg, ns_fds).run(on_pid, on_hooks, on_seccomp_fd)
    finally:
        for fd in ns_fds:
            os.close(fd)


def _set_io(c, console_socket_fd, exec_fifo_fd, preserve_fds, stdio):
    """The descriptors the child starts from: console socket, exec fifo, stdio, preserved."""
    c.console_fd = -1 if console_socket_fd is None else console_socket_fd
    c.exec_fifo_fd = exec_fifo_fd
    c.preserve_fds = preserve_fds
    for i in range(3):
        c.stdio[i] = stdio[i]


def _set_cgroup(cfg, fds, join):
    """Where the first child puts itself: a ``cgroups.Join``, or None (the caller's on_pid
    places it)."""
    c = cfg.c
    if join is None:
        return
    if join.cgroup2_dir:
        try:
            c.cgroup2_fd = os.open(join.cgroup2_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise SystemFailure("open cgroup %s" % join.cgroup2_dir, e.errno) from None
        fds.append(c.cgroup2_fd)
        cfg.cgroup2_dir = join.cgroup2_dir
    c.cgroup_tasks = cfg.strv(join.tasks_files)
    c.n_cgroup_tasks = len(join.tasks_files)


NS_FILES = {CLONE_NEWUSER: "user", 0x20000000: "pid", CLONE_NEWNS: "mnt", 0x04000000: "uts",
            0x08000000: "ipc", 0x40000000: "net", 0x02000000: "cgroup", 0x00000080: "time"}


def spawn_exec(plan: Any, init_pid: Any, *, console_socket_fd: Any = None, preserve_fds: int = 0,
               stdio: tuple[int, ...] = (0, 1, 2), cgroup: Any = None, on_pid: Any = None,
               on_seccomp_fd: Any = None) -> Any:
    """Start ``plan``'s process in the running container whose init is ``init_pid``.

    The process joins the init's namespaces (each type in ``plan.namespaces``, through
    /proc/<init_pid>/ns/*; one the caller shares already is not joined), then gets the
    process part of the plan: terminal, rlimits, umask, seccomp, user, groups, capabilities,
    no_new_privileges, cwd, env, PATH lookup. Nothing of the rootfs part is done, no hooks
    run and there is no exec fifo: it executes as soon as it is set up. ``cgroup`` (a
    ``cgroups.Join``) puts the first child in the container's cgroup; else ``on_pid`` gets its
    pid (place it there). Returns the process's pid; it is a child of the caller.
    """
    if plan.terminal and console_socket_fd is None:
        raise InvalidArgument("plan: process.terminal needs a console socket")
    joins = []
    for ns in plan.namespaces:
        name = NS_FILES.get(ns.flag)
        if name is None:
            raise InvalidArgument("plan: namespaces: unknown flag %#x" % ns.flag)
        path = "/proc/%d/ns/%s" % (init_pid, name)
        try:
            theirs = os.stat(path)
        except OSError as e:
            raise SystemFailure("open namespace %s" % path, e.errno) from None
        ours = os.stat("/proc/self/ns/" + name)
        if (theirs.st_dev, theirs.st_ino) != (ours.st_dev, ours.st_ino):
            joins.append(Namespace(ns.flag, path))
    cfg = _Config()
    c = cfg.c
    ns_fds = []
    try:
        root = "/proc/%d/root" % init_pid
        try:
            c.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise SystemFailure("open %s" % root, e.errno) from None
        ns_fds.append(c.root_fd)
        _build(plan, cfg, ns_fds, joins, exec_mode=True)
        _set_io(c, console_socket_fd, -1, preserve_fds, stdio)
        _set_cgroup(cfg, ns_fds, cgroup)
        return _Spawn(plan, cfg, ns_fds).run(on_pid, None, on_seccomp_fd)
    finally:
        for fd in ns_fds:
            os.close(fd)


class _Spawn:
    """One run of the handshake: the socket, the children it learnt of, their cleanup."""

    def __init__(self, plan, cfg, ns_fds):
        self.plan = plan
        self.cfg = cfg
        self.ns_fds = ns_fds
        self.sock = -1
        self.stage1 = None
        self.init = None
        # shared with the children (fork keeps MAP_SHARED pages shared): the init's pid
        self._shared = mmap.mmap(-1, mmap.PAGESIZE, mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
        self.slot = ffi.cast("int *", ffi.from_buffer(self._shared))

    def run(self, on_pid, on_hooks, on_seccomp_fd):
        pair = ffi.new("int[2]")
        r = lib.core_socketpair(pair)
        if r < 0:
            raise SystemFailure("create the sync socketpair", -r)
        self.sock, child = pair[0], pair[1]
        self.cfg.c.sync_fd = child
        self.cfg.c.parent_fd = self.sock
        self.cfg.c.init_pid_slot = self.slot
        try:
            pid = lib.core_spawn(self.cfg.c)
            os.close(child)
            if pid < 0:
                into = self.cfg.cgroup2_dir
                raise SystemFailure("clone the container's first child" +
                                    (" into cgroup %s" % into if into else ""), -pid)
            self.stage1 = pid
            while self.ns_fds:
                os.close(self.ns_fds.pop())
            if on_pid is not None:
                on_pid(pid)
            return self._handshake(on_hooks, on_seccomp_fd)
        except protocol.ProtocolError as e:
            self._cleanup()
            raise SystemFailure(e.args[1], e.args[0]) from None
        except BaseException:
            self._cleanup()
            raise
        finally:
            os.close(self.sock)

    def _send(self, payload=b""):
        if len(payload) > protocol.MAX_PAYLOAD:
            raise InvalidArgument("hook state: %d bytes, more than the %d the init accepts"
                                  % (len(payload), protocol.MAX_PAYLOAD))
        try:
            protocol.send(self.sock, protocol.CONTINUE, payload=payload)
        except protocol.ProtocolError as e:
            if e.args[0] in (errno.EPIPE, errno.ECONNRESET):
                self._died()
            raise

    def _handshake(self, on_hooks, on_seccomp_fd):
        receiver = protocol.Receiver(self.sock)
        self._send()
        while True:
            try:
                msg = receiver.recv()
            except protocol.ProtocolError as e:
                # a child that died with our CONTINUE unread resets the connection
                if e.args[0] != errno.ECONNRESET:
                    raise
                msg = None
            if msg is None:
                self._died()
            t = msg.type
            if t == protocol.ERROR:
                step, detail = msg.error_parts()
                raise SystemFailure(step, msg.err, detail or None,
                                    hint=_hint(step, msg.err))
            if t == protocol.USERNS_READY:
                _write_id_maps(self.plan, msg.value)
                self._send()
            elif t == protocol.INIT_STARTED:
                # Stage 1 exits right after cloning the init, or is dead: reap it.
                self._learn_init()
                status, self.stage1 = _reap(self.stage1), None
                if status:
                    raise SystemFailure("container setup", 0, _describe(status))
                self._send()
            elif t == protocol.HOOKS:
                state = on_hooks(self.init) if on_hooks is not None else None
                self._send(state or b"")
            elif t == protocol.SECCOMP_FD:
                if msg.fd < 0:
                    raise SystemFailure("receive the seccomp listener", 0, "no descriptor")
                if on_seccomp_fd is not None:
                    on_seccomp_fd(msg.fd)
                else:
                    os.close(msg.fd)
                self._send()
            elif t == protocol.READY:
                return self.init
            else:
                if msg.fd >= 0:
                    os.close(msg.fd)
                raise SystemFailure("container init", 0, "unexpected %s" % msg.name)

    def _learn_init(self):
        """The init's pid as the kernel stored it at clone time (0: not cloned)."""
        if self.init is None and self.slot[0] > 0:
            self.init = self.slot[0]

    def _died(self):
        """Every child end is closed: reap the children we know of, blame the last one."""
        self._learn_init()
        if self.stage1 is not None:
            who = "container setup"
            status, self.stage1 = _reap(self.stage1), None
        if self.init is not None:  # (it may have died before INIT_STARTED)
            who = "container init"
            status, self.init = _reap(self.init), None
        raise SystemFailure(who, 0, "exited without a message (%s)"
                            % (_describe(status) if status is not None else "reaped elsewhere"))

    def _cleanup(self):
        """Kill and reap every child. Once stage 1 is reaped, its clone of the init either
        happened, and the kernel put the init's pid in the shared slot, or never will."""
        if self.stage1 is not None:
            _kill_and_reap(self.stage1)
            self.stage1 = None
        self._learn_init()
        if self.init is not None:
            _kill_and_reap(self.init)
            self.init = None
