"""A container's state directory: ``<root>/<id>/`` with ``state.json``, the exec fifo and a lock.

``state.json`` is written atomically (a temporary file renamed over it). Operations on one
container hold an exclusive ``flock`` on the directory, so they run one at a time while
different containers proceed in parallel; the lock dies with its holder, never goes stale.
"""
from __future__ import annotations

import errno
import fcntl
import os

from pyrunc.errors import AlreadyExists, InvalidArgument, NotFound, SystemFailure
from pyrunc.libcontainer import jsoncodec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

STATE_FILE = "state.json"
EXEC_FIFO = "exec.fifo"
OWN_KEYS = frozenset(("id", "bundle", "pid", "pid_start", "rootfs"))   # in every state written

ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def validate_id(container_id: str) -> None:
    """runc's rule: letters, digits, ``_+-.``, not ``.`` or ``..``."""
    if not isinstance(container_id, str) or not container_id:
        raise InvalidArgument("container id cannot be empty")
    if not set(container_id) <= ID_CHARS or container_id in (".", ".."):
        raise InvalidArgument("invalid container id %r: use letters, digits and _+-." %
                              container_id)
    if len(container_id) > 255:
        raise InvalidArgument("invalid container id %r: longer than 255 bytes" % container_id)


def not_found(container_id: str) -> NotFound:
    return NotFound('container "%s" does not exist' % container_id)


class StateDir:
    """The directory holding one container's state."""

    def __init__(self, root: str, container_id: str) -> None:
        self.root = root
        self.id = container_id
        self.path = os.path.join(root, container_id)
        self.state_file = os.path.join(self.path, STATE_FILE)
        self.fifo = os.path.join(self.path, EXEC_FIFO)

    @classmethod
    def create(cls, root: str, container_id: str) -> StateDir:
        """Make the directory; AlreadyExists when the id is taken."""
        sd = cls(root, container_id)
        try:
            os.makedirs(root, mode=0o711, exist_ok=True)
            os.mkdir(sd.path, 0o711)
        except FileExistsError:
            raise AlreadyExists('container "%s" already exists' % container_id) from None
        except OSError as e:
            raise SystemFailure("create state directory %s" % sd.path, e.errno) from None
        return sd

    def lock(self) -> _Lock:
        """``with sd.lock():`` holds the container's exclusive lock; NotFound if it was deleted
        meanwhile."""
        return _Lock(self)

    def read(self) -> dict[str, Any]:
        """The state pyrunc wrote; SystemFailure for anything else in its place (a corrupt
        file, or another runtime's state in a root it shares, as dockerd's runtime roots are)."""
        try:
            with open(self.state_file, "rb") as f:
                state = jsoncodec.loads(f.read())
        except FileNotFoundError:
            raise not_found(self.id) from None
        except ValueError as e:
            raise SystemFailure("read %s" % self.state_file, 0, "corrupt state: %s" % e) from None
        if not isinstance(state, dict) or not OWN_KEYS <= state.keys():
            raise SystemFailure("read %s" % self.state_file, 0,
                                "not a pyrunc state (another runtime's container?)")
        return state

    def write(self, state: dict[str, Any]) -> None:
        tmp = os.path.join(self.path, ".%s.tmp" % STATE_FILE)
        with open(tmp, "w") as f:
            f.write(jsoncodec.dumps(state))
        os.rename(tmp, self.state_file)

    def make_fifo(self, uid: int = 0, gid: int = 0) -> int:
        """The exec fifo the init blocks on until ``start``; returns an O_PATH descriptor."""
        old = os.umask(0)
        try:
            os.mkfifo(self.fifo, 0o622)
        finally:
            os.umask(old)
        os.chown(self.fifo, uid, gid)
        return os.open(self.fifo, os.O_PATH | os.O_CLOEXEC)

    def fifo_exists(self) -> bool:
        return os.path.exists(self.fifo)

    def remove(self) -> None:
        _remove_tree(self.path)


def _remove_tree(path):
    """rmtree without importing shutil (2 ms on every delete): the state dir is small."""
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return
    except NotADirectoryError:
        os.unlink(path)
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            _remove_tree(entry.path)
        else:
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def write_pid_file(path: str, pid: int) -> None:
    """runc's pid file: the pid, no newline, written atomically."""
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), ".%s.tmp" % os.path.basename(path))
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of ``pid``, or None when there is no such pid."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError as e:
        if e.errno == errno.ESRCH:
            return None
        raise
    fields = data[data.rindex(b")") + 2:].split()
    return fields[0].decode(), int(fields[19])


def alive(pid: int, start_time: int) -> bool:
    """Whether ``pid`` is still the process that started at ``start_time`` and not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[1] == start_time and st[0] not in ("Z", "X", "x")


class _Lock:
    """An exclusive flock on the state directory, held for a ``with`` block.

    A plain class rather than contextlib.contextmanager: every command takes this lock, and
    contextlib is an import the hot path otherwise does without."""

    def __init__(self, sd):
        self.sd = sd
        self.fd = None

    def __enter__(self):
        try:
            fd = os.open(self.sd.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise not_found(self.sd.id) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink == 0:
                raise not_found(self.sd.id)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return self

    def __exit__(self, *exc):
        os.close(self.fd)  # type: ignore[arg-type]
        self.fd = None
