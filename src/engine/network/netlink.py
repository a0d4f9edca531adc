"""Links, addresses, routes and namespaces through netlink (pyroute2), never by running ``ip``.

Work inside a container's network namespace runs in a short-lived thread that joined it
(``in_netns``): a thread's network namespace is its own (setns(2) and unshare(2) with
CLONE_NEWNET change only the calling thread), so the engine's other threads are never moved, no
process is forked, and a socket created in that thread stays in that namespace for its whole
life (the embedded DNS server's listeners are made this way). A new namespace is made the same
way (``create_netns``): a thread unshares, binds its namespace onto a file and ends. The
namespace calls are the native core's (``pyrunc.libcontainer.system``).

The requests on the path of a container's start and exit (a namespace's loopback, plugging a
veth pair, shutting or deleting a link) are written here with ``struct`` on a plain
``NETLINK_ROUTE`` socket (``Rtnl``): one socket per namespace, related requests sent in one
datagram, each acknowledged. pyroute2, a request of which costs about half a millisecond of
Python, does the rest (bridges, listings).
"""
from __future__ import annotations

import errno
import _thread
import os
import socket
import struct

from pyrunc.errors import SystemFailure, shown

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
        with Rtnl() as nl:                                  # lo is always index 1
            nl.request((RTM_SETLINK, 0, _ifinfo(1, IFF_UP, IFF_UP)))

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
            try:
                ip.link("add", **kw)
            except Exception as e:      # pyroute2's NetlinkError
                if getattr(e, "code", None) != errno.EEXIST:
                    raise               # else made meanwhile (two starts plugging at once)
            idx = link_index(ip, name)
        addrs = [a.get_attr("IFA_ADDRESS") for a in ip.get_addr(index=idx, family=2)]
        if gateway not in addrs:
            ip.addr("add", index=idx, address=gateway, prefixlen=prefixlen)
        ip.link("set", index=idx, state="up")
    with open("/proc/sys/net/ipv4/conf/%s/route_localnet" % name, "w") as f:
        f.write("1")


def delete_link(name: str) -> bool:
    """Delete a link of this namespace by name; false if there was none. The kernel deletes
    a veth pair's other end with it, and waits for RCU grace periods first (tens of
    milliseconds on a busy machine): see ``shut_veth`` for the way around that."""
    with Rtnl() as nl:
        try:
            nl.request((RTM_DELLINK, 0, _ifinfo(0) + _str(IFLA_IFNAME, name)))
        except OSError as e:
            if e.errno != errno.ENODEV:
                raise SystemFailure("delete link %s" % shown(name), e.errno) from None
            return False
        return True


def link_exists(name: str) -> bool:
    """Whether this namespace has a link of that name (one request, no listing)."""
    with Rtnl() as nl:
        return nl.index(name) is not None


