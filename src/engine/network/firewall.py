"""The engine's iptables rules, all in its own chains, kept equal to the networks document.

    nat     PYRUNC              DNAT of published ports   (PREROUTING, OUTPUT -> for local dsts)
            PYRUNC-POSTROUTING  masquerade out of bridges, of host-to-container via 127.0.0.1
                                (route_localnet) and of a container reaching a published port
    filter  PYRUNC-FORWARD      established, DNAT'd (published ports), isolation, per bridge
            PYRUNC-ISOLATION    drops between bridges, and in/out of internal networks
            PYRUNC-INPUT        drops new connections from an internal network to the host
                                (its "no way out" also covers the host's own addresses)

The names are those of one engine root (``Chains``): the root whose default bridge is ``pyr0``
has the names above, any other ``PYRUNC-<tag>...`` with a tag of 6 hex digits derived from its
bridge's name, so two roots sharing a network namespace never touch each other's chains.

Each builtin chain gets one jump rule. ``apply`` brings the chains to what the document asks
with one ``iptables-restore --noflush`` (atomic per table) that names only the chains whose
rules differ from those last written (as the document records them): a chain is rewritten
whole, except the DNAT chain, whose rules are independent of their order, so a container's
published ports are appended and, when it stops, deleted one by one. Rules are only added when
a container starts: with nf_tables, deleting a rule makes the commit wait for an RCU grace
period (about 10 ms on a busy machine), appending one does not. After a crash or a reboot
(``forget_checks``) the next ``apply`` rewrites every chain. With no bridge network and no
published port, the jumps and the chains are deleted.
"""
from __future__ import annotations

import subprocess

from pyrunc.errors import InvalidArgument, SystemFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_BRIDGE = "pyr0"


