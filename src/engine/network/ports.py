"""Published ports: docker's ``-p`` grammar and the host sockets that reserve the ports.

``parse_port_specs(["127.0.0.1:8080:80/tcp", "9000-9001:90-91", "53/udp"])`` gives
``(ExposedPorts, PortBindings)`` in the Engine API's shapes, with docker's messages for bad
input. ``reserve`` binds (and for TCP listens on) each host address and port as docker-proxy
does, so the port is really taken while the container publishes it; the traffic itself is
DNAT'd by the kernel and never reaches these sockets.
"""
from __future__ import annotations

import errno
import ipaddress
import socket

from pyrunc.errors import Conflict, InvalidArgument, Unavailable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Iterable

PROTOS = ("tcp", "udp", "sctp")


def _port_range(text: str, what: str, raw: str) -> tuple[int, int]:
    start, sep, end = text.partition("-")
    try:
        lo = int(start, 10) if start.isdigit() else -1
        hi = (int(end, 10) if end.isdigit() else -1) if sep else lo
    except ValueError:
        lo = hi = -1
    if not (0 <= lo <= 65535 and 0 <= hi <= 65535) or hi < lo or (what == "containerPort"
                                                                    and lo == 0):
        raise InvalidArgument("invalid %s: %s" % (what, text or raw))
    return lo, hi


def _split(raw: str) -> tuple[str, str, str]:
    if raw.startswith("["):         # [v6]:host:container
        close = raw.find("]")
        if close < 0:
            raise InvalidArgument("invalid IP address: %s" % raw)
        ip, rest = raw[1:close], raw[close + 1:].lstrip(":")
        host, _, container = rest.rpartition(":")
        return ip, host, container
    parts = raw.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    # an unbracketed IPv6 address: the last two fields are the ports
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def parse_port_spec(raw: str) -> list[tuple[str, dict]]:
    """One ``-p`` value -> [("80/tcp", {"HostIp", "HostPort"}), ...] (one per port of a range)."""
    if not isinstance(raw, str) or not raw or len(raw) > 256 or any(
            c.isspace() or not c.isprintable() for c in raw):
        raise InvalidArgument("invalid port specification: %r" % (raw,))
    body, sep, proto = raw.rpartition("/")
    if not sep:
        body, proto = raw, "tcp"
    proto = proto.lower()
    if proto not in PROTOS:
        raise InvalidArgument("invalid proto: %s" % proto)
    ip, host, container = _split(body)
    if not container:
        raise InvalidArgument("no port specified: %s<empty>" % raw)
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise InvalidArgument("invalid IP address: %s" % ip) from None
    c_lo, c_hi = _port_range(container, "containerPort", raw)
    h_lo = h_hi = 0
    if host:
        h_lo, h_hi = _port_range(host, "hostPort", raw)
        if (h_hi - h_lo) != (c_hi - c_lo) and c_hi != c_lo:
            raise InvalidArgument("invalid ranges specified for container and host Ports: %s "
                                  "and %s" % (container, host))
    out = []
    for i in range(c_hi - c_lo + 1):
        if not host:
            host_port = ""
        elif c_hi == c_lo and h_hi != h_lo:
            host_port = "%d-%d" % (h_lo, h_hi)      # any one port of the range
        else:
            host_port = str(h_lo + i)
        out.append(("%d/%s" % (c_lo + i, proto), {"HostIp": ip, "HostPort": host_port}))
    return out


def parse_port_specs(specs: Iterable[str]) -> tuple[dict, dict]:
    """``-p`` values -> (ExposedPorts {"80/tcp": {}}, PortBindings {"80/tcp": [{...}]})."""
    exposed: dict = {}
    bindings: dict = {}
    for raw in specs:
        for port, binding in parse_port_spec(raw):
            exposed[port] = {}
            bindings.setdefault(port, []).append(binding)
    return exposed, bindings


def _host_ports(text: str) -> list[int]:
    if not text:
        return [0]
    lo, hi = _port_range(text, "hostPort", text)
    return list(range(lo, hi + 1))


def reserve(proto: str, host_ip: str, host_port: str, endpoint: str) -> tuple[socket.socket, int]:
    """Bind a socket on ``host_ip:host_port`` (a range: the first free port; "" or "0": a port
    the kernel picks) and listen for TCP; returns it and the port. A port in use gets docker's
    error naming ``endpoint`` ("NAME (ID)")."""
    ip = host_ip or "0.0.0.0"
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(ip).version == 6 else socket.AF_INET
    except ValueError:
        raise InvalidArgument("invalid IP address: %s" % ip) from None
    kind, sproto = {"tcp": (socket.SOCK_STREAM, 0), "udp": (socket.SOCK_DGRAM, 0),
                    "sctp": (socket.SOCK_STREAM, socket.IPPROTO_SCTP)}[proto]
    candidates = _host_ports(host_port)
    for port in candidates:
        try:
            s = socket.socket(family, kind | socket.SOCK_CLOEXEC, sproto)
        except OSError as e:
            raise Unavailable("%s ports cannot be published: %s" % (proto, e.strerror)) from None
        try:
            s.bind((ip, port))
            if kind == socket.SOCK_STREAM:
                s.listen(1)
        except OSError as e:
            s.close()
            if e.errno == errno.EADDRINUSE:
                if port == candidates[-1]:
                    shown = host_port if host_port and "-" in host_port else str(port)
                    raise Conflict("driver failed programming external connectivity on "
                                   "endpoint %s: Bind for %s:%s failed: port is already "
                                   "allocated" % (endpoint, ip, shown)) from None
                continue
            raise InvalidArgument("driver failed programming external connectivity on endpoint "
                                  "%s: listen %s %s:%d: %s" % (endpoint, proto, ip, port,
                                                               str(e.strerror).lower())) from None
        return s, s.getsockname()[1]
    raise AssertionError("unreachable")


def bindings_of(port_bindings: Any) -> list[tuple[int, str, str, str]]:
    """Engine API PortBindings -> [(container_port, proto, HostIp, HostPort)], checked."""
    if port_bindings is None:
        return []
    if not isinstance(port_bindings, dict):
        raise InvalidArgument("invalid PortBindings: expected an object")
    out = []
    for key, binds in port_bindings.items():
        port, _, proto = str(key).partition("/")
        proto = (proto or "tcp").lower()
        if proto not in PROTOS:
            raise InvalidArgument("invalid proto: %s" % proto)
        c_lo, c_hi = _port_range(port, "containerPort", str(key))
        if c_lo != c_hi:
            raise InvalidArgument("invalid containerPort: %s" % port)
        for b in binds or [{}]:
            if not isinstance(b, dict):
                raise InvalidArgument("invalid PortBindings for %s: expected objects" % key)
            host_ip = str(b.get("HostIp") or "")
            host_port = str(b.get("HostPort") or "")
            if host_ip:
                try:
                    ipaddress.ip_address(host_ip)
                except ValueError:
                    raise InvalidArgument("invalid IP address: %s" % host_ip) from None
            if host_port:
                _host_ports(host_port)
            out.append((c_lo, proto, host_ip, host_port))
    return out
