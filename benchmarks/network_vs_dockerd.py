"""pyrunc's engine against Debian's dockerd: published-port throughput and the time networking
adds to a container start, in one run, rounds alternating between the two.

  throughput  ``ab -c 8`` requests/s to busybox httpd through a port published on 127.0.0.1,
              keep-alive off and on (``-k``): pyrunc's engine (a container on its default
              bridge, kernel DNAT with route_localnet) against dockerd's default (docker-proxy
              and its iptables rules); the container's own address, no NAT, as the ceiling.
              Median of the rounds.
  start       what networking adds to a start of ``busybox true``: the median time on the
              default bridge with ``-p 127.0.0.1::80`` minus the median with ``--network
              none``; pyrunc: the engine's create + start (in process), dockerd: ``docker run
              -d`` (the CLI's own time cancels out of the difference). A busy machine blurs
              such differences of whole starts; pyrunc's networking step itself
              (``ContainerNetworking.attach``: namespace, veth, address, port, rules, files) is
              timed too, its median shown beside them.

The engine runs in network and mount namespaces of its own (the script re-executes itself under
``unshare --net --mount``), dockerd in its own (tests/dockerd_peer.py); the load generator
reaches dockerd's 127.0.0.1 by entering its network namespace (``nsenter --net``). Neither side
touches the machine's network. Needs ``ab`` (apache2-utils). Run as root:

    .venv/bin/python benchmarks/network_vs_dockerd.py -n 20 --rounds 3 --requests 20000
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

HTTPD = "echo hello > /tmp/index.html && exec httpd -f -p 80 -h /tmp"
BRIDGE = "pyrbench0"


def ab(url, requests, keepalive, netns=None):
    """(requests/s, requests served on kept-alive connections) of ``ab -c 8`` against ``url``
    (from ``netns`` when given)."""
    cmd = ["ab", "-q", "-c", str(min(8, requests)), "-n", str(requests)]
    cmd += ["-k", url] if keepalive else [url]
    if netns:
        cmd = ["nsenter", "--net=" + netns] + cmd
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300).stdout
    failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
    complete = int(re.search(r"Complete requests:\s+(\d+)", out).group(1))
    assert failed == 0 and complete == requests, out
    kept = re.search(r"Keep-Alive requests:\s+(\d+)", out)
    return (float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1)),
            int(kept.group(1)) if kept else 0)


def wait_http(url, netns=None, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            ab(url, 1, False, netns)
            return
        except (subprocess.CalledProcessError, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class EngineSide:
    """pyrunc's engine, in process, with its default bridge in this network namespace."""

    def __init__(self, work):
        from pyroute2 import IPRoute

        from pyrunc.engine import Engine
        with IPRoute() as ip:
            ip.link("set", index=1, state="up")
        self.engine = Engine(os.path.join(work, "engine"), bridge=BRIDGE)
        self.engine.load_builtin("busybox")
        self.netns = None
        self.step = {True: [], False: []}       # attach's own times, by bridge
        networking = self.engine.containers.networking
        attach = networking.attach
        self._last = 0.0

        def timed_attach(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return attach(*args, **kwargs)
            finally:
                self._last = time.perf_counter() - t0
        networking.attach = timed_attach

    def start(self, bridge):
        """Seconds to create and start ``busybox true`` (on the bridge with a published port,
        or on none); the container is removed afterwards, untimed."""
        c = self.engine.containers
        hc = ({"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}}
              if bridge else {"NetworkMode": "none"})
        t = time.perf_counter()
        cid = c.create({"Image": "busybox", "Cmd": ["true"]}, hc)["Id"]
        c.start(cid)
        took = time.perf_counter() - t
        self.step[bridge].append(self._last)
        c.remove(cid, force=True)
        return took

    def web(self):
        """(published URL, container URL) of a busybox httpd on the default bridge."""
        c = self.engine.containers
        self.web_id = c.create({"Image": "busybox", "Cmd": ["sh", "-c", HTTPD],
                                "ExposedPorts": {"80/tcp": {}}},
                               {"PortBindings": {"80/tcp": [
                                   {"HostIp": "127.0.0.1", "HostPort": ""}]}})["Id"]
        c.start(self.web_id)
        settings = c.inspect(self.web_id)["NetworkSettings"]
        port = settings["Ports"]["80/tcp"][0]["HostPort"]
        return "http://127.0.0.1:%s/" % port, "http://%s/" % settings["IPAddress"]

    def close(self):
        c = self.engine.containers
        for rec in c.list(all=True):
            c.remove(rec["Id"], force=True)
        self.engine.networks.teardown()
        self.engine.close()


class DockerdSide:
    """Debian's dockerd in its namespaces, driven by the docker CLI."""

    def __init__(self, work):
        from dockerd_peer import Dockerd
        self.d = Dockerd(os.path.join(work, "dockerd")).start()
        self.d.load_builtin("busybox")
        self.netns = "/proc/%d/ns/net" % self.d.proc.pid

    def start(self, bridge):
        run = ("-p", "127.0.0.1::80") if bridge else ("--network", "none")
        t = time.perf_counter()
        cid = self.d.docker("run", "-d", *run, "busybox", "true").stdout.strip()
        took = time.perf_counter() - t
        self.d.docker("rm", "-f", cid)
        return took

    def web(self):
        cid = self.d.docker("run", "-d", "-p", "127.0.0.1::80", "busybox", "sh", "-c",
                            HTTPD).stdout.strip()
        port = self.d.docker("port", cid, "80/tcp").stdout.split(":")[-1].strip()
        ip = self.d.docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", cid).stdout.strip()
        return "http://127.0.0.1:%s/" % port, "http://%s/" % ip

    def close(self):
        ids = self.d.docker("ps", "-aq", check=False).stdout.split()
        if ids:
            self.d.docker("rm", "-f", *ids, check=False)
        self.d.stop()


def _range(values):
    return "%.0f-%.0f" % (min(values), max(values))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-n", type=int, default=20, help="starts timed per side and mode (20)")
    p.add_argument("--rounds", type=int, default=3, help="ab rounds per side and mode (3)")
    p.add_argument("--requests", type=int, default=20000, help="requests per ab run (20000)")
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if not args.inner:
        os.execvp("unshare", ["unshare", "--net", "--mount", "--propagation", "private", "--",
                              sys.executable, os.path.abspath(__file__), "--inner",
                              *sys.argv[1:]])
    with tempfile.TemporaryDirectory(prefix="netbench-") as work:
        sides = {}
        try:
            sides["pyrunc"] = EngineSide(work)
            sides["dockerd"] = DockerdSide(work)
            for side in sides.values():            # warm both once
                side.start(True)
                side.start(False)
            starts = {(k, b): [] for k in sides for b in (True, False)}
            sides["pyrunc"].step = {True: [], False: []}      # the warm-up's dropped below
            for _ in range(args.n):
                for k, side in sides.items():
                    for bridge in (True, False):
                        starts[k, bridge].append(side.start(bridge))
            step_times = dict(sides["pyrunc"].step)
            urls = {k: side.web() for k, side in sides.items()}
            for k, side in sides.items():
                wait_http(urls[k][0], side.netns)
            kinds = [("published, keep-alive off", 0, False), ("published, keep-alive on", 0, True),
                     ("container address, keep-alive on", 1, True)]
            rps = {(k, kind): [] for k in sides for kind, _, _ in kinds}
            kept = {k: 0 for k in sides}
            for _ in range(args.rounds):
                for kind, which, keepalive in kinds:
                    for k, side in sides.items():
                        got, alive = ab(urls[k][which], args.requests, keepalive, side.netns)
                        rps[k, kind].append(got)
                        kept[k] = max(kept[k], alive)
        finally:
            for side in sides.values():
                side.close()
    print("load %.1f" % os.getloadavg()[0])
    print("requests/s to busybox httpd (ab -c 8 -n %d, median of %d)"
          % (args.requests, args.rounds))
    print("  %-34s %9s %9s %7s" % ("", "pyrunc", "dockerd", "ratio"))
    for kind, _, _ in kinds:
        a, b = statistics.median(rps["pyrunc", kind]), statistics.median(rps["dockerd", kind])
        print("  %-34s %9.0f %9.0f %6.2fx%s" % (kind, a, b, a / b, "  goal >= 1.00x: %s" % (
            "met" if a >= b else "missed") if kind.startswith("published") else ""))
        print("  %-34s %9s %9s" % ("  (range of the rounds)", _range(rps["pyrunc", kind]),
                                   _range(rps["dockerd", kind])))
    print("  (requests on kept-alive connections, most in a run: pyrunc %d, dockerd %d)"
          % (kept["pyrunc"], kept["dockerd"]))
    print("start of busybox true, median of %d (ms)" % args.n)
    print("  %-34s %9s %9s" % ("", "pyrunc", "dockerd"))
    med = {key: statistics.median(v) * 1e3 for key, v in starts.items()}
    print("  %-34s %9.1f %9.1f" % ("bridge, -p 127.0.0.1::80", med["pyrunc", True],
                                   med["dockerd", True]))
    print("  %-34s %9.1f %9.1f" % ("--network none", med["pyrunc", False],
                                   med["dockerd", False]))
    added = med["pyrunc", True] - med["pyrunc", False]
    print("  %-34s %9.1f %9.1f  goal < 20 ms: %s" % (
        "added by networking", added, med["dockerd", True] - med["dockerd", False],
        "met" if added < 20 else "missed"))
    steps = {b: statistics.median(v) * 1e3 for b, v in step_times.items()}
    print("  %-34s %9.1f %9s  goal < 20 ms: %s" % ("pyrunc's networking step, -p", steps[True],
                                                  "", "met" if steps[True] < 20 else "missed"))
    print("  %-34s %9.1f" % ("pyrunc's networking step, none", steps[False]))


if __name__ == "__main__":
    main()
