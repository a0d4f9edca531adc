"""Helpers of the network tests: the rules and links of the current network namespace, to
compare before and after, and a tiny DNS server standing for the host's resolver."""
import re
import socket
import struct
import subprocess
import threading


def host_state():
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    rules = re.sub(r"\[\d+:\d+\]", "", "\n".join(
        line for line in rules.splitlines() if not line.startswith("#")))
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return rules, sorted(line.split("\\")[0] for line in links.splitlines())


def ns_state():
    """(rules and user chains of iptables-save, sorted link names) of the current namespace:
    what a test compares before and after. Builtin chains are left out: iptables-nft makes a
    table's builtin chains when the first user chain is added and never removes them."""
    rules, links = host_state()
    kept = [line for line in rules.splitlines()
            if line.startswith("-") or (line.startswith(":") and line.split()[1] == "-")]
    return kept, sorted(line.split(":")[1].strip().split("@")[0] for line in links)


class Resolver:
    """A tiny DNS server on 127.0.0.1 (the upstream in tests): ``outside.test`` is 10.9.9.9,
    every other name NXDOMAIN; ``names`` lists the questions it saw."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.names = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            pos, labels = 12, []
            try:
                while data[pos]:
                    labels.append(data[pos + 1:pos + 1 + data[pos]].decode())
                    pos += 1 + data[pos]
                qtype = struct.unpack("!H", data[pos + 1:pos + 3])[0]
            except (IndexError, UnicodeDecodeError, struct.error):
                continue        # not a query (a hostile test's datagram passed on): no answer
            name = ".".join(labels).lower()
            self.names.append(name)
            hit = name == "outside.test" and qtype == 1
            head = struct.pack("!6H", struct.unpack("!H", data[:2])[0],
                               0x8180 if hit else 0x8183, 1, int(hit), 0, 0)
            body = data[12:pos + 5]
            if hit:
                body += struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + bytes([10, 9, 9, 9])
            try:
                self.sock.sendto(head + body, peer)
            except OSError:             # closed meanwhile (the test is over)
                return

    def close(self):
        self.sock.close()
