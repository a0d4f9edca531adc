"""EventService: docker's event objects (Engine API EventMessage, dockerd's legacy fields),
kept in a flock'd, capped file shared by processes; docker's filters and time formats; image
events from the image service and pull."""
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from hypothesis import given, settings, strategies as st

from pyrunc.engine.events import EventService, container_attributes, parse_event_time
from pyrunc.engine.images import ImageService, builtin
from pyrunc.errors import InvalidArgument, SystemFailure

CID = "4f66ad9a0b2e8e3c1b7c0e6d1c5b6b3bd6c3f1e44bd1f6a6cdd0e1b2a3f4c5d6"


@pytest.fixture
def events(tmp_path):
    return EventService(str(tmp_path / "events" / "events.jsonl"))


def test_container_event_shape(events):
    before = time.time_ns()
    attrs = container_attributes({"Image": "busybox", "Labels": {"com.example": "x"}}, "/web")
    ev = events.emit("container", "start", CID, attrs)
    after = time.time_ns()
    # the Engine API's EventMessage with dockerd's legacy status/id/from, as `docker events
    # --format '{{json .}}'` prints it
    assert ev == {"status": "start", "id": CID, "from": "busybox", "Type": "container",
                  "Action": "start",
                  "Actor": {"ID": CID, "Attributes": {"com.example": "x", "image": "busybox",
                                                      "name": "web"}},
                  "scope": "local", "time": ev["timeNano"] // 10 ** 9,
                  "timeNano": ev["timeNano"]}
    assert before <= ev["timeNano"] <= after
    assert list(events.query()) == [ev]
    vol = events.emit("volume", "create", "data", {"driver": "local"})
    assert vol == {"Type": "volume", "Action": "create",
                   "Actor": {"ID": "data", "Attributes": {"driver": "local"}},
                   "scope": "local", "time": vol["time"], "timeNano": vol["timeNano"]}


def test_container_attributes_follow_dockerd_order():
    # dockerd copies the labels over the event's own attributes, then sets image and name
    attrs = container_attributes({"Image": "nginx:1.22", "Labels": {"exitCode": "9",
                                                                    "name": "label"}},
                                 "/web", {"exitCode": "0", "signal": "15"})
    assert attrs == {"exitCode": "9", "signal": "15", "image": "nginx:1.22", "name": "web"}
    assert container_attributes({}, "x") == {"name": "x"}


@pytest.mark.parametrize("args,message", [
    (("bogus", "start", CID), "event type 'bogus'"),
    (("container", "", CID), "action and actor ID must be strings"),
    (("container", "start", CID, {"a": 1}), "must map strings to strings"),
])
def test_emit_refuses_bad_events(events, args, message):
    with pytest.raises(InvalidArgument, match=message):
        events.emit(*args)
    assert list(events.query()) == []


def _fill(events):
    events.emit("container", "create", CID, container_attributes(
        {"Image": "busybox:latest", "Labels": {"app": "web", "tier": "front"}}, "/web"))
    events.emit("container", "health_status: healthy", CID, container_attributes(
        {"Image": "busybox:latest"}, "/web"))
    events.emit("container", "exec_start: sh -c true", "b" * 64, container_attributes(
        {"Image": "nginx"}, "/db", {"execID": "1"}))
    events.emit("image", "tag", "sha256:" + "c" * 64, {"name": "busybox:v2", "app": "img"})
    events.emit("image", "pull", "busybox:latest", {"name": "busybox"})
    events.emit("network", "connect", "d" * 64, {"container": CID, "name": "bridge"})
    events.emit("volume", "mount", "data", {"container": CID, "driver": "local"})


