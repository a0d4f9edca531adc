"""Both event logs stay bounded: the engine's (ROOT/events.jsonl, docker's events) and the task
event log (EXEC_ROOT/events.jsonl, the shims' and managers' lines), with several processes
appending at once; what is kept is the latest events, in order, and since/until (offsets for the
task log) are right for what is kept.

Oracles: the writers' own counters (each writer's events are numbered, so what is kept must be
a suffix of each writer's sequence), and the files read raw, line by line, apart from the
readers under test; for the shim, the lifecycle a container goes through.
"""
import json
import os
import subprocess
import sys
import tempfile
import textwrap

import pytest

from pyrunc.containerd.tasks.events import MAX_BYTES, EventLog
from pyrunc.engine import Engine
from pyrunc.engine.events import EventService

WRITERS = 4
TOTAL = 10000

ENGINE_WRITER = textwrap.dedent("""
    import sys
    from pyrunc.engine.events import EventService
    svc = EventService(sys.argv[1], limit=int(sys.argv[2]), sync=False)
    who = sys.argv[3]
    for i in range(int(sys.argv[4])):
        svc.emit("container", "start", who * 64, {"i": str(i)})
""")

TASK_WRITER = textwrap.dedent("""
    import sys
    from pyrunc.containerd.tasks.events import EventLog
    log = EventLog(sys.argv[1], max_bytes=int(sys.argv[2]))
    for i in range(int(sys.argv[4])):
        log.append(sys.argv[3], "exec-exit", i=i)
""")


