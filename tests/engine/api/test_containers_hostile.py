"""What a hostile or careless client sends to the containers router: bad bodies and parameters
get docker's 4xx with a one-line message and leave nothing behind (no container, no mount, no
file outside the container); the stream helpers (detach keys, stdcopy framing, timestamps) are
checked against oracles from outside the code: a plain search, the docker SDK's demultiplexer,
Python's datetime."""
import datetime
import io
import json
import os
import socket
import tarfile
import time
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc.engine.api.router.containers import (EscapeFilter, _ns, fixed_time, frame,
                                                 parse_detach_keys)
from pyrunc.errors import InvalidArgument

from .test_containers import daemon_for_module


@pytest.fixture(scope="module")
def d(mirror, tmp_path_factory, private_mount_ns):
    with daemon_for_module(tmp_path_factory.mktemp("hostile"), mirror) as daemon:
        daemon.docker("pull", "busybox")
        daemon.docker("run", "-d", "--name", "box", "busybox", "sleep", "100000")
        yield daemon


def _message(out):
    message = json.loads(out)["message"]
    assert message and "\n" not in message
    return message


def _daemon_mounts(d):
    pid = int(open(d.pidfile).read())
    with open("/proc/%d/mountinfo" % pid) as f:
        return sorted(line.split()[4] for line in f if d.tmp in line)


def _container_dirs(d):
    out = []
    for base, dirs, _ in os.walk(d.root):
        if os.path.basename(base) == "containers":
            out += [x for x in dirs if len(x) == 64]
    return sorted(out)


def test_create_refusals_leave_nothing(d):
    before = (_container_dirs(d), _daemon_mounts(d))
    cases = [
        (b"not json", 400), (b"[]", 400), (b"", 400), (b"null", 400),
        (b'{"Image": "busybox", "HostConfig": "x"}', 400),
        (b'{"Image": "busybox", "NetworkingConfig": [1]}', 400),
        (b'{"Cmd": ["true"]}', 400),
        (b'{"Image": 5}', 400),
        (b'{"Image": "nosuchimage"}', 404),
        (b'{"Image": "busybox", "HostConfig": {"Binds": ["relative:/x:zz"]}}', 400),
        (b'{"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}', 400),
        (b'{"Image": "busybox", "HostConfig": {"LogConfig": {"Type": "nosuchdriver"}}}', 400),
    ]
    for body, status in cases:
        got, _, out = d.request("POST", "/containers/create", body=body,
                                headers={"Content-Type": "application/json"})
        assert got == status, (body, out)
        _message(out)
    for name in ("a", "bad name", "../etc", "-x", "x" * 5 + "/y", "\x00zz", "é" * 3):
        got, _, out = d.request("POST", "/containers/create?name=%s" % urllib.parse.quote(name),
                                body=b'{"Image": "busybox"}')
        assert got == 400, name
        assert _message(out).startswith("Invalid container name")
    got, _, out = d.request("POST", "/containers/create?name=box", body=b'{"Image": "busybox"}')
    assert got == 409 and "is already in use" in _message(out)
    assert (_container_dirs(d), _daemon_mounts(d)) == before


def test_unknown_container_everywhere(d):
    calls = [("GET", "/containers/nosuch/json"), ("POST", "/containers/nosuch/start"),
             ("POST", "/containers/nosuch/stop"), ("POST", "/containers/nosuch/restart"),
             ("POST", "/containers/nosuch/kill"), ("POST", "/containers/nosuch/wait"),
             ("DELETE", "/containers/nosuch"), ("GET", "/containers/nosuch/logs?stdout=1"),
             ("GET", "/containers/nosuch/top"), ("GET", "/containers/nosuch/stats?stream=0"),
             ("POST", "/containers/nosuch/rename?name=other"),
             ("POST", "/containers/nosuch/pause"), ("POST", "/containers/nosuch/unpause"),
             ("POST", "/containers/nosuch/update"), ("GET", "/containers/nosuch/changes"),
             ("GET", "/containers/nosuch/export"), ("POST", "/containers/nosuch/resize?h=1&w=1"),
             ("GET", "/containers/nosuch/archive?path=/"),
             ("POST", "/containers/nosuch/attach?stream=1&stdout=1"),
             ("POST", "/commit?container=nosuch")]
    for method, path in calls:
        status, _, out = d.request(method, path)
        assert status == 404, path
        assert _message(out) == "No such container: nosuch", path


