"""Fixtures of the network tests.

Every test that touches links or rules runs in a network namespace of its own (``host_ns``),
which stands for the host: the engine's bridges, veths, iptables chains and published ports live
there and vanish with it, so nothing reaches the machine's own network. A session fixture still
proves the machine's ``iptables-save`` and ``ip -o link`` are the same after these tests as
before them. Containers are busybox run by ``pyrunc``, joining the engine's namespaces by path.
"""
import os
import subprocess
import uuid

import pytest

from support import wait_links_gone

from pyrunc.engine.network import NetworkService, netlink, write_container_files

from engine.network.netstate import Resolver, host_state, ns_state


# the names of the links the tests' engines made (in the tests' own namespaces): unique
# bridge names, br-<network ID>, veth<endpoint ID hash>
MADE = set()


@pytest.fixture(scope="session", autouse=True)
def machine_untouched():
    """The machine's ruleset and links are the same after the network tests as before, as far
    as anything these tests made goes: others share the machine and may change its links and
    rules meanwhile, so the comparison is identical output when nobody did, and otherwise no
    link, and no rule naming one, of those the tests made appeared."""
    before = host_state()
    yield
    after = host_state()
    if after == before:
        return
    rules_before = set(before[0].splitlines())
    new_rules = [r for r in after[0].splitlines() if r not in rules_before]
    new_links = set(after[1]) - set(before[1])
    assert not [r for r in new_rules if any(n in r.split() for n in MADE)], new_rules
    assert not [x for x in new_links if x.split(":")[1].strip().split("@")[0] in MADE]


@pytest.fixture
def host_ns(tmp_path, private_mount_ns):
    """Move this test's main thread (and so the processes and threads it starts) into a new
    network namespace with ``lo`` up and a link ``uplink`` (10.250.0.1/24) standing for
    the host's network; back to the original one afterwards."""
    from pyroute2 import IPRoute, netns
    path = netlink.create_netns(str(tmp_path / "hostns" / "ns"))   # its directory becomes a mount
    saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    fd = os.open(path, os.O_RDONLY)
    netns.setns(fd, flags=0)
    os.close(fd)
    try:
        with IPRoute() as ip:
            ip.link("set", index=ip.link_lookup(ifname="lo")[0], state="up")
            ip.link("add", ifname="uplink", kind="bridge")
            idx = ip.link_lookup(ifname="uplink")[0]
            ip.addr("add", index=idx, address="10.250.0.1", prefixlen=24)
            ip.link("set", index=idx, state="up")
        yield path
    finally:
        netns.setns(saved, flags=0)
        os.close(saved)
        netlink.remove_netns(path)


@pytest.fixture
def resolver(host_ns):
    r = Resolver()
    yield r
    r.close()


@pytest.fixture
def svc(host_ns, resolver, tmp_path):
    """A NetworkService in the test's namespace, forwarding to the test's resolver; at the end
    every network is removed and the namespace holds no rule and no link it did not have."""
    before = ns_state()
    s = NetworkService(str(tmp_path / "network"), bridge_name="pyrt" + uuid.uuid4().hex[:8],
                       dns_upstreams=["127.0.0.1:%d" % resolver.port])
    yield s
    MADE.update(x for x in ns_state()[1] if x not in ("lo", "uplink"))
    s.sweep([])
    s.teardown()
    wait_links_gone("veth")             # released endpoints' pairs go with their namespaces
    assert ns_state() == before


class Containers:
    """busybox containers run by pyrunc in namespaces the test gives them."""

    def __init__(self, pyrunc_bin, make_bundle, tmp_path):
        self.pyrunc = pyrunc_bin
        self.make_bundle = make_bundle
        self.root = str(tmp_path / "pyrunc-state")
        self.tmp = tmp_path
        self.started = []

    def _bundle(self, netns, args, files):
        def mutate(spec):
            for ns in spec["linux"]["namespaces"]:
                if ns["type"] == "network":
                    ns["path"] = netns
            spec["root"]["readonly"] = False
            spec["process"]["capabilities"]["bounding"].append("CAP_NET_RAW")
            spec["process"]["capabilities"]["effective"].append("CAP_NET_RAW")
            spec["process"]["capabilities"]["permitted"].append("CAP_NET_RAW")
            for name in ("hosts", "resolv.conf", "hostname") if files else ():
                spec["mounts"].append({"destination": "/etc/" + name, "type": "bind",
                                       "source": os.path.join(files, name),
                                       "options": ["rbind", "ro"]})
        return self.make_bundle(args, mutate=mutate)

    def files(self, name, endpoints, network_mode, **kw):
        d = self.tmp / ("files-" + name)
        d.mkdir(exist_ok=True)
        write_container_files(str(d), name, endpoints, network_mode=network_mode, **kw)
        return str(d)

    def run(self, netns, *args, files=None, timeout=60):
        """Run ``args`` to the end in ``netns``; the CompletedProcess."""
        cid = "n-" + uuid.uuid4().hex[:10]
        bundle = self._bundle(netns, args, files)
        try:
            return subprocess.run([self.pyrunc, "--root", self.root, "run", "-b", bundle, cid],
                                  capture_output=True, text=True, timeout=timeout)
        finally:
            subprocess.run([self.pyrunc, "--root", self.root, "delete", "-f", cid],
                           capture_output=True)

    def start(self, netns, *args, files=None):
        """Start ``args`` in the background in ``netns``."""
        cid = "n-" + uuid.uuid4().hex[:10]
        bundle = self._bundle(netns, args, files)
        self.started.append(cid)
        with open(os.path.join(bundle, "stderr"), "w") as err:    # no pipe the container keeps
            subprocess.run([self.pyrunc, "--root", self.root, "run", "--detach", "-b", bundle,
                            cid], check=True, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=err, timeout=60)
        return cid

    def cleanup(self):
        for cid in self.started:
            subprocess.run([self.pyrunc, "--root", self.root, "delete", "-f", cid],
                           capture_output=True, timeout=60)


@pytest.fixture
def containers(pyrunc_bin, make_bundle, tmp_path, private_mount_ns, svc):
    """(after ``svc``, so the containers are gone before the networks are checked)"""
    c = Containers(pyrunc_bin, make_bundle, tmp_path)
    yield c
    c.cleanup()
