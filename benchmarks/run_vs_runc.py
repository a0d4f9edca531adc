"""``pyrunc run`` against ``runc run`` (and ``crun run``) on the same busybox bundle.

Whole process, wall clock, interleaved rounds with a quiet gap before each call (see
side_by_side.py); prints medians and the ratio to runc. Time a non-editable install.
Run as root:

    unshare -m --propagation private .venv/bin/python benchmarks/run_vs_runc.py [-n 50] \
        [--pyrunc PATH] [--create-seccomp]

``--create-seccomp`` times ``create`` alone (the delete after it is not timed) of a bundle
whose config carries the seccomp section docker gives a container by default (the engine's
default profile for docker's default capabilities), as each ``docker run`` has its runtime do.
pyrunc compiles such a section once per state root and reuses the program (its seccomp cache);
the warm-up rounds fill that cache, as earlier containers on a host do.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from side_by_side import RuntimeFailed, arguments, leave_out, pause, report, runtimes, time_run

from pyrunc.engine import busybox


def time_create(binary, root, bundle, cid):
    """Seconds for ``BINARY --root ROOT create --bundle BUNDLE CID``; then deletes it.

    Errors go to a file, not a pipe: the created init keeps the stdio it was given until it
    runs, so reading a pipe to its end would wait for the delete."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        r = subprocess.run([binary, "--root", root, "create", "--bundle", bundle, cid],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        elapsed = time.perf_counter() - start
        subprocess.run([binary, "--root", root, "delete", "--force", cid],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        if r.returncode != 0:
            err.seek(0)
            raise RuntimeFailed("%s create failed (%d): %s" % (binary, r.returncode,
                                                                err.read().decode().strip()))
    return elapsed


def docker_seccomp_spec():
    """The example config running ``true`` with docker's default ``linux.seccomp``."""
    from pyrunc.containerd.runtime.spec import example_spec
    from pyrunc.engine.oci import seccomp
    from pyrunc.engine.oci.defaults import DEFAULT_CAPABILITIES
    spec = example_spec(args=["true"], terminal=False)
    spec["linux"]["seccomp"] = seccomp.to_oci(seccomp.default_profile(),
                                              list(DEFAULT_CAPABILITIES))
    return spec


def main():
    mode = argparse.ArgumentParser(add_help=False)
    mode.add_argument("--create-seccomp", action="store_true")
    extra, sys.argv[1:] = mode.parse_known_args()
    args = arguments(__doc__, 50)
    timed = time_create if extra.create_seccomp else time_run
    work = tempfile.mkdtemp(prefix="bench-run-")
    try:
        bundle = os.path.join(work, "bundle")
        if extra.create_seccomp:
            busybox.make_bundle(bundle, spec=docker_seccomp_spec())
            what = "create of a busybox bundle with docker's default seccomp profile"
        else:
            busybox.make_bundle(bundle, args=["true"])
            what = "run of /bin/true in a busybox bundle"
        found = runtimes(args.pyrunc)
        for name, binary in list(found.items()):   # warm-up
            try:
                for w in range(2):
                    timed(binary, os.path.join(work, "root-" + name), bundle, "w%d" % w)
            except RuntimeFailed as e:
                leave_out(found, name, e)
        times = {name: [] for name in found}
        for i in range(args.n):
            for name, binary in found.items():
                pause(args.gap)
                times[name].append(timed(binary, os.path.join(work, "root-" + name),
                                         bundle, "b%d" % i))
        report("%s, %d rounds, interleaved (%s)" % (what, args.n, args.pyrunc), times)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
