"""Containers on networks: the glue between the container service and ``pyrunc.engine.network``.

At create (``prepare``) the network options are checked with docker's messages and the record's
NetworkSettings names the networks to join. At start (``attach``, the container's lock held) the
container gets a network namespace of its own (``NetworkService.create_sandbox``, a bind mount
under the network root), an endpoint on each of its networks, its published ports and its
hosts/resolv.conf files; the namespace's path goes to the OCI spec. The veths are plugged by a
thread of their own while the runtime creates the task (which only needs the namespace to
exist); ``plugged`` waits for them before the process starts. When the process has exited
(however that was noticed: the refresh on read, a stop, a remove) ``detach`` releases the
endpoints and removes the namespace, whose veths the kernel then destroys by itself
(``NetworkService.release``). ``container:<ref>`` joins the other container's namespace and
shares its files; ``host`` uses the host's namespace.

``bridge``: the default bridge's device (dockerd's ``--bridge``; pydockerd gives one unless
``--bridge=none``). ``"none"`` is dockerd's ``--bridge=none``: no default bridge, so
containers of the default mode get a namespace of the engine with only loopback (and, once
started, ``Config.NetworkDisabled``), while ``host``, ``none`` and user-defined networks work
as usual.
``None`` (the library's default, so that an Engine never changes a link, an address or a
firewall rule of the host unless asked to) turns networking off: containers of the default
and ``none`` modes get a namespace with only loopback, ``host`` and ``container:`` work, and
there are no networks to list, create or join.
"""
from __future__ import annotations

import _thread
import os
import shutil
import threading

from pyrunc.engine.network import files as netfiles
from pyrunc.engine.network import ports as netports
from pyrunc.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound, shown

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Callable, Iterable
    from pyrunc.engine.container.store import Container
    from pyrunc.engine.events import EventService
    from pyrunc.engine.network import NetworkService

NO_BRIDGE = "none"          # dockerd's --bridge value for "no default bridge"
RUNTIME_KEYS = ("IPAddress", "IPPrefixLen", "Gateway", "MacAddress", "EndpointID")
SHARED_FILES = ("hosts", "resolv.conf", "hostname")


def _mode(hc: dict[str, Any]) -> str:
    mode = hc.get("NetworkMode") or "bridge"
    return "bridge" if mode == "default" else mode


