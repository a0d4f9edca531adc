"""Hostile attach input to a running shim (docs/containerd.md, "The shim protocol"): a frame
header may announce up to 4 GiB, so the shim must neither wait for a frame whole nor accept
a length over the protocol's limit (1 MiB). A client that breaks the attach framing is
disconnected, the shim's memory stays within its per-connection limits (read from
/proc/PID/status, the kernel's account of the shim's resident memory), the others are served
and the container's stdio keeps working.
"""
import socket
import struct
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc.containerd.shim.client import STDIN, STDOUT, ShimClient

from .conftest import new_id
from .test_shim_socket_fuzz import assert_unaffected

FRAME_MAX = 1 << 20             # the protocol's longest attach frame payload
MIB = 1 << 20
# The shim's growth while one hostile client streams STREAMED bytes: its per-connection
# limits (1 MiB of queued output, a few KiB of input) plus slack for the allocator; a shim
# that buffers the announced frame grows by at least STREAMED.
STREAMED = 64 * MIB
GROWTH_BOUND = 8 * MIB


def vm_kib(pid, field):
    """A memory figure of /proc/PID/status, in KiB (VmHWM: the peak resident set)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def header(stream, length, pad=b"\0\0\0"):
    return bytes([stream]) + pad + struct.pack(">I", length)


def stream_until_dropped(sock, total, chunk=MIB):
    """Send total bytes of payload; the number sent before the shim closed the connection."""
    sock.settimeout(10)
    block = b"x" * chunk
    sent = 0
    try:
        while sent < total:
            sock.sendall(block)
            sent += chunk
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


def read_to_end(attached, timeout=10.0):
    """Frames until the shim closes the connection: [(stream, payload)], without the end."""
    frames = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "the shim did not close the connection; got %r" % frames[-3:]
        try:
            stream, data = attached.read(timeout=left)
        except ConnectionResetError:
            return frames
        except socket.timeout:
            raise AssertionError("the shim did not close the connection; got %r" % frames[-3:])
        if stream is None:
            return frames
        frames.append((stream, data))


def collect_stdout(attached, want, timeout=20.0):
    """Read frames until want bytes of stdout arrived (in a thread: see echo())."""
    got = b""
    deadline = time.monotonic() + timeout
    while len(got) < want:
        left = deadline - time.monotonic()
        assert left > 0, "only %d of %d bytes echoed" % (len(got), want)
        stream, data = attached.read(timeout=left)
        assert stream is not None, "connection closed after %d of %d bytes" % (len(got), want)
        assert stream == STDOUT, (stream, data[:80])
        got += data
    return got


def echo(task, pieces, want):
    """Send the raw attach input pieces to cat and read what it echoes, reading while sending
    (a client that does not read its output is disconnected at 1 MiB queued)."""
    attached = task.attach()
    result = {}

    def reader():
        try:
            result["out"] = collect_stdout(attached, want)
        except BaseException as e:      # noqa: BLE001 - re-raised in the test's thread
            result["error"] = e

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for piece in pieces:
            attached.sock.sendall(piece)
            time.sleep(0.001)           # let the shim read the pieces apart
        thread.join(30)
        assert not thread.is_alive(), "echo reader hung"
    finally:
        attached.close()
        thread.join(5)
    if "error" in result:
        raise result["error"]
    return result["out"]


def assert_echoes(task, text=b"still here\n"):
    attached = task.attach()
    try:
        attached.write(text)
        assert attached.read(timeout=10) == (STDOUT, text)
    finally:
        attached.sock.close()


@pytest.fixture
def cat_task(manager, bundle):
    task = manager.create(new_id("attlim"), bundle(["cat"]), stdin=True)
    task.start()
    return task


@pytest.mark.parametrize("runtime", ["pyrunc"], indirect=True)
def test_huge_frame_announced_drops_client_and_memory_stays_bounded(cat_task):
    task, before = cat_task, cat_task.state()
    shim = before.shim_pid
    base = vm_kib(shim, "VmHWM")
    hostile = task.attach()
    try:
        hostile.sock.sendall(header(STDIN, 0xFFFFFFFF))
        stream_until_dropped(hostile.sock, STREAMED)
        grown = (vm_kib(shim, "VmHWM") - base) * 1024
        assert grown < GROWTH_BOUND, (
            "the shim's peak resident memory grew by %d MiB while a client streamed %d MiB "
            "of an announced 4 GiB frame" % (grown // MIB, STREAMED // MIB))
        # dropped without an exit frame: the container did not end
        assert all(stream != 3 for stream, _ in read_to_end(hostile))
    finally:
        hostile.sock.close()
    assert_unaffected(task, before)
    assert_echoes(task)                 # none of the hostile bytes reached cat's stdin
    assert vm_kib(shim, "VmRSS") * 1024 < base * 1024 + GROWTH_BOUND


@pytest.mark.parametrize("runtime", ["pyrunc"], indirect=True)
def test_frame_length_limit_is_exact(cat_task):
    task, before = cat_task, cat_task.state()
    # a frame of the longest length is delivered, even in pieces
    payload = bytes(range(256)) * (FRAME_MAX // 256)
    data = header(STDIN, FRAME_MAX) + payload
    pieces = [data[i:i + 100000] for i in range(0, len(data), 100000)]
    assert echo(task, pieces, FRAME_MAX) == payload
    # one byte longer is refused at its header: the connection is closed, nothing delivered
    hostile = task.attach()
    try:
        hostile.sock.sendall(header(STDIN, FRAME_MAX + 1) + b"n" * 1000)
        assert read_to_end(hostile) == []
    finally:
        hostile.sock.close()
    assert_unaffected(task, before)
    assert_echoes(task)


# short payloads, and long ones (over the shim's 4 KiB reads) repeating a short pattern
payloads_st = st.one_of(
    st.binary(min_size=1, max_size=300),
    st.builds(lambda n, unit: (unit * (n // len(unit) + 1))[:n],
              st.integers(1, 20000), st.binary(min_size=1, max_size=16)))
settings_fast = settings(max_examples=25, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("runtime", ["pyrunc"], indirect=True)
def test_frames_in_any_pieces_reach_stdin(cat_task):
    """The shim reads a frame's payload as it arrives: frames split anywhere (inside the
    header too) reach the container's stdin whole and in order."""
    task, before = cat_task, cat_task.state()

    @settings_fast
    @given(st.lists(payloads_st, min_size=1, max_size=8), st.lists(st.integers(1), max_size=12))
    def check(payloads, cuts):
        data = b"".join(header(STDIN, len(p)) + p for p in payloads)
        points = sorted({c % len(data) for c in cuts} | {0, len(data)})
        pieces = [data[a:b] for a, b in zip(points, points[1:]) if b > a]
        want = b"".join(payloads)
        assert echo(task, pieces, len(want)) == want

    check()
    assert_unaffected(task, before)


