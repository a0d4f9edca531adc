"""docker ps (list and its filters), prune, and the events each action emits."""
import time

import pytest

from pyrunc import errors
from pyrunc.engine.container import state as cstate

SUMMARY_KEYS = {"Id", "Names", "Image", "ImageID", "Command", "Created", "Ports", "Labels",
                "State", "Status", "HostConfig", "NetworkSettings", "Mounts"}


@pytest.fixture
def three(engine):
    """created (label a=1), exited 3 (label a=2), running (labels a=1, b): oldest first."""
    cs = engine.containers
    created = cs.create({"Image": "busybox", "Cmd": ["true"], "Labels": {"a": "1"}},
                        {}, name="c-created")["Id"]
    time.sleep(0.01)
    exited = cs.create({"Image": "busybox", "Cmd": ["sh", "-c", "exit 3"],
                        "Labels": {"a": "2"}}, {}, name="c-exited")["Id"]
    cs.start(exited)
    cs.wait(exited, timeout=10)
    time.sleep(0.01)
    running = cs.create({"Image": "busybox", "Cmd": ["sleep", "60"],
                         "Labels": {"a": "1", "b": ""}}, name="c-running")["Id"]
    cs.start(running)
    return created, exited, running


def _ids(result):
    return [c["Id"] for c in result]


def test_list_shapes_and_order(engine, three):
    created, exited, running = three
    cs = engine.containers
    assert _ids(cs.list()) == [running]
    everything = cs.list(all=True)
    assert _ids(everything) == [running, exited, created]
    for c in everything:
        assert set(c) == SUMMARY_KEYS
    by_id = {c["Id"]: c for c in everything}
    assert by_id[running]["State"] == "running"
    assert by_id[running]["Status"].startswith("Up ")
    assert by_id[exited]["Status"].startswith("Exited (3) ")
    assert by_id[exited]["Status"].endswith(" ago")
    assert by_id[created]["Status"] == "Created"
    assert by_id[running]["Names"] == ["/c-running"]
    assert by_id[running]["Command"] == "sleep 60"
    assert by_id[running]["Image"] == "busybox"
    assert by_id[running]["ImageID"] == engine.images.get("busybox").id
    assert abs(by_id[running]["Created"] - time.time()) < 60
    assert _ids(cs.list(limit=2)) == [running, exited]
    sized = cs.list(all=True, size=True)[0]
    assert sized["SizeRw"] >= 0 and sized["SizeRootFs"] >= sized["SizeRw"]


@pytest.mark.parametrize("filters, want", [
    ({"status": ["exited"]}, ["exited"]),
    ({"status": ["created", "running"]}, ["running", "created"]),
    ({"exited": ["3"]}, ["exited"]),
    ({"exited": ["0"]}, []),
    ({"label": ["a=1"]}, ["running", "created"]),
    ({"label": ["a=1", "b"]}, ["running"]),
    ({"label": ["a"]}, ["running", "exited", "created"]),
    ({"name": ["c-ex"]}, ["exited"]),
    ({"name": ["/c-running"]}, ["running"]),
    ({"name": ["^/c-(ex|cr)"]}, ["exited", "created"]),
    ({"name": ["ing$"]}, ["running"]),
    ({"ancestor": ["busybox"]}, ["running", "exited", "created"]),
    ({"ancestor": ["no-such-image"]}, []),
    (["status=exited"], ["exited"]),
    ({"health": ["none"]}, ["running", "exited", "created"]),
    ({"health": ["healthy"]}, []),
])
def test_filters(engine, three, filters, want):
    created, exited, running = three
    names = {created: "created", exited: "exited", running: "running"}
    got = [names[i] for i in _ids(engine.containers.list(all=True, filters=filters))
           if i in names]
    assert got == want


def test_id_before_since_filters(engine, three):
    created, exited, running = three
    cs = engine.containers
    assert _ids(cs.list(all=True, filters={"id": [exited[:10]]})) == [exited]
    assert set(_ids(cs.list(all=True, filters={"before": ["c-running"]}))) >= {created, exited}
    assert running not in _ids(cs.list(all=True, filters={"before": ["c-running"]}))
    assert _ids(cs.list(all=True, filters={"since": ["c-exited"]})) == [running]
    with pytest.raises(errors.NotFound):
        cs.list(all=True, filters={"since": ["nope"]})


@pytest.mark.parametrize("filters", [{"colour": ["red"]}, {"status": ["sleeping"]},
                                     {"name": ["(unclosed"]},
                                     {"exited": ["x"]}, ["novalue"], "text",
                                     {"health": ["great"]}])
def test_bad_filters(engine, filters):
    with pytest.raises(errors.InvalidArgument):
        engine.containers.list(all=True, filters=filters)


def test_status_text_units():
    now = 1_000_000 * 10**9
    st = cstate.new_state()
    st.update(Status="running", StartedAt="1970-01-12T13:46:10Z")     # 30 s before ``now``
    assert cstate.status_text(st, now) == "Up 30 seconds"
    st.update(Status="exited", ExitCode=137, FinishedAt="1970-01-12T12:46:40Z")
    assert cstate.status_text(st, now) == "Exited (137) About an hour ago"
    assert cstate.human_duration(0.2) == "Less than a second"
    assert cstate.human_duration(90) == "About a minute"
    assert cstate.human_duration(3 * 86400) == "3 days"


def test_prune_removes_only_stopped(engine, three, leftovers):
    created, exited, running = three
    cs = engine.containers
    result = cs.prune(filters={"label": ["a=2"]})
    assert result["ContainersDeleted"] == [exited]
    result = cs.prune()
    assert result["ContainersDeleted"] == [created]
    assert result["SpaceReclaimed"] >= 0
    assert _ids(cs.list(all=True, filters={"label": ["a"]})) == [running]
    assert leftovers(engine, exited) == [] and leftovers(engine, created) == []


def test_events_of_a_lifecycle(engine, runtime):
    cs = engine.containers
    since = time.time() - 1
    cid = cs.create({"Image": "busybox", "Cmd": ["sleep", "60"], "Labels": {"k": "v"}},
                    {"Runtime": runtime}, name="evented")["Id"]
    cs.start(cid)
    cs.pause(cid)
    cs.unpause(cid)
    eid = cs.exec_create(cid, {"Cmd": ["true"]})
    cs.exec_start(eid, detach=True).wait(timeout=10)
    cs.exec_inspect(eid)
    cs.rename(cid, "evented2")
    cs.stop(cid, timeout=0)
    cs.remove(cid)
    events = [e for e in engine.events.query(since=since, until=time.time() + 1)
              if e["Actor"]["ID"] == cid]
    actions = [e["Action"] for e in events]
    assert actions == ["create", "start", "pause", "unpause", "exec_create: true",
                       "exec_start: true", "exec_die", "rename", "kill", "kill", "die", "stop",
                       "destroy"]
    assert events[0]["Actor"]["Attributes"] == {"image": "busybox", "name": "evented",
                                                "k": "v"}
    assert events[-3]["Actor"]["Attributes"]["exitCode"] == "137"
    assert events[7]["Actor"]["Attributes"]["oldName"] == "/evented"
    assert all(e["Type"] == "container" and e["from"] == "busybox" for e in events)
