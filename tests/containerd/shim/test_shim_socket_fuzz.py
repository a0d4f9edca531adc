"""A running shim's socket fed malformed requests (oversized, truncated, NUL bytes, unknown
commands, bad arguments, an exec whose process file is not JSON): each is answered with an
error as the protocol says (docs/containerd.md, "The shim protocol"), the shim keeps serving,
and the container it holds runs on with its stdio intact."""
import os
import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc import errors
from pyrunc.containerd.shim.client import STDOUT, ShimClient
from pyrunc.containerd.tasks import RUNNING

from .conftest import new_id

KNOWN = {b"state", b"start", b"kill", b"pause", b"resume", b"wait", b"wait-exec", b"resize",
         b"attach", b"exec", b"delete", b"collect"}
TOO_LONG = b"err InvalidArgument request too long"
USAGE_EXEC = b"err InvalidArgument usage: exec EXEC_ID OPTIONS PROCESS_JSON_PATH"
USAGE_RESIZE = b"err InvalidArgument usage: resize COLUMNS ROWS [EXEC_ID]"
BAD_SIGNAL = b"err InvalidArgument kill: bad signal number"
EMPTY = b"err InvalidArgument empty request"

# (request line, the reply the protocol gives it)
FIXED = [
    (b"", EMPTY), (b"    ", EMPTY), (b"\0state", EMPTY),
    (b"sta\0te", b"err InvalidArgument unknown request sta"),
    (b"kill", BAD_SIGNAL), (b"kill 0", BAD_SIGNAL), (b"kill 65", BAD_SIGNAL),
    (b"kill -9", BAD_SIGNAL), (b"kill TERM", BAD_SIGNAL), (b"kill 99999999999", BAD_SIGNAL),
    (b"resize", USAGE_RESIZE), (b"resize 80", USAGE_RESIZE), (b"resize 0 24", USAGE_RESIZE),
    (b"resize x y", USAGE_RESIZE),
    (b"exec", USAGE_EXEC), (b"exec e1", USAGE_EXEC), (b"exec e1 -", USAGE_EXEC),
    (b"exec e/1 - /p.json", USAGE_EXEC), (b"exec " + b"a" * 65 + b" - /p.json", USAGE_EXEC),
    (b"exec e1 bogus /p.json", b"err InvalidArgument exec: unknown option bogus"),
    (b"wait-exec nope", b"err NotFound exec nope: not found"),
    (b"attach nope", b"err NotFound exec nope: not found"),
    (b"resize 80 24 nope", b"err NotFound exec nope: not found"),
    (b"start", None),       # FailedPrecondition: running, not created (checked by prefix)
    (b"start by-client", None),
    (b"start now", b"err InvalidArgument start: unknown option now"),
    (b"collect", None),     # FailedPrecondition: has not exited
]

unknown_words = st.binary(min_size=1, max_size=12).filter(
    lambda w: not any(c in w for c in b" \n\0") and w not in KNOWN)
bad_requests = st.one_of(
    st.sampled_from(FIXED),
    st.tuples(unknown_words, st.binary(max_size=20).filter(lambda b: b"\n" not in b)).map(
        lambda t: (t[0] + b" " + t[1], b"err InvalidArgument unknown request " + t[0])),
)
oversized = st.one_of(
    st.integers(4096, 9000).map(lambda n: b"y" * n + b"\n"),      # a line too long
    st.integers(8193, 12000).map(lambda n: b"y" * n),            # no newline in sight
)


def exchange(client, data, want_lines, until_eof=False, timeout=10.0, half_close=False):
    """Send data on a new connection (then end the sending side if half_close); the reply
    lines (bytes, without newlines)."""
    sock = client.connect(timeout=timeout)
    got = b""
    try:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass            # the shim refused the request and closed while we were sending
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + timeout
        while until_eof or got.count(b"\n") < want_lines:
            assert time.monotonic() < deadline, "no reply; got %r" % got[-200:]
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
    finally:
        sock.close()
    assert got.endswith(b"\n") or not got
    return got.split(b"\n")[:-1]


def assert_reply(line, want, request):
    if want is None:
        assert line.startswith(b"err FailedPrecondition container "), (request, line)
    else:
        assert line == want, (request, line)


def assert_unaffected(task, before):
    now = task.state()
    assert (now.status, now.pid, now.shim_pid) == (RUNNING, before.pid, before.shim_pid)


@pytest.fixture
def cat_task(manager, bundle):
    task = manager.create(new_id("fuzz"), bundle(["cat"]), stdin=True)
    task.start()
    return task


@pytest.mark.parametrize("runtime", ["pyrunc"], indirect=True)
def test_malformed_requests_answered_and_served_on(cat_task):
    task, before = cat_task, cat_task.state()
    client = ShimClient(task.state_dir)

    @settings(max_examples=80, deadline=None, suppress_health_check=[
        HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.lists(bad_requests, min_size=1, max_size=6), st.one_of(st.none(), oversized))
    def check(requests, tail):
        # pipelined on one connection; then a good request, answered on the same connection
        data = b"".join(r + b"\n" for r, _ in requests)
        if tail is None:
            lines = exchange(client, data + b"state\n", len(requests) + 1)
            assert lines[-1].startswith(b"ok {"), lines[-1]
        else:
            lines = exchange(client, data + tail, 0, until_eof=True)
            assert lines[-1] == TOO_LONG
            lines = lines[:-1] + [b"ok {"]      # the refusal ended the connection
        assert len(lines) == len(requests) + 1
        for (request, want), line in zip(requests, lines):
            assert_reply(line, want, request)
        assert_unaffected(task, before)

    check()
    # the container's stdio still works: cat echoes through an attachment, then exits 0
    attached = task.attach()
    attached.write(b"still here\n")
    stream, data = attached.read(timeout=10)
    assert (stream, data) == (STDOUT, b"still here\n")
    attached.close_stdin()
    attached.close()
    assert task.wait(timeout=20).status == 0


@pytest.mark.parametrize("runtime", ["pyrunc"], indirect=True)
def test_truncated_and_slow_requests_block_nobody(cat_task):
    task, before = cat_task, cat_task.state()
    client = ShimClient(task.state_dir)
    # a request cut off by the client's exit: no reply, nothing done
    assert exchange(client, b"kill 9", 0, until_eof=True, half_close=True) == []
    # a client sending half a request holds its connection, not the shim
    slow = client.connect(timeout=10)
    try:
        slow.sendall(b"sta")
        assert_unaffected(task, before)
        slow.sendall(b"te\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = slow.recv(65536)
            assert chunk, "connection closed before a reply"
            reply += chunk
        assert reply.startswith(b"ok {")
    finally:
        slow.close()
    assert_unaffected(task, before)


@pytest.mark.parametrize("runtime", ["pyrunc"], indirect=True)
def test_exec_with_invalid_process_json(cat_task):
    """exec's process file is read by the runtime: one that is not JSON fails the exec with
    the runtime's reason, and leaves no exec behind."""
    task, before = cat_task, cat_task.state()
    path = os.path.join(task.state_dir, "exec-bad.json")
    with open(path, "wb") as f:
        f.write(b'{"args": ["true"], \0 not json')
    client = ShimClient(task.state_dir)
    with pytest.raises(errors.PyruncError, match="runtime exec failed"):
        client.call("exec", "bad", "-", path)
    with pytest.raises(errors.NotFound, match="exec bad: not found"):
        client.call("wait-exec", "bad")
    assert_unaffected(task, before)
    assert not os.path.exists(os.path.join(task.state_dir, "exec-bad.pid"))
    task.kill(9)
    assert task.wait(timeout=20).status == 128 + 9

