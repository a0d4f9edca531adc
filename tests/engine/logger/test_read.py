"""read_logs on json-file logs written here in docker's format (the shim's own output is
tested in test_shim_logs.py): tail across rotated files, since/until, streams, partial lines,
and hostile files (garbage, truncation, symlinks, FIFOs, huge lines) with bounded memory."""
import datetime
import json
import os
import threading
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pyrunc.engine.logger import LogMessage, read_logs
from pyrunc.errors import FailedPrecondition, InvalidArgument

T0 = 1_700_000_000_000_000_000


def rfc3339(ns):
    # Go's RFC3339Nano, written here independently of the code under test
    s, frac = divmod(ns, 10 ** 9)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s))
    if frac:
        text += ("." + "%09d" % frac).rstrip("0")
    return text + "Z"


def record(text, stream="stdout", ns=T0):
    return (json.dumps({"log": text, "stream": stream, "time": rfc3339(ns)}) + "\n").encode()


def write(path, records):
    with open(path, "wb") as f:
        f.write(b"".join(records))


def lines(path, **kw):
    return [m.line.decode() for m in read_logs(str(path), **kw)]


@pytest.fixture
def rotated(tmp_path):
    """30 lines over log.2 (0-9), log.1 (10-19), log (20-29); odd lines on stderr."""
    path = tmp_path / "c-json.log"
    for name, rng in ((str(path) + ".2", range(0, 10)), (str(path) + ".1", range(10, 20)),
                      (str(path), range(20, 30))):
        write(name, [record("line %d\n" % i, "stderr" if i % 2 else "stdout", T0 + i * 1000)
                     for i in rng])
    return path


def test_all_in_order_across_rotated_files(rotated):
    assert lines(rotated) == ["line %d\n" % i for i in range(30)]
    msgs = list(read_logs(str(rotated), tail=2))
    assert msgs == [LogMessage("stdout", b"line 28\n", T0 + 28000),
                    LogMessage("stderr", b"line 29\n", T0 + 29000)]


@pytest.mark.parametrize("tail,first", [(0, 30), (1, 29), (5, 25), (10, 20), (11, 19),
                                        (25, 5), (30, 0), (31, 0), (10 ** 9, 0),
                                        (-1, 0), (-100, 0), (None, 0)])
def test_tail_counts_from_the_end_across_files(rotated, tail, first):
    # docker: tail N is the last N lines of all the files; negative (or "all") is everything
    assert lines(rotated, tail=tail) == ["line %d\n" % i for i in range(first, 30)]


def test_streams_since_until(rotated):
    assert lines(rotated, stdout=False, tail=4) == ["line 27\n", "line 29\n"]
    assert lines(rotated, stderr=False, tail=4) == ["line 26\n", "line 28\n"]
    # since and until are inclusive, in nanoseconds
    assert lines(rotated, since=T0 + 5000, until=T0 + 12000) == [
        "line %d\n" % i for i in range(5, 13)]
    assert lines(rotated, since=T0 + 5001, until=T0 + 11999) == [
        "line %d\n" % i for i in range(6, 12)]
    # tail is taken first, then since (docker's order)
    assert lines(rotated, tail=3, since=T0 + 28000) == ["line 28\n", "line 29\n"]
    # since after until: nothing (docker reads nothing)
    assert lines(rotated, since=T0 + 20000, until=T0 + 10000) == []
    with pytest.raises(InvalidArgument, match="^You must choose at least one stream$"):
        read_logs(str(rotated), stdout=False, stderr=False)


def test_missing_log_is_empty(tmp_path):
    assert lines(tmp_path / "nothing.log") == []
    assert lines(tmp_path / "nothing.log", follow=True) == []


def test_partial_lines_are_yielded_as_docker_does(tmp_path):
    # the shim splits a line longer than 16 KiB: only the last piece has the newline
    path = tmp_path / "log"
    write(path, [record("x" * 16384), record("x" * 16384), record("end\n"),
                 record("tail", "stderr")])
    got = [m.line for m in read_logs(str(path))]
    assert got == [b"x" * 16384, b"x" * 16384, b"end\n", b"tail"]
    assert lines(path, tail=2) == ["end\n", "tail"]


