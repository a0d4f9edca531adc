"""Links, addresses, routes and namespaces through netlink (pyroute2), never by running ``ip``.

Work inside a container's network namespace runs in a short-lived thread that joined it
(``in_netns``): a thread's network namespace is its own (setns(2) and unshare(2) with
CLONE_NEWNET change only the calling thread), so the engine's other threads are never moved, no
process is forked, and a socket created in that thread stays in that namespace for its whole
life (the embedded DNS server's listeners are made this way). A new namespace is made the same
way (``create_netns``): a thread unshares, binds its namespace onto a file and ends. The
namespace calls are the native core's (``pyrunc.libcontainer.system``).
"""
from __future__ import annotations

import errno
import _thread
import os

from pyrunc.errors import SystemFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Callable


def _in_thread(fn: Callable[[], Any]) -> Any:
    """``fn()`` run in a new thread of its own; its result (or exception) comes back here.
    A bare thread and a lock: the caller is woken once, when ``fn`` is done (threading.Thread
    also waits for the thread to have started, one more wake-up on a busy machine)."""
    out: list = []
    done = _thread.allocate_lock()
    done.acquire()

    def run() -> None:
        try:
            out.append((True, fn()))
        except BaseException as e:      # handed to the caller's thread
            out.append((False, e))
        finally:
            done.release()

    _thread.start_new_thread(run, ())
    done.acquire()
    ok, value = out[0]
    if not ok:
        raise value
    return value


def in_netns(path: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn()`` in a thread that joined the network namespace at ``path``; its result (or
    exception) is returned (raised) here."""
    from pyrunc.libcontainer import system
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def run() -> Any:
        system.setns_net(fd)
        return fn()

    try:
        return _in_thread(run)
    finally:
        os.close(fd)


def create_netns(path: str) -> str:
    """A new network namespace with ``lo`` up, kept alive by a bind mount at ``path`` (made by
    a thread that unshares its network namespace, binds it there and ends). The directory is
    made a shared mount of itself (iproute2's way), so an unmount reaches every copy of it."""
    from pyrunc.libcontainer import mountflags, system
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0))
    except OSError as e:
        raise SystemFailure("create network namespace %s" % path, e.errno) from None
    if mountflags.mount(None, directory, "none", mountflags.MS_SHARED | mountflags.MS_REC):
        err = mountflags.mount(directory, directory, "none",
                               mountflags.MS_BIND | mountflags.MS_REC) or \
            mountflags.mount(None, directory, "none", mountflags.MS_SHARED | mountflags.MS_REC)
        if err:
            os.unlink(path)
            raise SystemFailure("share network namespaces' directory %s" % directory, err)

    def run() -> None:
        system.unshare_net()
        err = mountflags.mount("/proc/thread-self/ns/net", path, "none", mountflags.MS_BIND)
        if err:
            raise SystemFailure("bind network namespace to %s" % path, err)
        with ipr() as ip:
            ip.link("set", index=1, state="up")            # lo is always index 1

    try:
        _in_thread(run)
    except BaseException:
        remove_netns(path)
        raise
    return path


def remove_netns(path: str) -> None:
    """Unmount and remove a namespace made by ``create_netns`` (nothing if it is gone)."""
    from pyrunc.libcontainer import mountflags
    if not os.path.lexists(path):
        return
    mountflags.umount(path, mountflags.MNT_DETACH)
    try:
        os.unlink(path)
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise SystemFailure("remove network namespace %s" % path, e.errno) from None


def release_netns_dir(directory: str) -> None:
    """Undo what ``create_netns`` did to the namespaces' directory (a shared bind mount of
    itself) once it holds no namespace, so it can be removed."""
    from pyrunc.libcontainer import mountflags
    if os.path.isdir(directory) and not os.listdir(directory):
        while mountflags.umount(directory, mountflags.MNT_DETACH) == 0:
            pass


def ipr() -> Any:
    from pyroute2 import IPRoute
    return IPRoute()


def link_index(ip: Any, name: str) -> int | None:
    found = ip.link_lookup(ifname=name)
    return found[0] if found else None


