"""pyrunc.engine.network against Debian's dockerd: published-port throughput and the time
networking adds to a container start, in one run.

  throughput  ``ab -k`` requests/s to busybox httpd through a port published on 127.0.0.1:
              pyrunc (kernel DNAT, route_localnet) against dockerd's default (docker-proxy and
              its iptables rules); the container's own address, no NAT, as the ceiling
  start       what networking adds to a start: pyrunc's create_sandbox + connect + the files
              + publish (median of N); dockerd: ``docker run`` on ``bridge -p`` minus on
              ``none`` (medians of N)

The pyrunc side runs in a network namespace of its own (the script re-executes itself under
``unshare --net``), dockerd in its own (tests/dockerd_peer.py): neither touches the machine's
network. Run as root:

    .venv/bin/python benchmarks/network_vs_dockerd.py -n 20 --requests 20000
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


def ab(url, requests, netns=None):
    """requests/s of ``ab -k -c 8`` against ``url`` (from ``netns`` when given)."""
    cmd = ["ab", "-q", "-k", "-c", "8", "-n", str(requests), url]
    if netns:
        cmd = ["nsenter", "--net=" + netns] + cmd
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300).stdout
    failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
    assert failed == 0, out
    return float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))


def pyrunc_side(args, work):
    from pyroute2 import IPRoute

    from pyrunc.containerd.runtime.spec import example_spec
    from pyrunc.engine import busybox
    from pyrunc.engine.network import NetworkService, write_container_files

    with IPRoute() as ip:
        ip.link("set", index=1, state="up")
    pyrunc = os.path.join(os.path.dirname(sys.executable), "pyrunc")
    svc = NetworkService(os.path.join(work, "network"), bridge_name="pyrbench0",
                         dns_upstreams=[])
    svc.ensure_default()
    svc.create("bench")
    added = []
    for i in range(args.n):
        cid = "s%d" % i
        files = os.path.join(work, "files-" + cid)
        os.makedirs(files)
        t = time.perf_counter()
        path = svc.create_sandbox(cid)
        ep = svc.connect("bench", cid, path, cid)
        write_container_files(files, cid, [ep], network_mode="bench")
        svc.publish(cid, ep, {"80/tcp": [{"HostIp": "127.0.0.1"}]})
        added.append((time.perf_counter() - t) * 1e3)
    for i in range(args.n):
        svc.unpublish("s%d" % i)
        svc.disconnect("bench", "s%d" % i)
        svc.remove_sandbox("s%d" % i)

    path = svc.create_sandbox("web")
    ep = svc.connect("bench", "web", path, "web")
    spec = example_spec(args=["sh", "-c", HTTPD], terminal=False)
    spec["root"]["readonly"] = False
    for ns in spec["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = path
    bundle = os.path.join(work, "bundle")
    busybox.make_bundle(bundle, spec=spec)
    root = os.path.join(work, "state")
    subprocess.run([pyrunc, "--root", root, "run", "--detach", "-b", bundle, "web"], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        port = svc.publish("web", ep, {"80/tcp": [{"HostIp": "127.0.0.1"}]})["80/tcp"][0][
            "HostPort"]
        time.sleep(0.3)
        published = ab("http://127.0.0.1:%s/" % port, args.requests)
        direct = ab("http://%s/" % ep["IPAddress"], args.requests)
    finally:
        subprocess.run([pyrunc, "--root", root, "delete", "-f", "web"], capture_output=True)
        svc.unpublish("web")
        svc.disconnect("bench", "web")
        svc.remove_sandbox("web")
        svc.remove("bench")
        svc.teardown()
    return {"published": published, "direct": direct, "added": statistics.median(added)}


def dockerd_side(args, work):
    from dockerd_peer import Dockerd

    with Dockerd(os.path.join(work, "dockerd")) as d:
        d.load_builtin("busybox")
        netns = "/proc/%d/ns/net" % d.proc.pid

        def timed(*run):
            t = time.perf_counter()
            d.docker("run", "-d", *run)
            return (time.perf_counter() - t) * 1e3
        none, bridge = [], []
        for _ in range(args.n):
            none.append(timed("--network", "none", "busybox", "true"))
            bridge.append(timed("-p", "127.0.0.1::80", "busybox", "true"))
        d.docker("container", "prune", "-f")
        cid = d.docker("run", "-d", "-p", "127.0.0.1::80", "busybox", "sh", "-c",
                       HTTPD).stdout.strip()
        port = d.docker("port", cid, "80/tcp").stdout.split(":")[-1].strip()
        ip = d.docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", cid).stdout.strip()
        time.sleep(0.3)
        published = ab("http://127.0.0.1:%s/" % port, args.requests, netns)
        direct = ab("http://%s/" % ip, args.requests, netns)
        d.docker("rm", "-f", cid)
    return {"published": published, "direct": direct,
            "added": statistics.median(bridge) - statistics.median(none)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-n", type=int, default=20, help="starts timed per side")
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if not args.inner:
        os.execvp("unshare", ["unshare", "--net", "--mount", "--propagation", "private", "--",
                              sys.executable, os.path.abspath(__file__), "--inner",
                              "-n", str(args.n), "--requests", str(args.requests)])
    with tempfile.TemporaryDirectory(prefix="netbench-") as work:
        mine = pyrunc_side(args, work)
        try:
            theirs = dockerd_side(args, work)
        except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
            print("dockerd left out: %s" % e)
            theirs = None
    print("published port, requests/s (ab -k -c 8, %d requests)" % args.requests)
    print("  pyrunc   127.0.0.1 (DNAT) %8.0f   container address %8.0f"
          % (mine["published"], mine["direct"]))
    if theirs:
        print("  dockerd  127.0.0.1 (proxy) %7.0f   container address %8.0f   ratio %.2f"
              % (theirs["published"], theirs["direct"], mine["published"] / theirs["published"]))
    print("networking added to a start (median of %d)" % args.n)
    print("  pyrunc   %6.1f ms  (sandbox + connect + files + publish)" % mine["added"])
    if theirs:
        print("  dockerd  %6.1f ms  (docker run -p on bridge minus --network none)"
              % theirs["added"])


if __name__ == "__main__":
    main()