bad_headers = st.one_of(
    st.tuples(st.integers(1, 255), st.just(b"\0\0\0"), st.integers(0, FRAME_MAX)),
    st.tuples(st.just(STDIN), st.binary(min_size=3, max_size=3).filter(lambda p: any(p)),
              st.integers(0, FRAME_MAX)),
    st.tuples(st.just(STDIN), st.just(b"\0\0\0"), st.integers(FRAME_MAX + 1, 0xFFFFFFFF)),
).map(lambda t: header(t[0], t[2], t[1]))


@pytest.mark.parametrize("runtime", ["pyrunc"], indirect=True)
def test_malformed_frame_headers_drop_only_that_client(cat_task):
    """A header with another stream than stdin, non-zero padding or a length over the limit
    (text sent by mistake, garbage) closes that connection; the frames before it are
    delivered, nothing after it; an attached bystander keeps its stream and the container
    its stdin."""
    task, before = cat_task, cat_task.state()
    bystander = task.attach()

    @settings_fast
    @given(st.binary(max_size=200), bad_headers, st.binary(max_size=64))
    def check(good, bad, tail):
        hostile = task.attach()
        try:
            try:
                hostile.sock.sendall((header(STDIN, len(good)) + good if good else b"")
                                     + bad + header(STDIN, len(tail)) + tail)
            except (BrokenPipeError, ConnectionResetError):
                pass
            assert all(stream != 3 for stream, _ in read_to_end(hostile))
        finally:
            hostile.sock.close()
        # cat echoes the good frame to the bystander; read it before the next attach (an
        # attach reply must not race with output)
        if good:
            assert collect_stdout(bystander, len(good)) == good

    try:
        check()
        bystander.write(b"bystander\n")
        assert collect_stdout(bystander, 10) == b"bystander\n"    # the tails never came
    finally:
        bystander.sock.close()
    assert_unaffected(task, before)
    assert_echoes(task)


@pytest.mark.parametrize("runtime", ["pyrunc"], indirect=True)
def test_client_not_reading_replies_is_cut_off_cleanly(cat_task):
    """A client pipelining requests without reading the replies is disconnected once 1 MiB of
    replies waits for it: it receives its replies in order and without a gap up to the cut,
    the shim reads nothing more from it, and serves the others."""
    task, before = cat_task, cat_task.state()
    count = 150000      # about 6 MiB of replies
    words = [b"w%06d" % i for i in range(count)]
    sock = ShimClient(task.state_dir).connect(timeout=20)
    try:
        try:
            sock.sendall(b"".join(w + b"\n" for w in words))
            sent_all = True
        except (BrokenPipeError, ConnectionResetError):
            sent_all = False
        got = b""
        while True:
            try:
                chunk = sock.recv(1 << 20)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
    finally:
        sock.close()
    lines = got.split(b"\n")[:-1]       # the last reply may be cut
    assert 0 < len(lines) < count and not sent_all, (len(lines), sent_all)
    want = [b"err InvalidArgument unknown request " + w for w in words[:len(lines)]]
    assert lines == want, next(i for i, (a, b) in enumerate(zip(lines, want)) if a != b)
    assert_unaffected(task, before)
    assert_echoes(task)
