"""What every cgroup backend shares: file access with clear errors, and the Manager interface."""
from __future__ import annotations

import errno
import os
import time

from pyrunc.errors import FailedPrecondition, InvalidArgument, SystemFailure, Unavailable
from pyrunc.libcontainer.cgroups.resources import field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FREEZE_TIMEOUT = 10.0
REMOVE_TIMEOUT = 2.0


def unavailable(controller: str) -> Unavailable:
    return Unavailable('cgroup controller "%s" is not available on this host' % controller)


def read(path: str) -> str:
    """A cgroup file's text; a file of a cgroup removed meanwhile (ENODEV) reads as missing."""
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        if e.errno == errno.ENODEV:
            raise FileNotFoundError(errno.ENOENT, "cgroup removed", path) from None
        raise


def read_int(path: str, default: int = 0) -> int:
    """An integer file; "max" (v2) reads as ``default``; a missing file too."""
    try:
        text = read(path).strip()
    except FileNotFoundError:
        return default
    if text == "max" or not text:
        return default
    return int(text)


def read_keyed(path: str) -> dict[str, int]:
    """A flat keyed file ("key value" lines) as {key: int}; {} when missing."""
    out: dict[Any, Any] = {}
    try:
        text = read(path)
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return out


def write(directory: Any, name: Any, value: Any, what: Any = None) -> None:
    """Write ``value`` into the cgroup file ``directory/name``.

    ``what`` is the config field being applied (e.g. "memory.limit"); a kernel refusal becomes
    an InvalidArgument naming it, a missing file an Unavailable naming the file.
    """
    path = os.path.join(directory, name)
    data = str(value).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        if not os.path.isdir(directory):
            raise SystemFailure("write %s" % path, errno.ENOENT, "the cgroup is gone") from None
        raise Unavailable('cgroup file "%s" is not available on this host%s'
                          % (name, " (for %s)" % field(what) if what else "")) from None
    except OSError as e:
        raise SystemFailure("open %s" % path, e.errno) from None
    try:
        os.write(fd, data)
    except OSError as e:
        if what and e.errno in (errno.EINVAL, errno.ERANGE, errno.EOVERFLOW):
            raise InvalidArgument("%s: the kernel refused %s for %s: %s"
                                  % (field(what), value, name, os.strerror(e.errno).lower())) from None  # type: ignore[arg-type]
        raise SystemFailure("write %r to %s" % (value, path), e.errno) from None
    finally:
        os.close(fd)


def mkdir_p(path: Any, on_create: Any = None) -> Any:
    """mkdir -p; returns the directories created, outermost first. ``on_create(dir)`` runs on
    each new directory before the next level is made (cpuset needs that)."""
    missing = []
    p = path
    while not os.path.isdir(p):
        missing.append(p)
        p = os.path.dirname(p)
    created = []
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o755)
        except FileExistsError:
            continue
        except OSError as e:
            raise SystemFailure("create cgroup %s" % d, e.errno) from None
        created.append(d)
        if on_create:
            on_create(d)
    return created


def rmdir_tree(path: str) -> None:
    """Remove a cgroup directory and any child cgroups (deepest first); retry while busy."""
    if not os.path.isdir(path):
        return
    for root, dirs, _ in os.walk(path, topdown=False):
        for d in dirs:
            _rmdir(os.path.join(root, d))
    _rmdir(path)


def _rmdir(path):
    deadline = time.monotonic() + REMOVE_TIMEOUT
    delay = 0.001
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() > deadline:
                raise FailedPrecondition("remove cgroup %s: %s (processes still in it?)"
                                         % (path, os.strerror(e.errno).lower())) from None  # type: ignore[arg-type]
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def procs_in_tree(path: str) -> Any:
    """Every pid in the cgroup at ``path`` and its descendants."""
    pids: list[Any] = []
    for root, _, files in os.walk(path):
        if "cgroup.procs" in files:
            try:
                text = read(os.path.join(root, "cgroup.procs"))
            except FileNotFoundError:
                continue
            pids.extend(int(x) for x in text.split())
    return sorted(set(pids))


def remove_created(created: Any) -> None:
    """Undo a failed creation: remove the directories ``mkdir_p`` made, innermost first."""
    for d in reversed(created):
        try:
            os.rmdir(d)
        except OSError:
            pass


