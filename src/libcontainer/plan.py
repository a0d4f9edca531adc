"""The execution plan: everything the native core needs, decided in Python before clone.

specconv turns a validated runtime config into a ``Plan``; the native core (``native/``) executes
it in the child without running any Python. Every path, flag, number and mask is resolved here, so
the C side only performs system calls in order and reports the step that failed.

Conventions
* Paths inside the container are absolute container paths; the native core resolves them under
  ``rootfs`` without following symlinks out of it.
* Flag words are the kernel's own values (MS_*, CLONE_*, MOUNT_ATTR_*), computed in Python.

What the native core does with a Plan (``pyrunc.libcontainer.process.spawn_init``)
* Namespaces: those with a ``path`` are joined (setns; the user namespace first), the others
  created (a new user namespace first: the parent writes ``setgroups`` ("deny" when
  ``setgroups_deny``), ``uid_map``, ``gid_map``; then the rest, ``time_offsets`` written before
  the init is forked). Without a new or joined mount namespace (runc allows it) the setup's
  mounts are made in the caller's mount namespace and stay there, "/" keeps its propagation
  (``rootfs_propagation`` is not applied) and the init chroots into the rootfs instead of
  pivot_root (``no_pivot`` then has no effect).
* ``rootfs_propagation``: 0 means MS_SLAVE|MS_REC on "/" before the setup and nothing after;
  an explicit value is applied before the setup and again on the new "/" after pivot_root
  (with MS_SHARED the mount holding the rootfs is made private, as pivot_root requires).
* ``MountStep`` "mount": the destination is resolved under the rootfs (openat2
  RESOLVE_IN_ROOT; symlinks followed inside it), missing directories are created (0755).
  - With MS_REMOUNT: the mount already at the destination gets ``flags`` (+ ``data``).
  - With MS_BIND: ``source`` is an absolute host path; a file or directory to mount on is
    created after the source's type; bind (MS_REC honoured), then, when ``flags`` has other
    MS_* bits, a bind remount with them (flags locked in a user namespace are kept); fstype
    and data are ignored.
  - Otherwise mount(source, destination, fstype, flags, data).
  - Then ``propagation`` (MS_SHARED... on the new mount), then ``attr_set``/``attr_clr``
    recursively with mount_setattr (``rro``, ``rnosuid``...).
  "mkdir": a directory with ``mode`` (missing parents 0755). "symlink": a link at
  ``destination`` whose target is ``source``; an existing file there is an error.
* ``Device``: mknod (umask 0, so ``mode`` is exact) and chown, replacing what is there; with
  ``bind`` the host node at the same path is bind-mounted instead (needed in a user
  namespace). ``dev_symlinks``: /dev/fd, stdin, stdout, stderr; /dev/ptmx -> pts/ptmx when
  devpts is mounted and no /dev/ptmx exists; /dev/core when the host has /proc/kcore.
* ``terminal``: the init opens the container's /dev/pts/ptmx after the mounts and sends the
  master over the console socket (SCM_RIGHTS, data "/dev/ptmx"), sized to ``console_size``;
  the pty is its stdio and controlling terminal and is bound over /dev/console.
* After the mounts and devices the parent's ``on_hooks(init_pid)`` runs (prestart,
  createRuntime), then ``create_container_hooks`` in the init (state on stdin, timeout).
* Then pivot_root (or MS_MOVE + chroot with ``no_pivot``); a missing ``cwd`` is created
  (0755, as runc does); hostname, domainname; ``sysctl``
  (names in sysctl(8) form "net.ipv4.ip_forward", a "/" standing for a dot inside a field);
  ``readonly_paths`` (rbind + read-only remount) then ``masked_paths`` (read-only tmpfs over a
  directory, /dev/null over a file), missing ones skipped; ``readonly_root``; ``rlimits``;
  ``scheduler``; ``io_priority``; ``oom_score_adj``; ``umask`` (None: 0022).
* Credentials: with ``capabilities`` set, the bounding set is reduced, the uid change keeps
  capabilities and the effective/permitted/inheritable sets are set, then ambient ones raised
  (one the others do not allow is skipped, as runc does); with None, capabilities follow the
  kernel's uid-change rules. setgroups(``additional_gids``) unless ``setgroups_deny``.
* ``seccomp``: without ``no_new_privileges`` loaded before the uid change (it needs
  CAP_SYS_ADMIN), with it after; either way before READY, so a ``notify`` listener can go
  to the parent (``on_seccomp_fd``). ``personality`` is set last. ``args[0]`` is looked up
  in the PATH of ``env`` before READY (a missing program fails the create, as with runc).
* ``session_keyring``: the init joins that session keyring first (runc's "_ses.<id>",
  made searchable by the container's user); a process joining the container (spawn_exec)
  joins it as it is. None keeps the caller's (``--no-new-keyring``).
* The init then opens the exec fifo, writes one byte, runs ``start_container_hooks``,
  and executes ``args``; descriptors above 2 + preserve_fds are closed by the execve, the
  fifo's write end included, so reading the fifo to EOF waits for the exec.
"""
from __future__ import annotations


TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, dataclass_transform
else:
    def dataclass_transform() -> Any:   # for the type checker only: _record makes __init__
        return lambda f: f


class _Required:
    def __repr__(self):
        return "<required>"


REQUIRED = _Required()


class Record:
    """A plain record: ``FIELDS`` lists (name, default) pairs; a list default is copied per
    instance. Lighter to import than dataclasses (this module is on ``pyrunc create``'s path).
    """

    __slots__ = ()
    FIELDS: tuple[tuple[str, Any], ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(self.FIELDS):
            raise TypeError("%s takes at most %d arguments" % (type(self).__name__,
                                                               len(self.FIELDS)))
        for i, (name, default) in enumerate(self.FIELDS):
            if i < len(args):
                value = args[i]
            elif name in kwargs:
                value = kwargs.pop(name)
            elif default is REQUIRED:
                raise TypeError("%s: missing %r" % (type(self).__name__, name))
            else:
                value = list(default) if isinstance(default, list) else default
            setattr(self, name, value)
        if kwargs:
            raise TypeError("%s: unknown field %r" % (type(self).__name__, next(iter(kwargs))))

    def replace(self, **changes: Any) -> Any:
        """A copy with some fields changed."""
        values = {name: getattr(self, name) for name, _ in self.FIELDS}
        values.update(changes)
        return type(self)(**values)

    def __eq__(self, other):
        return type(other) is type(self) and all(
            getattr(self, n) == getattr(other, n) for n, _ in self.FIELDS)

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join(
            "%s=%r" % (n, getattr(self, n)) for n, _ in self.FIELDS))


@dataclass_transform()
def _record(cls: Any) -> Any:
    """Turn the class's annotated attributes (``name = default  # comment``) into FIELDS."""
    fields = tuple((name, cls.__dict__.get(name, REQUIRED)) for name in cls.__annotations__)
    namespace = {k: v for k, v in cls.__dict__.items()
                 if k not in cls.__annotations__ and k not in ("__dict__", "__weakref__",
                                                               "__annotations__")}
    namespace["__slots__"] = tuple(cls.__annotations__)
    namespace["FIELDS"] = fields
    return type(cls.__name__, (Record,), namespace)


@_record
class Namespace:
    flag: int                      # CLONE_NEW* value
    path: "str | None" = None     # join this one (setns) instead of creating a new one


@_record
class MountStep:
    """One step of the rootfs setup, performed in order before pivot_root."""

    kind: str                      # "mount" | "mkdir" | "symlink"
    destination: str               # container path (for "symlink": the link's path)
    source: "str | None" = None   # mount source, or the symlink's target
    fstype: "str | None" = None
    flags: int = 0                 # MS_* for mount(2) (MS_BIND, MS_REC, MS_RDONLY, ...)
    data: str = ""                 # filesystem-specific options
    propagation: int = 0           # MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE [| MS_REC]
    attr_set: int = 0              # MOUNT_ATTR_* to set recursively with mount_setattr
    attr_clr: int = 0              # MOUNT_ATTR_* to clear recursively with mount_setattr
    source_is_dir: bool = True     # bind of a file creates a file, of a directory a directory
    mode: int = 0o755              # for "mkdir"


