"""Device access rules (``linux.resources.devices``): parsed once, applied per cgroup version.

The rules are evaluated in order and the last one matching an access decides, starting from
"deny everything" (the runtime spec's semantics). cgroup v1 gets them as writes to
``devices.allow`` / ``devices.deny``; cgroup v2 gets an eBPF program of type
``BPF_PROG_TYPE_CGROUP_DEVICE`` that encodes the same decision (see ``program``).
"""
from __future__ import annotations

from _struct import pack

from pyrunc.libcontainer.cgroups.resources import bad, boolean, integer, string

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

WILDCARD = -1


class Rule:
    """One rule: allow or deny; type "a" (all), "c" or "b"; major and minor (WILDCARD: any);
    access, a subset of "rwm"."""

    __slots__ = ("allow", "type", "major", "minor", "access")

    def __init__(self, allow: bool, type: str = "a", major: int = WILDCARD, minor: int = WILDCARD,
                 access: str = "rwm") -> None:
        self.allow = allow
        self.type = type
        self.major = major
        self.minor = minor
        self.access = access

    def __eq__(self, other):
        return type(other) is Rule and all(
            getattr(self, a) == getattr(other, a) for a in self.__slots__)

    def __repr__(self):
        return "Rule(%r, %r, %r, %r, %r)" % (self.allow, self.type, self.major, self.minor,
                                             self.access)

    @property
    def is_everything(self) -> bool:
        return (self.type == "a" and self.major == WILDCARD and self.minor == WILDCARD
                and set(self.access) == set("rwm"))

    def v1_line(self) -> str:
        """The line for devices.allow / devices.deny: "c 1:3 rwm", "a *:* rwm"."""
        def num(n):
            return "*" if n == WILDCARD else str(n)
        return "%s %s:%s %s" % (self.type, num(self.major), num(self.minor), self.access)


def parse_rules(res: dict[str, Any]) -> Any:
    """[Rule] from the resources dict's "devices" array."""
    entries = res.get("devices")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise bad("devices", "must be an array")
    rules = []
    for i, entry in enumerate(entries):
        name = "devices[%d]" % i
        if not isinstance(entry, dict):
            raise bad(name, "must be an object")
        allow = boolean(entry, "allow", name + ".allow")
        if allow is None:
            raise bad(name + ".allow", "is required")
        kind = string(entry, "type", name + ".type") or "a"
        if kind not in ("a", "c", "b"):
            raise bad(name + ".type", "%r is not one of \"a\", \"c\", \"b\"" % kind)
        numbers = []
        for key in ("major", "minor"):
            n = integer(entry, key, "%s.%s" % (name, key), minimum=-1, maximum=(1 << 32) - 1)
            numbers.append(WILDCARD if n is None else n)
        access = string(entry, "access", name + ".access") or "rwm"
        if not set(access) <= set("rwm") or len(set(access)) != len(access):
            raise bad(name + ".access", "%r is not a combination of r, w and m" % access)
        access = "".join(c for c in "rwm" if c in access)
        if kind == "a":
            # "a" matches every device whatever the numbers say (as the kernel reads it)
            numbers = [WILDCARD, WILDCARD]
        rules.append(Rule(allow, kind, numbers[0], numbers[1], access))
    return rules


def v1_writes(rules: Any) -> list[tuple[str, str]]:
    """[(file, line)] that give a v1 devices cgroup the rules' decision, starting from deny-all.

    The kernel keeps a default (allow or deny) and a list of exceptions: writing "a" to a file
    resets both, any other line adds an exception (to the opposite file's list) or removes one.
    """
    writes = [("devices.deny", "a")]
    for rule in rules:
        target = "devices.allow" if rule.allow else "devices.deny"
        writes.append((target, "a" if rule.is_everything else rule.v1_line()))
    return writes


# ---- the eBPF program for cgroup v2 -----------------------------------------------------------
# struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
# access_type = (BPF_DEVCG_ACC_* << 16) | BPF_DEVCG_DEV_*

DEV_BLOCK, DEV_CHAR = 1, 2
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4

