"""The Python client's side of the attach stream (docs/containerd.md, "The shim protocol").

- ``Attachment.write`` splits its data into frames of at most the protocol's maximum payload,
  the same number as the shim's ``ATTACH_FRAME_MAX`` (read from the C header) and the doc's;
  5 MiB written to a ``cat`` container come back whole and in order.
- The reply line that opens an attach stream is read up to its newline only: frames the shim
  sends right after ``ok`` belong to the ``Attachment``, never lost to the reply, never making
  the reply look malformed, never leaving the client waiting for a newline that is not coming.
"""
import hashlib
import os
import random
import re
import socket
import struct
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc.containerd.shim import client
from pyrunc.containerd.shim.client import (ATTACH_FRAME_MAX, EXIT, STDIN, STDOUT, Attachment,
                                           _read_line)

from .conftest import new_id

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
MIB = 1 << 20


def c_define(path, name):
    """The value of ``#define NAME (A << B)`` or ``#define NAME N`` in a C header."""
    with open(path) as f:
        text = f.read()
    found = re.search(r"^#define\s+%s\s+\(?\s*(\d+)\s*(?:<<\s*(\d+))?\s*\)?" % name, text, re.M)
    assert found, "no #define %s in %s" % (name, path)
    value = int(found.group(1))
    return value << int(found.group(2)) if found.group(2) else value


def test_frame_limit_matches_the_shim_and_the_protocol_doc():
    assert ATTACH_FRAME_MAX == c_define(os.path.join(TOP, "native", "shim", "shim.h"),
                                        "ATTACH_FRAME_MAX")
    with open(os.path.join(TOP, "docs", "containerd.md")) as f:
        doc = f.read()
    assert "payload is at most 1 MiB (%d bytes)" % ATTACH_FRAME_MAX in doc


def frames_from(raw):
    """Split raw attach bytes into (stream, payload) by the documented header."""
    frames, at = [], 0
    while at < len(raw):
        assert len(raw) - at >= 8, "a cut header at %d" % at
        stream, pad, size = raw[at], raw[at + 1:at + 4], struct.unpack(">I", raw[at + 4:at + 8])[0]
        assert pad == b"\0\0\0"
        frames.append((stream, raw[at + 8:at + 8 + size]))
        assert len(frames[-1][1]) == size, "a cut payload at %d" % at
        at += 8 + size
    return frames