@pytest.mark.parametrize("filters,want", [
    (None, [0, 1, 2, 3, 4, 5, 6]),
    ({"type": ["image"]}, [3, 4]),
    ({"type": ["image", "volume"]}, [3, 4, 6]),
    ({"container": ["web"]}, [0, 1]),
    ({"container": ["4f66ad"]}, [0, 1]),             # ID prefix
    ({"container": ["we"]}, [0, 1]),                 # names match by prefix too
    ({"container": ["db", "web"]}, [0, 1, 2]),
    ({"event": ["create"]}, [0]),
    ({"event": ["health_status"]}, [1]),             # docker's prefix match for these
    ({"event": ["exec_start"]}, [2]),
    ({"event": ["health"]}, []),
    ({"image": ["busybox"]}, [0, 1, 3, 4]),          # without its tag
    ({"image": ["busybox:latest"]}, [0, 1, 4]),
    ({"image": ["nginx"]}, [2]),
    ({"label": ["app"]}, [0, 3]),
    ({"label": ["app=web"]}, [0]),
    ({"label": ["app=web", "tier"]}, [0]),
    ({"label": ["app=nope"]}, []),
    ({"volume": ["data"]}, [6]),
    ({"network": ["bridge"]}, [5]),
    ({"type": ["container"], "event": ["create"], "container": ["web"]}, [0]),
    (["type=image", "event=pull"], [4]),
    ({"type": "image"}, [3, 4]),
    ({"type": {"image": True}}, [3, 4]),
    ({"scope": ["local"]}, [0, 1, 2, 3, 4, 5, 6]),
    ({"scope": ["swarm"]}, []),
])
def test_filters(events, filters, want):
    _fill(events)
    everything = list(events.query())
    assert [everything.index(e) for e in events.query(filters=filters)] == want


@pytest.mark.parametrize("filters,message", [
    ({"bogus": ["x"]}, "^invalid filter 'bogus'$"),
    ({"since": ["1"]}, "^invalid filter 'since'$"),
    (["typeimage"], "bad format of filter"),
    ({"type": [3]}, "invalid filter 'type'"),
    ({"type": 3}, "invalid filter 'type'"),
    ("type=image", "filters: must be an object"),
])
def test_filter_validation(events, filters, message):
    with pytest.raises(InvalidArgument, match=message):
        events.query(filters=filters)


def test_docker_time_formats():
    now = 1_700_000_000_123_456_789
    assert parse_event_time("1700000000", now) == 1_700_000_000 * 10 ** 9
    assert parse_event_time("1700000000.5", now) == 1_700_000_000_500_000_000
    assert parse_event_time("1700000000.000000001", now) == 1_700_000_000_000_000_001
    assert parse_event_time(1700000000, now) == 1_700_000_000 * 10 ** 9
    assert parse_event_time(1700000000.25, now) == 1_700_000_000_250_000_000
    assert parse_event_time("2023-11-14T22:13:20Z", now) == 1_700_000_000 * 10 ** 9
    assert parse_event_time("2023-11-14T22:13:20.5Z", now) == 1_700_000_000_500_000_000
    assert parse_event_time("2023-11-15T00:13:20+02:00", now) == 1_700_000_000 * 10 ** 9
    assert parse_event_time("2023-11-14T22:13Z", now) == (1_700_000_000 - 20) * 10 ** 9
    assert parse_event_time("10m", now) == now - 600 * 10 ** 9
    assert parse_event_time("1h30m", now) == now - 5400 * 10 ** 9
    assert parse_event_time("1.5s", now) == now - 1_500_000_000
    # a time without a zone is local, as docker's CLI reads it
    env = dict(os.environ, TZ="UTC")
    out = subprocess.run([sys.executable, "-c",
                          "from pyrunc.engine.events import parse_event_time as p;"
                          "print(p('2023-11-14T22:13:20'), p('2023-11-14'))"],
                         env=env, capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(1_700_000_000 * 10 ** 9), str(1_699_920_000 * 10 ** 9)]
    for bad in ("yesterday", "12abc", "1700000000.1234567891", "", "2023-13-45T00:00:00Z",
                "--", "1.2.3", "\u0661\u0662"):
        with pytest.raises(InvalidArgument):
            parse_event_time(bad, now)


def test_since_until(events):
    evs = [events.emit("container", "start", CID) for _ in range(5)]
    stamps = [e["timeNano"] for e in evs]
    as_text = ["%d.%09d" % divmod(t, 10 ** 9) for t in stamps]
    assert list(events.query(since=as_text[1], until=as_text[3])) == evs[1:4]
    assert list(events.query(since=as_text[4])) == evs[4:]
    assert list(events.query(until=as_text[0])) == evs[:1]
    assert list(events.query(since="1m")) == evs
    with pytest.raises(InvalidArgument) as e:
        events.query(since=as_text[3], until=as_text[1])
    assert str(e.value) == "`since` time (%s) cannot be after `until` time (%s)" % (
        as_text[3], as_text[1])
    with pytest.raises(InvalidArgument, match='failed to parse value as time or duration: "x"'):
        events.query(since="x")


