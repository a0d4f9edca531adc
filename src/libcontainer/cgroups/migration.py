"""Moving processes between cgroups fast: paying the kernel's first-move wait in the background.

Every write of a pid into a ``cgroup.procs`` file takes the kernel's global threadgroup lock
for writing. The first writer after a quiet spell waits for an RCU grace period before it gets
that lock (7-11 ms on this kind of host, for runc as for us); writers that follow within about a
grace period get it at once. A runtime moves the container's first process only after it has
started, read its config and forked, so ``MigrationWarmup`` pays the wait on a background thread
from the moment the command starts: it writes this process's own pid into the cgroup it is
already in (which moves nothing), then repeats that every few milliseconds so the lock stays
warm, until the ``with`` block ends (the container's process has been placed) or a second has
passed. Any failure just ends the warm-up: it only ever saves time.
"""
import _thread
import os
import time

from pyrunc.libcontainer.cgroups import hierarchy

INTERVAL = 0.004    # seconds between writes: well inside the kernel's grace period
LIMIT = 1.0         # seconds; the warm-up never outlives a slow command by more than this


class MigrationWarmup:
    """``with MigrationWarmup(): <create or exec the container's process>``"""

    def __init__(self):
        self.stopped = False

    def __enter__(self):
        _thread.start_new_thread(self._run, ())
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        """The container's process is placed: no more writes."""
        self.stopped = True

    def _run(self):
        deadline = time.monotonic() + LIMIT
        try:
            path = own_procs_file()
            pid = str(os.getpid()).encode()
            while not self.stopped and time.monotonic() < deadline:
                fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
                try:
                    os.write(fd, pid)
                finally:
                    os.close(fd)
                time.sleep(INTERVAL)
        except Exception:   # noqa: BLE001 - an optimisation: whatever fails, the move is just slower
            pass


def own_procs_file():
    """The ``cgroup.procs`` of the cgroup this process is in: on the cgroup2 hierarchy when
    there is one (it has the fewest controllers to move between), else on a v1 hierarchy."""
    layout = hierarchy.host_layout()
    if layout.unified is not None and "" in layout.own:
        directory = layout.unified.host_dir(layout.own[""])
    else:
        controller = next(c for c in hierarchy.V1_CONTROLLERS if c in layout.v1)
        directory = layout.v1[controller].host_dir(layout.own[controller])
    return os.path.join(directory, "cgroup.procs")