def shut_veth(host_if: str, bridge: str, address: str) -> None:
    """Cut off the endpoint whose host end is ``host_if`` without deleting it (nothing if it
    is gone): the host end is set down, so the bridge disables the port and forgets the
    addresses it learnt there, the other end loses its carrier, and the bridge's neighbour
    entry for ``address`` goes (the next holder of the address may have another MAC). For a
    pair whose other end is in a namespace on its way out: the kernel deletes both ends when
    it destroys the namespace, later, where deleting them here waits for RCU grace periods;
    until then the pair can neither send nor receive. Two requests in one datagram."""
    import ipaddress
    with Rtnl() as nl:
        br = nl.index(bridge)
        down = (RTM_SETLINK, 0, _ifinfo(0, 0, IFF_UP) + _str(IFLA_IFNAME, host_if))
        messages = [down]
        if br is not None:
            messages.append((RTM_DELNEIGH, 0, struct.pack("=BxxxiHBB", socket.AF_INET, br,
                                                          0, 0, 0)
                             + _attr(NDA_DST, ipaddress.IPv4Address(address).packed)))
        for err in nl.request(*messages, check=False):
            if err not in (0, errno.ENODEV, errno.ENOENT):
                raise SystemFailure("shut endpoint %s on %s" % (host_if, bridge), err)


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
    error is a SystemFailure naming the step; nothing of the pair is left.

    Four round trips: the bridge's index; one request making the pair, the host end up and on
    the bridge, the other end already in the namespace under its final name with its MAC (no
    rename, no move; it cannot be set up before the pair exists); then, from a socket made in
    the namespace, the other end's index, and one datagram setting it up, its address and the
    default route."""
    import ipaddress
    step = "attach %s to %s in %s" % (ifname, bridge, netns)
    with Rtnl() as nl:
        br = nl.index(bridge)
        if br is None:
            raise SystemFailure("attach endpoint to bridge %s" % bridge, errno.ENODEV)
        fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            sized = _u32(IFLA_MTU, mtu) if mtu else b""
            peer = (_ifinfo(0) + _str(IFLA_IFNAME, ifname)
                    + _attr(IFLA_ADDRESS, bytes.fromhex(mac.replace(":", "")))
                    + _u32(IFLA_NET_NS_FD, fd) + sized)
            info = _str(IFLA_INFO_KIND, "veth") + _attr(IFLA_INFO_DATA,
                                                         _attr(VETH_INFO_PEER, peer))
            nl.request((RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                        _ifinfo(0, IFF_UP, IFF_UP) + _str(IFLA_IFNAME, host_if)
                        + _u32(IFLA_MASTER, br) + sized + _attr(IFLA_LINKINFO, info)))
        except OSError as e:
            raise SystemFailure(step, e.errno) from None
        finally:
            os.close(fd)
    local = ipaddress.IPv4Address(address).packed

    def inside() -> None:
        with Rtnl() as nl:
            idx = nl.index(ifname)
            if idx is None:
                raise SystemFailure(step, errno.ENODEV)
            messages = [(RTM_SETLINK, 0, _ifinfo(idx, IFF_UP, IFF_UP)),
                        (RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL,
                         struct.pack("=BBBBi", socket.AF_INET, prefixlen, 0, 0, idx)
                         + _attr(IFA_LOCAL, local) + _attr(IFA_ADDRESS, local))]
            if gateway:
                messages.append((RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL,
                                 struct.pack("=BBBBBBBBI", socket.AF_INET, 0, 0, 0,
                                             RT_TABLE_MAIN, RTPROT_STATIC, 0, RTN_UNICAST, 0)
                                 + _attr(RTA_GATEWAY,
                                         ipaddress.IPv4Address(gateway).packed)))
            errs = nl.request(*messages, check=False)
            if len(errs) > 2 and errs[2] == errno.EEXIST:
                errs[2] = 0     # another network's endpoint has the default route
            for err in errs:
                if err:
                    raise SystemFailure(step, err)
    try:
        in_netns(netns, inside)
    except BaseException:
        delete_link(host_if)
        raise


# --- rtnetlink, by hand ---------------------------------------------------------------------

NETLINK_ROUTE = 0
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR = 20
RTM_NEWROUTE = 24
RTM_DELNEIGH = 29
IFF_UP = 0x1
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO = 1, 3, 4, 10, 18
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_GATEWAY = 5
NDA_DST = 1
RT_TABLE_MAIN = 254
RTPROT_STATIC = 4
RTN_UNICAST = 1
_HEADER = struct.Struct("=IHHII")       # nlmsghdr: length, type, flags, sequence, port


def _attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute (rtattr), padded to 4 bytes."""
    size = 4 + len(payload)
    return struct.pack("=HH", size, kind) + payload + b"\0" * (-size % 4)


def _str(kind: int, text: str) -> bytes:
    return _attr(kind, text.encode() + b"\0")


def _u32(kind: int, value: int) -> bytes:
    return _attr(kind, struct.pack("=I", value))


def _ifinfo(index: int, flags: int = 0, change: int = 0) -> bytes:
    """An ifinfomsg: a link by ``index`` (0: by its IFLA_IFNAME), the ``change`` mask of
    its ``flags`` to set."""
    return struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, flags, change)


class Rtnl:
    """A NETLINK_ROUTE socket of the calling thread's network namespace (the namespace stays
    the socket's whatever thread uses it later)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  NETLINK_ROUTE)
        self.seq = 0
        self.replies: list[list[bytes]] = []

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def request(self, *messages: tuple[int, int, bytes], check: bool = True) -> list[int]:
        """Send ``messages`` ((type, flags, body), each acknowledged) in one datagram and read
        every answer; their errnos in order (0: done). ``check``: the first error is raised
        as an OSError instead. ``self.replies`` has each message's reply bodies (a get's)."""
        first = self.seq + 1
        out = []
        for kind, flags, body in messages:
            self.seq += 1
            out.append(_HEADER.pack(_HEADER.size + len(body), kind,
                                    NLM_F_REQUEST | NLM_F_ACK | flags, self.seq, 0) + body)
        self.sock.sendall(b"".join(out))
        errs: list[int | None] = [None] * len(messages)
        self.replies = [[] for _ in messages]
        left = len(messages)
        while left:
            data = self.sock.recv(65536)
            at = 0
            while at + _HEADER.size <= len(data):
                size, kind, _, seq, _ = _HEADER.unpack_from(data, at)
                if size < _HEADER.size:
                    break
                i = seq - first
                if 0 <= i < len(messages):
                    if kind == NLMSG_ERROR:
                        if errs[i] is None:
                            left -= 1
                        errs[i] = -struct.unpack_from("=i", data, at + _HEADER.size)[0]
                    elif kind != NLMSG_DONE:
                        self.replies[i].append(data[at + _HEADER.size:at + size])
                at += (size + 3) & ~3
        result = [e or 0 for e in errs]
        if check:
            for e in result:
                if e:
                    raise OSError(e, os.strerror(e))
        return result

    def index(self, name: str) -> int | None:
        """The index of the link ``name`` (None if there is none)."""
        try:
            self.request((RTM_GETLINK, 0, _ifinfo(0) + _str(IFLA_IFNAME, name)))
        except OSError as e:
            if e.errno == errno.ENODEV:
                return None
            raise SystemFailure("look up link %s" % shown(name), e.errno) from None
        return int(struct.unpack_from("=i", self.replies[0][0], 4)[0])
