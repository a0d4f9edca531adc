"""What the runtime benchmarks share: their command line, the peers found here, the report.

Every runtime benchmark times whole processes, interleaved round by round so that pyrunc and
its peers see the same machine, with a quiet gap before each timed call: the kernel's cgroup
migration lock stays fast for a grace period after any cgroup move, and without the gap each
runtime would inherit the warmth the previous one left. Time a non-editable install made
with the interpreter users run, Debian's as install.sh uses (``/usr/bin/python3 -m venv DIR &&
DIR/bin/pip install .``, then ``--pyrunc DIR/bin/pyrunc``): an editable install's import hooks
and missing bytecode add milliseconds users never pay, and a shared-library build of Python
starts slower.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time


class RuntimeFailed(Exception):
    """A runtime command failed; a peer that cannot run here is left out of the comparison."""


def arguments(doc, rounds):
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("-n", type=int, default=rounds, help="rounds (default %d)" % rounds)
    p.add_argument("--pyrunc", default=os.path.join(os.path.dirname(sys.executable), "pyrunc"),
                   help="the pyrunc to time; use a non-editable install's "
                        "(default: the one beside this python)")
    p.add_argument("--gap", type=float, default=50,
                   help="ms of quiet before each timed call (default 50), so no runtime inherits "
                        "the cgroup lock the previous one warmed")
    return p.parse_args()


def runtimes(pyrunc, peers=("runc", "crun")):
    """{name: binary}: pyrunc first, then each peer installed here."""
    found = {"pyrunc": pyrunc}
    for name in peers:
        path = shutil.which(name)
        if path:
            found[name] = path
    return found


def leave_out(found, name, error, required=("pyrunc",)):
    """Drop a peer that cannot run here, saying why; stop if it is one we cannot do without."""
    if name in required:
        sys.exit(str(error))
    print("  %s left out: %s" % (name, error))
    del found[name]


def time_run(binary, root, bundle, cid):
    """Seconds for ``BINARY --root ROOT run --bundle BUNDLE CID``, whole process."""
    start = time.perf_counter()
    r = subprocess.run([binary, "--root", root, "run", "--bundle", bundle, cid],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        raise RuntimeFailed("%s run failed (%d): %s" % (binary, r.returncode,
                                                         r.stderr.decode().strip()))
    return elapsed


def pause(gap_ms):
    time.sleep(gap_ms / 1000)


def report(title, times):
    """Medians, p90 and the ratio to runc, one line per runtime."""
    base = statistics.median(times["runc"]) if times.get("runc") else None
    print(title)
    for name, samples in times.items():
        med = statistics.median(samples)
        ratio = " (%.2fx runc)" % (med / base) if base else ""
        print("  %-7s median %6.1f ms  p90 %6.1f ms%s" % (
            name, med * 1000, sorted(samples)[int(len(samples) * 0.9)] * 1000, ratio))
