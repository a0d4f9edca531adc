"""Networks with real busybox containers run by pyrunc in the engine's namespaces.

Oracles are outside the library: busybox's ping, wget and nslookup inside the containers, the
kernel's links and routes read through netlink, ``iptables-save``, and plain sockets of the test
(standing for the host) connecting to published ports.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from pyrunc.engine.network import netlink
from pyrunc.errors import Conflict, FailedPrecondition

from engine.network.netstate import ns_state
from engine.network.test_parsers import query


def _httpd(containers, sandbox, files, text):
    """An httpd container answering ``text`` on port 80 of ``sandbox``."""
    return containers.start(sandbox, "sh", "-c", "echo %s > /tmp/index.html && exec httpd -f "
                            "-p 80 -h /tmp" % text, files=files)


def _wget(containers, sandbox, url, files):
    # not "exec"ed by sh: timeout as the container's PID 1 could not kill its own child's
    # parent, and busybox wget's own -T crashes
    return containers.run(sandbox, "sh", "-c", "timeout 5 wget -q -O- %s; exit $?" % url,
                          files=files)


def _until(fn, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        r = fn()
        if r.returncode == 0 or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def test_containers_on_a_user_network_reach_each_other_by_name_and_alias_not_across_networks(
        svc, containers, resolver, tmp_path):
    svc.create("front")
    svc.create("back")
    sa, sb, sc = (svc.create_sandbox(c) for c in ("ca", "cb", "cc"))
    ea = svc.connect("front", "ca", sa, "alpha")
    eb = svc.connect("front", "cb", sb, "beta", aliases=["api"])
    ec = svc.connect("back", "cc", sc, "gamma")
    fa = containers.files("alpha", [ea], "front")
    fc = containers.files("gamma", [ec], "back")
    fb = containers.files("beta", [eb], "front")
    _httpd(containers, sb, fb, "beta-page")
    _httpd(containers, sc, fc, "gamma-page")

    # the files docker writes: the embedded server, and the container's own address
    assert open(os.path.join(fa, "resolv.conf")).read().splitlines()[0] == "nameserver 127.0.0.11"
    assert "%s\talpha\n" % ea["IPAddress"] in open(os.path.join(fa, "hosts")).read()

    r = containers.run(sa, "ping", "-c", "1", "-W", "3", "beta", files=fa)
    assert r.returncode == 0 and "PING beta (%s)" % eb["IPAddress"] in r.stdout, r.stderr
    r = _until(lambda: _wget(containers, sa, "http://beta/", fa))
    assert r.stdout == "beta-page\n", r.stderr
    assert _wget(containers, sa, "http://api/", fa).stdout == "beta-page\n"
    # a name the network does not know goes to the upstream (the test's resolver), over UDP
    r = containers.run(sa, "nslookup", "outside.test", files=fa)
    assert "10.9.9.9" in r.stdout and "outside.test" in resolver.names, r.stdout + r.stderr

    # gamma, on another network: beta's name is not resolvable (it is asked upstream, which
    # does not know it), and beta's address is unreachable
    r = containers.run(sc, "nslookup", "beta", files=fc)
    assert eb["IPAddress"] not in r.stdout and "beta" in resolver.names
    r = _wget(containers, sc, "http://%s/" % eb["IPAddress"], fc)
    assert r.returncode != 0 and r.stdout == ""
    r = containers.run(sa, "ping", "-c", "1", "-W", "2", ec["IPAddress"], files=fa)
    assert r.returncode != 0
    # but gamma answers inside its own network's reach: from the host
    assert urllib.request.urlopen("http://%s/" % ec["IPAddress"], timeout=5).read() == \
        b"gamma-page\n"

    containers.cleanup()
    containers.started.clear()
    for cid, net in (("ca", "front"), ("cb", "front"), ("cc", "back")):
        svc.disconnect(net, cid)
        svc.remove_sandbox(cid)
    assert svc.inspect("front")["Containers"] == {}


def test_an_internal_network_has_no_way_out(svc, containers):
    svc.create("sealed", internal=True)
    svc.create("open")
    si, so = svc.create_sandbox("ci"), svc.create_sandbox("co")
    ei = svc.connect("sealed", "ci", si, "inner")
    svc.connect("open", "co", so, "outer")
    # routes as the container's kernel has them: no default route on the internal network
    r = containers.run(si, "ip", "route")
    assert "default" not in r.stdout and ei["IPAddress"] in r.stdout, r.stdout
    # the host's other address (uplink 10.250.0.1) is reachable from the open network only
    assert containers.run(so, "ping", "-c", "1", "-W", "3", "10.250.0.1").returncode == 0
    r = containers.run(si, "ping", "-c", "1", "-W", "2", "10.250.0.1")
    assert r.returncode != 0
    # even with the gateway as its next hop (a route the test adds), the firewall drops it
    def route():
        with netlink.ipr() as ip:
            ip.route("add", dst="0.0.0.0/0", gateway=ei["Gateway"])
    netlink.in_netns(si, route)
    r = containers.run(si, "ping", "-c", "1", "-W", "2", "10.250.0.1")
    assert r.returncode != 0 and "1 packets transmitted, 0 packets received" in r.stdout, \
        r.stdout + r.stderr
    assert "default via %s" % ei["Gateway"] in containers.run(si, "ip", "route").stdout
    for cid, net in (("ci", "sealed"), ("co", "open")):
        svc.disconnect(net, cid)
        svc.remove_sandbox(cid)


class UDPEcho:
    """A UDP echo socket created inside a container's namespace (busybox-static's nc has no
    UDP mode): what reaches it came through the namespace's own interface."""

    def __init__(self, sandbox, port):
        def make():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("0.0.0.0", port))
            return s
        self.sock = netlink.in_netns(sandbox, make)
        self.peers = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(2048)
            except OSError:
                return
            self.peers.append(peer)
            self.sock.sendto(b"echo:" + data, peer)


