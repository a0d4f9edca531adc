"""read_logs against the real shim: a busybox container writing while it is followed, with a
small max-size so the shim rotates many times; long lines split by the shim."""
import os
import time

from pyrunc.containerd.tasks import STOPPED
from pyrunc.engine.logger import parse_log_config, read_logs

from .conftest import new_id


def _running(task, deadline):
    return lambda: time.monotonic() < deadline and task.state().status != STOPPED


def test_follow_every_line_once_in_order_across_rotations(manager, bundle):
    total = 12000
    # bursts of 50 lines, ~200 rotations of 4 kB; 50 files kept, so the follower may fall
    # ~2500 lines behind (a stall of the loaded test machine) without losing one: a reader
    # that falls further behind than the kept files loses lines, as docker's does
    script = ("i=0; while [ $i -lt %d ]; do echo line-$i; i=$((i+1)); "
              "[ $((i %% 50)) -eq 0 ] && usleep 10000; done; echo done >&2" % total)
    cfg = parse_log_config({"Type": "json-file", "Config": {"max-size": "4k",
                                                            "max-file": "50"}})
    task = manager.create(new_id(), bundle(["sh", "-c", script]), log_max_size=cfg.max_size,
                          log_max_file=cfg.max_file)
    log = task.meta()["log"]
    follower = read_logs(log, follow=True, running=_running(task, time.monotonic() + 120),
                         poll=0.01)
    task.start()
    got = [(m.stream, m.line) for m in follower]
    assert task.wait(timeout=60).status == 0
    assert got == [("stdout", b"line-%d\n" % i) for i in range(total)] + [("stderr", b"done\n")]
    # the shim did rotate and drop old files: reading afterwards has only the last lines
    names = sorted(n for n in os.listdir(os.path.dirname(log))
                   if n.startswith(os.path.basename(log)))
    assert len(names) == 50
    after = [m.line for m in read_logs(log)]
    assert 0 < len(after) < total / 2 and after[-1] == b"done\n"
    assert after == [line for _, line in got[-len(after):]]
    assert [m.line for m in read_logs(log, tail=3)] == after[-3:]


def test_follow_from_the_end_and_until(manager, bundle):
    task = manager.create(new_id(), bundle(
        ["sh", "-c", "echo first; sleep 1; echo second; echo third"]))
    log = task.meta()["log"]
    task.start()
    deadline = time.monotonic() + 20
    while not list(read_logs(log)) and time.monotonic() < deadline:
        time.sleep(0.02)
    # tail 0 + follow: only what is written from now on (docker logs -f --tail 0)
    got = [m.line for m in read_logs(log, follow=True, tail=0,
                                     running=_running(task, time.monotonic() + 30))]
    assert got == [b"second\n", b"third\n"]
    assert task.wait(timeout=30).status == 0
    stamps = [m.time_ns for m in read_logs(log)]
    assert stamps == sorted(stamps) and stamps[1] - stamps[0] >= 900_000_000
    assert [m.line for m in read_logs(log, until=stamps[1])] == [b"first\n", b"second\n"]
    assert [m.line for m in read_logs(log, since=stamps[1])] == [b"second\n", b"third\n"]


def test_long_lines_as_docker_splits_them(manager, bundle):
    task = manager.create(new_id(), bundle(
        ["sh", "-c", "head -c 40000 /dev/zero | tr '\\0' y; echo; echo short"]))
    task.start()
    assert task.wait(timeout=30).status == 0
    msgs = [m.line for m in read_logs(task.meta()["log"])]
    assert msgs == [b"y" * 16384, b"y" * 16384, b"y" * (40000 - 32768) + b"\n", b"short\n"]
    assert [m.line for m in read_logs(task.meta()["log"], tail=2)] == msgs[-2:]
