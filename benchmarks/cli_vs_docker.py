"""pydocker against the docker CLI (Go), both driving the same daemon, in one run.

Figures, whole-process wall clock, rounds alternating between the two clients, medians:
  ps       ``ps`` with ``--containers`` containers running (busybox sleep)
  images   ``images`` with ``--images`` tags of busybox
  run      ``run --rm busybox true``
  start-up ``--help`` (no daemon call: interpreter start and imports)
Goal: pydocker within 1.5x of the Go client. The daemon is Debian's dockerd in namespaces of
its own (tests/dockerd_peer.py), or pydockerd with ``--daemon pydockerd`` (started as
benchmarks/daemon_vs_dockerd.py does). Time a non-editable install (an editable one adds
imports in ``site``; pip compiles the bytecode) with ``--pydocker``. Run as root:

    python3 -m venv VENV && VENV/bin/pip install .
    unshare -m --propagation private .venv/bin/python benchmarks/cli_vs_docker.py -n 10 \
        --containers 100 --images 100 --pydocker VENV/bin/pydocker
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)

from dockerd_peer import Dockerd, docker_client  # noqa: E402


def timed(argv, env):
    start = time.perf_counter()
    r = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        raise SystemExit("%s failed: %s" % (" ".join(argv), r.stderr.decode(errors="replace")))
    return elapsed


def main():
    p = argparse.ArgumentParser()
    p.add_argument("-n", type=int, default=20)
    p.add_argument("--containers", type=int, default=100)
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--docker", default="/usr/local/bin/docker")
    p.add_argument("--daemon", choices=("dockerd", "pydockerd"), default="dockerd")
    p.add_argument("--pydocker", help="the pydocker command to time (an installed one, e.g. "
                   "VENV/bin/pydocker); default: this interpreter's -m pyrunc.cli")
    a = p.parse_args()
    if a.pydocker:
        pydocker = [a.pydocker]
    else:
        pydocker = [sys.executable, "-m", "pyrunc.cli"]
        # an installed package has its bytecode compiled (pip does it); a checkout run with
        # PYTHONDONTWRITEBYTECODE would compile every module at every call
        import compileall
        import pyrunc.cli
        compileall.compile_dir(os.path.dirname(pyrunc.cli.__file__), quiet=1)
    with tempfile.TemporaryDirectory(prefix="pyrunc-cli-bench-") as work:
        if a.daemon == "dockerd":
            daemon = Dockerd(os.path.join(work, "dockerd")).start()
            daemon.load_builtin("busybox")
            env = daemon.env
        else:
            from daemon_vs_dockerd import PyDockerd
            daemon = PyDockerd(os.path.join(work, "pydockerd"), "none", docker_client())
            daemon.start()
            env = daemon.env
            from pyrunc.engine.images import archive, builtin
            from pyrunc.engine.images.service import ImageService
            store = ImageService(os.path.join(work, "builtin-images"))
            builtin.build(store, "busybox")
            tar = os.path.join(work, "busybox.tar")
            with open(tar, "wb") as f:
                archive.save(store, ["busybox:latest"], f)
            subprocess.run([a.docker, "load", "-i", tar], env=env, check=True,
                           capture_output=True)
        try:
            docker = [a.docker]
            for i in range(a.images - 1):
                subprocess.run(docker + ["tag", "busybox", "bench/img%d:latest" % i], env=env,
                               check=True, capture_output=True)
            for i in range(a.containers):
                subprocess.run(docker + ["run", "-d", "--network", "none", "busybox", "sleep",
                                         "3600"], env=env, check=True, capture_output=True)
            cases = [("ps", ["ps"]), ("images", ["images"]),
                     ("run", ["run", "--rm", "--network", "none", "busybox", "true"]),
                     ("start-up", ["--help"])]
            print("%-9s %12s %12s %7s" % ("", "pydocker", "docker", "ratio"))
            for name, args in cases:
                mine, theirs = [], []
                for _ in range(a.n):
                    mine.append(timed(pydocker + args, env))
                    theirs.append(timed(docker + args, env))
                m, t = statistics.median(mine), statistics.median(theirs)
                print("%-9s %10.1fms %10.1fms %6.2fx" % (name, m * 1000, t * 1000, m / t))
        finally:
            ids = subprocess.run([a.docker, "ps", "-aq"], env=env, capture_output=True,
                                 text=True).stdout.split()
            if ids:
                subprocess.run([a.docker, "rm", "-f"] + ids, env=env, capture_output=True)
            daemon.stop()


if __name__ == "__main__":
    main()
