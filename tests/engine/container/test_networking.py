"""Engine containers on networks: real busybox containers started by the Engine.

Every test runs in a network namespace of its own standing for the host (``host_ns`` of the
network tests), so the engine's bridges, veths and iptables chains vanish with it; the session
fixture ``machine_untouched`` proves the machine's iptables-save and link list unchanged.
Oracles: busybox inside the containers (ping, wget, nslookup against 127.0.0.11, ip), the
kernel's links read through /sys, plain sockets of the test connecting to published ports.
"""
import os
import socket
import subprocess
import sys
import time
import uuid

import pytest

from support import http_get, wait_links_gone

from pyrunc.engine import Engine
from pyrunc.errors import InvalidArgument, NotFound

from engine.network.conftest import host_ns, machine_untouched, resolver  # noqa: F401
from engine.network.netstate import ns_state


@pytest.fixture
def net_engine(tmp_path, exec_root, host_ns, resolver):  # noqa: F811
    before = ns_state()
    bridge = "pyrt" + uuid.uuid4().hex[:8]
    eng = Engine(str(tmp_path / "root"), exec_root=exec_root, bridge=bridge,
                 dns_upstreams=["127.0.0.1:%d" % resolver.port])
    eng.load_builtin("busybox")
    yield eng
    for c in eng.containers.store.all():
        eng.containers.remove(c.id, force=True)
    eng.networks.sweep([])
    eng.networks.teardown()
    eng.close()
    wait_links_gone("veth")
    assert ns_state() == before


def _run(eng, cmd, host_config=None, name=None, networking=None, **config):
    cid = eng.containers.create(dict({"Image": "busybox", "Cmd": cmd}, **config),
                                host_config, name=name, networking_config=networking)["Id"]
    eng.containers.start(cid)
    return cid


def _once(eng, cmd, host_config=None, **config):
    """Run ``cmd`` to its end; (exit code, output)."""
    cid = _run(eng, cmd, host_config, **config)
    code = eng.containers.wait(cid, timeout=60)["StatusCode"]
    out = b"".join(m.line for m in eng.containers.logs(cid)).decode()
    eng.containers.remove(cid, force=True)
    return code, out


def _links():
    """The link names of the test's namespace (the kernel's, through ``ip``)."""
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines())


def test_user_network_by_name_and_alias_dns_and_isolation(net_engine, resolver):  # noqa: F811
    eng = net_engine
    eng.networks.create("front")
    eng.networks.create("back")
    web = _run(eng, ["sh", "-c", "echo web-page > /tmp/index.html && exec httpd -f -p 80 -h /tmp"],
               {"NetworkMode": "front"}, name="web",
               networking={"EndpointsConfig": {"front": {"Aliases": ["api"]}}})
    info = eng.containers.inspect(web)["NetworkSettings"]
    ep = info["Networks"]["front"]
    assert ep["IPAddress"] and ep["EndpointID"] and ep["Gateway"] and ep["MacAddress"]
    assert ep["NetworkID"] == eng.networks.inspect("front")["Id"]
    assert "api" in ep["Aliases"]
    assert web in eng.networks.inspect("front")["Containers"]

    code, out = _once(eng, ["sh", "-c", "cat /etc/resolv.conf; nslookup web 127.0.0.11; "
                            "for i in 1 2 3 4 5; do wget -q -O- http://api/ && break; "
                            "sleep 0.3; done; ping -c 1 -W 3 web"], {"NetworkMode": "front"})
    assert "nameserver 127.0.0.11" in out, out
    assert ep["IPAddress"] in out and "web-page" in out, out
    assert "1 packets received" in out, out
    # on another network: the name is unknown (asked upstream), the address unreachable
    code, out = _once(eng, ["sh", "-c", "nslookup web; timeout 3 wget -q -O- http://%s/; "
                            "echo rc=$?" % ep["IPAddress"]], {"NetworkMode": "back"})
    assert "web-page" not in out and "rc=0" not in out, out
    assert "web" in resolver.names

    veths = [x for x in _links() if x.startswith("veth")]
    assert veths
    eng.containers.remove(web, force=True)
    assert wait_links_gone("veth") == []
    assert eng.networks.inspect("front")["Containers"] == {}
    assert not os.path.exists(os.path.join(eng.networks.root, "netns", web))


