"""NetworkService without containers: the Engine API's shapes, hostile requests (one clear error,
nothing left behind), the embedded DNS server under hostile clients, and a hypothesis state
machine over create/connect/disconnect/remove checked against the kernel's own view."""
import json
import os
import socket
import struct

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pyrunc.engine.network import NetworkService, netlink
from pyrunc.errors import (AlreadyExists, Conflict, FailedPrecondition, InvalidArgument,
                           NotFound, PyruncError, SystemFailure)

from engine.network.netstate import Resolver, ns_state
from engine.network.test_parsers import query


def test_defaults_and_the_engine_api_shapes(svc):
    nets = svc.list()
    assert [(n["Name"], n["Driver"]) for n in nets] == [
        ("bridge", "bridge"), ("host", "host"), ("none", "null")]
    bridge = svc.inspect("bridge")
    assert bridge["IPAM"]["Config"] == [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]
    assert bridge["Options"]["com.docker.network.bridge.name"] == svc.bridge_name
    created = svc.create("mynet", ipam={"Config": [{"Subnet": "10.99.0.0/24"}]},
                         labels={"team": "x"})
    assert created["Warning"] == "" and len(created["Id"]) == 64
    n = svc.inspect(created["Id"][:12])
    assert sorted(n) == sorted([
        "Name", "Id", "Created", "Scope", "Driver", "EnableIPv6", "IPAM", "Internal",
        "Attachable", "Ingress", "ConfigFrom", "ConfigOnly", "Containers", "Options", "Labels"])
    assert (n["Name"], n["Scope"], n["IPAM"]["Config"], n["Containers"]) == (
        "mynet", "local", [{"Subnet": "10.99.0.0/24", "Gateway": "10.99.0.1"}], {})
    # the kernel's view: the bridge holds the gateway
    with netlink.ipr() as ip:
        idx = netlink.link_index(ip, "br-" + created["Id"][:12])
        assert [a.get_attr("IFA_ADDRESS") for a in ip.get_addr(index=idx, family=2)] == \
            ["10.99.0.1"]
    assert [x["Name"] for x in svc.list({"label": ["team=x"]})] == ["mynet"]
    assert [x["Name"] for x in svc.list({"type": ["custom"]})] == ["mynet"]
    assert [x["Name"] for x in svc.list({"driver": ["null"]})] == ["none"]
    assert [x["Name"] for x in svc.list({"name": ["yne"]})] == ["mynet"]
    s = svc.create_sandbox("c1")
    ep = svc.connect("mynet", "c1", s, "/web", aliases=["w"], ipv4="10.99.0.50",
                     mac="02:00:00:00:00:aa")
    assert (ep["IPAddress"], ep["IPPrefixLen"], ep["Gateway"], ep["MacAddress"],
            ep["Aliases"], ep["NetworkID"]) == ("10.99.0.50", 24, "10.99.0.1",
                                                "02:00:00:00:00:aa", ["w"], created["Id"])

    def inside():
        with netlink.ipr() as ip:
            idx = netlink.link_index(ip, "eth0")
            link = ip.get_links(idx)[0]
            return (link.get_attr("IFLA_ADDRESS"),
                    [a.get_attr("IFA_ADDRESS") for a in ip.get_addr(index=idx, family=2)])
    assert netlink.in_netns(s, inside) == ("02:00:00:00:00:aa", ["10.99.0.50"])
    assert svc.inspect("mynet")["Containers"]["c1"] == {
        "Name": "web", "EndpointID": ep["EndpointID"], "MacAddress": "02:00:00:00:00:aa",
        "IPv4Address": "10.99.0.50/24", "IPv6Address": ""}
    assert svc.list({"dangling": ["true"]}) == []
    svc.disconnect("mynet", "c1")
    svc.remove_sandbox("c1")
    assert svc.prune({"label": ["team=x"]}) == {"NetworksDeleted": ["mynet"]}


