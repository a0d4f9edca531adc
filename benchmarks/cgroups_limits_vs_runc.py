"""A container with a memory and a pids limit: ``pyrunc run`` against ``runc run`` (and crun).

The same busybox bundle (``/bin/true``, ``linux.resources`` memory 64 MiB + pids 64, its own
``cgroupsPath``) is run whole-process by each runtime, interleaved rounds, wall clock; the run
covers cgroup creation, the limits, and removal on delete. Also prints what pyrunc's cgroup work
alone costs in-process (new_manager + apply + set + destroy for a sleeping child). A quiet gap
(``--gap``) precedes every timed call: the kernel's cgroup migration lock stays fast for a grace
period after any cgroup move, and without the gap each runtime would inherit the warmth the
previous one left. Measure a non-editable install (``python3 -m venv DIR && DIR/bin/pip install
.``, then ``--pyrunc DIR/bin/pyrunc``): an editable install's import hooks and missing bytecode
add milliseconds that users never pay. Run as root:

    unshare -m --propagation private .venv/bin/python benchmarks/cgroups_limits_vs_runc.py [-n 30] \
        [--pyrunc PATH]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from pyrunc.libcontainer import bundle as bundles
from pyrunc.libcontainer import cgroups

PARENT = "/pyrunc-bench-cgroups"
RESOURCES = {"memory": {"limit": 64 << 20}, "pids": {"limit": 64}}


class RunFailed(Exception):
    pass


def time_run(binary, root, bundle, cid):
    start = time.perf_counter()
    r = subprocess.run([binary, "--root", root, "run", "--bundle", bundle, cid],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        raise RunFailed("%s run failed (%d): %s" % (binary, r.returncode,
                                                     r.stderr.decode().strip()))
    return elapsed


def time_manager(i):
    """In-process: the cgroup work of one container lifecycle, for a forked sleeper."""
    pid = os.fork()
    if pid == 0:
        time.sleep(10)
        os._exit(0)
    start = time.perf_counter()
    m = cgroups.new_manager("%s/inproc-%d" % (PARENT, i), "inproc-%d" % i)
    m.apply(pid)
    m.set(RESOURCES)
    setup = time.perf_counter() - start
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    start = time.perf_counter()
    m.destroy()
    return setup + time.perf_counter() - start


def remove_parent():
    for mount in sorted(set(os.path.dirname(d) for d in
                            cgroups.new_manager(PARENT + "/x", "x").paths().values())):
        try:
            os.rmdir(mount)
        except OSError:
            pass


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=30, help="rounds (default 30)")
    p.add_argument("--pyrunc", default=os.path.join(os.path.dirname(sys.executable), "pyrunc"),
                   help="the pyrunc to time; use a non-editable install's "
                        "(default: the one beside this python)")
    p.add_argument("--gap", type=float, default=50,
                   help="ms of quiet before each timed call (default 50), so no runtime inherits "
                        "the cgroup lock the previous one warmed")
    args = p.parse_args()
    found = {"pyrunc": args.pyrunc}
    for name in ("runc", "crun"):
        if shutil.which(name):
            found[name] = shutil.which(name)
    work = tempfile.mkdtemp(prefix="bench-cgroups-")
    try:
        bundle_of = {}
        for name in found:
            bundle = os.path.join(work, "bundle-" + name)
            spec = bundles.example_spec(args=["true"], terminal=False)
            spec["linux"]["resources"] = RESOURCES
            spec["linux"]["cgroupsPath"] = "%s/%s" % (PARENT, name)
            bundles.make_bundle(bundle, spec=spec)
            bundle_of[name] = bundle
        for name in list(found):
            try:
                time_run(found[name], os.path.join(work, "root-" + name), bundle_of[name], "w")
            except RunFailed as e:
                if name in ("pyrunc", "runc"):
                    sys.exit(str(e))
                print("  (%s left out: %s)" % (name, e))
                del found[name]
        times = {name: [] for name in found}
        for i in range(-2, args.n):             # two warm-up rounds, not counted
            for name, binary in found.items():
                time.sleep(args.gap / 1000)
                t = time_run(binary, os.path.join(work, "root-" + name), bundle_of[name],
                             "c%d" % (i + 2))
                if i >= 0:
                    times[name].append(t)
        inproc = [time_manager(i) for i in range(args.n)]
        base = statistics.median(times["runc"]) if "runc" in times else None
        print("run of /bin/true with memory 64 MiB + pids 64 limits, %d rounds, interleaved" % args.n)
        for name, samples in times.items():
            med = statistics.median(samples)
            ratio = " (%.2fx runc)" % (med / base) if base else ""
            print("  %-7s median %6.1f ms%s" % (name, med * 1000, ratio))
        print("  pyrunc cgroup work in-process (apply+set+destroy): median %.2f ms"
              % (statistics.median(inproc) * 1000))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        remove_parent()


if __name__ == "__main__":
    main()