def test_published_port_answers_from_the_host_and_is_released(net_engine):
    eng = net_engine
    cid = _run(eng, ["sh", "-c", "echo published > /tmp/index.html && exec httpd -f -p 80 "
                     "-h /tmp"], {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1",
                                                                "HostPort": ""}]}})
    ports = eng.containers.port(cid)
    host_port = int(ports["80/tcp"][0]["HostPort"])
    assert ports["80/tcp"][0]["HostIp"] == "127.0.0.1" and host_port > 0
    summary = [c for c in eng.containers.list() if c["Id"] == cid][0]
    assert summary["Ports"] == [{"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": host_port,
                                 "Type": "tcp"}]
    assert b"published" in http_get(host_port)
    rules = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
    assert "--dport %d" % host_port in rules
    eng.containers.stop(cid, timeout=1)
    assert eng.containers.port(cid) == {}
    rules = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
    assert "--dport %d" % host_port not in rules
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", host_port), timeout=2).close()
    # -P: every exposed port on an ephemeral one of every address
    cid = _run(eng, ["sh", "-c", "echo all > /tmp/index.html && exec httpd -f -p 80 -h /tmp"],
               {"PublishAllPorts": True}, ExposedPorts={"80/tcp": {}, "81/udp": {}})
    ports = eng.containers.port(cid)
    assert sorted(ports) == ["80/tcp", "81/udp"]
    assert ports["80/tcp"][0]["HostIp"] == "0.0.0.0" and int(ports["80/tcp"][0]["HostPort"])
    assert b"all" in http_get(int(ports["80/tcp"][0]["HostPort"]))


def test_an_exit_nobody_watched_is_released_by_the_next_read(net_engine):
    eng = net_engine
    cid = _run(eng, ["sleep", "1"], {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1"}]}})
    port = int(eng.containers.port(cid)["80/tcp"][0]["HostPort"])
    time.sleep(2.5)                     # it has exited; nothing has looked
    assert [x for x in _links() if x.startswith("veth")]
    [c] = [c for c in eng.containers.list(all=True) if c["Id"] == cid]
    assert c["State"] == "exited" and c["Ports"] == []
    assert wait_links_gone("veth") == []
    rules = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
    assert "--dport %d" % port not in rules
    settings = eng.containers.inspect(cid)["NetworkSettings"]
    assert settings["Networks"]["bridge"]["IPAddress"] == "" and settings["SandboxKey"] == ""


def test_none_host_and_container_modes(net_engine):
    eng = net_engine
    code, out = _once(eng, ["ls", "/sys/class/net"], {"NetworkMode": "none"})
    assert out.split() == ["lo"], out
    code, out = _once(eng, ["ls", "/sys/class/net"], {"NetworkMode": "host"})
    assert sorted(out.split()) == _links(), out
    first = _run(eng, ["sleep", "60"], {"NetworkMode": "bridge"})
    addr = eng.containers.inspect(first)["NetworkSettings"]["IPAddress"]
    assert addr
    code, out = _once(eng, ["ip", "-4", "addr"], {"NetworkMode": "container:" + first})
    assert addr in out, out


def test_bad_network_options_are_refused_and_leave_nothing(net_engine):
    eng = net_engine
    before = sorted(eng.containers.store.ids())
    with pytest.raises(InvalidArgument, match="^network nosuch not found$"):
        eng.containers.create({"Image": "busybox", "Cmd": ["true"]}, {"NetworkMode": "nosuch"})
    with pytest.raises(InvalidArgument, match="conflicting options: hostname"):
        eng.containers.create({"Image": "busybox", "Cmd": ["true"], "Hostname": "h"},
                              {"NetworkMode": "container:whatever"})
    with pytest.raises(NotFound, match="No such container: whatever"):
        eng.containers.create({"Image": "busybox", "Cmd": ["true"]},
                              {"NetworkMode": "container:whatever"})
    with pytest.raises(InvalidArgument, match="invalid containerPort"):
        eng.containers.create({"Image": "busybox", "Cmd": ["true"]},
                              {"PortBindings": {"0/tcp": [{}]}})
    with pytest.raises(InvalidArgument):
        eng.containers.create({"Image": "busybox", "Cmd": ["true"]},
                              {"ExtraHosts": ["no-address"]})
    assert sorted(eng.containers.store.ids()) == before
    # a host port in use: docker's message; the container is not running, nothing published
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    cid = eng.containers.create({"Image": "busybox", "Cmd": ["sleep", "30"]},
                                {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1",
                                                              "HostPort": str(port)}]}})["Id"]
    with pytest.raises(Exception, match="port is already allocated"):
        eng.containers.start(cid)
    holder.close()
    assert not eng.containers.inspect(cid)["State"]["Running"]
    assert wait_links_gone("veth") == []
    assert eng.networks.inspect("bridge")["Containers"] == {}