def _run_writers(script, path, limit):
    procs = [subprocess.Popen([sys.executable, "-c", script, path, str(limit), who,
                               str(TOTAL // WRITERS)], stderr=subprocess.PIPE)
             for who in "abcd"[:WRITERS]]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()


def _suffixes(kept, who_of, i_of):
    """Each writer's kept numbers, checked to be the end of its sequence, in order."""
    per = {}
    for e in kept:
        per.setdefault(who_of(e), []).append(i_of(e))
    n = TOTAL // WRITERS
    for who, numbers in per.items():
        assert numbers == list(range(n - len(numbers), n)), who
    return per


def test_engine_event_log_stays_bounded_with_10000_events(tmp_path):
    path = str(tmp_path / "events.jsonl")
    limit = 1000
    _run_writers(ENGINE_WRITER, path, limit)
    assert sorted(os.listdir(tmp_path)) == ["events.jsonl", "events.jsonl.1", "events.jsonl.lock"]
    raw = []
    for name in ("events.jsonl.1", "events.jsonl"):
        with open(tmp_path / name) as f:
            lines = f.read().splitlines()
        assert len(lines) <= limit
        raw += [json.loads(line) for line in lines]
    assert [seq for seq, _ in raw] == list(range(TOTAL - len(raw) + 1, TOTAL + 1))
    svc = EventService(path, limit=limit)
    kept = list(svc.query())
    assert limit <= len(kept) <= 2 * limit
    assert kept == [e for _, e in raw]
    _suffixes(kept, lambda e: e["Actor"]["ID"][0], lambda e: int(e["Actor"]["Attributes"]["i"]))
    # since/until, both inclusive, over what is kept
    times = [e["timeNano"] for e in kept]
    for lo, hi in ((0, len(kept) - 1), (len(kept) // 3, len(kept) // 2), (5, 5)):
        since, until = ("%d.%09d" % divmod(times[k], 10 ** 9) for k in (lo, hi))
        want = [e for e in kept if times[lo] <= e["timeNano"] <= times[hi]]
        assert list(svc.query(since=since, until=until)) == want
    assert list(svc.query(since="0")) == kept
    before = "%d.%09d" % divmod(times[0] - 1, 10 ** 9)
    assert list(svc.query(until=before)) == []


def test_task_event_log_stays_bounded_and_offsets_resume(tmp_path):
    path = str(tmp_path / "events.jsonl")
    limit = 64 * 1024
    _run_writers(TASK_WRITER, path, limit)
    sizes = [os.path.getsize(path + s) for s in (".1", "")]
    line_max = 200
    assert all(s <= limit + line_max for s in sizes), sizes
    log = EventLog(path, max_bytes=limit)
    got = list(log.read())
    offsets = [o for o, _ in got]
    assert offsets == sorted(set(offsets))
    per = _suffixes([e for _, e in got], lambda e: e["id"], lambda e: e["i"])
    assert sum(len(v) for v in per.values()) == len(got) > limit // line_max
    # raw files: every event line kept is read, in file order, the header lines are not events
    raw = []
    for name in (path + ".1", path):
        with open(name) as f:
            for line in f:
                doc = json.loads(line)
                if doc["type"] == "continued":
                    assert raw == [] or name == path + ".1" or doc["base"] == offsets[len(raw) - 1]
                    continue
                raw.append(doc)
    assert [e for _, e in got] == raw
    # resuming from any offset gives exactly what follows it; 0 or an offset older than what
    # is kept gives the oldest kept; the end gives nothing
    for k in (0, 1, len(got) // 2, len(got) - 1):
        assert [e for _, e in log.read(since=offsets[k])] == raw[k + 1:]
    assert [e for _, e in log.read(since=0)] == raw
    assert log.end() == offsets[-1]
    assert list(log.read(since=log.end())) == []


def test_task_event_log_follower_across_rotations(tmp_path):
    """A follower that keeps up sees every event once, each writer's in order, while four
    processes append and the log rotates many times."""
    path = str(tmp_path / "events.jsonl")
    limit = 256 * 1024
    log = EventLog(path, max_bytes=limit)
    log.append("start", "create")
    first = log.end()
    # the writers at the lowest priority, so that the follower keeps up on a loaded machine
    # (a follower more than one file behind reads on from the oldest kept, by design: at
    # their priority a full run once saw it miss 204 of the 10000 events)
    procs = [subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", TASK_WRITER, path,
                               str(limit), who, str(TOTAL // WRITERS)])
             for who in "abcd"[:WRITERS]]
    seen = []
    try:
        # 60 s without an event ends the follow: the writers are new interpreters, which a
        # loaded machine starts slowly (5 s was once too short in a full run)
        for _, e in log.read(since=first, follow=True, timeout=60, poll_interval=0.005):
            seen.append((e["id"], e["i"]))
            if len(seen) == TOTAL:
                break
    finally:
        for p in procs:
            p.wait(300)
    assert os.path.exists(path + ".1")
    assert len(seen) == TOTAL
    for who in "abcd"[:WRITERS]:
        assert [i for w, i in seen if w == who] == list(range(TOTAL // WRITERS))


@pytest.fixture
def own_engine(tmp_path, private_mount_ns):
    exec_root = tempfile.mkdtemp(prefix="pel-", dir="/run")
    eng = Engine(str(tmp_path / "root"), exec_root=exec_root)
    eng.load_builtin("busybox")
    yield eng
    for c in eng.containers.store.all():
        eng.containers.remove(c.id, force=True)
    subprocess.run(["rm", "-rf", exec_root], check=False)


def test_the_shim_rotates_the_task_log(own_engine):
    """The log filled to just under its limit: the shim's first line of the next container
    pushes it over; the shim rotates it, and a reader from before the container reads its whole lifecycle."""
    log = own_engine.tasks.event_log
    log.append("filler", "exec-exit", pad="x" * 100)
    while os.path.getsize(log.path) < MAX_BYTES - 400:
        log.append("filler", "exec-exit", pad="x" * 100)
    # one line to end 60 bytes (give or take the time's trailing zeros) short of the limit:
    # less than the shim's create line
    overhead = len('{"time":"2026-12-06T02:14:51.018535768Z","id":"filler","type":"exec-exit",'
                   '"pad":""}\n')
    log.append("filler", "exec-exit",
               pad="x" * (MAX_BYTES - 60 - os.path.getsize(log.path) - overhead))
    assert MAX_BYTES - 80 < os.path.getsize(log.path) <= MAX_BYTES - 60
    assert not os.path.exists(log.path + ".1")
    before = log.end()
    cid = own_engine.containers.create({"Image": "busybox", "Cmd": ["sh", "-c", "exit 3"]})["Id"]
    own_engine.containers.start(cid)
    assert own_engine.containers.wait(cid, timeout=30)["StatusCode"] == 3
    own_engine.containers.remove(cid)
    assert os.path.getsize(log.path + ".1") > MAX_BYTES
    with open(log.path) as f:
        header = json.loads(f.readline())
    assert header == {"type": "continued", "base": os.path.getsize(log.path + ".1")}
    # the shim's create line (written by the shim alone) went past the limit: it rotated
    with open(log.path + ".1") as f:
        last = json.loads(f.read().splitlines()[-1])
    assert (last["id"], last["type"]) == (cid, "create")
    kinds = [e["type"] for _, e in log.read(since=before) if e["id"] == cid]
    assert kinds == ["create", "start", "exit", "delete"]
    exits = [e for _, e in log.read(since=before) if e["id"] == cid and e["type"] == "exit"]
    assert exits[0]["exit_status"] == 3
