"""The lifecycle manager's round trip per container: ``TaskManager.create`` + start + wait +
delete of a busybox ``true``, pyrunc cold (the shim runs ``pyrunc create``), pyrunc warm (the
create server runs it in a fork of itself, see pyrunc.containerd.shim.warm) and runc via the
same shim (and crun when installed).

Interleaved rounds with a quiet gap before each (see side_by_side.py); prints the medians of
the whole round trip and of the create alone, and the warm create server's memory (RSS, PSS).
Time a non-editable install, run with its own interpreter (the manager uses the pyrunc beside
it). Run as root:

    unshare -m --propagation private DIR/bin/python benchmarks/task_create.py [-n 40]
"""
import os
import shutil
import statistics
import tempfile
import time

from shim_memory import memory_of
from side_by_side import arguments, pause, report

from pyrunc.containerd.tasks import TaskManager
from pyrunc.errors import PyruncError
from pyrunc.engine import busybox


def round_trip(manager, bundle, cid):
    """(seconds for the whole round trip, seconds for the create)."""
    start = time.perf_counter()
    task = manager.create(cid, bundle)
    created = time.perf_counter()
    task.start()
    status = task.wait(timeout=30).status
    task.delete()
    end = time.perf_counter()
    if status != 0:
        raise SystemExit("%s: exit status %s" % (cid, status))
    return end - start, created - start


def main():
    args = arguments(__doc__, 40)
    work = tempfile.mkdtemp(prefix="bench-task-")
    managers = {}
    try:
        bundle = os.path.join(work, "bundle")
        busybox.make_bundle(bundle, args=["true"])
        managers = {"cold": TaskManager(os.path.join(work, "cold"), runtime="pyrunc"),
                    "warm": TaskManager(os.path.join(work, "warm"), runtime="pyrunc",
                                        warm_create=True)}
        for peer in ("runc", "crun"):
            if shutil.which(peer):
                managers[peer] = TaskManager(os.path.join(work, peer), runtime=peer)
        for name, manager in list(managers.items()):   # warm-up (the server's start included)
            try:
                for w in range(3):
                    round_trip(manager, bundle, "w%s%d" % (name, w))
            except PyruncError as e:
                if name in ("cold", "warm"):
                    raise
                print("  %s left out: %s" % (name, e))
                manager.close()
                del managers[name]
        times = {name: [] for name in managers}
        creates = {name: [] for name in managers}
        for i in range(args.n):
            for name, manager in managers.items():
                pause(args.gap)
                total, create = round_trip(manager, bundle, "b%s%d" % (name, i))
                times[name].append(total)
                creates[name].append(create)
        report("TaskManager create+start+wait+delete of busybox true, %d rounds, interleaved"
               % args.n, times)
        report("of which TaskManager.create", creates)
        base = statistics.median(creates["cold"])
        print("  warm create / cold create: %.2fx" % (statistics.median(creates["warm"]) / base))
        server = managers["warm"].create_server.pid
        if server:
            rss, pss = memory_of(server)
            print("  create server (pid %d): RSS %d KiB, PSS %d KiB" % (server, rss, pss))
    finally:
        for manager in managers.values():
            manager.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
