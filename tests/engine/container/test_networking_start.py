"""A container's network on the path of its start and of its exit.

At start the veths are plugged by a thread while the runtime creates the task, and joined before
the process starts; after an exit the endpoints are released and the namespace let go of, and
the kernel destroys it with its veths by itself. Oracles: busybox's ``ip``, ``wget`` and
``httpd`` inside the containers, the kernel's links, flags and neighbour entries read through
netlink, the mount table.
"""
import ipaddress
import os
import re
import socket
import uuid

import pytest

from support import link_names, wait_links_gone

from pyrunc.errors import NotFound, SystemFailure

from engine.container.test_networking import _once, _run, net_engine  # noqa: F401
from engine.network.conftest import host_ns, machine_untouched, resolver  # noqa: F401

# the veths of a namespace the engine let go of are gone within this (the kernel destroys it
# after an RCU grace period, in a work queue: milliseconds, longer on a loaded machine)
GONE = 10.0


def _veths():
    return [x for x in link_names() if x.startswith("veth")]


def _link_up(name):
    from pyroute2 import IPRoute
    with IPRoute() as ip:
        found = ip.link_lookup(ifname=name)
        if not found:
            return None
        return bool(ip.get_links(found[0])[0]["flags"] & 1)


def _exec(eng, cid, cmd):
    """Run ``cmd`` in the running container; (exit code, output)."""
    cs = eng.containers
    eid = cs.exec_create(cid, {"Cmd": list(cmd), "AttachStdout": True, "AttachStderr": True})
    proc = cs.exec_start(eid)
    out = b""
    while True:
        stream, data = proc.attachment.read(timeout=30)
        if stream is None:
            break
        if stream in (1, 2):
            out += data
    proc.wait(timeout=30)
    return cs.exec_inspect(eid)["ExitCode"], out.decode()


def _mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def test_an_exited_rm_containers_veths_leave_the_host_within_a_bounded_time(net_engine):
    eng = net_engine
    cid = eng.containers.create({"Image": "busybox", "Cmd": ["true"]},
                                {"AutoRemove": True})["Id"]
    eng.containers.start(cid)
    sandbox = os.path.join(eng.networks.root, "netns", cid)
    assert eng.containers.wait(cid, condition="removed", timeout=60)["StatusCode"] == 0
    # released at once: the namespace's mount, the address; a veth not yet destroyed by the
    # kernel is already cut off (its host end down)
    assert not _mounted(sandbox) and not os.path.exists(sandbox)
    assert eng.networks.inspect("bridge")["Containers"] == {}
    for name in _veths():
        assert _link_up(name) in (False, None), name
    assert wait_links_gone("veth", GONE) == []


def test_a_namespace_a_guest_still_holds_keeps_its_veth_cut_off(net_engine):
    """A container sharing another's namespace (``container:``) keeps it after the owner is
    removed, and with it the owner's veth pair: its host end is down, the bridge has learnt
    nothing on the port and has no neighbour entry for the released address. The pair goes
    with the guest."""
    import subprocess
    eng = net_engine
    owner = _run(eng, ["sleep", "60"])
    address = eng.containers.inspect(owner)["NetworkSettings"]["IPAddress"]
    guest = _run(eng, ["sleep", "60"], {"NetworkMode": "container:" + owner})
    bridge = eng.containers.networking.bridge
    with pytest.raises(ConnectionRefusedError):      # the host resolves the address
        socket.create_connection((address, 9), timeout=5).close()
    neigh = subprocess.run(["ip", "neigh", "show", "dev", bridge], capture_output=True,
                           text=True).stdout
    assert address in neigh.split(), neigh
    [veth] = _veths()
    eng.containers.remove(owner, force=True)
    assert _veths() == [veth] and _link_up(veth) is False
    fdb = subprocess.run(["bridge", "fdb", "show", "brport", veth], capture_output=True,
                         text=True).stdout
    assert [x for x in fdb.splitlines() if "permanent" not in x] == [], fdb
    neigh = subprocess.run(["ip", "neigh", "show", "dev", bridge], capture_output=True,
                           text=True).stdout
    assert address not in neigh.split(), neigh
    eng.containers.remove(guest, force=True)
    assert wait_links_gone("veth", GONE) == []


