"""``pyrunc exec <id> /bin/true`` against ``runc exec`` on a running busybox container each.

Whole process, wall clock, interleaved rounds so both see the same machine; prints medians and
the ratio to runc. A quiet gap (``--gap``) precedes every timed call: the kernel's cgroup
migration lock stays fast for a grace period after any cgroup move, and without the gap each
runtime would inherit the warmth the previous one left. Measure a non-editable install
(``python3 -m venv DIR && DIR/bin/pip install .``, then ``--pyrunc DIR/bin/pyrunc``): an
editable install's import hooks and missing bytecode add milliseconds that users never pay.
Run as root:

    unshare -m --propagation private .venv/bin/python benchmarks/exec_vs_runc.py [-n 50] \
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


class ExecFailed(Exception):
    pass


def call(binary, root, *args):
    # stderr goes to a file: a pipe would stay open in a detached container's process
    with tempfile.TemporaryFile() as err:
        r = subprocess.run([binary, "--root", root] + list(args), stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=err)
        if r.returncode != 0:
            err.seek(0)
            raise ExecFailed("%s %s failed (%d): %s" % (binary, args[0], r.returncode,
                                                         err.read().decode().strip()))


def time_exec(binary, root, cid):
    start = time.perf_counter()
    call(binary, root, "exec", cid, "/bin/true")
    return time.perf_counter() - start


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
    found = {"pyrunc": args.pyrunc}
    if shutil.which("runc"):
        found["runc"] = shutil.which("runc")
    work = tempfile.mkdtemp(prefix="bench-exec-")
    started = []
    try:
        bundle = os.path.join(work, "bundle")
        bundles.make_bundle(bundle, args=["sleep", "100000"])
        for name, binary in list(found.items()):
            root = os.path.join(work, "root-" + name)
            cid = "bench-exec-%s-%d" % (name, os.getpid())
            try:
                call(binary, root, "run", "--detach", "--bundle", bundle, cid)
                started.append((binary, root, cid))
                for _ in range(2):                       # warm-up
                    time_exec(binary, root, cid)
            except ExecFailed as e:
                if name == "pyrunc":
                    sys.exit(str(e))
                print("  %s left out: %s" % (name, e))
                del found[name]
        times = {name: [] for name in found}
        for _ in range(args.n):
            for binary, root, cid in started:
                name = next(n for n, b in found.items() if b == binary)
                time.sleep(args.gap / 1000)
                times[name].append(time_exec(binary, root, cid))
        base = statistics.median(times["runc"]) if "runc" in times else None
        print("exec of /bin/true in a running busybox container, %d rounds, interleaved (%s)"
              % (args.n, args.pyrunc))
        for name, samples in times.items():
            med = statistics.median(samples)
            ratio = " (%.2fx runc)" % (med / base) if base else ""
            print("  %-7s median %6.1f ms  p90 %6.1f ms%s" % (
                name, med * 1000, sorted(samples)[int(len(samples) * 0.9)] * 1000, ratio))
    finally:
        for binary, root, cid in started:
            subprocess.run([binary, "--root", root, "delete", "--force", cid],
                           capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
