"""A container with a memory and a pids limit: ``pyrunc run`` against ``runc run`` (and crun).

The same busybox bundle (``/bin/true``, ``linux.resources`` memory 64 MiB + pids 64, its own
``cgroupsPath``) is run whole-process by each runtime, interleaved rounds, wall clock; the run
covers cgroup creation, the limits, and removal on delete. Also prints what pyrunc's cgroup work
alone costs in-process (new_manager + create + set + destroy; the container's first process
joins the cgroup by itself in the native core, see cgroups.manager.Join). Interleaved
rounds with a quiet gap before each call (see side_by_side.py). Time a non-editable install.
Run as root:

    unshare -m --propagation private .venv/bin/python benchmarks/cgroups_limits_vs_runc.py [-n 30] \
        [--pyrunc PATH]
"""
import os
import shutil
import statistics
import tempfile
import time

from side_by_side import RuntimeFailed, arguments, leave_out, pause, report, runtimes, time_run

from pyrunc.containerd.runtime import spec as runtime_spec
from pyrunc.engine import busybox
from pyrunc.libcontainer import cgroups

PARENT = "/pyrunc-bench-cgroups"
RESOURCES = {"memory": {"limit": 64 << 20}, "pids": {"limit": 64}}


def time_manager(i):
    """In-process: the cgroup work of one container lifecycle."""
    start = time.perf_counter()
    m = cgroups.new_manager("%s/inproc-%d" % (PARENT, i), "inproc-%d" % i)
    m.create()
    m.set(RESOURCES)
    m.destroy()
    return time.perf_counter() - start


def remove_parent():
    for mount in sorted(set(os.path.dirname(d) for d in
                            cgroups.new_manager(PARENT + "/x", "x").paths().values())):
        try:
            os.rmdir(mount)
        except OSError:
            pass


def main():
    args = arguments(__doc__, 30)
    found = runtimes(args.pyrunc)
    work = tempfile.mkdtemp(prefix="bench-cgroups-")
    try:
        bundle_of = {}
        for name in found:
            bundle = os.path.join(work, "bundle-" + name)
            spec = runtime_spec.example_spec(args=["true"], terminal=False)
            spec["linux"]["resources"] = RESOURCES
            spec["linux"]["cgroupsPath"] = "%s/%s" % (PARENT, name)
            busybox.make_bundle(bundle, spec=spec)
            bundle_of[name] = bundle
        for name in list(found):
            try:
                time_run(found[name], os.path.join(work, "root-" + name), bundle_of[name], "w")
            except RuntimeFailed as e:
                leave_out(found, name, e, required=("pyrunc", "runc"))
        times = {name: [] for name in found}
        for i in range(-2, args.n):             # two warm-up rounds, not counted
            for name, binary in found.items():
                pause(args.gap)
                t = time_run(binary, os.path.join(work, "root-" + name), bundle_of[name],
                             "c%d" % (i + 2))
                if i >= 0:
                    times[name].append(t)
        inproc = [time_manager(i) for i in range(args.n)]
        report("run of /bin/true with memory 64 MiB + pids 64 limits, %d rounds, interleaved (%s)"
               % (args.n, args.pyrunc), times)
        print("  pyrunc cgroup work in-process (create+set+destroy): median %.2f ms"
              % (statistics.median(inproc) * 1000))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        remove_parent()


if __name__ == "__main__":
    main()