def _doc(svc):
    with open(os.path.join(svc.root, "networks.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"name": "../x"}, InvalidArgument, None),
    ({"name": ""}, InvalidArgument, None),
    ({"name": "a" * 200}, InvalidArgument, None),
    ({"name": "bridge"}, AlreadyExists, "network with name bridge already exists"),
    ({"name": "n", "driver": "overlay"}, NotFound, "plugin 'overlay' not found"),
    ({"name": "n", "driver": "host"}, FailedPrecondition,
     'only one instance of "host" network is allowed'),
    ({"name": "n", "ipam": {"Config": [{"Subnet": "172.17.5.0/24"}]}}, Conflict,
     "invalid pool request: Pool overlaps with other one on this address space"),
    ({"name": "n", "ipam": {"Config": [{"Subnet": "x"}]}}, InvalidArgument, None),
    ({"name": "n", "ipam": {"Config": [{"Subnet": "10.0.0.0/24"}, {"Subnet": "10.1.0.0/24"}]}},
     InvalidArgument, None),
    ({"name": "n", "ipam": "10.0.0.0/8"}, InvalidArgument, None),
    ({"name": "n", "ipam": {"Driver": "dhcp"}}, NotFound, None),
    ({"name": "n", "labels": {"a": 1}}, InvalidArgument, None),
    ({"name": "n", "options": {"com.docker.network.bridge.name": "eth0/../x"}},
     InvalidArgument, None),
    ({"name": "n", "options": {"com.docker.network.bridge.name": "lo"}}, Conflict, None),
    ({"name": "n", "options": {"com.docker.network.driver.mtu": "9x"}}, InvalidArgument, None),
    ({"name": "n", "driver": "null", "ipam": {"Config": [{"Subnet": "10.0.0.0/24"}]}},
     FailedPrecondition, None),
])
def test_hostile_creates_get_one_error_and_leave_nothing(svc, kwargs, error, message):
    svc.ensure_default()
    before, doc = ns_state(), _doc(svc)
    with pytest.raises(error) as e:
        svc.create(**kwargs)
    if message:
        assert str(e.value) == message
    assert "\n" not in str(e.value)
    assert ns_state() == before and _doc(svc) == doc


def test_hostile_connects_get_one_error_and_leave_nothing(svc):
    svc.create("n", ipam={"Config": [{"Subnet": "10.3.0.0/24"}]})
    s = svc.create_sandbox("c1")
    svc.connect("n", "c1", s, "first")
    before, doc = ns_state(), _doc(svc)
    bad = [
        (dict(ref="n", container_id="c1", netns_path=s, name="again"), AlreadyExists),
        (dict(ref="n", container_id="../c2", netns_path=s, name="x"), InvalidArgument),
        (dict(ref="n", container_id="c2", netns_path=s, name="x", ipv4="10.3.1.5"),
         InvalidArgument),
        (dict(ref="n", container_id="c2", netns_path=s, name="x", ipv4="10.3.0.2"), Conflict),
        (dict(ref="n", container_id="c2", netns_path=s, name="x", ipv4="10.3.0.1"), Conflict),
        (dict(ref="n", container_id="c2", netns_path=s, name="x", mac="01:00:00:00:00:01"),
         InvalidArgument),
        (dict(ref="n", container_id="c2", netns_path=s, name="x", mac="zz"), InvalidArgument),
        (dict(ref="n", container_id="c2", netns_path=s, name="x", aliases=["a b"]),
         InvalidArgument),
        (dict(ref="n", container_id="c2", netns_path=os.path.join(svc.root, "nonexistent"),
              name="x"), NotFound),
        (dict(ref="bridge", container_id="c2", netns_path=s, name="x", ipv4="172.17.0.9"),
         InvalidArgument),
        (dict(ref="nope", container_id="c2", netns_path=s, name="x"), NotFound),
    ]
    for kwargs, error in bad:
        with pytest.raises(error):
            svc.connect(**kwargs)
        assert ns_state() == before and _doc(svc) == doc, kwargs
    # a namespace path that is not a network namespace: refused, nothing recorded
    with pytest.raises(SystemFailure):
        svc.connect("n", "c3", "/proc/self/ns/mnt", "x")
    assert ns_state() == before and _doc(svc) == doc
    with pytest.raises(FailedPrecondition):
        svc.disconnect("n", "c9")
    svc.disconnect("n", "c9", force=True)
    svc.disconnect("n", "c1")
    svc.remove_sandbox("c1")


def _ask(sock, data, tcp=False):
    if tcp:
        sock.sendall(struct.pack("!H", len(data)) + data)
        n = struct.unpack("!H", sock.recv(2))[0]
        return sock.recv(n)
    sock.send(data)
    return sock.recv(4096)


