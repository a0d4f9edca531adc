"""The engine's own rtnetlink requests (``netlink.Rtnl``): plugging a veth pair, shutting one
whose namespace goes, deleting and finding links. Each test runs in a network namespace of its
own (``host_ns``); the kernel is the oracle, read through pyroute2 and ``ip``/``bridge``."""
import os
import socket
import subprocess

import hypothesis
import pytest
from hypothesis import strategies as st

from support import wait_links_gone

from pyrunc.engine.network import netlink
from pyrunc.engine.network.service import _veth_name
from pyrunc.errors import SystemFailure

from engine.network.conftest import host_ns, machine_untouched  # noqa: F401

BRIDGE = "nltest0"


def _link(name):
    """(flags, operstate) of the link ``name`` of the calling thread's namespace, or None."""
    from pyroute2 import IPRoute
    with IPRoute() as ip:
        found = ip.link_lookup(ifname=name)
        if not found:
            return None
        link = ip.get_links(found[0])[0]
        return link["flags"], link.get_attr("IFLA_OPERSTATE")


@pytest.fixture
def plugged(host_ns, tmp_path):  # noqa: F811
    """A bridge with 10.77.0.1/24 and a namespace plugged into it as 10.77.0.2 (eth0)."""
    netlink.ensure_bridge(BRIDGE, "10.77.0.1", 24)
    ns = netlink.create_netns(str(tmp_path / "ns" / "c"))
    netlink.plug_veth("vethnltest", BRIDGE, ns, "eth0", "10.77.0.2", 24, "02:42:0a:4d:00:02",
                      "10.77.0.1", 1400)
    yield ns
    netlink.remove_netns(ns)
    assert wait_links_gone("vethnltest") == []
    netlink.delete_link(BRIDGE)


def test_plug_veth_gives_the_namespace_its_address_mac_mtu_and_route(plugged):
    out = subprocess.run(["nsenter", "--net=" + plugged, "sh", "-c",
                          "ip -o -4 addr show dev eth0; ip -o link show dev eth0; ip route"],
                         capture_output=True, text=True, check=True).stdout
    assert "inet 10.77.0.2/24 " in out, out
    assert "link/ether 02:42:0a:4d:00:02 " in out and "mtu 1400 " in out, out
    assert "UP,LOWER_UP" in out, out
    assert "default via 10.77.0.1 dev eth0" in out, out
    flags, state = _link("vethnltest")
    assert flags & 1 and state == "UP"
    master = subprocess.run(["ip", "-o", "link", "show", "dev", "vethnltest"],
                            capture_output=True, text=True).stdout
    assert "master %s " % BRIDGE in master and "mtu 1400 " in master, master


def test_a_failed_plug_leaves_no_link(plugged, tmp_path):
    other = netlink.create_netns(str(tmp_path / "ns" / "d"))
    try:
        # the address is refused in the namespace (not an address of a host): nothing stays
        with pytest.raises(SystemFailure, match="^attach eth0 to %s in %s: " % (BRIDGE, other)):
            netlink.plug_veth("vethnlfail", BRIDGE, other, "eth0", "224.0.0.1", 24,
                              "02:42:0a:4d:00:03", "10.77.0.1")
        assert _link("vethnlfail") is None
        with pytest.raises(SystemFailure, match="^attach endpoint to bridge nosuchbr: "):
            netlink.plug_veth("vethnlfail", "nosuchbr", other, "eth0", "10.77.0.3", 24,
                              "02:42:0a:4d:00:03", "10.77.0.1")
        # a name the host has already
        with pytest.raises(SystemFailure, match="file exists"):
            netlink.plug_veth("vethnltest", BRIDGE, other, "eth0", "10.77.0.3", 24,
                              "02:42:0a:4d:00:03", "10.77.0.1")
        assert netlink.in_netns(other, lambda: _link("eth0")) is None
    finally:
        netlink.remove_netns(other)


def test_shut_veth_cuts_the_pair_off_and_the_namespace_takes_it(plugged):
    with pytest.raises(ConnectionRefusedError):     # the host resolves the address
        socket.create_connection(("10.77.0.2", 9), timeout=5).close()
    neigh = subprocess.run(["ip", "neigh", "show", "dev", BRIDGE], capture_output=True,
                           text=True).stdout
    assert "10.77.0.2" in neigh.split(), neigh
    netlink.shut_veth("vethnltest", BRIDGE, "10.77.0.2")
    flags, _ = _link("vethnltest")
    assert not flags & 1
    inside = netlink.in_netns(plugged, lambda: _link("eth0"))
    assert not inside[0] & 0x10000 and inside[1] != "UP", inside   # no carrier (LOWER_UP)
    neigh = subprocess.run(["ip", "neigh", "show", "dev", BRIDGE], capture_output=True,
                           text=True).stdout
    assert "10.77.0.2" not in neigh.split(), neigh
    fdb = subprocess.run(["bridge", "fdb", "show", "brport", "vethnltest"],
                         capture_output=True, text=True).stdout
    assert [x for x in fdb.splitlines() if "permanent" not in x] == [], fdb
    netlink.shut_veth("vethnltest", BRIDGE, "10.77.0.2")     # again: nothing to do
    netlink.shut_veth("vethnlgone", BRIDGE, "10.77.0.9")     # a link that is gone
    netlink.shut_veth("vethnltest", "nosuchbr", "10.77.0.2")
    # the namespace let go of: the kernel deletes both ends
    netlink.remove_netns(plugged)
    assert wait_links_gone("vethnltest") == []


def test_delete_link_and_link_exists(host_ns):  # noqa: F811
    netlink.ensure_bridge(BRIDGE, "10.77.0.1", 24)
    assert netlink.link_exists(BRIDGE) and not netlink.link_exists("nosuchlink")
    assert netlink.delete_link(BRIDGE) is True
    assert not netlink.link_exists(BRIDGE) and netlink.delete_link(BRIDGE) is False


@hypothesis.settings(max_examples=60, deadline=None,
                     suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
@hypothesis.given(st.text(max_size=40))
def test_any_link_name_is_an_answer_or_a_one_line_error(host_ns, name):  # noqa: F811
    """Names the kernel refuses (too long, empty, "/") are a SystemFailure naming the link;
    valid ones that nobody has are simply absent."""
    hypothesis.assume(name not in ("lo", "uplink"))          # the links the namespace has
    for fn in (netlink.link_exists, netlink.delete_link):
        try:
            assert fn(name) is False
        except SystemFailure as e:
            assert "\n" not in str(e) and str(e).startswith(("look up link", "delete link"))


def test_a_new_endpoint_never_takes_the_name_of_a_link_the_host_has(host_ns):  # noqa: F811
    """A released endpoint's veth lives on until the kernel destroyed its namespace: the
    next endpoint's name is never one of a link that exists, nor one recorded."""
    eid = os.urandom(32).hex()
    first = _veth_name(eid, set())
    netlink.ensure_bridge(first, "10.78.0.1", 24)      # any link of that name
    try:
        second = _veth_name(eid, set())
        assert second != first and second.startswith("veth") and len(second) == 11
        third = _veth_name(eid, {second})
        assert third not in (first, second)
    finally:
        netlink.delete_link(first)
    assert _veth_name(eid, set()) == first
