"""Property tests: the shim's json-file encoding of arbitrary output, the event log's offsets,
and the runtime error parser."""
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc.containerd.shim.client import runtime_message
from pyrunc.containerd.tasks.events import EventLog

from support import go_json_text

from .conftest import new_id


def test_any_output_line_is_logged_faithfully(manager, bundle):
    task = manager.create(new_id(), bundle(["cat"]), stdin=True)
    task.start()
    attached = task.attach()
    seen = [0]

    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.binary(max_size=600).filter(lambda b: b"\n" not in b))
    def check(data):
        attached.write(data + b"\n")
        deadline = time.monotonic() + 10
        while True:
            logs = task.logs()
            if len(logs) > seen[0]:
                break
            assert time.monotonic() < deadline, "line not logged"
            time.sleep(0.005)
        entry = logs[seen[0]]
        seen[0] += 1
        assert entry.stream == "stdout"
        assert entry.text == go_json_text(data) + "\n"

    try:
        check()
    finally:
        attached.close_stdin()
        attached.close()
    assert task.wait(timeout=20).status == 0


@given(st.lists(st.lists(st.text(max_size=20), max_size=4), max_size=6))
def test_event_log_resumes_from_any_offset(tmp_path_factory, batches):
    log = EventLog(str(tmp_path_factory.mktemp("events") / "events.jsonl"))
    offset, seen = 0, []
    for batch in batches:
        for name in batch:
            log.append("c", "start", note=name)
        got = list(log.read(since=offset))
        assert [e["note"] for _, e in got] == batch
        if got:
            offset = got[-1][0]
        seen.extend(e["note"] for _, e in got)
    assert [e["note"] for _, e in log.read()] == seen


@pytest.mark.parametrize("text, message", [
    ('time="2026-01-01T00:00:00Z" level=error msg="runc create failed: exec: \\"x\\": not '
     'found"\n', 'runc create failed: exec: "x": not found'),
    ("crun: executable file `x` not found in $PATH: No such file or directory\n",
     "crun: executable file `x` not found in $PATH: No such file or directory"),
    ("warning: something\npyrunc: config.json: process.args: must be a non-empty array\n",
     "pyrunc: config.json: process.args: must be a non-empty array"),
])
def test_runtime_message(text, message):
    assert runtime_message(text) == message
