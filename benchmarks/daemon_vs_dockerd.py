"""pydockerd against Debian's dockerd, the same docker CLI driving both, in one run.

Figures, side by side, rounds alternating between the two daemons:
  run --rm  ``docker run --rm busybox true``, median of N (goal: pydockerd under a third);
            ``docker version`` beside it, the CLI's own start and two requests, for scale
  ps        ``docker ps`` with 100 containers running (``busybox sleep``), median of N (goal:
            pydockerd at or below dockerd)
  clients   20 clients at once, each running ``docker run --rm busybox true`` K times:
            containers/s over the wall time of the round, median of the rounds
  memory    the daemon's RSS idle (no containers, after the run --rm rounds) and with the 100
            containers running (goal: pydockerd under half). Daemon side: dockerd + its
            containerd, pydockerd's process (with any child it has); the per-container shims
            (the parents of the containers' first processes: containerd-shim-runc-v2,
            pyrunc's C shim) are summed apart, RSS and PSS.

Each daemon runs in network and mount namespaces of its own (dockerd: tests/dockerd_peer.py;
pydockerd the same way, its data root, exec root, socket and pidfile in a temp dir), each with
its default bridge (``--network bridge``: dockerd's docker0, pydockerd ``--bridge pyrb0`` with
its firewall rules inside its namespace) or, with ``--network none``, pydockerd ``--bridge
none`` and every ``docker run`` on both given ``--network none``. Both load pyrunc's built-in
busybox through ``docker load``. Run as root:

    .venv/bin/python benchmarks/daemon_vs_dockerd.py -n 20 --containers 100 --clients 20
"""
import argparse
import concurrent.futures
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from dockerd_peer import Dockerd, docker_client, terminate  # noqa: E402

# what a daemon's namespaces get before it starts: loopback up, a /run of their own
_SCRIPT = r"""
set -e
ip link set lo up
mount -t tmpfs -o mode=0755 tmpfs /run
exec "$0" "$@"
"""


class PyDockerd:
    """One pydockerd in network and mount namespaces of its own, its state under ``workdir``."""

    def __init__(self, workdir, bridge, client):
        self.workdir = workdir
        self.socket = os.path.join(workdir, "docker.sock")
        self.client = client
        self.bridge = bridge
        self.env = dict(os.environ, DOCKER_HOST="unix://" + self.socket,
                        DOCKER_CONFIG=os.path.join(workdir, "client-config"))
        self.proc = None

    def start(self, timeout=60.0):
        os.makedirs(self.workdir, exist_ok=True)
        config = os.path.join(self.workdir, "daemon.json")
        with open(config, "w") as f:
            f.write("{}\n")
        args = [sys.executable, "-m", "pyrunc.engine.dockerd", "-H", "unix://" + self.socket,
                "--data-root", os.path.join(self.workdir, "root"),
                "--exec-root", os.path.join(self.workdir, "exec"),
                "--pidfile", os.path.join(self.workdir, "pydockerd.pid"),
                "--config-file", config, "--bridge", self.bridge, "--log-level", "warn"]
        self.log = open(os.path.join(self.workdir, "pydockerd.log"), "wb")
        self.proc = subprocess.Popen(
            ["unshare", "--net", "--mount", "--propagation", "private", "--",
             "sh", "-c", _SCRIPT, *args],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while self.docker("version", check=False).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                with open(os.path.join(self.workdir, "pydockerd.log"), "rb") as f:
                    tail = f.read()[-2000:].decode(errors="replace")
                raise RuntimeError("pydockerd did not start; its log: %s" % tail)
            time.sleep(0.1)
        return self

    def docker(self, *args, check=True):
        return _checked(subprocess.run([self.client, *args], env=self.env,
                                       capture_output=True, text=True), check)

    def stop(self):
        proc, self.proc = self.proc, None
        terminate(proc)
        self.log.close()


def _checked(r, check):
    """``r`` (a CompletedProcess of the CLI); with ``check``, an error naming the command and
    what the CLI said when it failed."""
    if check and r.returncode:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(r.args[1:]), r.returncode,
                                                r.stderr.strip()))
    return r


def started_pair(tmp, network, client):
    """{"pydockerd": ..., "dockerd": ...} under ``tmp``, both started with busybox loaded, the
    same docker CLI (``client``) driving both; ``network`` "none" or the default bridge."""
    theirs = Dockerd(os.path.join(tmp, "dockerd"))
    mine = PyDockerd(os.path.join(tmp, "pydockerd"),
                     "none" if network == "none" else "pyrb0", client)
    # the CLI for dockerd too (Dockerd.docker's keyword), with DOCKER_HOST set per daemon
    theirs_docker = theirs.docker
    theirs.docker = lambda *a, check=True: _checked(
        theirs_docker(*a, check=False, client=client), check)
    pair = {"pydockerd": mine, "dockerd": theirs}
    try:
        theirs.start()
        mine.start()
        theirs.load_builtin("busybox")
        mine.docker("load", "-i", os.path.join(theirs.workdir, "builtin.tar"))
    except BaseException:
        stop_pair(pair)
        raise
    return pair


