"""IP address management for bridge networks (libnetwork's default IPAM driver).

Pure functions over the network's record (a dict kept in the networks document, written under
its flock before any address is used): ``pool`` chooses a subnet that collides with no route of
the host and no other network, ``config`` checks an Engine API ``IPAM.Config`` entry, and
``allocate``/``release`` hand addresses out of ``record["allocated"]`` (address -> owner), so an
address is never given to two endpoints, whatever process asked and whether it survived.
"""
from __future__ import annotations

import ipaddress

from pyrunc.errors import Conflict, InvalidArgument, Unavailable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Iterable

# docker's default address pools: 172.17-31.0.0/16, then 192.168.0.0/16 in /20s
DEFAULT_POOLS = ([ipaddress.ip_network("172.%d.0.0/16" % i) for i in range(17, 32)]
                 + list(ipaddress.ip_network("192.168.0.0/16").subnets(new_prefix=20)))


def _net(text: str, what: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(str(text), strict=False)
    except ValueError:
        raise InvalidArgument("invalid %s %s: invalid CIDR address" % (what, text)) from None
    if net.version != 4:
        raise InvalidArgument("invalid %s %s: only IPv4 is supported" % (what, text))
    return net  # type: ignore[return-value]


def _addr(text: str, what: str) -> ipaddress.IPv4Address:
    try:
        addr = ipaddress.ip_address(str(text).split("/", 1)[0])
    except ValueError:
        raise InvalidArgument("invalid %s address %s" % (what, text)) from None
    if addr.version != 4:
        raise InvalidArgument("invalid %s address %s: only IPv4 is supported" % (what, text))
    return addr  # type: ignore[return-value]


def pool(used: Iterable[str], routes: Iterable[str]) -> str:
    """The first default pool overlapping none of ``used`` (other networks' subnets) and none of
    the host's ``routes`` (destinations in CIDR form, the default route excluded)."""
    taken = [ipaddress.ip_network(x, strict=False) for x in list(used) + list(routes)]
    for candidate in DEFAULT_POOLS:
        if not any(candidate.overlaps(t) for t in taken if t.version == 4):
            return str(candidate)
    raise Unavailable("could not find an available, non-overlapping IPv4 address pool among "
                      "the defaults to assign to the network")


def config(entry: Any, used: Iterable[str]) -> dict:
    """Check one ``IPAM.Config`` entry ({"Subnet", "Gateway", "IPRange"}) and complete it with a
    gateway (the subnet's first address, as docker does)."""
    if not isinstance(entry, dict):
        raise InvalidArgument("invalid IPAM config: expected an object, got %r" % (entry,))
    unknown = set(entry) - {"Subnet", "Gateway", "IPRange", "AuxiliaryAddresses"}
    if unknown:
        raise InvalidArgument("invalid IPAM config: unknown field %s" % sorted(unknown)[0])
    subnet = _net(entry.get("Subnet") or "", "subnet")
    if subnet.num_addresses < 4:
        raise InvalidArgument("invalid subnet %s: too small for a gateway and an endpoint"
                              % subnet)
    for other in used:
        if subnet.overlaps(ipaddress.ip_network(other)):
            raise Conflict("invalid pool request: Pool overlaps with other one on this address "
                           "space")
    out = {"Subnet": str(subnet)}
    if entry.get("IPRange"):
        iprange = _net(entry["IPRange"], "ip-range")
        if not iprange.subnet_of(subnet):
            raise InvalidArgument("invalid ip-range %s: not within subnet %s" % (iprange, subnet))
        out["IPRange"] = str(iprange)
    gateway = (_addr(entry["Gateway"], "gateway") if entry.get("Gateway")
               else subnet.network_address + 1)
    if gateway not in subnet or gateway in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument("invalid gateway address %s: not a host address of subnet %s"
                              % (gateway, subnet))
    out["Gateway"] = str(gateway)
    return out


def allocate(record: dict, owner: str, wanted: str | None = None) -> str:
    """Reserve an address of the network for ``owner``: ``wanted`` if given (it must be free and
    in the subnet, or the IPRange when there is one), else the next free one after the last
    handed out (docker's serial allocation, so a freed address is not reused at once)."""
    cfg = record["IPAM"]["Config"][0]
    subnet = ipaddress.ip_network(cfg["Subnet"])
    span = ipaddress.ip_network(cfg.get("IPRange") or cfg["Subnet"])
    taken = record.setdefault("allocated", {})
    reserved = {str(subnet.network_address), str(subnet.broadcast_address), cfg["Gateway"]}
    if wanted is not None:
        want = _addr(wanted, "IPv4")
        if want not in subnet:
            raise InvalidArgument("invalid IPv4 address %s: not in subnet %s" % (want, subnet))
        if str(want) in taken or str(want) in reserved:
            raise Conflict("Address already in use: %s" % want)
        taken[str(want)] = owner
        return str(want)
    first, last = int(span.network_address), int(span.broadcast_address)
    size = last - first + 1
    start = record.get("last_allocated")
    offset = (int(ipaddress.ip_address(start)) - first + 1) if start else 0
    for i in range(size):
        addr = ipaddress.ip_address(first + (offset + i) % size)
        if str(addr) in taken or str(addr) in reserved or addr not in subnet:
            continue
        taken[str(addr)] = owner
        record["last_allocated"] = str(addr)
        return str(addr)
    raise Unavailable("no available IPv4 addresses on network %s: %s is exhausted"
                      % (record["Name"], span))


def release(record: dict, address: str) -> None:
    """Give an address back (nothing if it was not allocated)."""
    record.setdefault("allocated", {}).pop(address, None)


def mac_for(address: str) -> str:
    """docker's MAC address derived from an IPv4 address: 02:42 and the address's four bytes."""
    return "02:42:" + ":".join("%02x" % b for b in ipaddress.ip_address(address).packed)
