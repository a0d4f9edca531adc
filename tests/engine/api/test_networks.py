"""pydockerd's networks driven by the docker CLI: network ls/create/inspect/rm/connect/disconnect/
prune, docker run on user networks (by name and alias), -p with docker port and docker ps.

The daemon runs in a network namespace of the test's own (``host_ns`` of the network tests,
which the daemon subprocess inherits), with a bridge device of its own (the fixture's) and ``--iptables=true``: its bridges,
veths and iptables chains vanish with the namespace, and ``machine_untouched`` proves the
machine's ruleset and links unchanged. The busybox image is loaded into the data root before
the daemon starts (the loopback mirror is in the machine's namespace, out of reach).
"""
import json
import os
import socket
import tempfile

import pytest

from pyrunc.engine import Engine

from support import http_get, wait_links_gone

from .conftest import DOCKER_CLIS

from engine.network.conftest import host_ns, machine_untouched  # noqa: F401


@pytest.fixture
def netd(host_ns, start_daemon, tmp_path):  # noqa: F811
    tmp = tmp_path / "d"
    os.makedirs(tmp)
    eng = Engine(str(tmp / "root"), exec_root=str(tmp / "exec"))
    eng.load_builtin("busybox")
    eng.close()
    # the fixture gives each daemon a bridge of its own; the rules are wanted here (they
    # live in the test's namespace)
    return start_daemon(tmp, "--iptables=true", with_mirror=False)