@_record
class Device:
    path: str                      # container path, e.g. /dev/null
    kind: str                      # "c" | "b" | "p"
    major: int = 0
    minor: int = 0
    mode: int = 0o666              # permission bits
    uid: int = 0
    gid: int = 0
    bind: bool = False             # bind-mount the host node instead of mknod (user namespaces)


@_record
class Rlimit:
    resource: int                  # RLIMIT_* number
    soft: int
    hard: int


@_record
class Capabilities:
    """Masks of capability numbers (bit n = capability n)."""

    bounding: int = 0
    effective: int = 0
    permitted: int = 0
    inheritable: int = 0
    ambient: int = 0


@_record
class Hook:
    path: str
    args: list = []
    env: list = []
    timeout: "int | None" = None  # seconds


@_record
class Seccomp:
    bpf: bytes                     # struct sock_filter[] as produced by libseccomp's export
    flags: int = 0                 # SECCOMP_FILTER_FLAG_*
    notify: bool = False           # the program uses SECCOMP_RET_USER_NOTIF: send the listener fd
    listener_path: "str | None" = None
    listener_metadata: str = ""


@_record
class Scheduler:
    """sched_setattr(2) attributes (process.scheduler); policy and flags as numbers."""

    policy: int = 0                # SCHED_OTHER 0, FIFO 1, RR 2, BATCH 3, IDLE 5, DEADLINE 6
    nice: int = 0
    priority: int = 0
    flags: int = 0                 # SCHED_FLAG_*
    runtime: int = 0               # ns, for SCHED_DEADLINE
    deadline: int = 0
    period: int = 0


@_record
class Plan:
    container_id: str
    bundle: str
    rootfs: str                    # absolute host path of the root filesystem
    readonly_root: bool = False
    namespaces: list = []     # [Namespace]
    uid_map: str = ""              # contents for /proc/PID/uid_map (empty: no user namespace)
    gid_map: str = ""
    setgroups_deny: bool = False
    time_offsets: str = ""         # contents for /proc/self/timens_offsets
    rootfs_propagation: int = 0    # MS_* applied to / (default MS_SLAVE|MS_REC)
    mounts: list = []         # [MountStep], in order
    devices: list = []        # [Device], defaults included
    dev_symlinks: bool = True      # /dev/fd, stdin, stdout, stderr, ptmx (-> pts/ptmx), core
    masked_paths: list = []
    readonly_paths: list = []
    no_pivot: bool = False
    hostname: "str | None" = None
    domainname: "str | None" = None
    sysctl: list = []         # [(name "net.ipv4.ip_forward", value)]
    rlimits: list = []        # [Rlimit]
    oom_score_adj: "int | None" = None
    scheduler: "Scheduler | None" = None
    io_priority: "int | None" = None  # ioprio_set value: class << 13 | priority
    personality: "int | None" = None  # personality(2): PER_LINUX 0, PER_LINUX32 8, | flags
    capabilities: "Capabilities | None" = None
    no_new_privileges: bool = False
    uid: int = 0
    gid: int = 0
    additional_gids: list = []
    umask: "int | None" = None
    cwd: str = "/"
    env: list = []
    args: list = []
    terminal: bool = False
    console_size: "tuple | None" = None  # (height, width) given to the pty
    seccomp: "Seccomp | None" = None
    create_container_hooks: list = []  # [Hook], run by the child
    start_container_hooks: list = []   # [Hook], run by the child
    state_json: bytes = b""        # the state given to hooks run by the child on stdin
                                   # (spawn_init's on_hooks() may return a fresher one)
    session_keyring: "str | None" = None  # the init joins (or creates) this session keyring
    test_pause: int = 0            # tests only: the child pauses at this step (core_api.h)
