"""A container's /etc/hostname, /etc/hosts and /etc/resolv.conf as docker writes them.

``write_container_files(dir, hostname, endpoints, ...)`` writes ``dir/hostname``, ``dir/hosts``
and ``dir/resolv.conf`` (the files the OCI spec binds into the container):

- hosts: docker's loopback and IPv6 lines, ``--add-host`` entries, then the container's address
  (its first endpoint's) and hostname; on ``host`` the host's own /etc/hosts.
- resolv.conf: on a user network ``nameserver 127.0.0.11`` (the embedded server, which forwards
  to the host's or ``--dns`` servers) and ``options ndots:0``; on the default bridge the host's
  file without loopback nameservers (unreachable from the container; docker's 8.8.8.8 and
  8.8.4.4 when none remain); on ``host`` the host's file. ``--dns``, ``--dns-search`` and
  ``--dns-option`` replace the host's entries of their kind.
"""
from __future__ import annotations

import ipaddress
import os

from pyrunc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Iterable

HOST_HOSTS = "/etc/hosts"
HOST_RESOLV_CONF = "/etc/resolv.conf"
FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4")
HOSTS_HEAD = ("127.0.0.1\tlocalhost\n"
              "::1\tlocalhost ip6-localhost ip6-loopback\n"
              "fe00::0\tip6-localnet\n"
              "ff00::0\tip6-mcastprefix\n"
              "ff02::1\tip6-allnodes\n"
              "ff02::2\tip6-allrouters\n")


def uses_embedded_dns(network_mode: str) -> bool:
    """Whether a container in ``network_mode`` gets the embedded server (user networks only)."""
    return network_mode not in ("", "default", "bridge", "host", "none") and not \
        network_mode.startswith("container:")


def _ip(text: str, what: str) -> str:
    try:
        return str(ipaddress.ip_address(str(text)))
    except ValueError:
        raise InvalidArgument("invalid %s: %r is not an IP address" % (what, text)) from None


def _word(text: Any, what: str) -> str:
    s = str(text)
    if not s or len(s) > 253 or any(c.isspace() or not c.isprintable() for c in s):
        raise InvalidArgument("invalid %s: %r" % (what, text))
    return s


def extra_host(entry: Any) -> tuple[str, str]:
    """``--add-host NAME:IP`` (or docker's ``NAME=IP``) -> (name, ip), checked."""
    text = str(entry)
    sep = "=" if "=" in text else ":"
    name, found, ip = text.partition(sep)
    if not found or not name or not ip:
        raise InvalidArgument("invalid argument %r for \"--add-host\" flag: expected HOST:IP"
                              % text)
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    if ip == "host-gateway":
        raise InvalidArgument("unable to derive the IP value for host-gateway")
    return _word(name, "--add-host name"), _ip(ip, "--add-host address")


def hosts_text(hostname: str, address: str | None, extra_hosts: Iterable[Any] = ()) -> str:
    lines = [HOSTS_HEAD]
    for entry in extra_hosts:
        name, ip = extra_host(entry)
        lines.append("%s\t%s\n" % (ip, name))
    if address:
        lines.append("%s\t%s\n" % (address, hostname))
    return "".join(lines)


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def resolv_text(host_text: str, network_mode: str, dns: Iterable[Any] = (),
                dns_search: Iterable[Any] = (), dns_options: Iterable[Any] = ()) -> str:
    servers = [_ip(s, "--dns") for s in dns]
    search = [_word(s, "--dns-search") for s in dns_search]
    options = [_word(s, "--dns-option") for s in dns_options]
    host_servers, host_search, host_options = [], [], []
    for line in host_text.splitlines():
        words = line.split()
        if len(words) < 2:
            continue
        if words[0] == "nameserver":
            host_servers.append(words[1])
        elif words[0] in ("search", "domain"):
            host_search = words[1:]
        elif words[0] == "options":
            host_options.extend(words[1:])
    search = search or host_search
    options = options or host_options
    if uses_embedded_dns(network_mode):
        servers = ["127.0.0.11"]
        if not any(o.startswith("ndots:") for o in options):
            options = options + ["ndots:0"]
    elif not servers:
        servers = host_servers if network_mode == "host" else [
            s for s in host_servers if not _loopback(s)] or list(FALLBACK_NAMESERVERS)
    out = ["nameserver %s" % s for s in servers]
    if search and search != ["."]:
        out.append("search " + " ".join(search))
    if options:
        out.append("options " + " ".join(options))
    return "\n".join(out) + "\n"


def _write(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read(1 << 20)
    except FileNotFoundError:
        return ""


def write_container_files(dir: str, hostname: str, endpoints: Iterable[dict],
                          extra_hosts: Iterable[Any] | None = None,
                          dns: Iterable[Any] | None = None,
                          dns_search: Iterable[Any] | None = None,
                          dns_options: Iterable[Any] | None = None,
                          network_mode: str = "bridge") -> None:
    """Write ``dir/hostname``, ``dir/hosts`` and ``dir/resolv.conf`` (see the module's text);
    ``endpoints`` are Engine API EndpointSettings, the first one giving the address."""
    name = _word(hostname, "hostname")
    if network_mode == "host":
        hosts = _read(HOST_HOSTS)
        for entry in extra_hosts or ():
            host, ip = extra_host(entry)
            hosts += "%s\t%s\n" % (ip, host)
    else:
        address = next((e.get("IPAddress") for e in endpoints if e.get("IPAddress")), None)
        hosts = hosts_text(name, address, extra_hosts or ())
    resolv = resolv_text(_read(HOST_RESOLV_CONF), network_mode, dns or (), dns_search or (),
                         dns_options or ())
    _write(os.path.join(dir, "hostname"), name + "\n")
    _write(os.path.join(dir, "hosts"), hosts)
    _write(os.path.join(dir, "resolv.conf"), resolv)