def test_docker_network_commands(netd):
    d = netd
    nid = d.docker("network", "create", "--label", "team=a", "front").stdout.strip()
    assert len(nid) == 64
    r = d.docker("network", "create", "front", check=False)
    assert r.returncode != 0
    assert "network with name front already exists" in r.stderr
    ls = d.docker("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}").stdout
    assert set(ls.split("\n")) >= {"front bridge local", "bridge bridge local",
                                   "host host local", "none null local"}, ls
    assert d.docker("network", "ls", "-q", "--filter", "label=team=a").stdout.split() == \
        [nid[:12]]
    info = json.loads(d.docker("network", "inspect", "front").stdout)[0]
    assert info["Id"] == nid and info["Driver"] == "bridge" and info["Labels"] == {"team": "a"}
    subnet = info["IPAM"]["Config"][0]["Subnet"]

    d.docker("run", "-d", "--name", "web", "--network", "front", "--network-alias", "api",
             "busybox", "sh", "-c", "echo hello > /tmp/index.html && exec httpd -f -p 80 -h /tmp")
    ep = json.loads(d.docker("inspect", "web").stdout)[0]["NetworkSettings"]["Networks"]["front"]
    assert ep["IPAddress"] and ep["NetworkID"] == nid and "api" in ep["Aliases"]
    import ipaddress
    assert ipaddress.ip_address(ep["IPAddress"]) in ipaddress.ip_network(subnet)
    members = json.loads(d.docker("network", "inspect", "front").stdout)[0]["Containers"]
    assert [m["Name"] for m in members.values()] == ["web"]

    r = d.docker("run", "--rm", "--network", "front", "busybox", "sh", "-c",
                 "for i in 1 2 3 4 5 6; do wget -q -O- http://api/ && exit 0; sleep 0.3; done; "
                 "exit 1", check=False)
    assert r.returncode == 0 and r.stdout == "hello\n", r.stderr
    r = d.docker("network", "rm", "front", check=False)
    assert r.returncode != 0 and "has active endpoints" in r.stderr, r.stderr

    d.docker("network", "create", "side")
    d.docker("network", "connect", "--alias", "other", "side", "web")
    nets = json.loads(d.docker("inspect", "web").stdout)[0]["NetworkSettings"]["Networks"]
    assert set(nets) == {"front", "side"} and nets["side"]["IPAddress"]
    r = d.docker("run", "--rm", "--network", "side", "busybox", "ping", "-c", "1", "-W", "3",
                 "other", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    d.docker("network", "disconnect", "side", "web")
    nets = json.loads(d.docker("inspect", "web").stdout)[0]["NetworkSettings"]["Networks"]
    assert set(nets) == {"front"}
    r = d.docker("network", "connect", "nosuch", "web", check=False)
    assert "network nosuch not found" in r.stderr, r.stderr
    r = d.docker("run", "--rm", "--network", "nosuch", "busybox", "true", check=False)
    assert r.returncode != 0 and "network nosuch not found" in r.stderr, r.stderr

    d.docker("rm", "-f", "web")
    d.docker("network", "rm", "front")
    r = d.docker("network", "inspect", "front", check=False)
    assert r.returncode != 0 and "network front not found" in r.stderr
    assert "side" in d.docker("network", "prune", "-f").stdout
    names = d.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert sorted(names) == ["bridge", "host", "none"]
    r = d.docker("network", "rm", "bridge", check=False)
    assert "bridge is a pre-defined network and cannot be removed" in r.stderr


def test_docker_run_with_fixed_ip_mac_hostname_and_hosts(netd):
    d = netd
    if not os.path.exists(DOCKER_CLIS["docker20"]):
        pytest.skip("docker CLI docker20 (%s) is not installed" % DOCKER_CLIS["docker20"])
    d.docker("network", "create", "--subnet", "10.77.0.0/24", "--gateway", "10.77.0.254",
             "fixed")
    out = d.docker("run", "--rm", "--network", "fixed", "--ip", "10.77.0.50", "--mac-address",
                   "02:42:0a:4d:00:32", "--hostname", "box", "--add-host", "db:10.1.2.3",
                   "--dns-search", "example.test", "busybox", "sh", "-c",
                   "ip -4 addr show eth0; ip link show eth0; ip route; cat /etc/hosts "
                   "/etc/hostname /etc/resolv.conf",
                   cli="docker20").stdout       # docker 28 sends a MAC only to API >= 1.44
    assert "inet 10.77.0.50/24" in out and "02:42:0a:4d:00:32" in out, out
    assert "default via 10.77.0.254" in out, out
    assert "10.1.2.3\tdb" in out and "10.77.0.50\tbox" in out and "\nbox\n" in out, out
    assert "nameserver 127.0.0.11" in out and "search example.test" in out, out
    r = d.docker("run", "--rm", "--network", "fixed", "--ip", "10.78.0.5", "busybox", "true",
                 check=False)
    assert r.returncode != 0, r.stdout
    d.docker("network", "rm", "fixed")


def test_docker_run_publish_and_port(netd):
    d = netd
    cid = d.docker("run", "-d", "-p", "127.0.0.1:8080:80", "busybox", "sh", "-c",
                   "echo published > /tmp/index.html && exec httpd -f -p 80 -h /tmp"
                   ).stdout.strip()
    assert d.docker("port", cid).stdout.strip() == "80/tcp -> 127.0.0.1:8080"
    assert b"published" in http_get(8080)
    ps = d.docker("ps", "--format", "{{.Ports}}").stdout.strip()
    assert ps == "127.0.0.1:8080->80/tcp", ps
    r = d.docker("run", "-d", "-p", "127.0.0.1:8080:80", "busybox", "sleep", "30", check=False)
    assert r.returncode != 0 and "port is already allocated" in r.stderr, r.stderr
    d.docker("stop", "-t", "1", cid)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", 8080), timeout=2).close()
    d.docker("start", cid)
    assert b"published" in http_get(8080)
    d.docker("rm", "-f", cid)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", 8080), timeout=2).close()


HOSTILE_CREATE = [
    b"[]", b'"x"', b"{", b'{"Name": 123}', b'{"Name": ""}', b'{"Name": "../../etc"}',
    b'{"Name": "a\\nb"}', b'{"Name": "' + b"n" * 1000 + b'"}', b'{"Name": "x", "Driver": "../d"}',
    b'{"Name": "x", "IPAM": {"Config": [{"Subnet": "not-a-subnet"}]}}',
    b'{"Name": "x", "IPAM": {"Config": [{"Subnet": "10.1.0.0/16", "Gateway": "10.9.0.1"}]}}',
    b'{"Name": "x", "IPAM": "text"}', b'{"Name": "x", "Options": {"a": 1}}',
    b'{"Name": "x", "Labels": ["a"]}', b'{"Name": "x", "EnableIPv6": true}',
    b'{"Name": "x", "Internal": "yes"}',
    b'{"Name": "x", "Options": {"com.docker.network.bridge.name": "uplink"}}',
    b'{"Name": "x", "Options": {"com.docker.network.driver.mtu": "-1"}}',
]
HOSTILE_CONNECT = [
    b"[]", b"{}", b'{"Container": []}', b'{"Container": "nosuch"}',
    b'{"Container": "web", "EndpointConfig": "text"}',
    b'{"Container": "web", "EndpointConfig": {"IPAMConfig": {"IPv4Address": "999.1.1.1"}}}',
    b'{"Container": "web", "EndpointConfig": {"IPAMConfig": {"IPv4Address": "10.99.0.1"}}}',
    b'{"Container": "web", "EndpointConfig": {"Aliases": [1]}}',
    b'{"Container": "web", "EndpointConfig": {"Aliases": ["../x"]}}',
    b'{"Container": "web", "EndpointConfig": {"MacAddress": "zz:zz"}}',
    b'{"Container": "web", "EndpointConfig": {"MacAddress": "01:00:00:00:00:01"}}',
]


def _links():
    import subprocess
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines())