def test_bad_parameters(d):
    calls = [
        ("GET", "/containers/box/logs"),                          # no stream chosen
        ("GET", "/containers/box/logs?stdout=1&since=yesterday"),
        ("GET", "/containers/box/logs?stdout=1&until=1.x"),
        ("POST", "/containers/box/stop?t=soon"),
        ("POST", "/containers/box/kill?signal=NOPE"),
        ("POST", "/containers/box/kill?signal=99"),
        ("POST", "/containers/box/resize?h=abc&w=1"),
        ("POST", "/containers/box/resize?h=-1&w=1"),
        ("POST", "/containers/box/resize?h=1"),
        ("POST", "/containers/box/resize?h=1&w=99999999"),
        ("POST", "/containers/box/wait?condition=bogus"),
        ("POST", "/containers/box/attach?stream=1&detachKeys=ctrl-"),
        ("POST", "/containers/box/attach?stream=1&detachKeys=ctrl-1"),
        ("POST", "/containers/box/rename?name="),
        ("HEAD", "/containers/box/archive"),
        ("GET", "/containers/box/archive?path="),
        ("POST", "/commit"),
        ("POST", "/commit?container=box&repo=UPPER/Case"),
        ("GET", "/containers/json?limit=many"),
        ("GET", "/containers/json?filters=%7Bnot-json"),
        ("GET", "/containers/json?filters=%7B%22nosuchfilter%22%3A%5B%22x%22%5D%7D"),
    ]
    for method, path in calls:
        status, _, out = d.request(method, path)
        assert status == 400, (path, out)
        if method != "HEAD":
            _message(out)
    status, _, out = d.request("POST", "/containers/box/start", body=b'{"Binds": ["/:/x"]}')
    assert status == 400 and "non-empty request body" in _message(out)
    status, _, out = d.request("POST", "/containers/box/update",
                               body=b'{"Privileged": true}')
    assert status == 400 and "cannot be updated" in _message(out)
    status, _, out = d.request("POST", "/containers/box/update", body=b'[1, 2]')
    assert status == 400
    # the container is unharmed by all of it
    status, _, out = d.request("GET", "/containers/box/json")
    assert json.loads(out)["State"]["Running"] is True


def test_archive_put_stays_inside(d, tmp_path):
    d.docker("run", "-d", "--name", "target", "busybox", "sleep", "1000")
    root = json.loads(d.request("GET", "/containers/target/json")[2])
    host_pid = root["State"]["Pid"]
    marker = "d2-escape-%d" % os.getpid()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name in ("../../../../../../tmp/" + marker, "/tmp/" + marker + "-abs"):
            info = tarfile.TarInfo(name)
            info.size = 3
            t.addfile(info, io.BytesIO(b"bad"))
        link = tarfile.TarInfo("up")
        link.type = tarfile.SYMTYPE
        link.linkname = "/../../../../tmp"
        t.addfile(link)
        info = tarfile.TarInfo("up/" + marker + "-via-link")
        info.size = 3
        t.addfile(info, io.BytesIO(b"bad"))
    status, _, out = d.request("PUT", "/containers/target/archive?path=/tmp",
                               body=buf.getvalue())
    assert status in (200, 400), out
    for suffix in ("", "-abs", "-via-link"):
        assert not os.path.exists("/tmp/" + marker + suffix)
    status, _, out = d.request("PUT", "/containers/target/archive?path=/tmp",
                               body=b"this is not a tar archive" * 100)
    assert 400 <= status < 500 and _message(out)
    status, _, out = d.request("PUT", "/containers/target/archive?path=/nosuchdir",
                               body=buf.getvalue())
    assert status == 404 and _message(out)
    assert os.path.exists("/proc/%d" % host_pid)         # still running
    d.docker("rm", "-f", "target")