def test_garbage_and_truncated_lines_are_skipped(tmp_path):
    path = tmp_path / "log"
    junk = [b"garbage\n", b"\x00\xff\xfe\n", b"{}\n", b"[1,2]\n", b'{"log": 5}\n',
            b'{"log":"a","stream":"stdout","time":"yesterday"}\n', b"[" * 100000 + b"\n",
            b'{"log":"b","stream":["x"],"time":"2024-01-01T00:00:00Z"}\n']
    write(path, [record("one\n")] + junk + [record("two\n"), b'{"log":"torn li'])
    assert lines(path) == ["one\n", "two\n"]
    # a rotated file that ends in a torn line: the piece is dropped, the next file read
    write(str(path) + ".1", [record("zero\n"), b'{"log":"cut'])
    assert lines(path) == ["zero\n", "one\n", "two\n"]
    assert lines(path, tail=1) == ["two\n"]


def test_symlinked_log_is_refused(tmp_path):
    secret = tmp_path / "secret"
    write(secret, [record("do not show\n")])
    path = tmp_path / "log"
    os.symlink(secret, path)
    with pytest.raises(FailedPrecondition, match="is a symbolic link"):
        list(read_logs(str(path)))
    # a rotated file replaced by a symlink is refused too, nothing of it is shown
    os.unlink(path)
    write(path, [record("mine\n")])
    os.symlink(secret, str(path) + ".1")
    with pytest.raises(FailedPrecondition, match=r"\.1: is a symbolic link"):
        list(read_logs(str(path)))


def test_fifo_does_not_hang(tmp_path):
    path = tmp_path / "log"
    os.mkfifo(path)
    start = time.monotonic()
    with pytest.raises(FailedPrecondition, match="not a regular file"):
        list(read_logs(str(path), follow=True, running=lambda: True))
    assert time.monotonic() - start < 5


def _big_log(path, n):
    chunk = b"".join(record("line %d\n" % i) for i in range(1000))
    with open(path, "wb") as f:
        for _ in range(n // 1000):
            f.write(chunk)


def test_tail_of_a_huge_log_reads_little(tmp_path):
    path = tmp_path / "log"
    _big_log(path, 400_000)
    assert os.path.getsize(path) > 20 << 20
    tracemalloc.start()
    try:
        got = lines(path, tail=3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == ["line 997\n", "line 998\n", "line 999\n"]
    assert peak < 2 << 20, peak


def test_endless_garbage_line_is_bounded(tmp_path):
    path = tmp_path / "log"
    with open(path, "wb") as f:
        f.write(record("before\n"))
        block = b"A" * (1 << 20)
        for _ in range(24):
            f.write(block)
        f.write(b"\n" + record("after\n"))
    tracemalloc.start()
    try:
        got = lines(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == ["before\n", "after\n"]
    assert peak < 8 << 20, peak


def test_follow_survives_rename_rotation_and_truncation(tmp_path):
    """A writer here rotating as docker's json-file does (rename; truncate with one file)."""
    path = str(tmp_path / "log")
    done = threading.Event()
    total = 3000

    def writer(max_file):
        f = open(path, "ab")
        size = 0
        for i in range(total):
            data = record("n %d\n" % i)
            if size and size + len(data) > 2000:
                if max_file == 1:
                    f.truncate(0)
                else:
                    for k in range(max_file - 1, 1, -1):
                        if os.path.exists("%s.%d" % (path, k - 1)):
                            os.rename("%s.%d" % (path, k - 1), "%s.%d" % (path, k))
                    os.rename(path, path + ".1")
                    f.close()
                    f = open(path, "ab")
                size = 0
            f.write(data)
            f.flush()
            size += len(data)
            if i % 20 == 0:
                time.sleep(0.002)
        f.close()
        done.set()

    write(path, [])
    t = threading.Thread(target=writer, args=(8,))
    t.start()
    got = [int(x.split()[1]) for x in lines(path, follow=True, running=lambda: not done.is_set(),
                                            poll=0.005)]
    t.join()
    assert got == list(range(total))
    assert os.path.exists(path + ".7") and not os.path.exists(path + ".8")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["stdout", "stderr"]),
                          st.text(alphabet="ab\n\u00e9\u2603\x00", max_size=5)), max_size=40),
       st.integers(min_value=1, max_value=5), st.integers(min_value=1, max_value=400),
       st.integers(min_value=-2, max_value=45), st.integers(min_value=0, max_value=45),
       st.integers(min_value=0, max_value=45))
