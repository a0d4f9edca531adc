"""pyrunc's engine (the library, in process) against Debian's dockerd (the docker CLI), one run.

Two figures, each side by side, rounds alternating between the two:
  run --rm   create, start, wait for the exit and remove a ``busybox true`` container: the
             library's calls against ``docker run --rm busybox true`` (median, ratio);
  fleet      50 detached ``busybox sleep`` containers started, listed once and force-removed:
             the library's calls against ``docker run -d`` x50, ``docker ps``, ``docker rm -f``.
dockerd runs in its own network and mount namespaces (tests/dockerd_peer.py) with the same
built-in busybox image, loaded with ``docker load``. Run as root in a private mount namespace:

    unshare -m --propagation private .venv/bin/python benchmarks/engine_vs_dockerd.py -n 20
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from dockerd_peer import Dockerd  # noqa: E402

from pyrunc.engine import Engine  # noqa: E402


def engine_run_rm(engine):
    c = engine.containers
    cid = c.create({"Image": "busybox", "Cmd": ["true"]})["Id"]
    c.start(cid)
    status = c.wait(cid)["StatusCode"]
    c.remove(cid)
    assert status == 0, status


def engine_fleet(engine, count):
    c = engine.containers
    ids = []
    for _ in range(count):
        cid = c.create({"Image": "busybox", "Cmd": ["sleep", "1000"]})["Id"]
        c.start(cid)
        ids.append(cid)
    assert len(c.list()) == count
    for cid in ids:
        c.remove(cid, force=True)


def docker_fleet(dockerd, count):
    for _ in range(count):
        dockerd.docker("run", "-d", "busybox", "sleep", "1000")
    ps = dockerd.docker("ps", "-q").stdout.split()
    assert len(ps) == count, ps
    dockerd.docker("rm", "-f", *ps)


def timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def report(name, results):
    print("%-8s %10s %10s %8s" % (name, "pyrunc", "dockerd", "ratio"))
    a, b = statistics.median(results["pyrunc"]), statistics.median(results["dockerd"])
    print("%-8s %8.1fms %8.1fms %7.2fx" % ("median", a * 1e3, b * 1e3, a / b))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=20, help="rounds of run --rm (default 20)")
    p.add_argument("--fleet", type=int, default=50, help="containers in the fleet (default 50)")
    p.add_argument("--fleet-rounds", type=int, default=3, help="fleet rounds (default 3)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="engine-bench-") as tmp:
        engine = Engine(root=os.path.join(tmp, "engine"))
        engine.load_builtin("busybox")
        with Dockerd(os.path.join(tmp, "dockerd")) as dockerd:
            dockerd.load_builtin("busybox")
            engine_run_rm(engine)                      # warm both once
            dockerd.docker("run", "--rm", "busybox", "true")
            runs = {"pyrunc": [], "dockerd": []}
            for _ in range(args.n):
                runs["pyrunc"].append(timed(engine_run_rm, engine))
                runs["dockerd"].append(timed(dockerd.docker, "run", "--rm", "busybox", "true"))
            print("run --rm busybox true, %d rounds" % args.n)
            report("run --rm", runs)
            fleet = {"pyrunc": [], "dockerd": []}
            for _ in range(args.fleet_rounds):
                fleet["pyrunc"].append(timed(engine_fleet, engine, args.fleet))
                fleet["dockerd"].append(timed(docker_fleet, dockerd, args.fleet))
            print("\n%d detached containers started, listed, removed; %d rounds"
                  % (args.fleet, args.fleet_rounds))
            report("fleet", fleet)
        engine.close()


if __name__ == "__main__":
    main()
