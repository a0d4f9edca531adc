"""The engine's iptables rules, all in its own chains, rebuilt whole from the networks document.

    nat     PYRUNC              DNAT of published ports   (PREROUTING, OUTPUT -> for local dsts)
            PYRUNC-POSTROUTING  masquerade out of bridges, of host-to-container via 127.0.0.1
                                (route_localnet) and of a container reaching a published port
    filter  PYRUNC-FORWARD      established, DNAT'd (published ports), isolation, per bridge
            PYRUNC-ISOLATION    drops between bridges, and in/out of internal networks
            PYRUNC-INPUT        drops new connections from an internal network to the host
                                (its "no way out" also covers the host's own addresses)

Each builtin chain gets one jump rule. ``apply`` writes the chains' whole contents with one
``iptables-restore --noflush`` (atomic per table; only the tables whose rules changed), so the rules always match the
document and a crash leaves nothing that the next ``apply`` does not replace. With no bridge
network and no published port, the jumps and the chains are deleted.
"""
from __future__ import annotations

import hashlib
import subprocess

from pyrunc.errors import SystemFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NAT_CHAINS = ("PYRUNC", "PYRUNC-POSTROUTING")
FILTER_CHAINS = ("PYRUNC-FORWARD", "PYRUNC-ISOLATION", "PYRUNC-INPUT")
JUMPS = (
    ("nat", "PREROUTING", ["-m", "addrtype", "--dst-type", "LOCAL", "-j", "PYRUNC"]),
    ("nat", "OUTPUT", ["-m", "addrtype", "--dst-type", "LOCAL", "-j", "PYRUNC"]),
    ("nat", "POSTROUTING", ["-j", "PYRUNC-POSTROUTING"]),
    ("filter", "FORWARD", ["-j", "PYRUNC-FORWARD"]),
    ("filter", "INPUT", ["-j", "PYRUNC-INPUT"]),
)


def _run(args: list[str], check: bool = True, stdin: str | None = None) -> bool:
    proc = subprocess.run(args, input=stdin, capture_output=True, text=True)
    if check and proc.returncode:
        raise SystemFailure("iptables", None, "%s: %s" % (" ".join(args[:4]),
                                                          proc.stderr.strip()))
    return proc.returncode == 0


def rules(doc: dict[str, Any], drop_other_forwarding: bool) -> tuple[list[str], list[str]]:
    """The nat and filter rules (``-A CHAIN ...`` lines) the document asks for."""
    nat: list[str] = []
    post: list[str] = []
    fwd: list[str] = []
    iso: list[str] = []
    inp: list[str] = []
    bridges = [n for n in doc["networks"].values() if n["Driver"] == "bridge" and n.get("bridge")]
    for ports in doc.get("ports", {}).values():
        for p in ports:
            dst = "" if p["HostIp"] in ("", "0.0.0.0") else "-d %s/32 " % p["HostIp"]
            nat.append("-A PYRUNC %s-p %s -m %s --dport %d -j DNAT --to-destination %s:%d"
                       % (dst, p["Proto"], p["Proto"], p["HostPort"], p["ContainerIp"],
                          p["ContainerPort"]))
    for n in bridges:
        br, subnet = n["bridge"], n["IPAM"]["Config"][0]["Subnet"]
        post.append("-A PYRUNC-POSTROUTING -o %s -m addrtype --src-type LOCAL -j MASQUERADE"
                    % br)
        post.append("-A PYRUNC-POSTROUTING -s %s -o %s -m conntrack --ctstate DNAT "
                    "-j MASQUERADE" % (subnet, br))
        if not n["Internal"] and n["Options"].get(
                "com.docker.network.bridge.enable_ip_masquerade", "true") != "false":
            post.append("-A PYRUNC-POSTROUTING -s %s ! -o %s -j MASQUERADE" % (subnet, br))
        fwd.insert(0, "-A PYRUNC-FORWARD -o %s -m conntrack --ctstate RELATED,ESTABLISHED "
                      "-j ACCEPT" % br)
        # what a PYRUNC rule DNAT'd to a published port (from another bridge too)
        fwd.append("-A PYRUNC-FORWARD -o %s -m conntrack --ctstate DNAT -j ACCEPT" % br)
    fwd.append("-A PYRUNC-FORWARD -j PYRUNC-ISOLATION")
    for n in bridges:
        br = n["bridge"]
        if n["Internal"]:
            iso.append("-A PYRUNC-ISOLATION -i %s ! -o %s -j DROP" % (br, br))
            iso.append("-A PYRUNC-ISOLATION ! -i %s -o %s -j DROP" % (br, br))
            inp.append("-A PYRUNC-INPUT -i %s -m conntrack --ctstate NEW,INVALID -j DROP" % br)
        for m in bridges:
            if m is not n:
                iso.append("-A PYRUNC-ISOLATION -i %s -o %s -j DROP" % (br, m["bridge"]))
        fwd.append("-A PYRUNC-FORWARD -i %s -o %s -j ACCEPT" % (br, br))
        if not n["Internal"]:
            fwd.append("-A PYRUNC-FORWARD -i %s ! -o %s -j ACCEPT" % (br, br))
        fwd.append("-A PYRUNC-FORWARD -o %s -j DROP" % br)
    if drop_other_forwarding:
        fwd.append("-A PYRUNC-FORWARD -j DROP")
    return nat + post, fwd + iso + inp