def test_the_embedded_dns_survives_hostile_clients(svc, resolver):
    svc.create("dnsnet")
    sa, sb = svc.create_sandbox("da"), svc.create_sandbox("db")
    svc.connect("dnsnet", "da", sa, "asker")
    eb = svc.connect("dnsnet", "db", sb, "target", aliases=["tgt"])

    def udp():
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(5)
        u.connect(("127.0.0.11", 53))
        return u

    def client():
        u = udp()
        t = socket.create_connection(("127.0.0.11", 53), timeout=5)
        idle = socket.create_connection(("127.0.0.11", 53), timeout=5)   # says nothing
        half = socket.create_connection(("127.0.0.11", 53), timeout=5)
        half.sendall(b"\xff\xff" + b"x" * 10)                                # promises 64 KiB
        return u, t, idle, half
    u, t, idle, half = netlink.in_netns(sa, client)
    try:
        for junk in (b"", b"\x00", b"\xff" * 12, os.urandom(512), query("a")[:-1]):
            u.send(junk)
        u.close()
        u = netlink.in_netns(sa, udp)      # a fresh socket: the junk's FORMERR replies stay
        r = _ask(u, query("TGT", id_=7))
        assert struct.unpack("!H", r[:2])[0] == 7 and socket.inet_ntoa(r[-4:]) == \
            eb["IPAddress"]
        r = _ask(t, query("target", id_=8), tcp=True)
        assert struct.unpack("!H", r[:2])[0] == 8 and socket.inet_ntoa(r[-4:]) == \
            eb["IPAddress"]
        r = _ask(u, query("outside.test", id_=9))            # forwarded to the test's resolver
        assert socket.inet_ntoa(r[-4:]) == "10.9.9.9" and "outside.test" in resolver.names
        r = _ask(u, query("target", qtype=28, id_=10))       # AAAA of a local name: no records
        assert struct.unpack("!6H", r[:12])[3] == 0 and r[3] & 0x0F == 0
        # the container's own --dns servers replace the defaults
        other = Resolver()
        try:
            svc.set_dns_servers("da", ["127.0.0.1:%d" % other.port])
            r = _ask(u, query("outside.test", id_=11))
            assert socket.inet_ntoa(r[-4:]) == "10.9.9.9" and other.names == ["outside.test"]
            assert resolver.names.count("outside.test") == 1
            with pytest.raises(InvalidArgument):
                svc.set_dns_servers("da", ["8.8.8.8\nnameserver"])
        finally:
            other.close()
    finally:
        for s in (u, t, idle, half):
            s.close()
    svc.disconnect("dnsnet", "da")
    # the listener is gone with the last user network
    def gone():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.11", 53))
    netlink.in_netns(sa, gone)
    svc.disconnect("dnsnet", "db")
    for c in ("da", "db"):
        svc.remove_sandbox(c)


class NetworksMachine(RuleBasedStateMachine):
    """Random create/connect/disconnect/remove; after each step the kernel's view (addresses on
    each sandbox's interfaces, veths on the host) matches the records, and no address is held
    twice."""
    svc = None

    def __init__(self):
        super().__init__()
        self.networks = {}        # name -> {container: ip}
        self.sandboxes = {}

    @rule(name=st.sampled_from(["n1", "n2", "n3"]), internal=st.booleans())
    def create(self, name, internal):
        if name in self.networks:
            with pytest.raises(AlreadyExists):
                self.svc.create(name)
        else:
            self.svc.create(name, internal=internal,
                            ipam={"Config": [{"Subnet": "10.%d.0.0/29" % (40 + int(name[1]))}]})
            self.networks[name] = {}

    @precondition(lambda self: self.networks)
    @rule(data=st.data(), container=st.sampled_from(["c1", "c2", "c3", "c4", "c5", "c6"]))
    def connect(self, data, container):
        name = data.draw(st.sampled_from(sorted(self.networks)))
        if container not in self.sandboxes:
            self.sandboxes[container] = self.svc.create_sandbox(container)
        eps = self.networks[name]
        if container in eps:
            with pytest.raises(AlreadyExists):
                self.svc.connect(name, container, self.sandboxes[container], container)
        elif len(eps) == 5:                   # a /29: 6 hosts, one is the gateway
            with pytest.raises(PyruncError):
                self.svc.connect(name, container, self.sandboxes[container], container)
        else:
            ep = self.svc.connect(name, container, self.sandboxes[container], container)
            eps[container] = ep["IPAddress"]

    @precondition(lambda self: any(self.networks.values()))
    @rule(data=st.data())
    def disconnect(self, data):
        name = data.draw(st.sampled_from(sorted(n for n, e in self.networks.items() if e)))
        container = data.draw(st.sampled_from(sorted(self.networks[name])))
        self.svc.disconnect(name, container)
        del self.networks[name][container]

    @precondition(lambda self: self.networks)
    @rule(data=st.data())
    def remove(self, data):
        name = data.draw(st.sampled_from(sorted(self.networks)))
        if self.networks[name]:
            with pytest.raises(Conflict):
                self.svc.remove(name)
        else:
            self.svc.remove(name)
            del self.networks[name]

    @invariant()
    def kernel_matches_records(self):
        ips = [ip for eps in self.networks.values() for ip in eps.values()]
        assert len(ips) == len(set(ips))
        for name, eps in self.networks.items():
            assert sorted(svc_ips(self.svc, name)) == sorted(eps.values())
        for container, path in self.sandboxes.items():
            want = sorted(ip for eps in self.networks.values() for c, ip in eps.items()
                          if c == container)
            assert sorted(sandbox_ips(path)) == want
        veths = [x for x in ns_state()[1] if x.startswith("veth")]
        assert len(veths) == sum(len(e) for e in self.networks.values())

    def teardown(self):
        self.svc.sweep([])
        for name in self.networks:
            self.svc.remove(name)