def _empty_endpoint(cfg: dict[str, Any] | None) -> dict[str, Any]:
    cfg = dict(cfg or {})
    ipam = cfg.get("IPAMConfig") or None
    if ipam is not None and not isinstance(ipam, dict):
        raise InvalidArgument("invalid IPAMConfig: expected an object")
    aliases = cfg.get("Aliases") or None
    if aliases is not None and (not isinstance(aliases, list)
                                or not all(isinstance(a, str) for a in aliases)):
        raise InvalidArgument("invalid Aliases: expected a list of strings")
    mac = cfg.get("MacAddress") or ""
    if not isinstance(mac, str):
        raise InvalidArgument("invalid MacAddress: expected a string")
    return {"IPAMConfig": ipam, "Links": None, "Aliases": aliases, "MacAddress": mac,
            "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
            "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "DriverOpts": None, "DNSNames": None}


def summary_ports(settings: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``docker ps``'s Ports: one entry per published binding, and the exposed ones."""
    out: list[dict[str, Any]] = []
    for key, binds in sorted(((settings or {}).get("Ports") or {}).items()):
        port, _, proto = key.partition("/")
        if not binds:
            out.append({"PrivatePort": int(port), "Type": proto})
            continue
        for b in binds:
            out.append({"IP": b.get("HostIp") or "0.0.0.0", "PrivatePort": int(port),
                        "PublicPort": int(b.get("HostPort") or 0), "Type": proto})
    return out


class ContainerNetworking:
    """The networks of the containers of one engine root (see the module's text)."""

    def __init__(self, root: str, *, bridge: str | None = None, iptables: bool = True,
                 dns_upstreams: Iterable[str] | None = None,
                 events: EventService | None = None) -> None:
        self.root = root
        self.events = events
        self.bridge = bridge
        self.iptables = iptables
        self.dns_upstreams = list(dns_upstreams) if dns_upstreams is not None else None
        self._service: NetworkService | None = None
        self._made = threading.Lock()
        self._plugging: dict[str, _Plugging] = {}     # container ID -> its veths being plugged

    @property
    def enabled(self) -> bool:
        return self.bridge is not None

    def _disabled(self, ref: str) -> bool:
        """Whether ``ref`` of a new container's networks gets no endpoint: the default bridge
        where there is none, and (networking off) ``none``."""
        if self.bridge is None:
            return ref in ("bridge", "none")
        return ref == "bridge" and self.bridge == NO_BRIDGE

    @property
    def service(self) -> NetworkService:
        """The NetworkService (made on first use: the default networks come with it);
        FailedPrecondition when networking is off."""
        bridge = self.bridge
        if bridge is None:
            raise FailedPrecondition("networking is off: the engine was started without a "
                                     "bridge (pydockerd --bridge=none, Engine(bridge=None))")
        with self._made:                # one service (one DNS server) per engine
            if self._service is None:
                from pyrunc.engine.network import NetworkService
                self._service = NetworkService(self.root,
                                               bridge_name=None if bridge == NO_BRIDGE
                                               else bridge,
                                               iptables=self.iptables,
                                               dns_upstreams=self.dns_upstreams)
            return self._service

    def in_use(self) -> bool:
        """Whether networking is on and the service has ever been used on this root."""
        return self.enabled and (self._service is not None or os.path.exists(
            os.path.join(self.root, "networks.json")))

    def _managed(self, mode: str) -> bool:
        """Whether containers of ``mode`` are given endpoints by the service."""
        if mode == "host" or mode.startswith("container:"):
            return False
        return self.enabled

    def _emit(self, action: str, c: Container, ep: dict[str, Any], name: str) -> None:
        """dockerd's network event of an endpoint joining or leaving (type: the driver)."""
        if self.events is None:
            return
        try:
            driver = self.service.inspect(ep.get("NetworkID") or name)["Driver"]
        except NotFound:
            driver = ""
        self.events.emit("network", action, ep.get("NetworkID") or "",
                         {"container": c.id, "name": name, "type": driver})

    # ------------------------------------------------------------------ create
    def prepare(self, hc: dict[str, Any], config: dict[str, Any],
                networking_config: dict[str, Any] | None,
                lookup: Callable[[str], Container]) -> dict[str, Any]:
        """Check the network options of a new container; its NetworkSettings record."""
        mode = _mode(hc)
        if not isinstance(mode, str):
            raise InvalidArgument("invalid NetworkMode: expected a string")
        endpoints = (networking_config or {}).get("EndpointsConfig") or {}
        if not isinstance(endpoints, dict):
            raise InvalidArgument("invalid EndpointsConfig: expected an object")
        endpoints = {("bridge" if k == "default" else k): v for k, v in endpoints.items()}
        publishes = bool(hc.get("PortBindings")) or bool(hc.get("PublishAllPorts"))
        netports.bindings_of(hc.get("PortBindings"))        # docker's messages for bad ones
        extra_hosts = hc.get("ExtraHosts") or []
        for entry in extra_hosts:
            netfiles.extra_host(entry)
        netfiles.resolv_text("", mode, hc.get("Dns") or (), hc.get("DnsSearch") or (),
                             hc.get("DnsOptions") or ())
        mac = config.get("MacAddress") or ""
        if mode.startswith("container:"):
            ref = mode.split(":", 1)[1]
            if not ref:
                raise InvalidArgument("invalid NetworkMode: %s" % mode)
            if config.get("Hostname"):
                raise InvalidArgument("conflicting options: hostname and the network mode")
            if publishes:
                raise InvalidArgument("conflicting options: port publishing and the container "
                                      "type network mode")
            if mac:
                raise InvalidArgument("conflicting options: mac-address and the network mode")
            if hc.get("Dns") or hc.get("DnsSearch") or hc.get("DnsOptions"):
                raise InvalidArgument("conflicting options: dns and the network mode")
            if extra_hosts:
                raise InvalidArgument("conflicting options: custom host-to-IP mapping and the "
                                      "network mode")
            if endpoints:
                raise InvalidArgument("conflicting options: container type network can't be "
                                      "used with other networks")
            lookup(ref)                         # NotFound "No such container: REF"
            networks: dict[str, Any] = {}
        elif mode == "host":
            if mac:
                raise InvalidArgument("conflicting options: mac-address and the network mode")
            networks = {"host": _empty_endpoint(endpoints.get("host"))}
        else:
            networks = {}
            if mode == "none" and len(endpoints) > 1:
                raise InvalidArgument("conflicting options: cannot attach both user-defined "
                                      "and non-user-defined network-modes")
            names = [mode] + [n for n in endpoints if n != mode]
            for i, ref in enumerate(names):
                if not isinstance(ref, str) or not ref:
                    raise InvalidArgument("invalid network name %r" % (ref,))
                ep = _empty_endpoint(endpoints.get(ref))
                if i == 0 and mac and not ep["MacAddress"]:
                    ep["MacAddress"] = mac
                if self._disabled(ref):
                    if ep["IPAMConfig"] or ep["Aliases"]:
                        raise InvalidArgument("user specified IP address and network aliases "
                                              "are supported only for user defined networks")
                    networks[ref] = ep
                    continue
                try:
                    if not self.enabled:
                        raise NotFound("network %s not found" % shown(ref))
                    net = self.service.inspect(ref)
                except NotFound as e:
                    # docker's message; 400, not 404, which the CLI takes for a missing image
                    raise InvalidArgument(str(e)) from None
                if net["Name"] in ("bridge", "none") and (
                        (ep["IPAMConfig"] or {}).get("IPv4Address") or ep["Aliases"]):
                    raise InvalidArgument("user specified IP address is supported on user "
                                          "defined networks only" if ep["IPAMConfig"] else
                                          "network-scoped alias is supported only for "
                                          "containers in user defined networks")
                if net["Name"] == "none" and i:
                    raise InvalidArgument("conflicting options: cannot attach both "
                                          "user-defined and non-user-defined network-modes")
                ep["NetworkID"] = net["Id"]
                networks[net["Name"]] = ep
        return _settings_record(networks)

    # ------------------------------------------------------------------ start, exit
    def attach(self, c: Container, lookup: Callable[[str], Container]) -> str | None:
        """Connect the container (its lock held, its record saved by the caller) before its
        task is created; the network namespace to give the runtime (None: the runtime's own,
        or the host's). Its namespace, its addresses, published ports and files are made here;
        its veths by a thread, meanwhile: ``plugged`` waits for them (before the process
        starts), ``detach`` too. Everything it made is undone when it fails."""
        hc = c.host_config
        mode = _mode(hc)
        if mode == "host":
            return None
        if mode.startswith("container:"):
            return self._join_other(c, lookup(mode.split(":", 1)[1]))
        if not self._managed(mode):
            return None
        svc = self.service
        settings = c.record["NetworkSettings"]
        if settings.get("SandboxKey"):
            self.detach(c)              # what a run that was not torn down left
        joined: list[tuple[str, dict[str, Any]]] = []
        try:
            sandbox = svc.create_sandbox(c.id)
            settings["SandboxKey"] = sandbox
            settings["SandboxID"] = c.id
            if c.host_config.get("Dns"):    # the embedded server forwards to them (user networks)
                svc.set_dns_servers(c.id, c.host_config["Dns"])
            eps = []
            for name, ep in list(settings["Networks"].items()):
                if name == "bridge" and self._disabled(name):
                    # no default bridge: loopback only (unless joined); dockerd's start says so
                    c.config["NetworkDisabled"] = True
                    continue
                ipv4 = (ep.get("IPAMConfig") or {}).get("IPv4Address") or None
                got = svc.connect(ep.get("NetworkID") or name, c.id, sandbox, c.name,
                                  aliases=ep.get("Aliases") or (), ipv4=ipv4,
                                  mac=ep.get("MacAddress") or None, plug=False)
                _fill(ep, got)
                eps.append(got)
                joined.append((name, ep))
            self._plugging[c.id] = _Plugging(svc, c.id, joined)
            self._publish(c, eps)
            self._write_files(c, eps)
            settings.update(_top_level(settings["Networks"].get("bridge")))
        except BaseException:
            if c.id not in self._plugging:
                for _, ep in joined:    # recorded, never plugged: no event (release frees)
                    _clear(ep)
            self.detach(c)
            raise
        return sandbox

    def _publish(self, c: Container, eps: list[dict[str, Any]]) -> None:
        hc = c.host_config
        bindings = {k: list(v or [{}]) for k, v in (hc.get("PortBindings") or {}).items()}
        exposed = dict(c.config.get("ExposedPorts") or {})
        if hc.get("PublishAllPorts"):
            for key in exposed:
                bindings.setdefault(key if "/" in key else key + "/tcp", [{}])
        ports: dict[str, Any] = {(k if "/" in k else k + "/tcp"): None for k in exposed}
        bridge_eps = [e for e in eps if e.get("IPAddress")]
        if bindings and bridge_eps:
            published = self.service.publish(c.id, bridge_eps[0], bindings)
            ports.update(published)
            for key in bindings:
                ports.setdefault(key if "/" in key else key + "/tcp", None)
        c.record["NetworkSettings"]["Ports"] = ports

    def _write_files(self, c: Container, eps: list[dict[str, Any]]) -> None:
        hc = c.host_config
        netfiles.write_container_files(
            c.dir, c.config.get("Hostname") or c.id[:12], eps,
            extra_hosts=hc.get("ExtraHosts"), dns=hc.get("Dns"),
            dns_search=hc.get("DnsSearch"), dns_options=hc.get("DnsOptions"),
            network_mode=_primary_name(c))

    def _join_other(self, c: Container, other: Container) -> str:
        """``container:<ref>``: the other's namespace (it must run) and its files."""
        if not other.state.get("Running") or not other.state.get("Pid"):
            raise Conflict("cannot join network namespace of a non running container: %s"
                           % other.id)
        if other.id == c.id:
            raise InvalidArgument("cannot join own network namespace")
        if _mode(other.host_config).startswith("container:"):
            raise InvalidArgument("cannot join network namespace of container %s: it shares "
                                  "another container's namespace" % other.id)
        for name in SHARED_FILES:
            src = os.path.join(other.dir, name)
            if os.path.exists(src):
                shutil.copyfile(src, os.path.join(c.dir, name))
        sandbox = other.record["NetworkSettings"].get("SandboxKey") or ""
        if sandbox and os.path.exists(sandbox):
            return sandbox
        return "/proc/%d/ns/net" % other.state["Pid"]

    def plugged(self, c: Container) -> None:
        """Wait for the veths ``attach`` left plugging (nothing if none) and emit their
        ``network connect`` events; a failure is raised once its endpoint is undone (the
        caller then deletes the task and detaches, as after a failed ``attach``)."""
        pending = self._plugging.pop(c.id, None)
        if pending is None:
            return
        pending.wait()
        for name, ep in pending.joined[:pending.plugged]:
            self._emit("connect", c, ep, name)
        if pending.error is not None:
            for _, ep in pending.joined[pending.plugged:]:
                _clear(ep)              # never connected: no disconnect either
            raise pending.error

    def detach(self, c: Container) -> None:
        """Release the endpoints (published ports, addresses, DNS, records) and remove the
        namespace (nothing if it has none) once the container's processes are gone; the
        kernel then destroys the namespace and its veths by itself (``NetworkService.release``).
        A plugging ``attach`` left is waited for first. The record's runtime fields are
        cleared (the caller saves it)."""
        settings = c.record.get("NetworkSettings") or {}
        if c.id in self._plugging:
            try:
                self.plugged(c)
            except BaseException:
                pass                    # undone; what it plugged is released below
        if self.in_use():
            left = self.service.release(c.id)
            for name, ep in (settings.get("Networks") or {}).items():
                if ep.get("EndpointID") and ep.get("NetworkID") in left:
                    self._emit("disconnect", c, ep, name)
        for ep in (settings.get("Networks") or {}).values():
            _clear(ep)
        settings.update(SandboxKey="", SandboxID="", Ports={}, **_top_level(None))

    # ------------------------------------------------------------------ connect, disconnect
    def connect(self, c: Container, ref: str, endpoint_config: dict[str, Any] | None,
                running: bool) -> None:
        """docker network connect (the container's lock held; the caller saves the record):
        a running container gets the endpoint in its namespace at once."""
        mode = _mode(c.host_config)
        if mode == "host" or mode.startswith("container:") or mode == "none":
            raise FailedPrecondition("container sharing network namespace with another "
                                     "container or host cannot be connected to any other "
                                     "network" if mode != "none" else
                                     "container cannot be connected to multiple networks "
                                     "with one of the networks in private (none) mode")
        net = self.service.inspect(ref)
        if net["Name"] in ("host", "none"):
            raise FailedPrecondition("container cannot be disconnected from host network or "
                                     "connected to host network")
        settings = c.record["NetworkSettings"]
        if net["Name"] in settings["Networks"]:
            raise Conflict("endpoint with name %s already exists in network %s"
                           % (c.name.lstrip("/"), net["Name"]))
        ep = _empty_endpoint(endpoint_config)
        ep["NetworkID"] = net["Id"]
        if net["Name"] == "bridge" and ((ep["IPAMConfig"] or {}).get("IPv4Address")
                                        or ep["Aliases"]):
            raise InvalidArgument("user specified IP address and network aliases are "
                                  "supported only for user defined networks")
        sandbox = settings.get("SandboxKey") or ""
        if running and sandbox:
            ipv4 = (ep["IPAMConfig"] or {}).get("IPv4Address") or None
            got = self.service.connect(net["Id"], c.id, sandbox, c.name,
                                       aliases=ep["Aliases"] or (), ipv4=ipv4,
                                       mac=ep["MacAddress"] or None)
            _fill(ep, got)
            self._emit("connect", c, ep, net["Name"])
        elif running:
            raise FailedPrecondition("container %s has no network namespace of the engine to "
                                     "connect (it was started without the default bridge)"
                                     % c.id)
        settings["Networks"][net["Name"]] = ep
        if running:
            eps = [e for e in settings["Networks"].values() if e.get("EndpointID")]
            self._write_files(c, eps)

    def disconnect(self, c: Container, ref: str, force: bool, running: bool) -> None:
        """docker network disconnect (the container's lock held; the caller saves)."""
        net = self.service.inspect(ref)
        settings = c.record["NetworkSettings"]
        if net["Name"] not in settings["Networks"]:
            if force:
                return
            raise FailedPrecondition("container %s is not connected to network %s"
                                     % (c.id, net["Name"]))
        if net["Name"] == "host" or _mode(c.host_config) == "host":
            raise FailedPrecondition("container cannot be disconnected from host network or "
                                     "connected to host network")
        ep = settings["Networks"].pop(net["Name"])
        if running and ep.get("EndpointID"):
            self.service.disconnect(net["Id"], c.id, force=True)
            self._emit("disconnect", c, ep, net["Name"])
            eps = [e for e in settings["Networks"].values() if e.get("EndpointID")]
            self._write_files(c, eps)
        settings.update(_top_level(settings["Networks"].get("bridge")))

    # ------------------------------------------------------------------ recovery
    def sweep(self, live: Iterable[str]) -> dict[str, Any] | None:
        """What containers not in ``live`` left (at engine start); None if networks were
        never used on this root."""
        if not self.in_use():
            return None
        return self.service.sweep(live)

    def close(self) -> None:
        if self._service is not None:
            self._service.close()


class _Plugging:
    """A starting container's veths, plugged in order by a thread of their own
    (``NetworkService.plug``), stopping at the first failure: ``plugged`` of ``joined``
    ((network name, endpoint settings)) are, ``error`` is the failure."""

    def __init__(self, svc: NetworkService, container_id: str,
                 joined: list[tuple[str, dict[str, Any]]]) -> None:
        self.joined = joined
        self.plugged = 0
        self.error: BaseException | None = None
        self._done = _thread.allocate_lock()
        self._done.acquire()
        _thread.start_new_thread(self._run, (svc, container_id))

    def _run(self, svc: NetworkService, container_id: str) -> None:
        try:
            for name, ep in self.joined:
                svc.plug(ep.get("NetworkID") or name, container_id)
                self.plugged += 1
        except BaseException as e:      # handed to the waiter
            self.error = e
        finally:
            self._done.release()

    def wait(self) -> None:
        with self._done:
            pass


def _clear(ep: dict[str, Any]) -> None:
    for key in RUNTIME_KEYS:
        ep[key] = 0 if key == "IPPrefixLen" else ""


def _fill(ep: dict[str, Any], got: dict[str, Any]) -> None:
    for key in RUNTIME_KEYS + ("NetworkID", "Aliases"):
        ep[key] = got.get(key)
    ep["IPPrefixLen"] = got.get("IPPrefixLen") or 0


def _primary_name(c: Container) -> str:
    nets = list((c.record["NetworkSettings"].get("Networks") or {}))
    mode = _mode(c.host_config)
    return nets[0] if nets and mode not in ("bridge", "none") else mode


def _top_level(bridge_ep: dict[str, Any] | None) -> dict[str, Any]:
    """docker's deprecated top-level fields: those of the default bridge's endpoint."""
    ep = bridge_ep or {}
    return {"EndpointID": ep.get("EndpointID") or "", "Gateway": ep.get("Gateway") or "",
            "IPAddress": ep.get("IPAddress") or "", "IPPrefixLen": ep.get("IPPrefixLen") or 0,
            "MacAddress": ep.get("MacAddress") or "",
            "Bridge": ""}


def _settings_record(networks: dict[str, Any]) -> dict[str, Any]:
    return {"Bridge": "", "SandboxID": "", "SandboxKey": "", "Ports": {},
            "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None, "EndpointID": "",
            "Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": "",
            "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "", "Networks": networks}

