"""The embedded DNS server: 127.0.0.11:53 (UDP and TCP) inside each container on a user network.

One server object per engine process. For each container it binds a UDP socket and a TCP
listener in the container's network namespace: a short-lived thread joins the namespace with
setns(2) and creates them there (``netlink.in_netns``; a socket belongs to the namespace it was
created in for its whole life, and only that thread moved), so no process is forked and no rule
redirects anything. One selector thread serves every listener. A name (container name, alias or
short ID) of a container sharing a user network with the asker is answered from the networks
document; other names are forwarded, from the engine's own namespace, to the upstream servers,
in a thread per query so a slow upstream blocks nobody. Malformed packets are dropped.
"""
from __future__ import annotations

import selectors
import socket
import struct
import threading

from pyrunc.engine.network import netlink

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Callable, Sequence

ADDRESS = "127.0.0.11"
TYPE_A, TYPE_AAAA, CLASS_IN = 1, 28, 1
RCODE_SERVFAIL, RCODE_NXDOMAIN, RCODE_FORMERR = 2, 3, 1
MAX_TCP_MESSAGE = 65535


class Query:
    """A parsed question: the id, flags, the name (lower case, no final dot), type, class, and
    the bytes of the question section (copied into answers)."""
    __slots__ = ("id", "flags", "name", "qtype", "qclass", "question")

    def __init__(self, id_: int, flags: int, name: str, qtype: int, qclass: int,
                 question: bytes) -> None:
        self.id, self.flags, self.name = id_, flags, name
        self.qtype, self.qclass, self.question = qtype, qclass, question


def parse_query(data: bytes) -> Query | None:
    """The single question of a standard query, or None for anything else (a response, another
    opcode, several questions, compression or a label over 63 bytes in the question)."""
    if len(data) < 12:
        return None
    id_, flags, qd, an, ns, _ar = struct.unpack("!6H", data[:12])
    if flags & 0x8000 or (flags >> 11) & 0xF or qd != 1 or an or ns:
        return None
    pos, labels = 12, []
    while True:
        if pos >= len(data):
            return None
        n = data[pos]
        pos += 1
        if n == 0:
            break
        if n > 63 or pos + n > len(data):
            return None
        labels.append(data[pos:pos + n])
        pos += n
        if pos - 12 > 255:
            return None
    if pos + 4 > len(data):
        return None
    qtype, qclass = struct.unpack("!HH", data[pos:pos + 4])
    try:
        name = b".".join(labels).decode("ascii").lower()
    except UnicodeDecodeError:
        return None
    return Query(id_, flags, name, qtype, qclass, data[12:pos + 4])


def answer(q: Query, addresses: Sequence[str], rcode: int = 0) -> bytes:
    """A response to ``q`` with A records for ``addresses`` (TTL 600, docker's)."""
    flags = 0x8000 | 0x0400 | (q.flags & 0x0100) | 0x0080 | rcode   # QR AA RD RA
    out = [struct.pack("!6H", q.id, flags, 1, len(addresses), 0, 0), q.question]
    for a in addresses:
        out.append(struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, 600, 4))
        out.append(socket.inet_aton(a))
    return b"".join(out)


def error(data: bytes, rcode: int) -> bytes | None:
    """A header-only error reply to a query too damaged to parse (None if there is no header)."""
    if len(data) < 12 or data[2] & 0x80:
        return None
    id_, flags = struct.unpack("!HH", data[:4])
    return struct.pack("!6H", id_, 0x8000 | (flags & 0x0100) | 0x0080 | rcode, 0, 0, 0, 0)


def _sender(s: Any, peer: Any) -> Callable[[bytes], Any]:
    return lambda r: s.sendto(r, peer)


