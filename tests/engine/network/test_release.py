"""An endpoint recorded first and plugged later (``connect(plug=False)``, ``plug``), and given
back all at once when its container's namespace goes (``release``), whose veths the kernel
destroys. The kernel is the oracle (links in the namespaces, their flags), and the service's
own answers only where they are the Engine API's."""
import os

import pytest

from support import link_names, wait_links_gone

from pyrunc.engine.network import netlink
from pyrunc.errors import Conflict, NotFound, SystemFailure


def _up(name):
    """Whether the link is up; None once it is gone (also between the lookup and the read:
    the kernel may be destroying it)."""
    import errno
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError
    with IPRoute() as ip:
        found = ip.link_lookup(ifname=name)
        try:
            return bool(ip.get_links(found[0])[0]["flags"] & 1) if found else None
        except NetlinkError as e:
            if e.code != errno.ENODEV:
                raise
            return None


def _veths():
    return [x for x in link_names() if x.startswith("veth")]


def test_record_first_plug_later_release_at_once(svc):
    nid = svc.create("dn", ipam={"Config": [{"Subnet": "10.98.0.0/24"}]})["Id"]
    s = svc.create_sandbox("d1")
    ep = svc.connect("dn", "d1", s, "web", ipv4="10.98.0.5", plug=False)
    # recorded and its address taken, nothing plugged yet
    assert svc.inspect("dn")["Containers"]["d1"]["IPv4Address"] == "10.98.0.5/24"
    with pytest.raises(Conflict, match="Address already in use"):
        svc.connect("dn", "d2", svc.create_sandbox("d2"), "other", ipv4="10.98.0.5")
    assert _veths() == [] and not netlink.in_netns(s, lambda: netlink.link_exists("eth0"))
    svc.plug("dn", "d1")
    [veth] = _veths()
    assert _up(veth) and netlink.in_netns(s, lambda: netlink.link_exists("eth0"))
    assert ep["EndpointID"] == svc.inspect("dn")["Containers"]["d1"]["EndpointID"]
    with pytest.raises(NotFound, match="no endpoint on network dn"):
        svc.plug("dn", "d9")
    assert svc.release("d1") == (nid,)
    assert svc.inspect("dn")["Containers"] == {} and not os.path.lexists(s)
    assert _up(veth) in (False, None)              # cut off until the kernel takes it
    assert wait_links_gone("veth") == []
    assert svc.release("d1") == ()                 # nothing left: nothing to do
    svc.connect("dn", "d2", svc.sandbox_path("d2"), "other", ipv4="10.98.0.5")  # free again
    svc.disconnect("dn", "d2")
    svc.remove_sandbox("d2")


def test_a_failed_plug_undoes_its_endpoint(svc):
    from pyroute2 import IPRoute
    nid = svc.create("fp", ipam={"Config": [{"Subnet": "10.97.0.0/24"}]})["Id"]
    bridge = "br-" + nid[:12]
    with IPRoute() as ip:                          # the bridge is no bridge any more
        ip.link("del", index=ip.link_lookup(ifname=bridge)[0])
        ip.link("add", ifname=bridge, kind="veth", peer="fppeer0")
    s = svc.create_sandbox("f1")
    svc.connect("fp", "f1", s, "web", ipv4="10.97.0.5", plug=False)
    with pytest.raises(SystemFailure, match="^attach eth0 to %s in %s: " % (bridge, s)):
        svc.plug("fp", "f1")
    assert svc.inspect("fp")["Containers"] == {} and _veths() == []
    with IPRoute() as ip:
        ip.link("del", index=ip.link_lookup(ifname=bridge)[0])
    # the address is free again, and the plug makes the missing bridge
    svc.connect("fp", "f1", s, "web", ipv4="10.97.0.5")
    assert netlink.in_netns(s, lambda: netlink.link_exists("eth0"))
    svc.release("f1")


def test_sweep_deletes_a_released_pair_a_holder_kept(svc):
    """A namespace somebody still holds (here an open descriptor; a container that joined it
    does the same) keeps its released pair, shut; a sweep deletes it."""
    svc.create("hn")
    s = svc.create_sandbox("h1")
    svc.connect("hn", "h1", s, "held")
    fd = os.open(s, os.O_RDONLY)
    try:
        svc.release("h1")
        [veth] = _veths()
        assert _up(veth) is False
        assert svc.sweep([])["Links"] == [veth]
        assert _veths() == []                      # deleted, at once
    finally:
        os.close(fd)