@pytest.mark.parametrize("size", [1, 4096, MIB - 1, MIB, MIB + 1, 3 * MIB + 5])
def test_write_splits_into_frames_at_most_the_limit(size):
    data = random.Random(size).randbytes(size)
    ours, theirs = socket.socketpair()
    raw = bytearray()

    def drain():
        while True:
            chunk = theirs.recv(1 << 16)
            if not chunk:
                return
            raw.extend(chunk)

    thread = threading.Thread(target=drain)
    thread.start()
    try:
        Attachment(ours).write(data)
    finally:
        ours.close()
        thread.join(10)
        theirs.close()
    frames = frames_from(bytes(raw))
    assert all(stream == STDIN for stream, _ in frames)
    assert max(len(p) for _, p in frames) <= 1048576     # the doc's limit, in bytes
    assert all(p for _, p in frames), "an empty frame would close stdin"
    assert b"".join(p for _, p in frames) == data
    assert len(frames) == -(-size // 1048576)


@pytest.mark.parametrize("runtime", ["pyrunc"], indirect=True)
def test_five_mib_write_arrives_whole_and_in_order(manager, bundle):
    # The container hashes its stdin, so the output is one line and no reader can fall behind:
    # what is tested is the write path (frames of at most the limit, in order, none lost).
    task = manager.create(new_id("bigw"), bundle(["sha256sum"]), stdin=True, log_path=False)
    task.start()
    data = random.Random(5).randbytes(5 * MIB)
    attached = task.attach()
    try:
        attached.write(data)
        attached.close_stdin()
        out, status = attached.read_all(timeout=60)
    finally:
        attached.close()
    assert out[STDOUT].split()[0].decode() == hashlib.sha256(data).hexdigest()
    assert status == 0
    assert task.wait(timeout=30).status == 0


class ChunkedSocket:
    """A socket stand-in whose recv hands out the given chunks (cut to the size asked)."""

    def __init__(self, chunks):
        self.chunks = [c for c in chunks if c]

    def recv(self, n):
        if not self.chunks:
            return b""
        head = self.chunks[0]
        if len(head) > n:
            self.chunks[0] = head[n:]
            return head[:n]
        self.chunks.pop(0)
        return head


def cut(data, points):
    points = sorted({p % (len(data) + 1) for p in points})
    return [data[a:b] for a, b in zip([0] + points, points + [len(data)])]


reply_text = st.text(st.characters(blacklist_characters="\n\0", max_codepoint=0x2ff),
                     max_size=40)


@given(reply=reply_text, after=st.binary(max_size=300),
       points=st.lists(st.integers(0, 400), max_size=6))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_read_line_stops_at_the_newline_and_keeps_what_follows(reply, after, points):
    line = ("ok " + reply if reply else "ok").encode()
    sock = ChunkedSocket(cut(line + b"\n" + after, points))
    got, rest = _read_line(sock)
    assert got == line.decode()
    assert rest + b"".join(sock.chunks) == after


@given(payloads=st.lists(st.binary(min_size=1, max_size=50), min_size=1, max_size=5),
       points=st.lists(st.integers(0, 400), max_size=6))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_frames_right_after_the_reply_reach_the_attachment(payloads, points):
    frames = b"".join(bytes([STDOUT, 0, 0, 0]) + struct.pack(">I", len(p)) + p for p in payloads)
    ours, theirs = socket.socketpair()
    try:
        wrapped = ChunkedSocket(cut(b"ok\n" + frames, points))

        class Sock:
            def __init__(self):
                self.settimeout = ours.settimeout
                self.close = ours.close
                self.sendall = ours.sendall

            def recv(self, n):
                return wrapped.recv(n)

        line, rest = _read_line(Sock())
        assert line == "ok"
        attached = Attachment(Sock(), rest)
        got = [attached.read(timeout=1) for _ in payloads]
        assert got == [(STDOUT, p) for p in payloads]
        assert attached.read(timeout=1) == (None, b"")
    finally:
        ours.close()
        theirs.close()


ATTACHES = 60


class LateReader:
    """A client socket whose first recv comes late, as on a loaded machine: by then the frames
    the shim sent after its reply wait in the same socket buffer as the reply."""

    def __init__(self, sock, delay):
        self._sock = sock
        self._delay = delay

    def recv(self, n):
        if self._delay:
            time.sleep(self._delay)
            self._delay = 0
        return self._sock.recv(n)

    def __getattr__(self, name):
        return getattr(self._sock, name)


@pytest.mark.parametrize("runtime", ["pyrunc"], indirect=True)
def test_every_attach_to_a_busy_container_sees_its_frames(manager, bundle, monkeypatch):
    """A container counting on stdout without pause: its output follows the attach reply at
    once; each of many attaches (every other one reading its reply late) must get its frames,
    in order, within a timeout."""
    task = manager.create(new_id("busy"), bundle(
        ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i; done"]), log_path=False)
    task.start()
    connect = client.ShimClient.connect
    late = {"delay": 0.0}
    monkeypatch.setattr(client.ShimClient, "connect",
                        lambda self, timeout=30.0: LateReader(connect(self, 10.0), late["delay"]))
    failures = []
    for n in range(ATTACHES):
        if len(failures) >= 3:
            break
        late["delay"] = 0.05 if n % 2 else 0.0
        deadline = time.monotonic() + 10
        try:
            attached = task.attach()
        except Exception as e:      # noqa: BLE001 - collected, reported below
            failures.append("attach %d: %s: %s" % (n, type(e).__name__, str(e)[:100]))
            continue
        try:
            text = b""
            while text.count(b"\n") < 20:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out with %r" % text[-80:])
                stream, data = attached.read(timeout=left)
                if stream is None:
                    raise AssertionError("connection closed with %r" % text[-80:])
                assert stream == STDOUT, (stream, data[:40])
                text += data
        except (AssertionError, OSError) as e:
            failures.append("attach %d: %s: %s" % (n, type(e).__name__, str(e)[:100]))
            continue
        finally:
            attached.close()
        lines = text.split(b"\n")[1:-1]     # the first and last may be cut
        numbers = [int(x) for x in lines]
        if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
            failures.append("attach %d: out of sequence: %r" % (n, numbers[:30]))
    assert failures == [], "%d of %d attaches failed: %s" % (len(failures), ATTACHES,
                                                             failures[:5])