def _chains_exist() -> bool:
    return _run(["iptables", "-w", "-t", "nat", "-S", "PYRUNC"], check=False)


def apply(doc: dict[str, Any], drop_other_forwarding: bool) -> bool:
    """Make the chains hold exactly what ``doc`` asks; returns whether any chain is in use."""
    used = bool(doc.get("ports")) or any(
        n["Driver"] == "bridge" and n.get("bridge") for n in doc["networks"].values())
    if not used:
        remove(doc)
        return False
    nat, filt = rules(doc, drop_other_forwarding)
    # a table whose rules are those last written (as the document records, whoever wrote
    # them) is left alone: a publish rewrites nat only, a connect nothing
    applied = doc.setdefault("firewall", {})
    text, digests = [], {}
    for table, chains, lines in (("nat", NAT_CHAINS, nat), ("filter", FILTER_CHAINS, filt)):
        digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
        if applied.get(table) != digest:
            text += ["*" + table] + [":%s - [0:0]" % c for c in chains] + lines + ["COMMIT"]
            digests[table] = digest
    if text:
        applied.clear()           # unknown until the write succeeded
        _run(["iptables-restore", "-w", "--noflush"], stdin="\n".join(text + [""]))
        applied.update(digests)
    ns = _netns()
    if ns not in _jumps_checked:
        for table, chain, rule in JUMPS:
            if not _run(["iptables", "-w", "-t", table, "-C", chain] + rule, check=False):
                _run(["iptables", "-w", "-t", table, "-I", chain, "1"] + rule)
        _jumps_checked.add(ns)
    return True


# network namespaces (by inode) whose jump rules this process has checked or made: later
# changes rewrite only the chains (``forget_checks`` makes the next ``apply`` check again)
_jumps_checked: set[int] = set()


def _netns() -> int:
    import os
    return os.stat("/proc/thread-self/ns/net").st_ino


def forget_checks(doc: dict[str, Any]) -> None:
    """Check the jumps and rewrite the chains at the next ``apply`` (after a crash or a
    reboot, the rules may differ from what the document says was written)."""
    _jumps_checked.discard(_netns())
    doc.pop("firewall", None)


def remove(doc: dict[str, Any] | None = None) -> None:
    """Delete the jumps and the chains (nothing if they are not there)."""
    _jumps_checked.discard(_netns())
    if doc is not None:
        doc.pop("firewall", None)
    if not _chains_exist() and not _run(["iptables", "-w", "-S", "PYRUNC-FORWARD"], check=False):
        return
    for table, chain, rule in JUMPS:
        while _run(["iptables", "-w", "-t", table, "-D", chain] + rule, check=False):
            pass
    for table, chains in (("nat", NAT_CHAINS), ("filter", FILTER_CHAINS)):
        for c in chains:
            _run(["iptables", "-w", "-t", table, "-F", c], check=False)
        for c in chains:
            _run(["iptables", "-w", "-t", table, "-X", c], check=False)
