"""Platforms (``linux/arm64/v8``): parsing, the host's default, matching, choosing from an index."""
from __future__ import annotations

import platform as _platform

from pyrunc.errors import InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_ARCH_ALIASES = {
    "x86_64": "amd64", "x86-64": "amd64", "amd64": "amd64",
    "aarch64": "arm64", "arm64": "arm64",
    "i386": "386", "i686": "386", "386": "386",
    "armhf": "arm", "armel": "arm", "arm": "arm", "armv7l": "arm", "armv6l": "arm",
    "armv5tel": "arm",
    "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64", "mips64le": "mips64le",
}
_ARM_VARIANTS = {"armv7l": "v7", "armv6l": "v6", "armv5tel": "v5", "armhf": "v7", "armel": "v6"}
_KNOWN_OS = ("linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos",
             "aix", "android", "ios", "plan9", "dragonfly", "js", "wasip1")


class Platform:
    __slots__ = ("os", "architecture", "variant")

    def __init__(self, os: str, architecture: str, variant: str = "") -> None:
        self.os = os
        self.architecture = architecture
        self.variant = variant or ""

    def normalized(self) -> Platform:
        """containerd's normalisation: arm64 without variant is v8, arm without is v7."""
        arch = _ARCH_ALIASES.get(self.architecture, self.architecture)
        variant = self.variant
        if arch == "arm64" and variant in ("", "8"):
            variant = "v8"
        elif arch == "arm" and variant == "":
            variant = _ARM_VARIANTS.get(self.architecture, "v7")
        elif arch == "arm" and variant in ("5", "6", "7", "8"):
            variant = "v" + variant
        elif arch == "amd64" and variant == "v1":
            variant = ""
        return Platform(self.os.lower(), arch, variant)

    def matches(self, other: Platform) -> bool:
        """Whether an image for ``other`` runs on this platform (same os, arch and variant)."""
        mine, theirs = self.normalized(), other.normalized()
        return (mine.os == theirs.os and mine.architecture == theirs.architecture
                and mine.variant == theirs.variant)

    def __str__(self):
        parts = [self.os, self.architecture] + ([self.variant] if self.variant else [])
        return "/".join(parts)

    def __repr__(self):
        return "Platform(%r)" % str(self)

    def __eq__(self, other):
        return isinstance(other, Platform) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))

    def to_json(self) -> dict[str, str]:
        """The ``os``/``architecture``/``variant`` fields of an image config or descriptor."""
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Platform:
        data = data or {}
        return cls(data.get("os", ""), data.get("architecture", ""), data.get("variant", ""))


def host_platform() -> Platform:
    machine = _platform.machine().lower()
    arch = _ARCH_ALIASES.get(machine, machine)
    variant = _ARM_VARIANTS.get(machine, "")
    return Platform("linux", arch, variant).normalized()


def parse_platform(text: str) -> Platform:
    """``os[/arch[/variant]]`` or ``arch`` alone (os defaults to linux), as ``--platform``."""
    parts = text.strip().lower().split("/")
    if not text.strip() or any(not p for p in parts) or len(parts) > 3:
        raise InvalidArgument("invalid platform %r: expected os/arch[/variant]" % text)
    if len(parts) == 1:
        if parts[0] in _KNOWN_OS:
            return Platform(parts[0], host_platform().architecture,
                            host_platform().variant).normalized()
        if parts[0] not in _ARCH_ALIASES:
            raise InvalidArgument("invalid platform %r: unknown operating system or "
                                  "architecture" % text)
        return Platform("linux", parts[0]).normalized()
    if parts[0] not in _KNOWN_OS:
        raise InvalidArgument("invalid platform %r: unknown operating system %r"
                              % (text, parts[0]))
    return Platform(*parts).normalized()


def select_manifest(index: dict[str, Any], wanted: Platform) -> dict[str, Any]:
    """The descriptor in an index (parsed JSON) for platform ``wanted``; docker's error if none."""
    candidates = []
    for desc in index.get("manifests") or []:
        if not isinstance(desc, dict) or "platform" not in desc:
            continue
        plat = Platform.from_json(desc["platform"])
        if wanted.matches(plat):
            candidates.append(desc)
    if not candidates:
        raise NotFound("no matching manifest for %s in the manifest list entries" % wanted)
    return candidates[0]