_R0, _R1, _R2, _R3, _R4, _R5 = range(6)
# opcodes (linux/bpf_common.h, linux/bpf.h)
_LDX_W = 0x61        # BPF_LDX | BPF_MEM | BPF_W
_AND32_K = 0x54      # BPF_ALU | BPF_AND | BPF_K
_RSH32_K = 0x74      # BPF_ALU | BPF_RSH | BPF_K
_MOV64_X = 0xbf      # BPF_ALU64 | BPF_MOV | BPF_X
_MOV64_K = 0xb7      # BPF_ALU64 | BPF_MOV | BPF_K
_JNE_K = 0x56        # BPF_JMP32 | BPF_JNE | BPF_K (32-bit compare: numbers are u32)
_JNE_X = 0x5e        # BPF_JMP32 | BPF_JNE | BPF_X
_EXIT = 0x95         # BPF_JMP | BPF_EXIT


def _insn(code, dst=0, src=0, off=0, imm=0):
    return pack("<BBhi", code, (src << 4) | dst, off, imm)


def _access_mask(access):
    return ((ACC_READ if "r" in access else 0) | (ACC_WRITE if "w" in access else 0)
            | (ACC_MKNOD if "m" in access else 0))


def program(rules: Any) -> bytes:
    """The bytes of a cgroup device program (struct bpf_insn[]) deciding as ``rules`` do.

    r2 = device type, r3 = requested access bits, r4 = major, r5 = minor. Rules are tested
    from the last to the first; the first match returns its verdict (1 allow, 0 deny); no
    match returns 0.
    """
    code = [
        _insn(_LDX_W, _R2, _R1, 0),
        _insn(_AND32_K, _R2, imm=0xffff),
        _insn(_LDX_W, _R3, _R1, 0),
        _insn(_RSH32_K, _R3, imm=16),
        _insn(_LDX_W, _R4, _R1, 4),
        _insn(_LDX_W, _R5, _R1, 8),
    ]
    for rule in reversed(rules):
        block = []          # (code, dst, src, imm, jumps_to_next)
        if rule.type != "a":
            block.append((_JNE_K, _R2, 0, DEV_CHAR if rule.type == "c" else DEV_BLOCK, True))
        mask = _access_mask(rule.access)
        if mask != ACC_READ | ACC_WRITE | ACC_MKNOD:
            # matches when every requested bit is in the rule: (r3 & mask) == r3
            block.append((_MOV64_X, _R1, _R3, 0, False))
            block.append((_AND32_K, _R1, 0, mask, False))
            block.append((_JNE_X, _R1, _R3, 0, True))
        if rule.major != WILDCARD:
            block.append((_JNE_K, _R4, 0, rule.major, True))
        if rule.minor != WILDCARD:
            block.append((_JNE_K, _R5, 0, rule.minor, True))
        block.append((_MOV64_K, _R0, 0, 1 if rule.allow else 0, False))
        block.append((_EXIT, 0, 0, 0, False))
        for i, (op, dst, src, imm, jumps) in enumerate(block):
            off = len(block) - i - 1 if jumps else 0
            code.append(_insn(op, dst, src, off, _imm32(imm)))
        if len(block) == 2:
            # matches every access: what follows could never run, and the verifier
            # rejects unreachable instructions
            return b"".join(code)
    code.append(_insn(_MOV64_K, _R0, imm=0))
    code.append(_insn(_EXIT))
    return b"".join(code)


def _imm32(value):
    """Device numbers are u32; the immediate field is s32 (compared as 32 bits)."""
    return value - (1 << 32) if value >= 1 << 31 else value


def decide(rules: Any, kind: str, major: int, minor: int, access: str) -> bool:
    """What ``rules`` decide for one access (the reference the program is tested against)."""
    for rule in reversed(rules):
        if rule.type != "a" and rule.type != kind:
            continue
        if not set(access) <= set(rule.access):
            continue
        if rule.major != WILDCARD and rule.major != major:
            continue
        if rule.minor != WILDCARD and rule.minor != minor:
            continue
        return rule.allow
    return False
