"""What networking adds to an engine container start: the median time of
``ContainerService.start`` (in process: the namespace, endpoints, published ports and files,
then the task) of busybox ``true`` per network mode, and each mode minus ``host`` (no network
work at all) and minus ``none`` (a namespace with only loopback); and the median time of the
networking step itself within those starts (``ContainerNetworking.attach``: the namespace,
endpoints, ports and files), which a busy machine blurs far less than the differences of
whole starts.

    host          the host's namespace: nothing to do
    none          a namespace of the engine's (bind mount) with loopback up
    bridge        the default bridge: namespace, veth, address, routes, hosts/resolv.conf
    bridge -p     the same and a port published on 127.0.0.1 (a reserved socket, the rules)
    user network  a user-defined bridge network (and its embedded DNS listener)

The script re-executes itself in network and mount namespaces of its own (``unshare --net
--mount``): the bridges, veths and rules vanish with them; the machine's network is untouched.
Run as root:

    .venv/bin/python benchmarks/network_start.py -n 20
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

MARK = "PYRUNC_NETWORK_START_INSIDE"
MODES = (("host", {"NetworkMode": "host"}),
         ("none", {"NetworkMode": "none"}),
         ("bridge", {"NetworkMode": "bridge"}),
         ("bridge -p", {"NetworkMode": "bridge",
                        "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1"}]}}),
         ("user network", {"NetworkMode": "benchnet"}))


def measure(n):
    from pyrunc.engine import Engine
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    work = tempfile.mkdtemp(prefix="pyrunc-netstart-")
    exec_root = tempfile.mkdtemp(prefix="pns-", dir="/run")
    eng = Engine(os.path.join(work, "root"), exec_root=exec_root, bridge="pyrbench1")
    try:
        eng.load_builtin("busybox")
        eng.networks.create("benchnet")
        networking = eng.containers.networking
        attach = networking.attach
        step: list[float] = []

        def timed_attach(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return attach(*args, **kwargs)
            finally:
                step.append(time.perf_counter() - t0)
        networking.attach = timed_attach
        times = {name: [] for name, _ in MODES}
        steps = {name: [] for name, _ in MODES}
        for _ in range(n + 1):                  # the first round warms up, not counted
            for name, hc in MODES:
                cid = eng.containers.create({"Image": "busybox", "Cmd": ["true"]}, dict(hc))["Id"]
                step.clear()
                t0 = time.perf_counter()
                eng.containers.start(cid)
                times[name].append(time.perf_counter() - t0)
                steps[name].append(sum(step))
                eng.containers.remove(cid, force=True)
        return ({name: statistics.median(v[1:]) * 1000 for name, v in times.items()},
                {name: statistics.median(v[1:]) * 1000 for name, v in steps.items()})
    finally:
        for c in eng.containers.store.all():
            eng.containers.remove(c.id, force=True)
        eng.networks.teardown()
        eng.close()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(exec_root, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-n", type=int, default=20, help="starts per mode (default 20)")
    args = p.parse_args()
    if os.environ.get(MARK) != "1":
        env = dict(os.environ, **{MARK: "1"})
        return subprocess.call(["unshare", "--net", "--mount", "--propagation", "private",
                                sys.executable, os.path.abspath(__file__), "-n", str(args.n)],
                               env=env)
    medians, steps = measure(args.n)
    print("container start (busybox true), median of %d, ms; load average %.2f %.2f %.2f"
          % ((args.n,) + os.getloadavg()))
    print("%-14s %8s %10s %10s %13s" % ("mode", "start", "- host", "- none", "network step"))
    for name, _ in MODES:
        print("%-14s %8.1f %+10.1f %+10.1f %13.1f"
              % (name, medians[name], medians[name] - medians["host"],
                 medians[name] - medians["none"], steps[name]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