def svc_ips(svc, name):
    return [c["IPv4Address"].split("/")[0] for c in svc.inspect(name)["Containers"].values()]


def sandbox_ips(path):
    def inside():
        with netlink.ipr() as ip:
            return [a.get_attr("IFA_ADDRESS") for a in ip.get_addr(family=2)
                    if a.get_attr("IFA_LABEL") != "lo"]
    return netlink.in_netns(path, inside)


def test_state_machine_no_address_twice_nothing_leaked(svc):
    svc.ensure_default()
    before = ns_state()
    NetworksMachine.svc = svc
    NetworksMachine.TestCase.settings = settings(max_examples=6, stateful_step_count=12,
                                                 deadline=None)
    NetworksMachine.TestCase().runTest()
    assert ns_state() == before
    assert svc.sweep([])["Endpoints"] == []


def test_none_and_host_and_hostile_publishes(svc):
    s = svc.create_sandbox("n1")
    ep = svc.connect("none", "n1", s, "loner")
    assert ep["IPAddress"] == "" and "n1" in svc.inspect("none")["Containers"]

    def links():
        with netlink.ipr() as ip:
            return [(x.get_attr("IFLA_IFNAME"), x.get_attr("IFLA_OPERSTATE"))
                    for x in ip.get_links()]
    assert netlink.in_netns(s, links) == [("lo", "UNKNOWN")]      # lo up, nothing else
    with pytest.raises(FailedPrecondition):      # no bridge endpoint to publish on
        svc.publish("n1", ep, {"80/tcp": [{}]})
    svc.disconnect("none", "n1")

    svc.create("pubs")
    e2 = svc.connect("pubs", "n1", s, "web")
    before, doc = ns_state(), _doc(svc)
    for bindings, error in (({"80/tcp": [{"HostIp": "::1"}]}, InvalidArgument),
                            ({"80/tcp": [{"HostIp": "10.0.0.1\n"}]}, InvalidArgument),
                            ({"80/tcp": [{"HostPort": "-1"}]}, InvalidArgument),
                            ({"80/tcp": [{"HostIp": "203.0.113.9"}]}, InvalidArgument)):
        with pytest.raises(error):
            svc.publish("n1", e2, bindings)
        assert ns_state() == before and _doc(svc) == doc, bindings
    assert svc.publish("n1", e2, None) == {}
    svc.publish("n1", e2, {"80/tcp": [{"HostIp": "127.0.0.1"}]})
    with pytest.raises(Conflict):
        svc.publish("n1", e2, {"81/tcp": [{"HostIp": "127.0.0.1"}]})
    svc.disconnect("pubs", "n1")            # its ports go with the endpoint
    assert svc.ports("n1") == {} and not any("-j DNAT" in r for r in ns_state()[0])
    svc.remove_sandbox("n1")
    assert svc.prune({"until": ["2000-01-01T00:00:00Z"]}) == {"NetworksDeleted": []}
    assert svc.prune({"until": ["4102444800"]}) == {"NetworksDeleted": ["pubs"]}
    with pytest.raises(InvalidArgument):
        svc.prune({"until": ["yesterday"]})
    with pytest.raises(InvalidArgument):
        svc.list({"colour": ["red"]})


def test_the_default_bridge_avoids_the_hosts_routes_and_iptables_false_writes_no_rule(
        host_ns, tmp_path):
    with netlink.ipr() as ip:                     # the "host" has a route into 172.17/16
        ip.addr("add", index=netlink.link_index(ip, "uplink"), address="172.17.5.1",
                prefixlen=24)
    before = ns_state()
    svc = NetworkService(str(tmp_path / "net"), bridge_name="pyrtq" + os.urandom(3).hex(),
                         iptables=False, dns_upstreams=[])
    try:
        assert svc.inspect("bridge")["IPAM"]["Config"][0]["Subnet"] == "172.18.0.0/16"
        assert svc.create("second")["Id"]
        assert svc.inspect("second")["IPAM"]["Config"][0]["Subnet"] == "172.19.0.0/16"
        assert ns_state()[0] == before[0]           # no rule at all
    finally:
        svc.teardown()
    assert ns_state() == before
