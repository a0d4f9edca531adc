"""``pyrunc run`` against ``runc run`` (and ``crun run``) on the same busybox bundle.

Whole process, wall clock, interleaved rounds so both see the same machine; prints medians and
the ratio to runc. A quiet gap (``--gap``) precedes every timed call: the kernel's cgroup
migration lock stays fast for a grace period after any cgroup move, and without the gap each
runtime would inherit the warmth the previous one left. Measure a non-editable install
(``python3 -m venv DIR && DIR/bin/pip install .``, then ``--pyrunc DIR/bin/pyrunc``): an
editable install's import hooks and missing bytecode add milliseconds that users never pay.
Run as root:

    unshare -m --propagation private .venv/bin/python benchmarks/run_vs_runc.py [-n 50] \
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


def runtimes(pyrunc):
    found = {"pyrunc": pyrunc}
    for name in ("runc", "crun"):
        path = shutil.which(name)
        if path:
            found[name] = path
    return found


class RunFailed(Exception):
    pass


def time_run(binary, root, bundle, cid):
    start = time.perf_counter()
    r = subprocess.run([binary, "--root", root, "run", "--bundle", bundle, cid],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        raise RunFailed("%s run failed (%d): %s" % (binary, r.returncode,
                                                     r.stderr.decode().strip()))
    return elapsed


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=50, help="rounds (default 50)")
    p.add_argument("--pyrunc", default=os.path.join(os.path.dirname(sys.executable), "pyrunc"),
                   help="the pyrunc to time; use a non-editable install's "
                        "(default: the one beside this python)")
    p.add_argument("--gap", type=float, default=50,
                   help="ms of quiet before each timed call (default 50), so no runtime inherits "
                        "the cgroup lock the previous one warmed")
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="bench-run-")
    try:
        bundle = os.path.join(work, "bundle")
        bundles.make_bundle(bundle, args=["true"])
        found = runtimes(args.pyrunc)
        for name, binary in list(found.items()):   # warm-up; a peer that cannot run is left out
            try:
                for w in range(2):
                    time_run(binary, os.path.join(work, "root-" + name), bundle, "w%d" % w)
            except RunFailed as e:
                if name == "pyrunc":
                    sys.exit(str(e))
                print("  %s left out: %s" % (name, e))
                del found[name]
        times = {name: [] for name in found}
        for i in range(args.n):
            for name, binary in found.items():
                time.sleep(args.gap / 1000)
                times[name].append(time_run(binary, os.path.join(work, "root-" + name),
                                            bundle, "b%d" % i))
        base = statistics.median(times["runc"]) if "runc" in times else None
        print("run of /bin/true in a busybox bundle, %d rounds, interleaved" % args.n)
        for name, samples in times.items():
            med = statistics.median(samples)
            ratio = " (%.2fx runc)" % (med / base) if base else ""
            print("  %-7s median %6.1f ms  p90 %6.1f ms%s" % (
                name, med * 1000, sorted(samples)[int(len(samples) * 0.9)] * 1000, ratio))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