def stop_pair(pair):
    for d in pair.values():
        try:
            d.stop()
        except (OSError, RuntimeError, AttributeError, subprocess.SubprocessError) as e:
            print("stopping a daemon: %s" % e, file=sys.stderr)


# --- processes and their memory ------------------------------------------------------------

def _ppids():
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as f:
                    stat = f.read()
            except OSError:
                continue
            out[int(name)] = int(stat[stat.rindex(")") + 2:].split()[1])
    return out


def _descendants(pid, ppids):
    tree, todo = {pid}, [pid]
    while todo:
        parent = todo.pop()
        for child, pp in ppids.items():
            if pp == parent and child not in tree:
                tree.add(child)
                todo.append(child)
    return tree


def _memory(pid):
    """(RSS, PSS) of one process, in KiB (0, 0 when it is gone)."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            fields = dict(line.split()[:2] for line in f if line.split()[0] in ("Rss:", "Pss:"))
        return int(fields["Rss:"]), int(fields["Pss:"])
    except (OSError, KeyError):
        return 0, 0


def _comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


def memory(daemon_pid, container_pids):
    """The daemon side and the shims: {"daemon": (rss, pss, {name: rss}), "shims": (rss, pss,
    count)}, in KiB."""
    ppids = _ppids()
    containers = set()
    for pid in container_pids:
        containers |= _descendants(pid, ppids)
    shims = {ppids[pid] for pid in container_pids if pid in ppids} - {daemon_pid}
    side = _descendants(daemon_pid, ppids) - containers
    for shim in shims:
        side -= _descendants(shim, ppids)
    d = {p: _memory(p) for p in side}
    s = [_memory(p) for p in shims]
    names = {}
    for p, m in d.items():
        names[_comm(p)] = names.get(_comm(p), 0) + m[0]
    return {"daemon": (sum(m[0] for m in d.values()), sum(m[1] for m in d.values()), names),
            "shims": (sum(m[0] for m in s), sum(m[1] for m in s), len(shims))}


# --- the figures -----------------------------------------------------------------------------

FAILURES = []   # (daemon, what the CLI said): runs that failed are counted, not timed


def timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def sample(samples, name, fn, *args):
    """Time ``fn(*args)`` into ``samples``; a failed CLI run goes to FAILURES instead."""
    try:
        samples.append(timed(fn, *args))
    except (RuntimeError, AssertionError) as e:
        FAILURES.append((name, str(e)))


def run_rm(d, net):
    d.docker("run", "--rm", *net, "busybox", "true")


def ps(d, count):
    lines = d.docker("ps").stdout.splitlines()
    assert len(lines) == count + 1, lines[:3]


def start_fleet(d, net, count, parallel=4):
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        ids = list(pool.map(lambda _: d.docker("run", "-d", *net, "busybox", "sleep",
                                               "100000").stdout.strip(), range(count)))
    pids = d.docker("inspect", "-f", "{{.State.Pid}}", *ids).stdout.split()
    return ids, [int(p) for p in pids]


def remove_all(d):
    ids = d.docker("ps", "-aq", check=False).stdout.split()
    if ids:
        d.docker("rm", "-f", *ids, check=False)


def clients(name, d, net, count, each):
    """Containers run to completion per second by ``count`` clients at once (failed runs are
    not counted)."""
    def client(_):
        done = []
        for _ in range(each):
            sample(done, name, run_rm, d, net)
        return len(done)
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        done = sum(pool.map(client, range(count)))
    return done / (time.perf_counter() - start)


def _names(mem):
    return ", ".join("%s %.1f MB" % (name, kib / 1024)
                     for name, kib in sorted(mem["daemon"][2].items()))


def row(name, a, b, unit, scale=1.0, goal=None):
    """One figure side by side; ``goal``: the ratio pydockerd/dockerd must stay under."""
    ratio = a / b if b else float("inf")
    verdict = "" if goal is None else "  goal < %.2fx: %s" % (goal, "met" if ratio < goal
                                                               else "missed")
    print("%-28s %9.1f%-3s %9.1f%-3s %7.2fx%s" % (name, a * scale, unit, b * scale, unit, ratio,
                                                  verdict))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=20, help="rounds of run --rm and of ps (20)")
    p.add_argument("--containers", type=int, default=100, help="running for ps/memory (100)")
    p.add_argument("--clients", type=int, default=20, help="concurrent clients (20)")
    p.add_argument("--each", type=int, default=3, help="runs per client per round (3)")
    p.add_argument("--client-rounds", type=int, default=3, help="rounds of clients (3)")
    p.add_argument("--network", choices=("bridge", "none"), default="bridge")
    p.add_argument("--client", default=docker_client(), help="the docker CLI (Debian's 20.10)")
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if not args.inner:   # a mount namespace of our own (the image tar is built in process)
        os.execvp("unshare", ["unshare", "--mount", "--propagation", "private", "--",
                              sys.executable, os.path.abspath(__file__), "--inner",
                              *sys.argv[1:]])
    net = ("--network", "none") if args.network == "none" else ()
    with tempfile.TemporaryDirectory(prefix="daemon-bench-") as tmp:
        pair = started_pair(tmp, args.network, args.client)
        mine, theirs = pair["pydockerd"], pair["dockerd"]
        try:
            version = {k: d.docker("version", "-f", "{{.Server.Version}} API "
                                   "{{.Server.APIVersion}}").stdout.strip()
                       for k, d in pair.items()}
            print("client %s; pydockerd %s; dockerd %s; network %s; load %.1f"
                  % (args.client, version["pydockerd"], version["dockerd"], args.network,
                     os.getloadavg()[0]))
            print("%-28s %12s %12s %8s" % ("", "pydockerd", "dockerd", "ratio"))
            for k, d in pair.items():      # warm both once
                sample([], k, run_rm, d, net)
            runs = {k: [] for k in pair}
            floor = {k: [] for k in pair}
            for _ in range(args.n):
                for k, d in pair.items():
                    sample(runs[k], k, run_rm, d, net)
                    sample(floor[k], k, d.docker, "version")
            row("run --rm busybox true (med)", statistics.median(runs["pydockerd"]),
                statistics.median(runs["dockerd"]), "ms", 1e3, goal=1 / 3)
            row("  docker version (CLI floor)", statistics.median(floor["pydockerd"]),
                statistics.median(floor["dockerd"]), "ms", 1e3)

            idle = {k: memory(d.proc.pid, []) for k, d in pair.items()}
            row("daemon RSS idle", idle["pydockerd"]["daemon"][0],
                idle["dockerd"]["daemon"][0], "MB", 1 / 1024, goal=0.5)

            thr = {k: [] for k in pair}
            for _ in range(args.client_rounds):
                for k, d in pair.items():
                    thr[k].append(clients(k, d, net, args.clients, args.each))
            row("%d clients, containers/s" % args.clients, statistics.median(thr["pydockerd"]),
                statistics.median(thr["dockerd"]), "/s")

            fleet = {}
            for k, d in pair.items():
                t = timed(lambda: fleet.__setitem__(k, start_fleet(d, net, args.containers)))
                print("  (%d containers started on %s in %.1f s, 4 clients)"
                      % (args.containers, k, t))
            pss = {k: [] for k in pair}
            for _ in range(args.n):
                for k, d in pair.items():
                    sample(pss[k], k, ps, d, args.containers)
            row("ps, %d running (med)" % args.containers, statistics.median(pss["pydockerd"]),
                statistics.median(pss["dockerd"]), "ms", 1e3, goal=1.0)
            full = {k: memory(d.proc.pid, fleet[k][1]) for k, d in pair.items()}
            row("daemon RSS, %d running" % args.containers, full["pydockerd"]["daemon"][0],
                full["dockerd"]["daemon"][0], "MB", 1 / 1024, goal=0.5)
            row("daemon PSS, %d running" % args.containers, full["pydockerd"]["daemon"][1],
                full["dockerd"]["daemon"][1], "MB", 1 / 1024)
            row("shims RSS (%d|%d)" % (full["pydockerd"]["shims"][2],
                                       full["dockerd"]["shims"][2]),
                full["pydockerd"]["shims"][0], full["dockerd"]["shims"][0], "MB", 1 / 1024)
            row("shims PSS", full["pydockerd"]["shims"][1], full["dockerd"]["shims"][1], "MB",
                1 / 1024)
            for k in pair:
                print("  RSS of the daemon side of %s: idle %s; %d running %s" % (
                    k, _names(idle[k]), args.containers, _names(full[k])))
            if FAILURES:
                print("failed runs (not timed): %s; first: %s: %s"
                      % (", ".join("%s %d" % (k, sum(f[0] == k for f in FAILURES))
                                   for k in pair), *FAILURES[0]))
        finally:
            for d in pair.values():
                if d.proc is not None:
                    remove_all(d)
                    d.stop()


if __name__ == "__main__":
    main()
