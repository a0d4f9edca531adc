"""``pyrunc run`` against ``runc run`` (and ``crun run``) on the same busybox bundle.

Whole process, wall clock, interleaved rounds with a quiet gap before each call (see
side_by_side.py); prints medians and the ratio to runc. Time a non-editable install.
Run as root:

    unshare -m --propagation private .venv/bin/python benchmarks/run_vs_runc.py [-n 50] \
        [--pyrunc PATH]
"""
import os
import shutil
import tempfile

from side_by_side import RuntimeFailed, arguments, leave_out, pause, report, runtimes, time_run

from pyrunc.engine import busybox


def main():
    args = arguments(__doc__, 50)
    work = tempfile.mkdtemp(prefix="bench-run-")
    try:
        bundle = os.path.join(work, "bundle")
        busybox.make_bundle(bundle, args=["true"])
        found = runtimes(args.pyrunc)
        for name, binary in list(found.items()):   # warm-up
            try:
                for w in range(2):
                    time_run(binary, os.path.join(work, "root-" + name), bundle, "w%d" % w)
            except RuntimeFailed as e:
                leave_out(found, name, e)
        times = {name: [] for name in found}
        for i in range(args.n):
            for name, binary in found.items():
                pause(args.gap)
                times[name].append(time_run(binary, os.path.join(work, "root-" + name),
                                            bundle, "b%d" % i))
        report("run of /bin/true in a busybox bundle, %d rounds, interleaved (%s)"
               % (args.n, args.pyrunc), times)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