def test_hot_plug_connect_and_disconnect(net_engine):
    eng = net_engine
    eng.networks.create("extra")
    cid = _run(eng, ["sleep", "60"])
    eng.containers.network_connect(cid, "extra", {"Aliases": ["late"]})
    nets = eng.containers.inspect(cid)["NetworkSettings"]["Networks"]
    assert set(nets) == {"bridge", "extra"} and nets["extra"]["IPAddress"]
    code, text = _once(eng, ["ping", "-c", "1", "-W", "3", nets["extra"]["IPAddress"]],
                       {"NetworkMode": "extra"})
    assert code == 0, text
    eng.containers.network_disconnect(cid, "extra")
    extra_id = eng.networks.inspect("extra")["Id"]
    seen = [(e["Action"], e["Actor"]["Attributes"]["name"]) for e in eng.events.query(
        filters={"type": ["network"]}) if e["Actor"]["Attributes"]["container"] == cid]
    assert seen == [("connect", "bridge"), ("connect", "extra"), ("disconnect", "extra")], seen
    assert [e["Actor"]["ID"] for e in eng.events.query(
        filters={"type": ["network"], "network": [extra_id]})][-2:] == [extra_id, extra_id]
    assert set(eng.containers.inspect(cid)["NetworkSettings"]["Networks"]) == {"bridge"}
    code, text = _once(eng, ["ping", "-c", "1", "-W", "2", nets["extra"]["IPAddress"]],
                       {"NetworkMode": "extra"})
    assert code != 0, text


KILLED = """
import sys
from pyrunc.engine import Engine
eng = Engine(sys.argv[1], exec_root=sys.argv[2], bridge=sys.argv[3])
cid = eng.containers.create({"Image": "busybox", "Cmd": ["sleep", "60"]},
    {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1"}]}}, name="victim")["Id"]
eng.containers.start(cid)
print(cid, flush=True)
sys.stdin.read()
"""


def test_everything_gone_after_sigkill_of_the_engine_process_and_rm(net_engine, exec_root):
    eng = net_engine
    bridge = eng.containers.networking.bridge
    proc = subprocess.Popen([sys.executable, "-c", KILLED, eng.root, exec_root, bridge],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        cid = proc.stdout.readline().strip()
    finally:
        proc.kill()
        proc.wait()
    assert len(cid) == 64
    again = Engine(eng.root, exec_root=exec_root, bridge=bridge)
    assert again.containers.inspect(cid)["State"]["Running"]
    assert [x for x in _links() if x.startswith("veth")]
    again.containers.remove(cid, force=True)
    assert wait_links_gone("veth") == []
    rules = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
    assert "-j DNAT" not in rules
    assert again.networks.inspect("bridge")["Containers"] == {}
    again.close()