def host_routes() -> list[str]:
    """The destinations of the routes of this namespace (main table, IPv4, default excluded)."""
    with ipr() as ip:
        out = []
        for r in ip.get_routes(family=2):
            dst = r.get_attr("RTA_DST")
            if dst and r["dst_len"] > 0:
                out.append("%s/%d" % (dst, r["dst_len"]))
        return out


def ensure_bridge(name: str, gateway: str, prefixlen: int, mtu: int | None = None) -> None:
    """The bridge ``name`` exists, is up and holds the gateway address (made if missing, as
    after a reboot). Its sysctl route_localnet is set so 127.0.0.1 can be DNAT'd to it."""
    with ipr() as ip:
        idx = link_index(ip, name)
        if idx is None:
            kw: dict = {"ifname": name, "kind": "bridge"}
            if mtu:
                kw["mtu"] = mtu
            ip.link("add", **kw)
            idx = link_index(ip, name)
        addrs = [a.get_attr("IFA_ADDRESS") for a in ip.get_addr(index=idx, family=2)]
        if gateway not in addrs:
            ip.addr("add", index=idx, address=gateway, prefixlen=prefixlen)
        ip.link("set", index=idx, state="up")
    with open("/proc/sys/net/ipv4/conf/%s/route_localnet" % name, "w") as f:
        f.write("1")


def delete_link(name: str) -> bool:
    """Delete a link of this namespace by name; false if there was none."""
    with ipr() as ip:
        idx = link_index(ip, name)
        if idx is None:
            return False
        try:
            ip.link("del", index=idx)
        except Exception as e:          # pyroute2's NetlinkError
            if getattr(e, "code", None) != errno.ENODEV:
                raise
        return True


def links() -> dict[str, Any]:
    """Links of this namespace: name -> (index, kind, master index)."""
    with ipr() as ip:
        out = {}
        for link in ip.get_links():
            info = link.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info else None
            out[link.get_attr("IFLA_IFNAME")] = (link["index"], kind,
                                                 link.get_attr("IFLA_MASTER"))
        return out


def plug_veth(host_if: str, bridge: str, netns: str, ifname: str, address: str,
              prefixlen: int, mac: str, gateway: str | None, mtu: int | None = None) -> None:
    """A veth pair: ``host_if`` on ``bridge`` here, ``ifname`` in ``netns`` with ``address``,
    ``mac``, up, and a default route via ``gateway`` (none for an internal network). A netlink
    error is a SystemFailure naming the step; nothing of the pair is left."""
    from pyroute2.netlink.exceptions import NetlinkError
    try:
        _plug_veth(host_if, bridge, netns, ifname, address, prefixlen, mac, gateway, mtu)
    except NetlinkError as e:
        raise SystemFailure("attach %s to %s in %s" % (ifname, bridge, netns), e.code) from None


def _plug_veth(host_if: str, bridge: str, netns: str, ifname: str, address: str,
               prefixlen: int, mac: str, gateway: str | None, mtu: int | None = None) -> None:
    # one request makes the pair, the host end up and on the bridge, the other end already in
    # the container's namespace under its final name (no rename, no move); then, in the
    # namespace, its address, up, and the default route (pyroute2 sends no flags for a peer)
    with ipr() as ip:
        br = link_index(ip, bridge)
        if br is None:
            raise SystemFailure("attach endpoint to bridge %s" % bridge, errno.ENODEV)
        fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            kw: dict = {"ifname": host_if, "kind": "veth", "master": br, "state": "up",
                        "peer": {"ifname": ifname, "address": mac, "net_ns_fd": fd}}
            if mtu:
                kw["mtu"] = mtu
                kw["peer"]["mtu"] = mtu
            ip.link("add", **kw)
        finally:
            os.close(fd)

    def inside() -> None:
        from pyroute2.netlink.exceptions import NetlinkError
        with ipr() as ip:
            idx = link_index(ip, ifname)
            ip.addr("add", index=idx, address=address, prefixlen=prefixlen)
            ip.link("set", index=idx, state="up")
            if gateway:
                try:
                    ip.route("add", dst="0.0.0.0/0", gateway=gateway)
                except NetlinkError as e:
                    if e.code != errno.EEXIST:  # another network's endpoint has the default
                        raise
    try:
        in_netns(netns, inside)
    except BaseException:
        delete_link(host_if)
        raise