def test_capped_and_rotated(tmp_path):
    svc = EventService(str(tmp_path / "ev"), limit=5)
    evs = [svc.emit("container", "start", "%064x" % i) for i in range(23)]
    kept = list(svc.query())
    # between limit and 2*limit of the latest events are kept, in order
    assert 5 <= len(kept) <= 10 and kept == evs[-len(kept):]
    assert sorted(os.listdir(tmp_path)) == ["ev", "ev.1", "ev.lock"]
    for name in ("ev", "ev.1"):
        with open(tmp_path / name) as f:
            assert len(f.readlines()) <= 5


def test_torn_and_garbage_lines(events):
    a = events.emit("container", "create", CID)
    with open(events.path, "ab") as f:
        f.write(b"garbage line\n[1]\n{\"x\": 1}\n[\"seq\", {}]\n")
    b = events.emit("container", "start", CID)
    with open(events.path, "ab") as f:
        f.write(b'[99,{"status":"die"')          # a writer killed in the middle of a line
    assert list(events.query()) == [a, b]
    c = events.emit("container", "die", CID)     # the next writer drops the torn piece
    assert list(events.query()) == [a, b, c]
    with open(events.path, "rb") as f:
        assert f.read().endswith(b"\n")


def test_event_log_symlink_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("precious\n")
    os.symlink(target, tmp_path / "events.jsonl")
    svc = EventService(str(tmp_path / "events.jsonl"))
    with pytest.raises(SystemFailure, match="symbolic link"):
        svc.emit("container", "start", CID)
    assert target.read_text() == "precious\n"


def test_follow_with_stop_and_until(events):
    old = events.emit("container", "create", CID)
    seen = []

    def stop():
        if len(seen) < 2:
            events.emit("container", "start", CID)
        return len(seen) >= 2

    for ev in events.query(follow=True, stop=stop, poll=0.01):
        seen.append(ev)
    # without since, follow starts at the end: only new events
    assert [e["Action"] for e in seen] == ["start", "start"] and old not in seen
    # with since, the kept ones first; until (a second ahead) ends the stream
    start = time.monotonic()
    got = list(events.query(since=old["timeNano"] / 1e9 - 0.5, until=time.time() + 1,
                            follow=True, poll=0.01))
    assert got[0] == old and len(got) >= 3 and 0.5 < time.monotonic() - start < 5


EMITTER = textwrap.dedent("""
    import sys
    from pyrunc.engine.events import EventService
    svc = EventService(sys.argv[1], limit=int(sys.argv[3]))
    for i in range(int(sys.argv[4])):
        svc.emit("container", "start", sys.argv[2], {"i": str(i)})
""")


def test_two_processes_emitting_one_following(events):
    """Two writer processes race (the file rotates every 200 events); a follower sees every
    event of both exactly once, each writer's in its order. (A follower that falls more than
    a file behind loses the oldest, as docker drops events for a subscriber that lags.)"""
    n = 400
    svc = EventService(events.path, limit=200)
    follower = svc.query(follow=True, since="0", poll=0.005,
                         stop=lambda: len(seen) >= 2 * n or time.monotonic() > deadline)
    seen = []
    deadline = time.monotonic() + 60
    procs = [subprocess.Popen([sys.executable, "-c", EMITTER, events.path, who, "200", str(n)])
             for who in ("a" * 64, "b" * 64)]
    try:
        for ev in follower:
            seen.append((ev["Actor"]["ID"][0], int(ev["Actor"]["Attributes"]["i"])))
    finally:
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
                p.wait()
    assert [p.returncode for p in procs] == [0, 0]
    assert len(seen) == 2 * n and len(set(seen)) == 2 * n
    for who in "ab":
        assert [i for w, i in seen if w == who] == list(range(n))
    assert 200 <= len(list(svc.query())) <= 400


