"""The files docker writes in a container's directory and binds into it: hostname, hosts and
resolv.conf."""
from __future__ import annotations

import ipaddress
import os

from pyrunc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

HOST_RESOLV_CONF = "/etc/resolv.conf"
HOST_HOSTS = "/etc/hosts"
DEFAULT_NAMESERVERS = ("8.8.8.8", "8.8.4.4")     # docker's when the host has only loopback ones

HOSTS_DEFAULTS = ("127.0.0.1\tlocalhost\n"
                  "::1\tlocalhost ip6-localhost ip6-loopback\n"
                  "fe00::0\tip6-localnet\n"
                  "ff00::0\tip6-mcastprefix\n"
                  "ff02::1\tip6-allnodes\n"
                  "ff02::2\tip6-allrouters\n")


def _write(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)


def _extra_host_lines(extra_hosts: Any) -> list[str]:
    """``--add-host`` entries (HOST:IP, or docker 28's HOST=IP) as hosts lines."""
    lines = []
    for entry in extra_hosts or ():
        entry = str(entry)
        host, sep, ip = entry.partition("=" if "=" in entry else ":")
        if not sep or not host or not ip:
            raise InvalidArgument("invalid extra host %r: expected HOST:IP" % entry)
        lines.append("%s\t%s\n" % (ip, host))
    return lines


def hosts_text(hostname: str, domainname: str = "", address: str | None = None,
               extra_hosts: Any = None) -> str:
    """docker's /etc/hosts: the loopback and IPv6 entries, ``--add-host`` entries, then the
    container's own name on its address (loopback while it has no network address)."""
    names = hostname if not domainname else "%s.%s %s" % (hostname, domainname, hostname)
    return "".join([HOSTS_DEFAULTS] + _extra_host_lines(extra_hosts)
                   + ["%s\t%s\n" % (address or "127.0.0.1", names)])


def host_network_hosts_text(host_text: str, extra_hosts: Any = None) -> str:
    """/etc/hosts of a container on the host's network: the host's, then ``--add-host``."""
    if host_text and not host_text.endswith("\n"):
        host_text += "\n"
    return host_text + "".join(_extra_host_lines(extra_hosts))


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def resolv_conf_text(host_text: str, dns: Any = None, dns_search: Any = None,
                     dns_options: Any = None) -> str:
    """The host's resolv.conf without loopback nameservers (unreachable from the container's
    network namespace); docker's defaults when none remain. ``--dns``, ``--dns-search`` and
    ``--dns-option`` replace the host's entries of their kind."""
    out, servers = [], []
    for line in host_text.splitlines():
        words = line.split()
        if words and words[0] == "nameserver":
            if len(words) > 1 and not _loopback(words[1]) and not dns:
                servers.append(words[1])
            continue
        if words and words[0] in ("search", "domain") and dns_search:
            continue
        if words and words[0] == "options" and dns_options:
            continue
        out.append(line)
    servers = list(dns) if dns else servers or list(DEFAULT_NAMESERVERS)
    out.extend("nameserver %s" % s for s in servers)
    if dns_search:
        out.append("search " + " ".join(dns_search))
    if dns_options:
        out.append("options " + " ".join(dns_options))
    return "\n".join(out).strip("\n") + "\n"


def write_container_files(container_dir: str, hostname: str, host_config: dict[str, Any],
                          domainname: str = "") -> dict[str, str]:
    """Write hostname, hosts and resolv.conf; returns their paths by docker's record keys."""
    paths = {key: os.path.join(container_dir, name) for key, name in
             (("HostnamePath", "hostname"), ("HostsPath", "hosts"),
              ("ResolvConfPath", "resolv.conf"))}
    host_network = host_config.get("NetworkMode") == "host"
    _write(paths["HostnamePath"], hostname + "\n")
    if host_network:         # the host's names and resolvers, loopback ones included
        _write(paths["HostsPath"], host_network_hosts_text(_read(HOST_HOSTS),
                                                           host_config.get("ExtraHosts")))
    else:
        _write(paths["HostsPath"], hosts_text(hostname, domainname,
                                              extra_hosts=host_config.get("ExtraHosts")))
    host_text = _read(HOST_RESOLV_CONF)
    if host_network and not (host_config.get("Dns") or host_config.get("DnsSearch")
                             or host_config.get("DnsOptions")):
        _write(paths["ResolvConfPath"], host_text)
    else:
        _write(paths["ResolvConfPath"], resolv_conf_text(host_text, host_config.get("Dns"),
                                                         host_config.get("DnsSearch"),
                                                         host_config.get("DnsOptions")))
    return paths


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""
