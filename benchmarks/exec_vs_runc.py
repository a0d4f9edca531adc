"""``pyrunc exec <id> /bin/true`` against ``runc exec`` on a running busybox container each.

Whole process, wall clock, interleaved rounds with a quiet gap before each call (see
side_by_side.py); prints medians and the ratio to runc. Time a non-editable install.
Run as root:

    unshare -m --propagation private .venv/bin/python benchmarks/exec_vs_runc.py [-n 50] \
        [--pyrunc PATH]
"""
import os
import shutil
import subprocess
import tempfile
import time

from side_by_side import RuntimeFailed, arguments, leave_out, pause, report, runtimes

from pyrunc.engine import busybox


def call(binary, root, *args):
    # stderr goes to a file: a pipe would stay open in a detached container's process
    with tempfile.TemporaryFile() as err:
        r = subprocess.run([binary, "--root", root] + list(args), stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=err)
        if r.returncode != 0:
            err.seek(0)
            raise RuntimeFailed("%s %s failed (%d): %s" % (binary, args[0], r.returncode,
                                                         err.read().decode().strip()))


def time_exec(binary, root, cid):
    start = time.perf_counter()
    call(binary, root, "exec", cid, "/bin/true")
    return time.perf_counter() - start


def main():
    args = arguments(__doc__, 50)
    found = runtimes(args.pyrunc, peers=("runc",))
    work = tempfile.mkdtemp(prefix="bench-exec-")
    started = []
    try:
        bundle = os.path.join(work, "bundle")
        busybox.make_bundle(bundle, args=["sleep", "100000"])
        for name, binary in list(found.items()):
            root = os.path.join(work, "root-" + name)
            cid = "bench-exec-%s-%d" % (name, os.getpid())
            try:
                call(binary, root, "run", "--detach", "--bundle", bundle, cid)
                started.append((binary, root, cid))
                for _ in range(2):                       # warm-up
                    time_exec(binary, root, cid)
            except RuntimeFailed as e:
                leave_out(found, name, e)
        times = {name: [] for name in found}
        for _ in range(args.n):
            for binary, root, cid in started:
                name = next(n for n, b in found.items() if b == binary)
                pause(args.gap)
                times[name].append(time_exec(binary, root, cid))
        report("exec of /bin/true in a running busybox container, %d rounds, interleaved (%s)"
               % (args.n, args.pyrunc), times)
    finally:
        for binary, root, cid in started:
            subprocess.run([binary, "--root", root, "delete", "--force", cid],
                           capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
