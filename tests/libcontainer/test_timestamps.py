"""pyrunc.libcontainer.timestamps: RFC 3339 with nanoseconds, as Go's RFC3339Nano writes it.

Oracles from outside the module: coreutils ``date`` formats the same instants (``%N`` is the
nanoseconds, zero padded: the module's text is that with the trailing zeros dropped), Python's
``datetime`` agrees to the microsecond, and runc's own ``state`` writes ``created`` in Go's format,
which must read back to an instant between the moments before and after ``runc create`` and be
written again byte for byte.
"""
import datetime
import json
import subprocess

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from support import need, unique_id

from pyrunc.errors import InvalidArgument
from pyrunc.libcontainer import timestamps

# 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z
MIN_NS = -62135596800 * 10**9
MAX_NS = 253402300800 * 10**9 - 1
instants = st.integers(MIN_NS, MAX_NS)


def _go_trim(fixed):
    """date's fixed 9-digit fraction as Go's RFC3339Nano writes it."""
    head, frac = fixed[:-1].split(".")
    frac = frac.rstrip("0")
    return head + ("." + frac if frac else "") + "Z"


def test_known_values():
    assert timestamps.format_ns(0) == "1970-01-01T00:00:00Z"
    assert timestamps.format_ns(1704164645123456789) == "2024-01-02T03:04:05.123456789Z"
    assert timestamps.format_ns(1704164645120000000) == "2024-01-02T03:04:05.12Z"
    assert timestamps.format_ns(1704164645123456789, nano=False) == "2024-01-02T03:04:05Z"
    assert timestamps.parse_ns("2024-01-02T03:04:05.123456789Z") == 1704164645123456789
    assert timestamps.parse_ns("2024-01-02T05:04:05.5+02:00") == 1704164645500000000
    assert timestamps.parse_ns("2024-01-01t22:04:05-05:00") == 1704164645000000000
    # Go truncates digits past the ninth
    assert timestamps.parse_ns("1970-01-01T00:00:00.1234567899Z") == 123456789


def test_format_agrees_with_date():
    """coreutils ``date -u -d @S.N +%Y-%m-%dT%H:%M:%S.%NZ`` on a spread of instants, negative,
    leap days and the edges of the 4-digit years included."""
    date = need("date")
    import random
    rng = random.Random(20240102)
    values = [0, -1, 1, 951782400 * 10**9, 4107456000 * 10**9 + 999999999,
              MIN_NS, MAX_NS, -2208988800 * 10**9 + 10**8]
    values += [rng.randint(MIN_NS, MAX_NS) for _ in range(300)]
    lines = "".join("@%s%d.%09d\n" % ((("-" if v < 0 else ""),) + divmod(abs(v), 10**9))
                    for v in values)
    out = subprocess.run([date, "-u", "-f", "-", "+%Y-%m-%dT%H:%M:%S.%NZ"], input=lines,
                         capture_output=True, text=True, check=True).stdout.split()
    assert len(out) == len(values)
    for v, theirs in zip(values, out):
        assert timestamps.format_ns(v) == _go_trim(theirs), v
        assert timestamps.parse_ns(theirs) == v, theirs


def test_now_agrees_with_date():
    date = need("date")
    before = timestamps.now_ns()
    theirs = subprocess.run([date, "-u", "+%Y-%m-%dT%H:%M:%S.%NZ"], capture_output=True,
                            text=True, check=True).stdout.strip()
    after = timestamps.now_ns()
    assert before <= timestamps.parse_ns(theirs) <= after
    assert before // 10**9 <= timestamps.parse_ns(timestamps.now()) // 10**9 <= after // 10**9 + 1


@given(instants)
@example(MIN_NS)
@example(MAX_NS)
def test_round_trip(ns):
    text = timestamps.format_ns(ns)
    assert timestamps.parse_ns(text) == ns
    assert text.endswith("Z")
    if "." in text:
        assert not text.endswith("0Z")