def _recv_exact(s: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


class DNSServer:
    """``resolve(container_id, name) -> addresses | None`` gives the local answers (None: not a
    local name); ``upstreams`` are the (host, port) pairs to forward to, and ``upstreams_for
    (container_id)`` may replace them for one container (its ``--dns``; None: the defaults)."""

    def __init__(self, resolve: Callable[[str, str], Sequence[str] | None],
                 upstreams: list[tuple[str, int]],
                 upstreams_for: Callable[[str], list[tuple[str, int]] | None] = lambda c: None,
                 timeout: float = 2.0) -> None:
        self.resolve = resolve
        self.upstreams = upstreams
        self.upstreams_for = upstreams_for
        self.timeout = timeout
        self.sel = selectors.DefaultSelector()
        self.listeners: dict[str, tuple[socket.socket, socket.socket]] = {}
        self.lock = threading.Lock()
        self.wake_r, self.wake_w = socket.socketpair()
        self.sel.register(self.wake_r, selectors.EVENT_READ, None)
        self.closed = False
        self.thread = threading.Thread(target=self._serve, name="dns", daemon=True)
        self.thread.start()

    def listen(self, container_id: str, netns: str) -> None:
        """Bind 127.0.0.11:53 UDP and TCP in ``netns`` for ``container_id`` (nothing if bound)."""
        with self.lock:
            if container_id in self.listeners:
                return

        def make() -> tuple[socket.socket, socket.socket]:
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            try:
                udp.bind((ADDRESS, 53))
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                tcp.bind((ADDRESS, 53))
                tcp.listen(64)
            except BaseException:
                udp.close()
                tcp.close()
                raise
            return udp, tcp
        udp, tcp = netlink.in_netns(netns, make)
        udp.setblocking(False)
        tcp.setblocking(False)
        with self.lock:
            self.listeners[container_id] = (udp, tcp)
            self.sel.register(udp, selectors.EVENT_READ, ("udp", container_id))
            self.sel.register(tcp, selectors.EVENT_READ, ("tcp", container_id))
        self.wake_w.send(b"x")

    def forget(self, container_id: str) -> None:
        """Close the container's listeners (nothing if it has none)."""
        with self.lock:
            pair = self.listeners.pop(container_id, None)
            if pair:
                for s in pair:
                    self.sel.unregister(s)
                    s.close()

    def containers(self) -> list[str]:
        with self.lock:
            return list(self.listeners)

    def close(self) -> None:
        for cid in self.containers():
            self.forget(cid)
        self.closed = True
        self.wake_w.send(b"x")
        self.thread.join()
        self.sel.close()
        self.wake_r.close()
        self.wake_w.close()

    def _serve(self) -> None:
        while not self.closed:
            for key, _ in self.sel.select():
                if key.data is None:
                    self.wake_r.recv(64)
                    continue
                kind, cid = key.data
                s = key.fileobj
                try:
                    if kind == "udp":
                        data, peer = s.recvfrom(4096)    # type: ignore[union-attr]
                        self._handle(cid, data, _sender(s, peer))
                    else:
                        conn, _ = s.accept()             # type: ignore[union-attr]
                        threading.Thread(target=self._tcp, args=(cid, conn), daemon=True).start()
                except OSError:
                    continue        # a closed listener or a peer gone: nothing to answer

    def _tcp(self, cid: str, conn: socket.socket) -> None:
        with conn:
            conn.setblocking(True)
            conn.settimeout(self.timeout)
            try:
                while True:
                    head = _recv_exact(conn, 2)
                    if head is None:
                        return
                    data = _recv_exact(conn, struct.unpack("!H", head)[0])
                    if data is None:
                        return
                    done = threading.Event()

                    def reply(r: bytes) -> None:
                        conn.sendall(struct.pack("!H", len(r)) + r)
                        done.set()
                    self._handle(cid, data, reply, tcp=True)
                    if not done.wait(self.timeout * 4):
                        return
            except OSError:
                return

    def _handle(self, cid: str, data: bytes, reply: Callable[[bytes], Any],
                tcp: bool = False) -> None:
        q = parse_query(data)
        if q is None:
            r = error(data, RCODE_FORMERR)
            if r:
                reply(r)
            return
        local = self.resolve(cid, q.name) if q.qclass == CLASS_IN else None
        if local is not None:
            reply(answer(q, local if q.qtype == TYPE_A else []))
            return
        servers = self.upstreams_for(cid)
        if servers is None:
            servers = self.upstreams
        if not servers:
            reply(answer(q, [], RCODE_SERVFAIL))
            return
        threading.Thread(target=self._forward, args=(q, data, reply, tcp, servers[:3]),
                         daemon=True).start()

    def _forward(self, q: Query, data: bytes, reply: Callable[[bytes], Any], tcp: bool,
                 servers: list[tuple[str, int]]) -> None:
        for host, port in servers:
            try:
                if tcp:
                    with socket.create_connection((host, port), timeout=self.timeout) as s:
                        s.sendall(struct.pack("!H", len(data)) + data)
                        head = _recv_exact(s, 2)
                        r = _recv_exact(s, struct.unpack("!H", head)[0]) if head else None
                else:
                    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                        s.settimeout(self.timeout)
                        s.connect((host, port))
                        s.send(data)
                        r = s.recv(4096)
                if r and len(r) >= 2 and r[:2] == data[:2]:
                    try:
                        reply(r)
                    except OSError:
                        pass
                    return
            except (OSError, struct.error):
                continue
        try:
            reply(answer(q, [], RCODE_SERVFAIL))
        except OSError:
            pass