def test_daemon_side_detach_keys(d):
    """A raw client (no CLI filtering) types the detach sequence: the connection ends, the
    container keeps running with its terminal."""
    d.docker("run", "-dit", "--name", "ttybox", "busybox", "sh")
    pid = json.loads(d.request("GET", "/containers/ttybox/json")[2])["State"]["Pid"]
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(d.sock)
    s.sendall(b"POST /containers/ttybox/attach?stream=1&stdin=1&stdout=1&detachKeys=ctrl-x,y "
              b"HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101 UPGRADED")
    s.sendall(b"echo $((7*6))\r")
    got = b""
    deadline = time.monotonic() + 10
    while b"42" not in got and time.monotonic() < deadline:
        got += s.recv(4096)
    assert b"42" in got            # raw terminal bytes: no stdcopy headers with a TTY
    assert b"\x01\x00\x00\x00" not in got
    s.sendall(b"\x18y")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        piece = s.recv(4096)
        if not piece:
            break
    else:
        raise AssertionError("the daemon kept the connection after the detach keys")
    s.close()
    assert os.path.exists("/proc/%d" % pid)
    state = json.loads(d.request("GET", "/containers/ttybox/json")[2])["State"]
    assert state["Running"] is True and state["Pid"] == pid
    d.docker("rm", "-f", "ttybox")


def test_attach_waiting_client_gone(d):
    """An attach waiting for a start whose client leaves takes nothing with it: the
    container starts later and runs normally."""
    d.docker("create", "--name", "later", "busybox", "sh", "-c", "echo late")
    for _ in range(3):
        s = socket.socket(socket.AF_UNIX)
        s.connect(d.sock)
        s.sendall(b"POST /containers/later/attach?stream=1&stdout=1 HTTP/1.1\r\n"
                  b"Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        assert s.recv(12) == b"HTTP/1.1 101"
        s.close()
    time.sleep(1)
    r = d.docker("start", "-a", "later")
    assert r.stdout == "late\n"
    d.docker("rm", "later")


# the stream helpers -----------------------------------------------------------------------
def test_detach_keys_parse():
    assert parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse_detach_keys("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_") == \
        bytes([0, 27, 28, 29, 30, 31])
    assert parse_detach_keys("a,ctrl-A,z") == b"a\x01z"
    for bad in ("", ",", "ctrl-", "ctrl-ab", "ctrl-1", "é", "ab", "ctrl-p,,ctrl-q", "shift-a"):
        with pytest.raises(InvalidArgument) as e:
            parse_detach_keys(bad)
        assert str(e.value).startswith("Invalid detach keys (")


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=3), st.binary(max_size=60),
       st.lists(st.integers(1, 8), max_size=20))
def test_escape_filter_against_search(keys, data, cuts):
    """Fed in any chunking, the filter passes on exactly what comes before the first full
    sequence (and detaches there); without one, everything but a held partial sequence."""
    f = EscapeFilter(keys)
    out, detached, pos = b"", False, 0
    for n in cuts + [len(data)]:
        piece, detached = f.feed(data[pos:pos + n])
        out += piece
        pos += n
        if detached or pos >= len(data):
            break
    first = data.find(keys)
    if first >= 0:
        assert detached and out == data[:first]
    else:
        assert not detached
        assert data.startswith(out) and keys.startswith(f.held)
        assert out + f.held == data


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1, 2]), st.binary(min_size=1, max_size=300)),
                max_size=10))
def test_frames_read_by_the_sdk(chunks):
    """stdcopy framing as the docker SDK's own demultiplexer reads it."""
    from docker.utils.socket import frames_iter_no_tty

    data = b"".join(frame(s, p) for s, p in chunks)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.sendall(data)
        ours.shutdown(socket.SHUT_WR)
        got = list(frames_iter_no_tty(theirs))
    assert got == chunks


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime.datetime(1971, 1, 1),
                    max_value=datetime.datetime(9999, 1, 1)), st.integers(0, 999))
def test_times_against_datetime(when, nanos):
    when = when.replace(tzinfo=datetime.timezone.utc)
    # whole seconds in integers: timestamp()'s float rounds up near a second's end in far years
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    seconds = (when - epoch) // datetime.timedelta(seconds=1)
    ns = seconds * 10**9 + when.microsecond * 1000 + nanos
    text = fixed_time(ns)
    assert text == when.strftime("%Y-%m-%dT%H:%M:%S.") + "%06d%03dZ" % (when.microsecond, nanos)
    assert _ns(text, "since") == ns
    assert _ns("%d.%09d" % (seconds, ns % 10**9), "since") == ns
    assert _ns(str(seconds), "since") == seconds * 10**9
    assert _ns("0", "since") is None and _ns("", "since") is None


@pytest.mark.parametrize("bad", ["1.2.3", "abc", "1e5", "12:00", "1.", ".5", "--1"])
def test_times_refused(bad):
    with pytest.raises(InvalidArgument) as e:
        _ns(bad, "since")
    assert "since" in str(e.value)