def test_published_ports_answer_on_loopback_tcp_and_udp_and_from_other_containers(
        svc, containers, tmp_path):
    svc.create("pub")
    svc.create("other")
    sw, sx, sy = (svc.create_sandbox(c) for c in ("cw", "cx", "cy"))
    ew = svc.connect("pub", "cw", sw, "web")
    ex = svc.connect("pub", "cx", sx, "peer")
    ey = svc.connect("other", "cy", sy, "stranger")
    _httpd(containers, sw, None, "published")
    echo = UDPEcho(sw, 5353)
    bound = svc.publish("cw", ew, {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""},
                                              {"HostIp": "", "HostPort": "0"}],
                                   "5353/udp": [{"HostIp": "127.0.0.1"}]})
    loop_port = int(bound["80/tcp"][0]["HostPort"])
    any_port = int(bound["80/tcp"][1]["HostPort"])
    udp_port = int(bound["5353/udp"][0]["HostPort"])
    assert bound["80/tcp"][0]["HostIp"] == "127.0.0.1" and bound["80/tcp"][1]["HostIp"] == \
        "0.0.0.0" and loop_port > 0 and any_port > 0 and udp_port > 0

    def get(url):
        deadline = time.monotonic() + 5
        while True:
            try:
                return urllib.request.urlopen(url, timeout=5).read()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    assert get("http://127.0.0.1:%d/" % loop_port) == b"published\n"
    assert get("http://10.250.0.1:%d/" % any_port) == b"published\n"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(5)
        u.sendto(b"ping", ("127.0.0.1", udp_port))
        assert u.recvfrom(100)[0] == b"echo:ping"
    # the container saw the host as the bridge's gateway (masqueraded loopback)
    assert echo.peers[0][0] == ew["Gateway"]
    # from a container on the same network and from one on another, through the host's port
    r = _wget(containers, sx, "http://%s:%d/" % (ex["Gateway"], any_port), None)
    assert r.stdout == "published\n", r.stderr
    r = _wget(containers, sy, "http://%s:%d/" % (ey["Gateway"], any_port), None)
    assert r.stdout == "published\n", r.stderr
    # a port is really held: another bind of it fails while published
    with socket.socket() as s, pytest.raises(OSError):
        s.bind(("127.0.0.1", loop_port))

    svc.unpublish("cw")
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    assert "-j DNAT" not in rules
    with socket.socket() as s:
        s.bind(("127.0.0.1", loop_port))
    echo.sock.close()
    containers.cleanup()
    containers.started.clear()
    for cid, net in (("cw", "pub"), ("cx", "pub"), ("cy", "other")):
        svc.disconnect(net, cid)
        svc.remove_sandbox(cid)