class Join:
    """How a process the native core starts puts itself in a cgroup, as its first act.

    Moving a process in by pid (a write to ``cgroup.procs``) takes the kernel's global
    threadgroup lock, and the first taker after a quiet spell waits for an RCU grace period
    (10+ ms). A new process need not be moved: it is cloned straight into ``cgroup2_dir``
    (CLONE_INTO_CGROUP), and writes "0" (itself, a single thread) into each v1 ``tasks`` file
    in ``tasks_files``; neither takes that lock.
    """

    __slots__ = ("tasks_files", "cgroup2_dir")

    def __init__(self, tasks_files: Any = (), cgroup2_dir: str | None = None) -> None:
        self.tasks_files = list(tasks_files)
        self.cgroup2_dir = cgroup2_dir

    def __repr__(self):
        return "Join(%r, %r)" % (self.tasks_files, self.cgroup2_dir)


class Manager:
    """One container's cgroup. Subclasses: V1Manager, V2Manager (and the systemd driver).

    create() makes the cgroup, empty; join() says how a new process gets in by itself (the
    native core does it), apply(pid) creates the cgroup and moves a running pid in;
    set(resources) applies linux.resources; destroy() removes it. State round-trips through
    to_state()/load_manager().
    """

    version = 0
    driver = "cgroupfs"
    if TYPE_CHECKING:   # each subclass has them
        def create(self) -> Any: ...
        def set(self, resources: Any) -> None: ...
        def destroy(self) -> Any: ...
        def freeze(self) -> None: ...
        def thaw(self) -> None: ...
        def freezer_state(self) -> str: ...
        def pids(self) -> Any: ...
        def stats(self) -> Any: ...
        def oom_events(self) -> Any: ...
        def _oom_kills(self) -> int: ...
        def _memory_limit(self) -> int | None: ...
        def _pids_limit_hits(self) -> int: ...
        def _pids_limit(self) -> int: ...

    def __init__(self, cgroups_path: str | None, container_id: str, dirs: dict[str, str]) -> None:
        self.cgroups_path = cgroups_path
        self.container_id = container_id
        self._dirs = dict(dirs)

    def paths(self) -> dict[str, str]:
        return dict(self._dirs)

    def to_state(self) -> dict[str, Any]:
        return {"version": self.version, "driver": self.driver, "path": self.cgroups_path,
                "id": self.container_id, "paths": self.paths()}

    def apply(self, pid: int) -> None:
        """Create the cgroup and move the running process ``pid`` in through cgroup.procs (the
        systemd driver has its own)."""
        created = self.create()
        try:
            for directory in self._unique_dirs():
                write(directory, "cgroup.procs", pid)
        except BaseException:
            remove_created(created)
            raise

    def _unique_dirs(self):
        """The cgroup's directories, one per hierarchy, in the order of ``paths()``."""
        return list(dict.fromkeys(self._dirs.values()))

    def join(self) -> Any:
        """The ``Join`` that puts a process the native core starts in this cgroup (which must
        exist: create()), or None when only ``apply(pid)`` can place it."""
        return None

    def freezer_dir(self) -> Any:
        """The directory whose freezer stops the whole container: the v1 freezer's, else the
        cgroup2 one (``cgroup.freeze``)."""
        return self._dirs.get("freezer") or self._dirs.get("")

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in set(self._dirs.values()))

    def start_failure(self) -> str | None:
        """Why the container's processes died or could not fork, when a limit of this cgroup
        is the cause (for the runtime to report when the init dies during create), else None."""
        if self._oom_kills():
            limit = self._memory_limit()
            return ("the memory limit (linux.resources.memory.limit = %s) is too low for the "
                    "container to start: its init was OOM-killed" %
                    ("%d bytes" % limit if limit else "unset"))
        if self._pids_limit_hits():
            return ("the pids limit (linux.resources.pids.limit = %d) is too low for the "
                    "container to start: fork failed" % self._pids_limit())
        return None

    def _wait_frozen(self, check, what):
        deadline = time.monotonic() + FREEZE_TIMEOUT
        delay = 0.001
        while not check():
            if time.monotonic() > deadline:
                raise SystemFailure("%s: timed out after %gs" % (what, FREEZE_TIMEOUT), errno.ETIMEDOUT)
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def __repr__(self):
        return "<%s %s>" % (type(self).__name__, self._dirs)
