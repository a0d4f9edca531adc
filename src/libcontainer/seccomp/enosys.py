"""The -ENOSYS stub: syscalls newer than a profile knows fail with ENOSYS, not the default action.

A profile lists the syscalls that existed when it was written. With a refusing default action
(ERRNO(EPERM), KILL, ...) a syscall added to the kernel later would be refused with EPERM,
which libc wrappers do not treat as "not implemented" (glibc falls back from clone3 to clone
only on ENOSYS). runc therefore puts a short program in front of libseccomp's: for each
architecture of the filter, a syscall number above the largest one the profile names returns
ENOSYS; anything else goes on to the real filter. This module builds that program, in the
same spirit, from the kernel's classic BPF instructions.

Differences from runc: the native architecture is covered even when the profile lists no
architectures, and no stub is made when the default action already returns ENOSYS.
"""
from __future__ import annotations

import errno
from _struct import pack

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# classic BPF opcodes (linux/bpf_common.h)
LD_W_ABS = 0x20           # A <- 32-bit word at offset k of struct seccomp_data
JMP_JA = 0x05
JMP_JEQ_K = 0x15
JMP_JGT_K = 0x25
JMP_JSET_K = 0x45
RET_K = 0x06
OFFSET_NR = 0             # seccomp_data.nr
OFFSET_ARCH = 4           # seccomp_data.arch

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
SECCOMP_RET_ERRNO = 0x00050000
RET_ENOSYS = SECCOMP_RET_ERRNO | errno.ENOSYS
S390_MULTIPLEX_SYSCALL = 0        # setup(2): "large" syscall numbers arrive as 0 when unknown


class _Asm:
    """A few instructions with symbolic jump targets, resolved on ``assemble``."""

    def __init__(self):
        self.insns = []       # (code, jt, jf, k) with jt/jf/k possibly a label
        self.labels = {}

    def label(self, name):
        self.labels[name] = len(self.insns)

    def emit(self, code, k=0, jt=0, jf=0):
        self.insns.append((code, jt, jf, k))

    def assemble(self, end_label):
        """Bytes of the program; ``end_label`` is the instruction after the stub."""
        self.labels[end_label] = len(self.insns)
        out = []
        for i, (code, jt, jf, k) in enumerate(self.insns):
            if code == JMP_JA:
                k = self.labels[k] - i - 1
            elif code & 0x07 == 0x05:   # a conditional jump: jt and jf are labels or 0
                jt = self.labels[jt] - i - 1 if isinstance(jt, str) else jt
                jf = self.labels[jf] - i - 1 if isinstance(jf, str) else jf
                if not (0 <= jt <= 255 and 0 <= jf <= 255):
                    raise ValueError("seccomp: -ENOSYS stub jump out of range")
            out.append(pack("=HBBI", code, jt, jf, k))
        return b"".join(out)


def largest_syscalls(lib: Any, arch_tokens: list[int], names: Any) -> dict[int, dict[int, int]]:
    """{audit arch: {arch token: largest syscall number of ``names`` on that arch}}."""
    out: dict[Any, Any] = {}
    for token in arch_tokens:
        numbers = [lib.seccomp_syscall_resolve_name_arch(token, n.encode()) for n in names]
        numbers = [n for n in numbers if n >= 0]      # negative: unknown or a pseudo-syscall
        if not numbers:
            continue
        audit = AUDIT_ARCH_X86_64 if token == lib.SCMP_ARCH_X32 else token
        out.setdefault(audit, {})[token] = max(numbers)
    return out


def stub(lib: Any, arch_tokens: list[int], names: Any) -> bytes:
    """The stub program (bytes) for a filter over ``arch_tokens`` naming ``names``."""
    largest = largest_syscalls(lib, arch_tokens, names)
    if not largest:
        return b""
    asm = _Asm()
    asm.emit(LD_W_ABS, OFFSET_ARCH)
    for i, audit in enumerate(largest):
        asm.emit(JMP_JEQ_K, audit, jt="arch%d" % i, jf=0)
    asm.emit(JMP_JA, "filter")
    for i, (audit, per_token) in enumerate(largest.items()):
        asm.label("arch%d" % i)
        asm.emit(LD_W_ABS, OFFSET_NR)
        if audit == AUDIT_ARCH_X86_64:
            x86_64 = per_token.get(lib.SCMP_ARCH_X86_64)
            x32 = per_token.get(lib.SCMP_ARCH_X32)
            asm.emit(JMP_JSET_K, X32_SYSCALL_BIT, jt="x32_%d" % i, jf=0)
            _compare(asm, x86_64)
            asm.label("x32_%d" % i)
            _compare(asm, x32)
        else:
            if audit in (lib.SCMP_ARCH_S390, lib.SCMP_ARCH_S390X):
                asm.emit(JMP_JEQ_K, S390_MULTIPLEX_SYSCALL, jt="enosys", jf=0)
            _compare(asm, per_token[audit])
    asm.label("enosys")
    asm.emit(RET_K, RET_ENOSYS)
    return asm.assemble("filter")


def _compare(asm, largest):
    if largest is None:
        asm.emit(JMP_JA, "filter")
    else:
        asm.emit(JMP_JGT_K, largest, jt="enosys", jf=0)
        asm.emit(JMP_JA, "filter")
