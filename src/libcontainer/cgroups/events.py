"""OOM notifications and the event stream for ``pyrunc events``.

A notifier has a file descriptor to wait on (``fileno()``, for a select/poll loop that also
prints stats every interval) and ``poll(timeout)``, which returns how many OOM kills happened
since the last call (0 when the timeout passed first) or ``None`` once the cgroup is gone.
Iterating yields those counts until the cgroup is gone.

* cgroup v1: an eventfd registered on ``memory.oom_control`` through ``cgroup.event_control``;
  the kernel also signals it when the cgroup is removed.
* cgroup v2: ``memory.events`` polled for POLLPRI (kernfs notifies on change); the count is the
  increase of its ``oom_kill`` line.
"""
from __future__ import annotations

import os
import select
import time

from pyrunc.errors import SystemFailure, Unavailable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Iterator
    from pyrunc.libcontainer.cgroups.manager import Manager


def stream(manager: Manager, interval: float = 5.0) -> Iterator[Any]:
    """``pyrunc events``: yields runc's event objects for the container whose cgroup
    ``manager`` is: ``{"type": "stats", "id": ..., "data": manager.stats()}`` every ``interval``
    seconds (the first after one interval, as runc's ticker) and ``{"type": "oom", "id": ...}``
    for each OOM kill as it happens; ends when the cgroup is gone."""
    cid = manager.container_id
    try:
        notifier = manager.oom_events()
    except Unavailable:
        notifier = None
    try:
        next_stats = time.monotonic() + interval
        while manager.exists():
            now = time.monotonic()
            if now >= next_stats:
                yield {"type": "stats", "id": cid, "data": manager.stats()}
                next_stats = now + interval
                continue
            wait = next_stats - now
            if notifier is None:
                time.sleep(wait)
                continue
            count = notifier.poll(wait)
            if count is None:
                return
            for _ in range(count):
                yield {"type": "oom", "id": cid}
    finally:
        if notifier is not None:
            notifier.close()


class OOMNotifier:
    def __init__(self) -> None:
        self.closed = False

    def fileno(self) -> Any:
        raise NotImplementedError

    def poll(self, timeout: Any = None) -> int | None:
        """New OOM kills since the last call; 0 on timeout; None once the cgroup is gone."""
        if self.closed:
            return None
        p = select.poll()
        p.register(self.fileno(), select.POLLIN | select.POLLPRI)
        if not p.poll(None if timeout is None else int(timeout * 1000)):
            return 0
        count = self._consume()
        if count is None:
            self.close()
        return count

    def __iter__(self):
        while True:
            count = self.poll()
            if count is None:
                return
            if count:
                yield count

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _consume(self):
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True


class V1OOMNotifier(OOMNotifier):
    def __init__(self, memory_dir: Any) -> None:
        super().__init__()
        self.dir = memory_dir
        self._efd = os.eventfd(0, os.EFD_CLOEXEC)
        try:
            self._ofd = os.open(os.path.join(memory_dir, "memory.oom_control"),
                                os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            os.close(self._efd)
            raise SystemFailure("open %s/memory.oom_control" % memory_dir, e.errno) from None
        try:
            with open(os.path.join(memory_dir, "cgroup.event_control"), "w") as f:
                f.write("%d %d" % (self._efd, self._ofd))
        except OSError as e:
            self._close_fds()
            raise SystemFailure("register an OOM eventfd in %s" % memory_dir, e.errno) from None

    def fileno(self) -> int:
        return self._efd

    def _consume(self):
        count = os.eventfd_read(self._efd)
        if not os.path.isdir(self.dir):
            return None
        return count

    def _close_fds(self):
        os.close(self._efd)
        os.close(self._ofd)

    def close(self) -> None:
        if not self.closed:
            self._close_fds()
        super().close()


class V2OOMNotifier(OOMNotifier):
    def __init__(self, cgroup_dir: Any) -> None:
        super().__init__()
        self.dir = cgroup_dir
        try:
            self._fd = os.open(os.path.join(cgroup_dir, "memory.events"), os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise SystemFailure("open %s/memory.events" % cgroup_dir, e.errno) from None
        self._seen = self._oom_kills()

    def fileno(self) -> Any:
        return self._fd

    def _oom_kills(self):
        """The oom_kill count, or None when the cgroup is gone."""
        try:
            data = os.pread(self._fd, 4096, 0).decode()
        except OSError:
            return None
        if not os.path.isdir(self.dir):
            return None
        for line in data.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def _consume(self):
        now = self._oom_kills()
        if now is None:
            return None
        count, self._seen = now - self._seen, now
        return count

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()