def test_property_tail_since_until(tmp_path_factory, entries, max_file, max_size, tail, a, b):
    """A model writer (docker's rotation) against the reader: what is on disk, in order."""
    path = str(tmp_path_factory.mktemp("p") / "log")
    files = [[]]
    sizes = [0]
    for i, (stream, text) in enumerate(entries):
        data = record(text, stream, T0 + i)
        if max_size and sizes[-1] and sizes[-1] + len(data) > max_size:
            files.append([])
            sizes.append(0)
        files[-1].append((i, stream, text, data))
        sizes[-1] += len(data)
    kept = files[-max_file:]
    for k, content in enumerate(reversed(kept)):
        write(path if k == 0 else "%s.%d" % (path, k), [d for *_, d in content])
    on_disk = [(i, s, t) for content in kept for i, s, t, _ in content]
    want = on_disk if tail < 0 else on_disk[max(0, len(on_disk) - tail):] if tail else []
    since, until = T0 + min(a, b), T0 + max(a, b)
    want = [(i, s, t) for i, s, t in want if since <= T0 + i <= until]
    got = [(m.time_ns - T0, m.stream, m.line.decode()) for m in
           read_logs(path, tail=tail, since=since, until=until)]
    assert got == want


def test_follow_after_truncation_in_place(tmp_path):
    """With max-file 1 the shim truncates the file: a follower starts again at its top, also
    when more than it had read is written before it looks."""
    path = str(tmp_path / "log")
    write(path, [record("old %d\n" % i) for i in range(3)])
    state = {"phase": 0}
    got = []

    def running():
        if state["phase"] == 0 and len(got) == 3:
            with open(path, "r+b") as f:
                f.truncate(0)
                f.write(b"".join(record("new %d\n" % i) for i in range(10)))
            state["phase"] = 1
            return True
        return state["phase"] == 0

    for m in read_logs(path, follow=True, running=running, poll=0.001):
        got.append(m.line.decode())
    assert got == ["old 0\n", "old 1\n", "old 2\n"] + ["new %d\n" % i for i in range(10)]


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(min_value=0, max_value=4_000_000_000 * 10 ** 9), min_size=1,
                max_size=20))
def test_record_times_exact(tmp_path_factory, stamps):
    # times across seconds, years and fractions of 0-9 digits; also an offset zone
    path = tmp_path_factory.mktemp("t") / "log"
    write(path, [record("%d\n" % i, ns=ns) for i, ns in enumerate(sorted(stamps))])
    with open(path, "ab") as f:
        f.write(b'{"log":"z\\n","stream":"stdout","time":"2024-01-02T03:04:05.5+01:30"}\n')
    got = [m.time_ns for m in read_logs(str(path))]
    zoned = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone(
        datetime.timedelta(hours=1, minutes=30)))
    assert got == sorted(stamps) + [int(zoned.timestamp()) * 10 ** 9 + 500_000_000]


def test_follow_refuses_a_path_swapped_for_a_symlink(tmp_path):
    secret = tmp_path / "secret"
    write(secret, [record("do not show\n")])
    path = tmp_path / "log"
    write(path, [record("mine\n")])
    got = []

    def running():
        if not os.path.islink(path):
            os.rename(path, str(path) + ".1")
            os.symlink(secret, path)
        return True

    with pytest.raises(FailedPrecondition, match="is a symbolic link"):
        for m in read_logs(str(path), follow=True, running=running, poll=0.001):
            got.append(m.line)
    assert got == [b"mine\n"]


def test_stale_rotated_file_past_a_gap_is_not_read(tmp_path):
    # a log.5 left from an earlier, larger max-file is not part of the log
    path = tmp_path / "log"
    write(str(path) + ".5", [record("stale\n")])
    write(str(path) + ".1", [record("one\n")])
    write(path, [record("two\n")])
    assert lines(path) == ["one\n", "two\n"]
    assert lines(path, tail=5) == ["one\n", "two\n"]