def test_a_quick_rerun_on_the_same_address_is_reached_and_reaches(net_engine):
    """Two ``run --rm`` back to back with one fixed address (and so one MAC), the second
    started as soon as the first is removed: a peer on the network fetches each one's page
    from that address, and each fetches the peer's. The first one's namespace lives on (a
    guest holds it, serving ``ghost-page`` on port 80 there), the address and MAC still on its
    side of the old veth pair: the first page the peer gets from port 80 once the address is
    the second's, asked as soon as the second started, is the second's."""
    eng = net_engine
    eng.networks.create("quick", ipam={"Config": [{"Subnet": "10.123.0.0/24"}]})
    peer = _run(eng, ["sh", "-c", "echo peer-page > /tmp/index.html && "
                      "exec httpd -f -p 80 -h /tmp"], {"NetworkMode": "quick"},
                networking={"EndpointsConfig": {"quick": {"IPAMConfig": {
                    "IPv4Address": "10.123.0.10"}}}})
    # the first page that answers, asked every 50 ms for 5 s
    first_page = ("for i in $(seq 100); do page=$(wget -q -O- http://%s/ 2>/dev/null) && "
                  "{ echo $page; exit 0; }; sleep 0.05; done; exit 1")
    # the test lets it go on by touching /tmp/go (it waits for up to 60 s)
    wait_go = "i=0; while [ ! -e /tmp/go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done"
    for n, port in ((1, 81), (2, 80)):
        script = ("echo run-%d > /tmp/index.html && httpd -p %d -h /tmp && %s && "
                  "wget -q -O- http://10.123.0.10/ | grep -qx peer-page" % (n, port, wait_go))
        cid = eng.containers.create(
            {"Image": "busybox", "Cmd": ["sh", "-c", script]},
            {"NetworkMode": "quick", "AutoRemove": True},
            networking_config={"EndpointsConfig": {"quick": {"IPAMConfig": {
                "IPv4Address": "10.123.0.20"}}}})["Id"]
        eng.containers.start(cid)
        assert _exec(eng, peer, ["sh", "-c", first_page % ("10.123.0.20:%d" % port)]) == \
            (0, "run-%d\n" % n)
        if n == 1:
            _run(eng, ["sh", "-c", "echo ghost-page > /tmp/index.html && "
                       "exec httpd -f -p 80 -h /tmp"], {"NetworkMode": "container:" + cid})
            assert _exec(eng, peer, ["sh", "-c", first_page % "10.123.0.20"]) == \
                (0, "ghost-page\n")
        assert _exec(eng, cid, ["touch", "/tmp/go"])[0] == 0
        # its exit code is grep's: it fetched the peer's page
        assert eng.containers.wait(cid, condition="removed", timeout=60)["StatusCode"] == 0


def test_the_process_finds_eth0_up_with_its_address_at_its_first_instruction(net_engine):
    eng = net_engine
    subnet = ipaddress.ip_network(eng.networks.inspect("bridge")["IPAM"]["Config"][0]["Subnet"])
    for _ in range(20):
        code, out = _once(eng, ["ip", "-4", "addr", "show", "dev", "eth0"])
        assert code == 0, out
        flags = re.search(r"^\d+: eth0@\S+ <([A-Z_,-]+)>", out, re.M)
        assert flags and {"UP", "LOWER_UP"} <= set(flags.group(1).split(",")), out
        inet = re.search(r"inet (\S+)/(\d+) ", out)
        assert inet and ipaddress.ip_address(inet.group(1)) in subnet, out
        assert int(inet.group(2)) == subnet.prefixlen, out


def test_a_plug_failing_during_create_leaves_no_task_veth_address_or_mount(net_engine):
    """The network's bridge replaced by a link that cannot be one (a veth): the plug, running
    while the task is created, fails; the start fails with the plug's error, and the task,
    the veth, the address, the namespace and the root filesystem's mount are gone."""
    from pyroute2 import IPRoute
    eng = net_engine
    eng.networks.create("broken", ipam={"Config": [{"Subnet": "10.124.0.0/24"}]})
    bridge = "br-" + eng.networks.inspect("broken")["Id"][:12]
    peer_name = "np" + uuid.uuid4().hex[:8]
    with IPRoute() as ip:
        ip.link("del", index=ip.link_lookup(ifname=bridge)[0])
        ip.link("add", ifname=bridge, kind="veth", peer=peer_name)
    fixed = {"EndpointsConfig": {"broken": {"IPAMConfig": {"IPv4Address": "10.124.0.7"}}}}
    cid = eng.containers.create({"Image": "busybox", "Cmd": ["sleep", "60"]},
                                {"NetworkMode": "broken"}, networking_config=fixed)["Id"]
    sandbox = os.path.join(eng.networks.root, "netns", cid)
    with pytest.raises(SystemFailure, match=r"^attach eth0 to %s in %s: " % (bridge, sandbox)):
        eng.containers.start(cid)
    state = eng.containers.inspect(cid)["State"]
    assert not state["Running"] and state["ExitCode"] == 128, state
    assert state["Error"].startswith("attach eth0 to %s" % bridge), state
    with pytest.raises(NotFound):
        eng.tasks.get(cid)
    assert wait_links_gone("veth", GONE) == []
    assert eng.networks.inspect("broken")["Containers"] == {}
    assert not _mounted(sandbox) and not os.path.exists(sandbox)
    assert not _mounted(eng.containers.store.get(cid).rootfs)
    assert [e["Action"] for e in eng.events.query(filters={"type": ["network"]})
            if e["Actor"]["Attributes"].get("container") == cid] == []
    # the address was given back: with a bridge again (the plug makes a missing one) the
    # same container starts on the same address
    with IPRoute() as ip:
        ip.link("del", index=ip.link_lookup(ifname=bridge)[0])
    eng.containers.start(cid)
    settings = eng.containers.inspect(cid)["NetworkSettings"]["Networks"]["broken"]
    assert settings["IPAddress"] == "10.124.0.7"
    code, out = _exec(eng, cid, ["ping", "-c", "1", "-W", "3", "10.124.0.1"])
    assert code == 0, out


def test_network_disconnect_of_a_running_container_deletes_its_veth_at_once(net_engine):
    eng = net_engine
    eng.networks.create("side")
    cid = _run(eng, ["sleep", "60"])
    eng.containers.network_connect(cid, "side", None)
    assert len(_veths()) == 2
    eng.containers.network_disconnect(cid, "side")
    assert len(_veths()) == 1               # no waiting: gone when the call returns
    eng.containers.remove(cid, force=True)
    assert wait_links_gone("veth", GONE) == []