def test_hostile_requests_get_one_line_errors_and_leave_nothing(netd):
    d = netd
    d.docker("network", "create", "target")
    d.docker("run", "-d", "--name", "web", "busybox", "sleep", "60")
    networks = d.request("GET", "/networks")[2]
    links = _links()
    for body in HOSTILE_CREATE:
        status, _, out = d.request("POST", "/networks/create", body,
                                   {"Content-Type": "application/json"})
        assert 400 <= status < 500, (body, status, out)
        message = json.loads(out)["message"]
        assert message and "\n" not in message and "Traceback" not in message, (body, message)
    for body in HOSTILE_CONNECT:
        status, _, out = d.request("POST", "/networks/target/connect", body,
                                   {"Content-Type": "application/json"})
        assert 400 <= status < 500, (body, status, out)
        assert "\n" not in json.loads(out)["message"]
    for path in ("/networks/nosuch", "/networks/%2e%2e", "/networks/" + "a" * 500):
        status, _, out = d.request("GET", path)
        assert status == 404 and "not found" in json.loads(out)["message"], (path, out)
    status, _, out = d.request("GET", "/networks?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D")
    assert status == 400 and "invalid filter 'bogus'" in json.loads(out)["message"]
    assert d.request("GET", "/networks")[2] == networks
    assert _links() == links
    nets = json.loads(d.docker("inspect", "web").stdout)[0]["NetworkSettings"]["Networks"]
    assert set(nets) == {"bridge"}


def test_sdk_networks(netd):
    client = netd.client()
    net = client.networks.create("sdknet", driver="bridge", labels={"k": "v"})
    assert client.networks.get("sdknet").id == net.id
    assert [n.name for n in client.networks.list(names=["sdknet"])] == ["sdknet"]
    c = client.containers.run("busybox", ["sleep", "60"], detach=True, network="sdknet",
                              ports={"80/tcp": ("127.0.0.1", None)})
    try:
        c.reload()
        ep = c.attrs["NetworkSettings"]["Networks"]["sdknet"]
        assert ep["NetworkID"] == net.id and ep["IPAddress"]
        assert int(c.ports["80/tcp"][0]["HostPort"]) > 0
        net.reload()
        assert [x.id for x in net.containers] == [c.id]
        extra = client.networks.create("sdkextra")
        extra.connect(c, aliases=["more"])
        c.reload()
        assert set(c.attrs["NetworkSettings"]["Networks"]) == {"sdknet", "sdkextra"}
        extra.disconnect(c)
        extra.remove()
    finally:
        c.remove(force=True)
    net.remove()
    assert "sdknet" not in [n.name for n in client.networks.list()]