class Chains:
    """The chain names of one engine root: ``PYRUNC...`` for ``tag`` "", else
    ``PYRUNC-<tag>...`` (28 characters at most, the kernel's limit)."""
    __slots__ = ("tag", "dnat", "post", "forward", "isolation", "input")

    def __init__(self, tag: str = "") -> None:
        if tag and not (len(tag) <= 8 and all(c in "0123456789abcdef" for c in tag)):
            raise InvalidArgument("invalid chain tag %r: up to 8 hex digits" % (tag,))
        self.tag = tag
        base = "PYRUNC-" + tag if tag else "PYRUNC"
        self.dnat = base
        self.post = base + "-POSTROUTING"
        self.forward = base + "-FORWARD"
        self.isolation = base + "-ISOLATION"
        self.input = base + "-INPUT"

    @classmethod
    def for_bridge(cls, bridge: str) -> Chains:
        """The names of the root whose default bridge device is ``bridge`` (unique in a
        network namespace, as a device name is)."""
        if bridge == DEFAULT_BRIDGE:
            return cls("")
        import hashlib
        return cls(hashlib.sha256(bridge.encode()).hexdigest()[:6])

    def tables(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return (("nat", (self.dnat, self.post)),
                ("filter", (self.forward, self.isolation, self.input)))

    def jumps(self) -> tuple[tuple[str, str, list[str]], ...]:
        local = ["-m", "addrtype", "--dst-type", "LOCAL", "-j", self.dnat]
        return (("nat", "PREROUTING", local), ("nat", "OUTPUT", list(local)),
                ("nat", "POSTROUTING", ["-j", self.post]),
                ("filter", "FORWARD", ["-j", self.forward]),
                ("filter", "INPUT", ["-j", self.input]))


def _run(args: list[str], check: bool = True, stdin: str | None = None) -> bool:
    proc = subprocess.run(args, input=stdin, capture_output=True, text=True)
    if check and proc.returncode:
        raise SystemFailure("iptables", None, "%s: %s" % (" ".join(args[:4]),
                                                          proc.stderr.strip()))
    return proc.returncode == 0


def rules(doc: dict[str, Any], drop_other_forwarding: bool,
          chains: Chains | None = None) -> dict[str, list[str]]:
    """The rules (``-A CHAIN ...`` lines) the document asks for, by chain."""
    c = chains or Chains()
    nat: list[str] = []
    post: list[str] = []
    fwd: list[str] = []
    iso: list[str] = []
    inp: list[str] = []
    bridges = [n for n in doc["networks"].values() if n["Driver"] == "bridge" and n.get("bridge")]
    for ports in doc.get("ports", {}).values():
        for p in ports:
            dst = "" if p["HostIp"] in ("", "0.0.0.0") else "-d %s/32 " % p["HostIp"]
            nat.append("-A %s %s-p %s -m %s --dport %d -j DNAT --to-destination %s:%d"
                       % (c.dnat, dst, p["Proto"], p["Proto"], p["HostPort"], p["ContainerIp"],
                          p["ContainerPort"]))
    for n in bridges:
        br, subnet = n["bridge"], n["IPAM"]["Config"][0]["Subnet"]
        post.append("-A %s -o %s -m addrtype --src-type LOCAL -j MASQUERADE" % (c.post, br))
        post.append("-A %s -s %s -o %s -m conntrack --ctstate DNAT -j MASQUERADE"
                    % (c.post, subnet, br))
        if not n["Internal"] and n["Options"].get(
                "com.docker.network.bridge.enable_ip_masquerade", "true") != "false":
            post.append("-A %s -s %s ! -o %s -j MASQUERADE" % (c.post, subnet, br))
        fwd.insert(0, "-A %s -o %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
                   % (c.forward, br))
        # what a DNAT rule of the engine sent to a published port (from another bridge too)
        fwd.append("-A %s -o %s -m conntrack --ctstate DNAT -j ACCEPT" % (c.forward, br))
    fwd.append("-A %s -j %s" % (c.forward, c.isolation))
    for n in bridges:
        br = n["bridge"]
        if n["Internal"]:
            iso.append("-A %s -i %s ! -o %s -j DROP" % (c.isolation, br, br))
            iso.append("-A %s ! -i %s -o %s -j DROP" % (c.isolation, br, br))
            inp.append("-A %s -i %s -m conntrack --ctstate NEW,INVALID -j DROP" % (c.input, br))
        for m in bridges:
            if m is not n:
                iso.append("-A %s -i %s -o %s -j DROP" % (c.isolation, br, m["bridge"]))
        fwd.append("-A %s -i %s -o %s -j ACCEPT" % (c.forward, br, br))
        if not n["Internal"]:
            fwd.append("-A %s -i %s ! -o %s -j ACCEPT" % (c.forward, br, br))
        fwd.append("-A %s -o %s -j DROP" % (c.forward, br))
    if drop_other_forwarding:
        fwd.append("-A %s -j DROP" % c.forward)
    return {c.dnat: nat, c.post: post, c.forward: fwd, c.isolation: iso, c.input: inp}


def _restore(changes: list[tuple[str, list[str]]]) -> None:
    """One ``iptables-restore --noflush`` of (table, lines) blocks, tables in order."""
    text: list[str] = []
    for table in ("nat", "filter"):
        lines = [x for t, block in changes if t == table for x in block]
        lines.sort(key=lambda x: not x.startswith(":"))     # chains before jumps to them
        if lines:
            text += ["*" + table] + lines + ["COMMIT"]
    if text:
        _run(["iptables-restore", "-w", "--noflush"], stdin="\n".join(text + [""]))


def _rewrite(chain: str, lines: list[str]) -> list[str]:
    return [":%s - [0:0]" % chain] + lines


def apply(doc: dict[str, Any], drop_other_forwarding: bool, chains: Chains | None = None) -> bool:
    """Make the chains hold exactly what ``doc`` asks; returns whether any chain is in use."""
    c = chains or Chains()
    used = bool(doc.get("ports")) or any(
        n["Driver"] == "bridge" and n.get("bridge") for n in doc["networks"].values())
    if not used:
        remove(doc, c)
        return False
    wanted = rules(doc, drop_other_forwarding, c)
    # the rules last written, by chain, as the document records them (whoever wrote them):
    # a chain holding what is wanted is left alone (a start without -p writes nothing)
    applied: dict[str, list[str]] = doc.get("firewall") or {}
    changes: list[tuple[str, list[str]]] = []
    full: list[tuple[str, list[str]]] = []
    for table, names in c.tables():
        for chain in names:
            lines, before = wanted[chain], applied.get(chain)
            if lines == before:
                continue
            full.append((table, _rewrite(chain, lines)))
            if chain == c.dnat and before is not None:
                # order-free: delete what went, append what came (a start only appends)
                gone = set(lines)
                changes.append((table, ["-D" + x[2:] for x in before if x not in gone]
                                + [x for x in lines if x not in set(before)]))
            else:
                changes.append(full[-1])
    if changes:
        doc.pop("firewall", None)         # unknown until the write succeeded
        try:
            _restore(changes)
        except SystemFailure:
            if changes == full:
                raise
            _restore(full)                # the chain differed from the record: rewrite it
        doc["firewall"] = wanted
    ns = (_netns(), c.dnat)
    if ns not in _jumps_checked:
        for table, chain, rule in c.jumps():
            if not _run(["iptables", "-w", "-t", table, "-C", chain] + rule, check=False):
                _run(["iptables", "-w", "-t", table, "-I", chain, "1"] + rule)
        _jumps_checked.add(ns)
    return True


# (network namespace inode, DNAT chain) pairs whose jump rules this process has checked or
# made: later changes rewrite only the chains (``forget_checks`` makes the next ``apply``
# check again)
_jumps_checked: set[tuple[int, str]] = set()


def others(chains: Chains) -> bool:
    """Whether another engine root's chains are in this network namespace."""
    proc = subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True)
    return any(line.startswith("-N PYRUNC") and line.endswith("-FORWARD")
               and line.split()[1] != chains.forward for line in proc.stdout.splitlines())


def _netns() -> int:
    import os
    return os.stat("/proc/thread-self/ns/net").st_ino


def forget_checks(doc: dict[str, Any], chains: Chains | None = None) -> None:
    """Check the jumps and rewrite the chains at the next ``apply`` (after a crash or a
    reboot, the rules may differ from what the document says was written)."""
    _jumps_checked.discard((_netns(), (chains or Chains()).dnat))
    doc.pop("firewall", None)


def remove(doc: dict[str, Any] | None = None, chains: Chains | None = None) -> None:
    """Delete the jumps and the chains (nothing if they are not there)."""
    c = chains or Chains()
    _jumps_checked.discard((_netns(), c.dnat))
    if doc is not None:
        doc.pop("firewall", None)
    if not _run(["iptables", "-w", "-t", "nat", "-S", c.dnat], check=False) and \
            not _run(["iptables", "-w", "-S", c.forward], check=False):
        return
    for table, chain, rule in c.jumps():
        while _run(["iptables", "-w", "-t", table, "-D", chain] + rule, check=False):
            pass
    for table, names in c.tables():
        for name in names:
            _run(["iptables", "-w", "-t", table, "-F", name], check=False)
        for name in names:
            _run(["iptables", "-w", "-t", table, "-X", name], check=False)