@given(instants, st.integers(-23 * 60 - 59, 23 * 60 + 59))
def test_parse_with_offsets_agrees_with_datetime(ns, minutes):
    """An offset moves the wall clock and not the instant; datetime says so to the microsecond."""
    us = ns // 1000 * 1000
    utc = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + \
        datetime.timedelta(microseconds=us // 1000)
    zone = datetime.timezone(datetime.timedelta(minutes=minutes))
    try:
        local = utc.astimezone(zone)
    except OverflowError:
        return
    text = local.isoformat(timespec="microseconds")
    if minutes == 0:
        text = text.replace("+00:00", "Z")
    assert timestamps.parse_ns(text) == us


@given(instants)
def test_format_agrees_with_datetime(ns):
    utc = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + \
        datetime.timedelta(microseconds=ns // 1000)
    assert timestamps.format_ns(ns, nano=False) == utc.strftime("%Y-%m-%dT%H:%M:%SZ").rjust(20, "0")


@settings(max_examples=300)
@given(st.text(max_size=40))
def test_parse_rejects_or_reads_anything(text):
    """Any string is either read or refused with InvalidArgument naming it, never another error."""
    try:
        ns = timestamps.parse_ns(text)
    except InvalidArgument as e:
        assert str(e).startswith("timestamp ") and "\n" not in str(e)
    else:
        assert isinstance(ns, int)


@pytest.mark.parametrize("text", [
    "", "2024-01-02", "2024-01-02T03:04:05", "2024-01-02T03:04:05.Z", "2024-02-30T00:00:00Z",
    "2023-02-29T00:00:00Z", "2024-01-02T24:00:00Z", "2024-01-02T03:60:00Z",
    "2024-01-02T03:04:60Z", "2024-13-01T00:00:00Z", "2024-01-02T03:04:05+2:00",
    "2024-01-02T03:04:05+24:00", "2024-01-02 03:04:05Z", "2024-01-02T03:04:05.1Z ",
    "+024-01-02T03:04:05Z", "2024-01-02T03:04:05UTC"])
def test_parse_rejects(text):
    with pytest.raises(InvalidArgument, match="^timestamp "):
        timestamps.parse_ns(text)


def test_format_refuses_five_digit_years():
    with pytest.raises(InvalidArgument, match="year 10000"):
        timestamps.format_ns(MAX_NS + 1)


@pytest.mark.peer
def test_runc_state_created_is_read_and_written_back(tmp_path, private_mount_ns, make_bundle):
    """runc (Go) writes ``created`` with RFC3339Nano: the module reads it as an instant inside
    the create and writes the very same text."""
    runc = need("runc")
    b = make_bundle(["sleep", "100"])
    rid, root = unique_id("runc"), str(tmp_path / "runc")
    before = timestamps.now_ns()
    subprocess.run([runc, "--root", root, "create", "--bundle", b, rid], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        after = timestamps.now_ns()
        created = json.loads(subprocess.run([runc, "--root", root, "state", rid], check=True,
                                            capture_output=True).stdout)["created"]
    finally:
        subprocess.run([runc, "--root", root, "delete", "--force", rid], check=True)
    ns = timestamps.parse_ns(created)
    assert before <= ns <= after
    assert timestamps.format_ns(ns) == created


FIXED_NS = 1704164645123456789     # 2024-01-02T03:04:05.123456789Z


@pytest.fixture
def fixed_clock(monkeypatch):
    monkeypatch.setattr(timestamps.time, "time_ns", lambda: FIXED_NS)


def test_writers_use_the_module(fixed_clock, tmp_path):
    """The task events, the runtime's json log and the image service write their times here
    (before, events had microseconds and the log its own strftime)."""
    from pyrunc.containerd.runtime.log import Log
    from pyrunc.containerd.tasks.events import EventLog
    from pyrunc.engine.images import service

    events = EventLog(str(tmp_path / "events"))
    events.append("c1", "create")
    [(_, event)] = list(events.read())
    assert event["time"] == "2024-01-02T03:04:05.123456789Z"

    log = Log(str(tmp_path / "log.json"), fmt="json")
    log.error("boom")
    line = json.loads((tmp_path / "log.json").read_text().splitlines()[-1])
    assert line["time"] == "2024-01-02T03:04:05Z"   # logrus' JSON: time.RFC3339

    assert service.rfc3339_now() == "2024-01-02T03:04:05.123456789Z"
    assert service.parse_time("2024-01-02T03:04:05.123456789Z") == pytest.approx(
        FIXED_NS / 10**9)