def test_image_service_events(tmp_path, events):
    svc = ImageService(str(tmp_path / "images"))
    svc.events = events
    image_id = builtin.build(svc, "busybox")
    svc.tag("busybox", "busybox:v2")
    assert svc.remove("busybox:v2") == [{"Untagged": "busybox:v2"}]
    svc.tag("busybox", "example.com/bb:1")
    records = svc.remove(image_id, force=True)
    assert {"Deleted": image_id} in records
    svc.prune()
    got = [(e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"].get("name"))
           for e in events.query(filters={"type": ["image"]})]
    # dockerd: tag names the new tag; untag and delete name the image ID
    assert got == [("tag", image_id, "busybox:v2"), ("untag", image_id, image_id),
                   ("tag", image_id, "example.com/bb:1"), ("untag", image_id, image_id),
                   ("untag", image_id, image_id), ("delete", image_id, image_id),
                   ("prune", "", None)]
    assert all(e["status"] == e["Action"] for e in events.query())
    prune = list(events.query(filters={"event": ["prune"]}))[0]
    assert int(prune["Actor"]["Attributes"]["reclaimed"]) >= 0 and "id" not in prune
    # no events service: nothing is emitted, nothing fails
    quiet = ImageService(str(tmp_path / "quiet"))
    builtin.build(quiet, "busybox")
    quiet.tag("busybox", "busybox:v3")
    quiet.remove("busybox:v3")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def registry(tmp_path):
    binary = "/usr/bin/docker-registry"
    if not os.path.exists(binary):
        pytest.skip("docker-registry is not installed")
    port = _free_port()
    config = tmp_path / "registry.yml"
    config.write_text("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                      "    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%d\n"
                      % (tmp_path / "registry-data", port))
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("docker-registry did not start")
                time.sleep(0.05)
        yield "127.0.0.1:%d" % port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def test_pull_event(tmp_path, events, registry):
    from pyrunc.engine.distribution import pull, push
    from pyrunc.engine.registry import AuthFile, RegistryOptions, RegistryService
    registries = RegistryService(RegistryOptions(certs_dir=str(tmp_path / "certs.d")),
                                 AuthFile(str(tmp_path / "auth.json")))
    try:
        source = ImageService(str(tmp_path / "source"))
        builtin.build(source, "busybox")
        name = "%s/test/bb:v1" % registry
        source.tag("busybox", name)
        push(name, source.content, registries, images=source)
        target = ImageService(str(tmp_path / "target"))
        target.events = events
        image_id = pull(name, target, registries).image_id
    finally:
        registries.close()
    got = list(events.query())
    # dockerd: the pulled reference as the ID, the repository as the name
    assert [(e["Type"], e["Action"], e["id"], e["Actor"]["Attributes"]) for e in got] == [
        ("image", "pull", name, {"name": "%s/test/bb" % registry})]
    assert image_id == target.get(name).id


def test_oversized_event_is_refused_whole(events):
    a = events.emit("container", "create", CID)
    with pytest.raises(InvalidArgument, match="more than the event log's"):
        events.emit("container", "start", CID, {"big": "x" * (2 << 20)})
    b = events.emit("container", "start", CID, {"big": "x" * (512 << 10)})
    assert list(events.query()) == [a, b]


def test_lock_file_symlink_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("precious\n")
    os.symlink(target, tmp_path / "events.jsonl.lock")
    svc = EventService(str(tmp_path / "events.jsonl"))
    with pytest.raises(SystemFailure, match="open event log lock"):
        svc.emit("container", "start", CID)
    assert target.read_text() == "precious\n"


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(max_size=40), st.from_regex(
    r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}(:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,12})?)?)?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?\Z"), st.from_regex(r"\A-?([0-9]*\.?[0-9]*(h|m|s|ms|us|ns))+\Z")))
def test_hostile_times_parse_or_fail_cleanly(text):
    try:
        value = parse_event_time(text, 1_700_000_000 * 10 ** 9)
    except InvalidArgument:
        return
    assert isinstance(value, int)


def test_follower_survives_the_log_started_over(events):
    first = events.emit("container", "create", CID)
    seen = []
    deadline = time.monotonic() + 20

    def stop():
        if len(seen) == 1 and not os.path.exists(events.path + ".restarted"):
            os.unlink(events.path)
            events.emit("container", "start", CID)      # seq 1 again, in a new file
            open(events.path + ".restarted", "w").close()
        return len(seen) >= 2 or time.monotonic() > deadline

    for ev in events.query(since="0", follow=True, stop=stop, poll=0.01):
        seen.append(ev)
    assert seen[0] == first and seen[1]["Action"] == "start"