def test_a_port_in_use_gets_dockers_error_and_leaves_nothing(svc):
    svc.create("busy")
    s = svc.create_sandbox("cz")
    ez = svc.connect("busy", "cz", s, "web")
    taken = socket.socket()
    taken.bind(("0.0.0.0", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    free_port = free.getsockname()[1]
    free.close()
    rules_before = ns_state()[0]
    with pytest.raises(Conflict) as e:
        svc.publish("cz", ez, {"81/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(free_port)}],
                               "80/tcp": [{"HostPort": str(port)}]})
    assert str(e.value) == ("driver failed programming external connectivity on endpoint web "
                            "(%s): Bind for 0.0.0.0:%d failed: port is already allocated"
                            % (ez["EndpointID"], port))
    assert ns_state()[0] == rules_before
    with socket.socket() as again:          # the first binding's port was let go
        again.bind(("127.0.0.1", free_port))
    taken.close()
    svc.disconnect("busy", "cz")
    svc.remove_sandbox("cz")


def test_remove_is_refused_while_in_use_with_dockers_message(svc):
    created = svc.create("inuse")
    s = svc.create_sandbox("cu")
    svc.connect("inuse", "cu", s, "user")
    with pytest.raises(Conflict) as e:
        svc.remove("inuse")
    assert str(e.value) == ("error while removing network: network inuse id %s has active "
                            "endpoints" % created["Id"])
    with pytest.raises(FailedPrecondition):
        svc.remove("bridge")
    svc.disconnect("inuse", "cu")
    svc.remove_sandbox("cu")
    svc.remove("inuse")
    assert [n["Name"] for n in svc.list()] == ["bridge", "host", "none"]


CRASHER = r"""
import sys
from pyrunc.engine.network import NetworkService
svc = NetworkService(sys.argv[1], bridge_name=sys.argv[2], dns_upstreams=[])
svc.create("doomed")
eps = []
for cid in ("k1", "k2"):
    path = svc.create_sandbox(cid)
    eps.append(svc.connect("doomed", cid, path, cid, aliases=["x" + cid]))
print(svc.publish("k1", eps[0], {"80/tcp": [{"HostIp": "127.0.0.1"}]})["80/tcp"][0]["HostPort"],
      flush=True)
sys.stdin.read()
"""


def test_sweep_after_sigkill_removes_everything_the_dead_process_left(svc):
    before = ns_state()
    root = svc.root
    proc = subprocess.Popen([sys.executable, "-c", CRASHER, root, svc.bridge_name],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    rules, links = ns_state()
    assert any("--dport %d " % port in r for r in rules)
    assert sum(1 for x in links if x.startswith("veth")) == 2
    with open(os.path.join(root, "networks.json")) as f:
        doc = json.load(f)
    net = next(n for n in doc["networks"].values() if n["Name"] == "doomed")
    assert len(net["allocated"]) == 2

    # k1 still runs (say): it keeps its veth, address, rule, and its port is held again
    report = svc.sweep(["k1"])
    assert report["Endpoints"] == ["k2"] and "Warnings" not in report
    rules, links = ns_state()
    assert any("--dport %d " % port in r for r in rules)
    assert sum(1 for x in links if x.startswith("veth")) == 1
    assert os.listdir(os.path.join(root, "netns")) == ["k1"]
    assert svc.ports("k1") == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    assert list(svc.endpoints("k1")) == ["doomed"] and svc.endpoints("k2") == {}
    with socket.socket() as s, pytest.raises(OSError):
        s.bind(("127.0.0.1", port))
    # and its names are served again, by this process's DNS server
    k1 = svc.endpoints("k1")["doomed"]

    def ask():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(5)
            u.sendto(query("xk1"), ("127.0.0.11", 53))
            return u.recv(512)
    assert socket.inet_ntoa(netlink.in_netns(os.path.join(root, "netns", "k1"), ask)[-4:]) == \
        k1["IPAddress"]

    report = svc.sweep([])
    assert report["Endpoints"] == ["k1"]
    rules, links = ns_state()
    assert not any("-j DNAT" in r for r in rules) and not any(x.startswith("veth") for x in links)
    assert os.listdir(os.path.join(root, "netns")) == []
    assert svc.inspect("doomed")["Containers"] == {}
    with open(os.path.join(root, "networks.json")) as f:
        doc = json.load(f)
    assert next(n for n in doc["networks"].values() if n["Name"] == "doomed")["allocated"] == {}
    # the port is free again for the next container
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
    svc.remove("doomed")
    assert ns_state()[1] == sorted(before[1] + [svc.bridge_name])


def test_a_missing_bridge_is_recreated_by_sweep_as_after_a_reboot(svc):
    svc.create("again", ipam={"Config": [{"Subnet": "10.77.0.0/24", "Gateway": "10.77.0.254"}]})
    bridge = "br-" + svc.inspect("again")["Id"][:12]
    assert netlink.delete_link(bridge)
    svc.sweep([])
    with netlink.ipr() as ip:
        idx = netlink.link_index(ip, bridge)
        assert idx is not None
        assert [a.get_attr("IFA_ADDRESS") for a in ip.get_addr(index=idx, family=2)] == \
            ["10.77.0.254"]
    svc.remove("again")
    with netlink.ipr() as ip:
        assert netlink.link_index(ip, bridge) is None
