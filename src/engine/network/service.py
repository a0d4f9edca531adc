"""NetworkService: networks, endpoints, published ports and the embedded DNS server.

On disk (``root``, e.g. ENGINE_ROOT/network):

    networks.json   every network: its Engine API fields, its bridge, its allocated addresses
                    (address -> endpoint ID) and its endpoints (container ID -> record); the
                    published ports of each container; rewritten whole (temp file, rename)
                    under the flock of ``lock``, with an fsync when the networks themselves
                    changed (see ``_save``)
    netns/<id>      a container's network namespace (``create_sandbox``), a bind mount

Every change is written before it is made on the host (an address is recorded as taken before
the veth carrying it exists), so a process that dies part way leaves records, never orphans:
``sweep(live)`` (at engine start) removes the veths, rules, DNS listeners, addresses and
namespaces of every container not in ``live`` and recreates missing bridges (after a reboot).
Sockets reserving published ports and the DNS listeners belong to the process that made them.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import threading

from pyrunc.engine.network import dns as dnsmod
from pyrunc.engine.network import firewall, ipam, netlink, ports
from pyrunc.engine.network.drivers import DRIVERS
from pyrunc.errors import (AlreadyExists, Conflict, FailedPrecondition, InvalidArgument,
                           NotFound, PyruncError, shown)
from pyrunc.libcontainer import timestamps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Iterable, Iterator

Servers = list[tuple[str, int]]      # DNS upstreams (the class's own ``list`` hides the type)
DEFAULTS = (("bridge", "bridge"), ("host", "host"), ("none", "null"))
PRIVATE = ("bridge", "allocated", "endpoints", "last_allocated", "builtin")
BRIDGE_NAME_OPT = "com.docker.network.bridge.name"


def _valid_name(name: Any) -> bool:
    return (isinstance(name, str) and 0 < len(name) <= 128 and name[0].isascii()
            and name[0].isalnum()
            and all(c.isascii() and (c.isalnum() or c in "_.-") for c in name))


def _valid_ifname(name: Any) -> bool:
    return (isinstance(name, str) and 0 < len(name) <= 15 and name not in (".", "..")
            and all(c.isascii() and (c.isalnum() or c in "_.-") for c in name))


def _str_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in value.items()):
        raise InvalidArgument("invalid %s: expected a map of strings" % what)
    return dict(value)


def _now() -> str:
    return timestamps.now()


class NetworkService:
    """Networks of one engine root; see the module's text. ``iptables=False`` programs no rule
    (docker's ``--iptables=false``); ``dns_upstreams`` ("ip" or "ip:port") replace the host's
    resolv.conf servers as the embedded server's forwarders."""

    def __init__(self, root: str, *, bridge_name: str | None = "pyr0", iptables: bool = True,
                 dns_upstreams: Iterable[str] | None = None) -> None:
        if bridge_name is not None and not _valid_ifname(bridge_name):
            raise InvalidArgument("invalid bridge name %r" % (bridge_name,))
        self.root = root
        self.bridge_name = bridge_name
        self.iptables = iptables
        os.makedirs(root, mode=0o700, exist_ok=True)
        self._upstreams = [self._upstream(u) for u in dns_upstreams] if dns_upstreams is not None \
            else None
        self._dns: dnsmod.DNSServer | None = None
        self._reserved: dict[str, list[socket.socket]] = {}
        self._mutex = threading.RLock()
        self._defaults_ok = False
        self._saved = ""
        self._saved_networks = ""

    # --- the document -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, write: bool = True) -> Iterator[dict[str, Any]]:
        """The networks document under the flock (exclusive to write); ``self._save(doc)``
        writes it at once (before acting on the host), and it is saved again at the end."""
        fd = os.open(os.path.join(self.root, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
        try:
            with self._mutex:
                fcntl.flock(fd, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
                try:
                    with open(os.path.join(self.root, "networks.json")) as f:
                        doc = json.load(f)
                except FileNotFoundError:
                    doc = {"networks": {}, "ports": {}}
                self._saved = json.dumps(doc, sort_keys=True)
                self._saved_networks = _definitions(doc)
                yield doc
                if write:
                    self._save(doc)
        finally:
            os.close(fd)

    def _save(self, doc: dict[str, Any]) -> None:
        """Write the document (temp file, rename) unless it is what was last written. The
        file is synced to the disk first only when the networks themselves changed: endpoints,
        addresses and ports must survive a crash of the process (the page cache does), and
        after a crash of the machine the containers they belong to are gone too (a sweep
        drops them), so they need no fsync, which costs milliseconds on every start."""
        text = json.dumps(doc, sort_keys=True)
        if text == self._saved:
            return
        self._saved = text
        networks = _definitions(doc)
        path = os.path.join(self.root, "networks.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
            if networks != self._saved_networks:
                f.flush()
                os.fsync(f.fileno())
        os.rename(tmp, path)
        self._saved_networks = networks

    @staticmethod
    def _find(doc: dict[str, Any], ref: Any) -> dict[str, Any]:
        if not isinstance(ref, str) or not ref:
            raise NotFound("network %s not found" % (ref,))
        nets = doc["networks"]
        for n in nets.values():
            if n["Name"] == ref:
                return n
        if ref in nets:
            return nets[ref]
        found = [n for i, n in nets.items() if i.startswith(ref)]
        if len(found) > 1:
            raise InvalidArgument("network %s is ambiguous (%d matches found based on ID "
                                  "prefix)" % (shown(ref), len(found)))
        if not found:
            raise NotFound("network %s not found" % shown(ref))
        return found[0]

    def _chains(self, doc: dict[str, Any]) -> firewall.Chains:
        """This root's chain names, recorded with the networks at first use (named after the
        default bridge's device, unique in the namespace; see ``firewall``)."""
        tag = doc.get("chains")
        if isinstance(tag, str):
            return firewall.Chains(tag)
        bridge = next((n["bridge"] for n in doc["networks"].values()
                       if n.get("builtin") and n.get("bridge")), self.bridge_name)
        # no default bridge: the root's path stands for it (unique too; never a device name)
        chains = firewall.Chains.for_bridge(bridge or self.root)
        doc["chains"] = chains.tag
        return chains

    def _firewall(self, doc: dict[str, Any]) -> None:
        if not self.iptables:
            return
        bridges = any(n["Driver"] == "bridge" for n in doc["networks"].values())
        if not bridges and not doc.get("ports") and "chains" not in doc:
            return      # nothing written, nothing to write: no chain names are this root's
        chains = self._chains(doc)
        if bridges and not doc.get("forwarding_enabled"):
            with open("/proc/sys/net/ipv4/ip_forward") as f:
                if f.read().strip() == "0":
                    doc["forwarding_enabled"] = True
                    self._save(doc)
                    with open("/proc/sys/net/ipv4/ip_forward", "w") as w:
                        w.write("1")
        if firewall.apply(doc, bool(doc.get("forwarding_enabled")), chains):
            return
        del doc["chains"]               # removed: the names are nobody's until used again
        if doc.get("forwarding_enabled"):
            if not firewall.others(chains):    # another root's bridges still forward
                with open("/proc/sys/net/ipv4/ip_forward", "w") as w:
                    w.write("0")
            doc.pop("forwarding_enabled", None)

    # --- networks ---------------------------------------------------------------------------

    def ensure_default(self) -> None:
        """docker's three networks, ``bridge`` (its device ``bridge_name`` on a free pool),
        ``host`` and ``none``, made on first use; the bridge device is recreated if missing.
        Without ``bridge_name`` (dockerd's ``--bridge=none``) only ``host`` and ``none``; a
        default bridge an earlier run made goes, with its device, once no endpoint is on it
        (dockerd clears it at every start)."""
        if self._defaults_ok:
            return
        with self._locked() as doc, _host_lock():
            if self.bridge_name is None:
                for nid, n in list(doc["networks"].items()):
                    if n.get("builtin") and n["Driver"] == "bridge" and not n["endpoints"]:
                        del doc["networks"][nid]
                        self._save(doc)
                        DRIVERS["bridge"].delete(n)
            names = {n["Name"] for n in doc["networks"].values()}
            bridge = self.bridge_name
            for name, driver in DEFAULTS:
                if name in names:
                    continue
                opts = {}
                if driver == "bridge":
                    if bridge is None:
                        continue
                    opts = {"com.docker.network.bridge.default_bridge": "true",
                            "com.docker.network.bridge.enable_icc": "true",
                            "com.docker.network.bridge.enable_ip_masquerade": "true",
                            "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                            BRIDGE_NAME_OPT: bridge,
                            "com.docker.network.driver.mtu": "1500"}
                self._new(doc, name, driver, None, False, {}, opts, builtin=True)
            for n in doc["networks"].values():
                DRIVERS[n["Driver"]].create(n)
            self._firewall(doc)
        self._defaults_ok = True

    def _new(self, doc: dict[str, Any], name: str, driver: str, ipam_: Any, internal: bool,
             labels: dict[str, str], options: dict[str, str], builtin: bool = False) -> dict:
        nid = os.urandom(32).hex()
        record: dict[str, Any] = {
            "Name": name, "Id": nid, "Created": _now(), "Scope": "local", "Driver": driver,
            "EnableIPv6": False, "IPAM": {"Driver": "default", "Options": {}, "Config": []},
            "Internal": internal, "Attachable": False, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Options": options,
            "Labels": labels, "endpoints": {}, "allocated": {}, "builtin": builtin}
        if driver == "bridge":
            bridge = options.get(BRIDGE_NAME_OPT) or "br-" + nid[:12]
            if not _valid_ifname(bridge):
                raise InvalidArgument("invalid bridge name %r" % bridge)
            if any(n.get("bridge") == bridge for n in doc["networks"].values()):
                raise Conflict("bridge name %s is in use by another network" % bridge)
            if bridge in netlink.links():
                raise Conflict("bridge name %s is in use by a link of the host" % bridge)
            record["bridge"] = bridge
            used = [c["Subnet"] for n in doc["networks"].values()
                    for c in n["IPAM"]["Config"]]
            configs = (ipam_ or {}).get("Config") or []
            if not isinstance(configs, list) or len(configs) > 1:
                raise InvalidArgument("invalid IPAM config: one IPv4 subnet is supported")
            if configs:
                cfg = ipam.config(configs[0], used)
            else:
                cfg = ipam.config({"Subnet": ipam.pool(used, netlink.host_routes())}, used)
            record["IPAM"]["Config"] = [cfg]
        elif ipam_ and (ipam_.get("Config") or []):
            raise InvalidArgument("%s network does not support IPAM configuration"
                                  % ("none" if driver == "null" else driver))
        doc["networks"][nid] = record
        self._save(doc)
        return record

    def create(self, name: str, driver: str = "bridge", ipam: dict | None = None,
               internal: bool = False, labels: dict | None = None, options: dict | None = None,
               check_duplicate: bool = True) -> dict:
        """Create a network; ``{"Id", "Warning"}``. Names are always checked for duplicates
        (``check_duplicate`` is accepted for the API's sake, as docker >= 25 ignores it)."""
        self.ensure_default()
        if not _valid_name(name):
            raise InvalidArgument("invalid network name %r: only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                                  "are allowed" % (name,))
        if driver not in DRIVERS:
            raise NotFound("plugin %r not found" % (driver,))
        if ipam is not None and not isinstance(ipam, dict):
            raise InvalidArgument("invalid IPAM: expected an object")
        if ipam and (ipam.get("Driver") or "default") != "default":
            raise NotFound("plugin %r not found" % ipam.get("Driver"))
        labels_, options_ = _str_map(labels, "labels"), _str_map(options, "options")
        mtu = options_.get("com.docker.network.driver.mtu")
        if mtu is not None and (not mtu.isdigit() or not 68 <= int(mtu) <= 65535):
            raise InvalidArgument("invalid mtu %r" % mtu)
        with self._locked() as doc:
            if any(n["Name"] == name for n in doc["networks"].values()):
                raise AlreadyExists("network with name %s already exists" % name)
            if driver != "bridge" and any(n["Driver"] == driver
                                          for n in doc["networks"].values()):
                raise FailedPrecondition("only one instance of \"%s\" network is allowed"
                                         % driver)
            with _host_lock():              # the pool is free until the bridge holds it
                record = self._new(doc, name, driver, ipam, bool(internal), labels_, options_)
                try:
                    DRIVERS[driver].create(record)
                    self._firewall(doc)
                except BaseException:
                    DRIVERS[driver].delete(record)
                    del doc["networks"][record["Id"]]
                    self._save(doc)
                    self._firewall(doc)
                    raise
        return {"Id": record["Id"], "Warning": ""}

    def _view(self, n: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in n.items() if k not in PRIVATE}
        out["Containers"] = {
            cid: {"Name": e["Name"], "EndpointID": e["EndpointID"],
                  "MacAddress": e["MacAddress"],
                  "IPv4Address": ("%s/%d" % (e["IPAddress"], e["IPPrefixLen"])
                                  if e["IPAddress"] else ""),
                  "IPv6Address": ""}
            for cid, e in n["endpoints"].items()}
        return out

    def inspect(self, ref: str) -> dict:
        """The Engine API's Network object (with ``Containers``)."""
        self.ensure_default()
        with self._locked(write=False) as doc:
            return self._view(self._find(doc, ref))

    def list(self, filters: dict | None = None) -> list[dict]:
        """Networks matching docker's filters: name (substring), id (prefix), driver,
        label (key or key=value), type (custom|builtin), dangling (true|false)."""
        self.ensure_default()
        flt = _filters(filters, ("name", "id", "driver", "label", "type", "dangling", "scope"))
        with self._locked(write=False) as doc:
            nets = sorted(doc["networks"].values(), key=lambda n: n["Created"])
            return [self._view(n) for n in nets if _matches(n, flt)]

    def remove(self, ref: str) -> None:
        """Remove a network that no container uses (docker's messages otherwise)."""
        self.ensure_default()
        with self._locked() as doc:
            n = self._find(doc, ref)
            if n.get("builtin"):
                raise FailedPrecondition("%s is a pre-defined network and cannot be removed"
                                         % n["Name"])
            if n["endpoints"]:
                raise Conflict("error while removing network: network %s id %s has active "
                               "endpoints" % (n["Name"], n["Id"]))
            DRIVERS[n["Driver"]].delete(n)
            del doc["networks"][n["Id"]]
            self._save(doc)
            self._firewall(doc)

    def prune(self, filters: dict | None = None) -> dict:
        """Remove the user networks no container uses; ``{"NetworksDeleted": [names]}``."""
        self.ensure_default()
        flt = _filters(filters, ("label", "label!", "until"))
        until = flt.pop("until", None)
        limit = _until(until[0]) if until else None
        deleted = []
        with self._locked() as doc:
            for n in sorted(doc["networks"].values(), key=lambda n: n["Created"]):
                if n.get("builtin") or n["endpoints"] or not _matches(n, flt):
                    continue
                if limit is not None and not timestamps.parse_ns(n["Created"]) < limit:
                    continue
                DRIVERS[n["Driver"]].delete(n)
                del doc["networks"][n["Id"]]
                self._save(doc)
                deleted.append(n["Name"])
            self._firewall(doc)
        return {"NetworksDeleted": deleted}

    # --- endpoints --------------------------------------------------------------------------

    def create_sandbox(self, container_id: str) -> str:
        """A network namespace for the container (kept by a bind mount): the path to give the
        runtime as the OCI ``network`` namespace and to ``connect``."""
        self.ensure_default()           # the root's networks are in use from now on
        path = self.sandbox_path(container_id)
        if not os.path.ismount(path):
            # a file with no namespace bound to it: what a process left whose mount namespace
            # is gone (a daemon run in one of its own, as the tests do, then restarted)
            netlink.remove_netns(path)
            netlink.create_netns(path)
        return path

    def sandbox_path(self, container_id: str) -> str:
        if not _valid_name(container_id):
            raise InvalidArgument("invalid container ID %r" % (container_id,))
        return os.path.join(self.root, "netns", container_id)

    def remove_sandbox(self, container_id: str) -> None:
        """Remove the container's namespace (its veths go with it)."""
        netlink.remove_netns(self.sandbox_path(container_id))

    def connect(self, ref: str, container_id: str, netns_path: str, name: str,
                aliases: Iterable[str] = (), ipv4: str | None = None,
                mac: str | None = None, plug: bool = True) -> dict:
        """Attach the container whose namespace is ``netns_path`` to a network: an address
        (``ipv4`` if given), a veth ``ethN`` in the namespace, its DNS listener on a user
        network. Returns the Engine API's EndpointSettings. ``plug=False`` only records the
        endpoint (its address, its names, its veth's name) and leaves the veth and the DNS
        listener to a call of ``plug``, which need not hold the document's lock (a starting
        container's runtime goes on meanwhile); ``release`` or ``disconnect`` undoes either."""
        self.ensure_default()
        if not _valid_name(container_id):
            raise InvalidArgument("invalid container ID %r" % (container_id,))
        if not isinstance(name, str) or not _valid_name(name.lstrip("/")):
            raise InvalidArgument("invalid container name %r" % (name,))
        name = name.lstrip("/")
        aliases = list(aliases or ())
        for a in aliases:
            if not _valid_name(a):
                raise InvalidArgument("invalid network alias %r" % (a,))
        if mac is not None:
            mac = _mac(mac)
        if not os.path.exists(netns_path):
            raise NotFound("network namespace %s: no such file" % netns_path)
        with self._locked() as doc:
            n = self._find(doc, ref)
            if container_id in n["endpoints"]:
                raise AlreadyExists("endpoint with name %s already exists in network %s"
                                    % (name, n["Name"]))
            driver = DRIVERS[n["Driver"]]
            last = n.get("last_allocated")
            eid = os.urandom(32).hex()
            ep: dict[str, Any] = {
                "Name": name, "EndpointID": eid, "NetworkID": n["Id"], "Aliases": aliases,
                "IPAddress": "", "IPPrefixLen": 0, "Gateway": "", "MacAddress": "",
                "netns": netns_path, "ifname": "", "host_if": ""}
            if driver.has_addresses:
                if (ipv4 is not None or aliases) and n.get("builtin"):
                    raise InvalidArgument("user specified IP address and network aliases are "
                                          "supported only for user defined networks")
                cfg = n["IPAM"]["Config"][0]
                ep["IPAddress"] = ipam.allocate(n, eid, ipv4)
                ep["IPPrefixLen"] = int(cfg["Subnet"].rsplit("/", 1)[1])
                ep["Gateway"] = cfg["Gateway"]
                ep["MacAddress"] = mac or ipam.mac_for(ep["IPAddress"])
                veths = {e["host_if"] for m in doc["networks"].values()
                         for e in m["endpoints"].values()}
                ep["host_if"] = _veth_name(eid, veths)
                taken = {e["ifname"] for m in doc["networks"].values()
                         for c, e in m["endpoints"].items() if c == container_id}
                ep["ifname"] = next("eth%d" % i for i in range(len(taken) + 1)
                                    if "eth%d" % i not in taken)
            n["endpoints"][container_id] = ep
            self._save(doc)                        # recorded before it exists
            if not plug:
                return _settings(ep)
            try:
                self._join(n, ep, container_id)
            except BaseException:
                driver.leave(n, ep)
                del n["endpoints"][container_id]
                ipam.release(n, ep["IPAddress"])
                if last is None:
                    n.pop("last_allocated", None)
                else:
                    n["last_allocated"] = last
                self._save(doc)
                raise
        return _settings(ep)

    def _join(self, n: dict[str, Any], ep: dict[str, Any], container_id: str) -> None:
        DRIVERS[n["Driver"]].join(n, ep, ep["netns"])
        if self._user(n):
            self._dns_server().listen(container_id, ep["netns"])

    def plug(self, ref: str, container_id: str) -> None:
        """Plug the endpoint ``connect(plug=False)`` recorded for the container: its veth and,
        on a user network, its DNS listener, made outside the document's lock. When that
        fails, the endpoint is undone as a failed ``connect``'s (veth, record, address) and
        the error raised."""
        with self._locked(write=False) as doc:
            n = self._find(doc, ref)
            ep = n["endpoints"].get(container_id)
            if ep is None:
                raise NotFound("container %s has no endpoint on network %s to plug"
                               % (container_id, n["Name"]))
        try:
            self._join(n, ep, container_id)
        except BaseException:
            with self._locked() as doc:
                DRIVERS[n["Driver"]].leave(n, ep)
                now = doc["networks"].get(n["Id"])
                if now is not None and (now["endpoints"].get(container_id) or {}).get(
                        "EndpointID") == ep["EndpointID"]:
                    del now["endpoints"][container_id]
                    ipam.release(now, ep["IPAddress"])
                    self._save(doc)
            raise

    def release(self, container_id: str) -> tuple[str, ...]:
        """Let go of what the container's endpoints hold once its namespace goes anyway (its
        processes are gone: an exit, a stop, a removal, a failed start): published ports and
        their rules, addresses, DNS records and listeners, the endpoints' records, and the
        namespace's bind mount. The veths are not deleted, which waits for RCU grace periods:
        each host end is shut (``netlink.shut_veth``: down, off the bridge's forwarding, the
        bridge's neighbour entry of its address gone), and the kernel deletes both ends when
        it destroys the namespace, shortly after this returns. A namespace somebody else
        still holds (a container that joined it) keeps its pairs, shut, until it goes; an
        address released here is never reachable through them. Returns the IDs of the
        networks the container left."""
        if not _valid_name(container_id):
            raise InvalidArgument("invalid container ID %r" % (container_id,))
        left = []
        with self._locked() as doc:
            self._close_reserved(container_id)
            ports_changed = doc["ports"].pop(container_id, None) is not None
            for n in doc["networks"].values():
                ep = n["endpoints"].get(container_id)
                if ep is None:
                    continue
                if ep.get("host_if"):
                    netlink.shut_veth(ep["host_if"], n["bridge"], ep["IPAddress"])
                del n["endpoints"][container_id]
                ipam.release(n, ep["IPAddress"])
                left.append(n["Id"])
            doc.get("dns", {}).pop(container_id, None)
            if self._dns is not None:
                self._dns.forget(container_id)
            self.remove_sandbox(container_id)
            self._save(doc)
            if ports_changed:
                self._firewall(doc)
        return tuple(left)

    def disconnect(self, ref: str, container_id: str, force: bool = False) -> None:
        """Detach the container from the network: its veth, address, published ports on it and
        (when it leaves its last user network) its DNS listener go. ``force`` also accepts a
        container that is not attached."""
        self.ensure_default()
        with self._locked() as doc:
            n = self._find(doc, ref)
            ep = n["endpoints"].get(container_id)
            if ep is None:
                if force:
                    return
                raise FailedPrecondition("container %s is not connected to network %s"
                                         % (container_id, n["Name"]))
            self._drop_endpoint(doc, n, container_id)
            self._firewall(doc)

    def _drop_endpoint(self, doc: dict[str, Any], n: dict[str, Any], cid: str) -> None:
        ep = n["endpoints"][cid]
        DRIVERS[n["Driver"]].leave(n, ep)
        published = doc["ports"].get(cid)
        if published and any(p["ContainerIp"] == ep["IPAddress"] for p in published):
            self._close_reserved(cid)
            doc["ports"].pop(cid, None)
        del n["endpoints"][cid]
        ipam.release(n, ep["IPAddress"])
        if not any(cid in m["endpoints"] for m in doc["networks"].values()):
            doc.get("dns", {}).pop(cid, None)
        self._save(doc)
        if self._dns is not None and not any(
                self._user(m) and cid in m["endpoints"] for m in doc["networks"].values()):
            self._dns.forget(cid)

    @staticmethod
    def _user(n: dict[str, Any]) -> bool:
        return n["Driver"] == "bridge" and not n.get("builtin")

    # --- published ports --------------------------------------------------------------------

    def publish(self, container_id: str, endpoint: dict, port_bindings: dict | None) -> dict:
        """Publish the container's ports on the endpoint's address (docker's ``-p``): a socket
        holds each host port, and a DNAT rule sends its traffic to the container. Returns the
        bindings with the host address and the actual (ephemeral resolved) port. A port in use
        gets docker's error and leaves nothing behind."""
        self.ensure_default()
        wanted = ports.bindings_of(port_bindings)
        if not wanted:
            return {}
        label = "%s (%s)" % (endpoint.get("Name") or container_id, endpoint.get("EndpointID"))
        with self._locked() as doc:
            n = self._find(doc, endpoint.get("NetworkID") or "")
            ep = n["endpoints"].get(container_id)
            if ep is None or n["Driver"] != "bridge":
                raise FailedPrecondition("container %s has no bridge endpoint on network %s"
                                         % (container_id, n["Name"]))
            if n["Internal"]:
                return {}
            if container_id in doc["ports"]:
                raise Conflict("ports of container %s are already published" % container_id)
            held: list[socket.socket] = []
            records: list[dict] = []
            result: dict[str, list] = {}
            try:
                for cport, proto, host_ip, host_port in wanted:
                    if ":" in host_ip:
                        raise InvalidArgument("publishing on IPv6 address %s is not supported"
                                              % host_ip)
                    s, actual = ports.reserve(proto, host_ip, host_port, label)
                    held.append(s)
                    ip = host_ip or "0.0.0.0"
                    records.append({"Proto": proto, "HostIp": ip, "HostPort": actual,
                                    "ContainerIp": ep["IPAddress"], "ContainerPort": cport,
                                    "Bridge": n["bridge"]})
                    result.setdefault("%d/%s" % (cport, proto), []).append(
                        {"HostIp": ip, "HostPort": str(actual)})
                doc["ports"][container_id] = records
                self._save(doc)
                self._firewall(doc)
            except BaseException:
                for s in held:
                    s.close()
                if doc["ports"].pop(container_id, None) is not None:
                    self._save(doc)
                    self._firewall(doc)
                raise
            self._reserved[container_id] = held
        return result

    def ports(self, container_id: str) -> dict:
        """The container's published ports as NetworkSettings.Ports has them (``docker port``):
        {"80/tcp": [{"HostIp", "HostPort"}]}."""
        with self._locked(write=False) as doc:
            out: dict[str, list] = {}
            for p in doc["ports"].get(container_id, ()):
                out.setdefault("%d/%s" % (p["ContainerPort"], p["Proto"]), []).append(
                    {"HostIp": p["HostIp"], "HostPort": str(p["HostPort"])})
            return out

    def endpoints(self, container_id: str) -> dict:
        """The container's endpoints by network name, as NetworkSettings.Networks has them."""
        with self._locked(write=False) as doc:
            return {n["Name"]: _settings(n["endpoints"][container_id])
                    for n in doc["networks"].values() if container_id in n["endpoints"]}

    def unpublish(self, container_id: str) -> None:
        """Remove the container's published ports (rules and reserved sockets)."""
        with self._locked() as doc:
            self._close_reserved(container_id)
            if doc["ports"].pop(container_id, None) is not None:
                self._save(doc)
                self._firewall(doc)

    def _close_reserved(self, cid: str) -> None:
        for s in self._reserved.pop(cid, ()):
            s.close()

    # --- DNS ----------------------------------------------------------------------------------

    @staticmethod
    def _upstream(text: str) -> tuple[str, int]:
        host, sep, port = str(text).rpartition(":")
        if not sep:
            host, port = str(text), "53"
        try:
            import ipaddress
            host = str(ipaddress.ip_address(host))
            portn = int(port)
        except ValueError:
            raise InvalidArgument("invalid DNS upstream %r: expected IP[:PORT]" % text) \
                from None
        if not 0 < portn < 65536:
            raise InvalidArgument("invalid DNS upstream %r: bad port" % text)
        return host, portn

    def _dns_server(self) -> dnsmod.DNSServer:
        with self._mutex:
            if self._dns is None:
                upstreams = self._upstreams
                if upstreams is None:
                    from pyrunc.engine.network.files import HOST_RESOLV_CONF
                    upstreams = []
                    with contextlib.suppress(OSError), open(HOST_RESOLV_CONF) as f:
                        for line in f:
                            w = line.split()
                            if len(w) >= 2 and w[0] == "nameserver":
                                with contextlib.suppress(InvalidArgument):
                                    upstreams.append(self._upstream(w[1]))
                self._dns = dnsmod.DNSServer(self._resolve, upstreams, self._upstreams_for)
            return self._dns

    def set_dns_servers(self, container_id: str, servers: Iterable[str] | None) -> None:
        """The servers (``--dns``: "ip" or "ip:port") the embedded server forwards the
        container's other names to, instead of the defaults (None or empty: the defaults);
        kept until the container leaves its last network."""
        pairs = [list(self._upstream(x)) for x in servers or ()]
        with self._locked() as doc:
            dns = doc.setdefault("dns", {})
            if pairs:
                dns[container_id] = pairs
            else:
                dns.pop(container_id, None)

    def _upstreams_for(self, container_id: str) -> Servers | None:
        with self._locked(write=False) as doc:
            pairs = doc.get("dns", {}).get(container_id)
            return [(h, p) for h, p in pairs] if pairs else None

    def _resolve(self, container_id: str, name: str) -> tuple[str, ...] | None:
        with self._locked(write=False) as doc:
            out = []
            for n in doc["networks"].values():
                if not self._user(n) or container_id not in n["endpoints"]:
                    continue
                for cid, e in n["endpoints"].items():
                    names = [e["Name"], cid[:12]] + list(e["Aliases"])
                    if name in (x.lower() for x in names) and e["IPAddress"] not in out:
                        out.append(e["IPAddress"])
            return tuple(out) or None

    # --- recovery -----------------------------------------------------------------------------

    def sweep(self, live_container_ids: Iterable[str]) -> dict:
        """Remove what containers not in ``live_container_ids`` left (veths, addresses,
        published ports and their rules, DNS listeners, namespaces), addresses no endpoint
        holds, veths on our bridges no endpoint owns; recreate missing bridges; rewrite the
        rules; hold again the published ports of live containers whose holder died. Returns
        {"Endpoints": [container IDs], "Addresses": n, "Links": [names]} (and "Warnings")."""
        live = set(live_container_ids)
        report: dict[str, Any] = {"Endpoints": [], "Addresses": 0, "Links": []}
        self.ensure_default()
        with self._locked() as doc:
            for n in doc["networks"].values():
                for cid in [c for c in n["endpoints"] if c not in live]:
                    self._drop_endpoint(doc, n, cid)
                    report["Endpoints"].append(cid)
                owners = {e["EndpointID"] for e in n["endpoints"].values()}
                for addr, owner in list(n.get("allocated", {}).items()):
                    if owner not in owners:
                        ipam.release(n, addr)
                        report["Addresses"] += 1
            for cid in [c for c in doc["ports"] if c not in live]:
                self._close_reserved(cid)
                del doc["ports"][cid]
            for cid, records in doc["ports"].items():
                if cid not in self._reserved:           # a survivor of a dead engine process
                    self._reserved[cid] = _hold_again(records, report)
            self._save(doc)
            for n in doc["networks"].values():
                DRIVERS[n["Driver"]].create(n)
            bridges = {n["bridge"] for n in doc["networks"].values() if n.get("bridge")}
            known = {e["host_if"] for n in doc["networks"].values()
                     for e in n["endpoints"].values()}
            current = netlink.links()
            indexes = {current[b][0] for b in bridges if b in current}
            for ifname, (_, kind, master) in current.items():
                if kind == "veth" and master in indexes and ifname not in known:
                    netlink.delete_link(ifname)
                    report["Links"].append(ifname)
            firewall.forget_checks(doc, self._chains(doc))
            self._firewall(doc)
            for n in doc["networks"].values():         # survivors of a dead engine process
                for cid, ep in n["endpoints"].items():
                    if self._user(n) and os.path.exists(ep["netns"]):
                        try:
                            self._dns_server().listen(cid, ep["netns"])
                        except (OSError, PyruncError) as e:
                            report.setdefault("Warnings", []).append(
                                "DNS for container %s: %s" % (cid, e))
        if self._dns is not None:
            for cid in self._dns.containers():
                if cid not in live:
                    self._dns.forget(cid)
        sandboxes = os.path.join(self.root, "netns")
        if os.path.isdir(sandboxes):
            for cid in os.listdir(sandboxes):
                if cid not in live:
                    netlink.remove_netns(os.path.join(sandboxes, cid))
        return report

    def close(self) -> None:
        """Stop the DNS server and let go of the reserved ports (rules and records stay: the
        containers keep running; ``sweep`` at the next start reconciles)."""
        if self._dns is not None:
            self._dns.close()
            self._dns = None
        for cid in list(self._reserved):
            self._close_reserved(cid)

    def teardown(self) -> None:
        """Remove every network this root made, its bridges and the rules (for a root being
        deleted; refused while a container is attached)."""
        with self._locked() as doc:
            for n in doc["networks"].values():
                if n["endpoints"]:
                    raise Conflict("error while removing network: network %s id %s has active "
                                   "endpoints" % (n["Name"], n["Id"]))
            for n in list(doc["networks"].values()):
                DRIVERS[n["Driver"]].delete(n)
            doc["networks"] = {}
            doc["ports"] = {}
            self._save(doc)
            self._firewall(doc)
        self._defaults_ok = False
        self.close()
        netlink.release_netns_dir(os.path.join(self.root, "netns"))


def default_bridge(root: str, default_root: str) -> str:
    """The default bridge's device for an engine root when none is named (pydockerd without
    ``--bridge``): ``pyr0`` for ``default_root``, ``pyr`` and 6 hex digits of the root's real
    path for any other, so engines on two roots in one network namespace have bridges (and
    so chains) of their own."""
    real = os.path.realpath(root)
    if real == os.path.realpath(default_root):
        return firewall.DEFAULT_BRIDGE
    return "pyr" + hashlib.sha256(real.encode()).hexdigest()[:6]


POOL_LOCK = "\0pyrunc-network-pools"


@contextlib.contextmanager
def _host_lock() -> Iterator[None]:
    """Held while a root picks a subnet and its bridge takes it: the roots sharing a network
    namespace see each other's bridges only through their routes, so two choosing at once
    could take one pool. The lock is an abstract unix socket's name, which belongs to one
    network namespace (the scope of the routes), leaves no file and goes with its holder."""
    import errno
    import time
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        delay = 0.001
        while True:
            try:
                s.bind(POOL_LOCK)
                break
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        yield
    finally:
        s.close()


def _definitions(doc: dict[str, Any]) -> str:
    """The networks of the document without what their containers change (endpoints,
    addresses): what ``_save`` writes durably."""
    return json.dumps({nid: {k: v for k, v in n.items()
                             if k not in ("endpoints", "allocated", "last_allocated")}
                       for nid, n in doc["networks"].items()}, sort_keys=True)


def _hold_again(records: list[dict], report: dict[str, Any]) -> list[socket.socket]:
    """Reserve the host ports of published records again (after the process that held them
    died); a port somebody took meanwhile is reported, its rule kept."""
    held = []
    for p in records:
        try:
            held.append(ports.reserve(p["Proto"], p["HostIp"], str(p["HostPort"]),
                                      "(restored)")[0])
        except PyruncError as e:
            report.setdefault("Warnings", []).append(str(e))
    return held


def _veth_name(endpoint_id: str, taken: set[str]) -> str:
    """The host end's name: derived from the endpoint ID (so a sweep can tell ours), never one
    another endpoint has, nor one a link of the host has (a released endpoint's veth lives
    on until the kernel has destroyed its namespace)."""
    digest = hashlib.sha256(endpoint_id.encode()).hexdigest()
    return next(name for name in ("veth" + digest[i:i + 7] for i in range(0, 57))
                if name not in taken and not netlink.link_exists(name))


def _settings(ep: dict[str, Any]) -> dict:
    return {"IPAMConfig": None, "Links": None, "Aliases": list(ep["Aliases"]) or None,
            "MacAddress": ep["MacAddress"], "NetworkID": ep["NetworkID"],
            "EndpointID": ep["EndpointID"], "Gateway": ep["Gateway"],
            "IPAddress": ep["IPAddress"], "IPPrefixLen": ep["IPPrefixLen"],
            "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "DriverOpts": None, "DNSNames": None, "Name": ep["Name"]}


def _mac(text: str) -> str:
    parts = str(text).split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p)
                                  for p in parts):
        raise InvalidArgument("invalid MAC address: %s" % text)
    if int(parts[0], 16) & 1:
        raise InvalidArgument("invalid MAC address: %s: a multicast address" % text)
    return text.lower()


def _filters(filters: Any, allowed: tuple[str, ...]) -> dict[str, list[str]]:
    if not filters:
        return {}
    if not isinstance(filters, dict):
        raise InvalidArgument("invalid filters: expected an object")
    out = {}
    for key, values in filters.items():
        if key not in allowed:
            raise InvalidArgument("invalid filter '%s'" % key)
        if isinstance(values, dict):            # the API's {"value": true} form
            values = [v for v, on in values.items() if on]
        if isinstance(values, str):
            values = [values]
        out[key] = [str(v) for v in values]
    return out


def _label_match(labels: dict[str, str], want: str) -> bool:
    key, sep, value = want.partition("=")
    return key in labels and (not sep or labels[key] == value)


def _matches(n: dict[str, Any], flt: dict[str, list[str]]) -> bool:
    for key, values in flt.items():
        if key == "name" and not any(v in n["Name"] for v in values):
            return False
        if key == "id" and not any(n["Id"].startswith(v) for v in values):
            return False
        if key == "driver" and n["Driver"] not in values:
            return False
        if key == "scope" and "local" not in values:
            return False
        if key == "label" and not all(_label_match(n["Labels"], v) for v in values):
            return False
        if key == "label!" and any(_label_match(n["Labels"], v) for v in values):
            return False
        if key == "type":
            for v in values:
                if v not in ("custom", "builtin"):
                    raise InvalidArgument("invalid filter: 'type'='%s'" % v)
            kind = "builtin" if n.get("builtin") else "custom"
            if kind not in values:
                return False
        if key == "dangling":
            for v in values:
                if v not in ("true", "false", "1", "0"):
                    raise InvalidArgument("invalid filter 'dangling=%s'" % v)
            dangling = not n.get("builtin") and not n["endpoints"]
            if dangling != (values[0] in ("true", "1")):
                return False
    return True


def _until(value: str) -> int:
    """A prune ``until`` value (Unix seconds or an RFC 3339 time) in nanoseconds."""
    if value.replace(".", "", 1).isdigit():
        return int(float(value) * 1e9)
    try:
        return timestamps.parse_ns(value)
    except Exception:
        raise InvalidArgument("invalid filter 'until=%s'" % value) from None
