"""The typed parent/child handshake of container creation.

Parent (Python, ``process.spawn_init``) and children (C, ``native/core``) exchange datagrams over
a ``SOCK_SEQPACKET`` socketpair. Each datagram is one message: a ``struct core_msg`` header
(type, errno, value, payload length) followed by the payload; a descriptor may ride along as
``SCM_RIGHTS``. The message types and the header layout have one definition,
``native/core/core_api.h``, which the cffi module exposes; this module names them for Python.

    child                              parent
    (stage 1 waits)            <-      CONTINUE          (after on_pid, if any)
    (stage 1 joins its cgroup)
    USERNS_READY value=pid     ->                        (writes setgroups, uid_map, gid_map)
                               <-      CONTINUE
    (stage 1 clones the init and exits)
    INIT_STARTED (init)        ->                        (the parent reaps stage 1)
                               <-      CONTINUE
    HOOKS                      ->                        (on_hooks(): prestart, createRuntime)
                               <-      CONTINUE [state]  (payload: state for the init's hooks)
    SECCOMP_FD + fd            ->                        (on_seccomp_fd(fd))
                               <-      CONTINUE
    READY                      ->                        (init blocks on the exec fifo)

    ERROR err payload="step\\0detail\\0"   -> at any point; the child exits after sending it.

The init's pid is not sent: the kernel writes it into memory shared with the parent as stage 1
clones it (``core_config.init_pid_slot``, CLONE_PARENT_SETTID), so the parent knows the init
as soon as it exists, even when a child is killed between any two steps. INIT_STARTED, the
init's first message, wakes the parent (which otherwise could wait on an init waiting for it).
"""
from __future__ import annotations

from pyrunc._core import ffi, lib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CONTINUE = lib.CORE_MSG_CONTINUE
USERNS_READY = lib.CORE_MSG_USERNS_READY
HOOKS = lib.CORE_MSG_HOOKS
SECCOMP_FD = lib.CORE_MSG_SECCOMP_FD
READY = lib.CORE_MSG_READY
ERROR = lib.CORE_MSG_ERROR
INIT_STARTED = lib.CORE_MSG_INIT_STARTED

NAMES = {CONTINUE: "CONTINUE", USERNS_READY: "USERNS_READY", INIT_STARTED: "INIT_STARTED",
         HOOKS: "HOOKS", SECCOMP_FD: "SECCOMP_FD", READY: "READY", ERROR: "ERROR"}

HEADER_SIZE = ffi.sizeof("struct core_msg")
MAX_PAYLOAD = lib.CORE_MSG_MAX_PAYLOAD
BUFFER_SIZE = HEADER_SIZE + MAX_PAYLOAD


class ProtocolError(Exception):
    """A datagram that is not a well-formed message, or a socket failure (args: errno, what)."""


class Message:
    """One received message; ``fd`` is a passed descriptor (owned by the receiver) or -1."""

    __slots__ = ("type", "err", "value", "payload", "fd")

    def __init__(self, type: int, err: int = 0, value: int = 0, payload: bytes = b"",
                 fd: int = -1) -> None:
        self.type = type
        self.err = err
        self.value = value
        self.payload = payload
        self.fd = fd

    @property
    def name(self) -> Any:
        return NAMES.get(self.type, "message %d" % self.type)

    def error_parts(self) -> tuple[str, str]:
        """(step, detail) of an ERROR message."""
        return decode_error(self.payload)

    def __repr__(self):
        return "Message(%s, err=%d, value=%d, payload=%r, fd=%d)" % (
            self.name, self.err, self.value, self.payload, self.fd)


def encode_error(step: str, detail: str = "") -> bytes:
    """The ERROR payload: the step and the detail, each NUL-terminated."""
    return step.encode("utf-8", "replace") + b"\0" + detail.encode("utf-8", "replace") + b"\0"


def decode_error(payload: bytes) -> tuple[Any, ...]:
    parts = bytes(payload).split(b"\0")
    step = parts[0].decode("utf-8", "replace") if parts else ""
    detail = parts[1].decode("utf-8", "replace") if len(parts) > 1 else ""
    return step or "container init", detail


def send(fd: int, type: int, value: int = 0, payload: bytes = b"") -> None:
    """Send one message; raises ProtocolError(errno, ...) when the peer is gone."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError("payload of %d bytes exceeds %d" % (len(payload), MAX_PAYLOAD))
    r = lib.core_send(fd, type, value, payload or ffi.NULL, len(payload))
    if r < 0:
        raise ProtocolError(-r, "send %s" % NAMES.get(type, type))


class Receiver:
    """Reads messages from one socket into a buffer allocated once."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buf = ffi.new("char[]", BUFFER_SIZE)
        self._fdp = ffi.new("int *")

    def recv(self) -> Any:
        """The next message, or None at EOF (every child end is closed)."""
        n = lib.core_recv(self.fd, self._buf, BUFFER_SIZE, self._fdp)
        if n < 0:
            raise ProtocolError(-n, "receive from the container init")
        if n == 0:
            return None
        hdr = ffi.cast("struct core_msg *", self._buf)
        length = hdr.len
        if HEADER_SIZE + length != n:
            if self._fdp[0] >= 0:
                import os
                os.close(self._fdp[0])
            raise ProtocolError(0, "malformed message: %d bytes with a %d-byte payload"
                                % (n, length))
        payload = ffi.buffer(self._buf + HEADER_SIZE, length)[:] if length else b""
        return Message(hdr.type, hdr.err, hdr.value, payload, self._fdp[0])
