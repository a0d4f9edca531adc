"""Building an image: pydockerd against Debian's dockerd (its classic builder), the same docker
CLI (``DOCKER_BUILDKIT=0 docker build``) driving both, rounds alternating between the two.

A seven-step Dockerfile (FROM busybox, ENV, WORKDIR, COPY, RUN, EXPOSE, CMD) over a small
context (``--files`` files of 4 KiB and one of 1 MiB):
  cold  ``docker build --no-cache``: every step made again (one RUN container, one COPY layer)
  warm  ``docker build`` after a first build: every step a cache hit
Figures are medians of ``-n`` rounds per daemon and the ratio pydockerd/dockerd (goal: at or
below 1.00x for both). Each daemon runs in network and mount namespaces of its own (dockerd:
tests/dockerd_peer.py; pydockerd: benchmarks/daemon_vs_dockerd.py's PyDockerd), both with their
default bridge or, with ``--network none``, none (the builds then pass ``--network none``).
Both load pyrunc's built-in busybox through ``docker load``. Run as root:

    .venv/bin/python benchmarks/build_vs_dockerd.py -n 10
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)

from daemon_vs_dockerd import row, started_pair, stop_pair  # noqa: E402
from dockerd_peer import docker_client  # noqa: E402

DOCKERFILE = """FROM busybox
ENV APP_HOME=/app
WORKDIR /app
COPY . /app/
RUN echo built > /app/built.txt && ls /app > /dev/null
EXPOSE 8080
CMD ["cat", "/app/built.txt"]
"""


def make_context(path, files):
    os.makedirs(os.path.join(path, "src"))
    with open(os.path.join(path, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)
    for i in range(files):
        with open(os.path.join(path, "src", "f%03d.txt" % i), "wb") as f:
            f.write(os.urandom(2048).hex().encode())
    with open(os.path.join(path, "blob.bin"), "wb") as f:
        f.write(os.urandom(1 << 20))


def build(d, ctx, net, *flags):
    """One ``docker build``; checks that it built (the last line names the tag)."""
    r = d.docker("build", *net, *flags, "-t", "bench:latest", ctx)
    assert r.stdout.rstrip().endswith("Successfully tagged bench:latest"), r.stdout[-500:]
    return r.stdout


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=10, help="rounds of each figure (10)")
    p.add_argument("--files", type=int, default=50, help="small files in the context (50)")
    p.add_argument("--network", choices=("bridge", "none"), default="bridge")
    p.add_argument("--client", default=docker_client(), help="the docker CLI (Debian's 20.10)")
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if not args.inner:   # a mount namespace of our own
        os.execvp("unshare", ["unshare", "--mount", "--propagation", "private", "--",
                              sys.executable, os.path.abspath(__file__), "--inner",
                              *sys.argv[1:]])
    net = ("--network", "none") if args.network == "none" else ()
    os.environ["DOCKER_BUILDKIT"] = "0"
    with tempfile.TemporaryDirectory(prefix="build-bench-") as tmp:
        ctx = os.path.join(tmp, "ctx")
        make_context(ctx, args.files)
        pair = started_pair(tmp, args.network, args.client)
        try:
            for d in pair.values():
                d.env["DOCKER_BUILDKIT"] = "0"      # the classic builder, for the CLI's builds
            version = {k: d.docker("version", "-f", "{{.Server.Version}}").stdout.strip()
                       for k, d in pair.items()}
            print("client %s; pydockerd %s; dockerd %s; network %s; %d files + 1 MiB; "
                  "load %.1f" % (args.client, version["pydockerd"], version["dockerd"],
                                 args.network, args.files, os.getloadavg()[0]))
            print("%-28s %12s %12s %8s" % ("", "pydockerd", "dockerd", "ratio"))
            for d in pair.values():        # warm both once; fills the cache
                build(d, ctx, net)
            cold = {k: [] for k in pair}
            warm = {k: [] for k in pair}
            for _ in range(args.n):
                for k, d in pair.items():
                    t, out = timed(build, d, ctx, net, "--no-cache")
                    assert "Using cache" not in out
                    cold[k].append(t)
                    t, out = timed(build, d, ctx, net)
                    assert out.count(" ---> Using cache") == 6, out
                    warm[k].append(t)
            for name, samples in (("cold build (--no-cache)", cold),
                                  ("warm build (cache hits)", warm)):
                a, b = statistics.median(samples["pydockerd"]), statistics.median(
                    samples["dockerd"])
                row(name + " med", a, b, "ms", 1e3, goal=1.0 + 1e-9)
                print("%-28s %5.0f-%-5.0fms %5.0f-%-5.0fms" % (
                    "  range", min(samples["pydockerd"]) * 1e3,
                    max(samples["pydockerd"]) * 1e3, min(samples["dockerd"]) * 1e3,
                    max(samples["dockerd"]) * 1e3))
            floor = {k: [] for k in pair}
            for _ in range(args.n):
                for k, d in pair.items():
                    floor[k].append(timed(d.docker, "version")[0])
            row("  docker version (CLI floor)", statistics.median(floor["pydockerd"]),
                statistics.median(floor["dockerd"]), "ms", 1e3)
        finally:
            stop_pair(pair)


if __name__ == "__main__":
    main()