# What each daemon says, in a form that holds on both (IDs and subnets aside)
NETWORKS = ("{{.Config.NetworkDisabled}} {{.NetworkSettings.IPAddress}} "
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.NetworkID}};{{end}}")
BRIDGE_NONE_FLOW = [
    ("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"),
    ("run", "--rm", "busybox", "sh", "-c", "ip -o -4 addr | cut -d' ' -f2"),
    ("create", "--name", "quiet", "busybox", "sleep", "60"),
    ("inspect", "-f", NETWORKS, "quiet"),
    ("start", "quiet"),
    ("inspect", "-f", NETWORKS, "quiet"),
    ("network", "create", "front"),
    ("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"),
    ("run", "--rm", "--network", "front", "busybox", "sh", "-c",
     "ip -o -4 addr | cut -d' ' -f2"),
    ("run", "--rm", "--network", "none", "busybox", "sh", "-c", "ip -o -4 addr | cut -d' ' -f2"),
    ("network", "inspect", "bridge"),
    ("rm", "-f", "quiet"),
    ("network", "rm", "front"),
]


@pytest.mark.peer
def test_bridge_none_is_dockerds_no_default_bridge_but_user_networks(
        host_ns, start_daemon, tmp_path, machine_untouched):  # noqa: F811
    """``--bridge=none``, side by side with Debian's dockerd given the same flag: host and none
    only; a default-mode container has loopback alone (and NetworkDisabled); a user-defined
    network is made and its containers get an address on it. Nothing stays behind."""
    from dockerd_peer import DOCKERD, Dockerd
    if not os.path.exists(DOCKERD):
        pytest.skip("Debian's dockerd (package docker.io) is not installed")
    tmp = tmp_path / "d"
    os.makedirs(tmp)
    eng = Engine(str(tmp / "root"), exec_root=str(tmp / "exec"))
    eng.load_builtin("busybox")
    eng.close()
    ours = start_daemon(tmp, "--bridge=none", "--iptables=true", with_mirror=False)
    links = _links()

    def outputs(run):
        said = []
        for args in BRIDGE_NONE_FLOW:
            r = run(*args)
            out = r.stdout.strip()
            if "create" in args[:2]:
                out = str(len(out))                    # the ID's length
            said.append((args, r.returncode, out, r.stderr.strip().splitlines()[-1:]))
        return said

    mine = outputs(lambda *a: ours.docker(*a, cli="docker20", check=False))
    # a short work directory: containerd's socket path is bounded (108 bytes)
    with tempfile.TemporaryDirectory(prefix="dd-") as work, \
            Dockerd(work, ("--bridge=none",)) as theirs:
        theirs.load_builtin("busybox")
        expected = outputs(lambda *a: theirs.docker(*a, check=False))
    assert mine == expected
    # connecting a running default-mode container plugs it into its namespace at once (where
    # Debian's dockerd answers 0 and plugs nothing, a bug not followed): the container's own
    # view of its interfaces
    ours.docker("network", "create", "back")
    ours.docker("run", "-d", "--name", "solo", "busybox", "sleep", "60")
    ours.docker("network", "connect", "back", "solo")
    ep = json.loads(ours.docker("inspect", "solo").stdout)[0]["NetworkSettings"]["Networks"]
    inside = ours.docker("exec", "solo", "ip", "-o", "-4", "addr").stdout
    assert ep["back"]["IPAddress"] and " %s/" % ep["back"]["IPAddress"] in inside, inside
    ours.docker("rm", "-f", "solo")
    ours.docker("network", "rm", "back")
    # the kernel's view: the user networks' bridges and the veths went with them
    wait_links_gone("veth")
    assert _links() == links
