"""Health-check config, probe commands and State.Health, against dockerd's documented rules."""
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from pyrunc import errors
from pyrunc.engine.supervisor import health
from pyrunc.libcontainer import timestamps

S = health.SECOND
MS = 1_000_000


# Go's time.Duration.String() for these values (Go's documentation and its own tests)
@pytest.mark.parametrize("ns,text", [
    (0, "0s"), (1, "1ns"), (1100, "1.1\u00b5s"), (2200 * 1000, "2.2ms"), (MS, "1ms"),
    (3300 * MS, "3.3s"), (4 * 60 * S + 5 * S, "4m5s"), (4 * 60 * S + 5001 * MS, "4m5.001s"),
    (5 * 3600 * S + 6 * 60 * S + 7001 * MS, "5h6m7.001s"), (8 * 60 * S + 1, "8m0.000000001s"),
    (30 * S, "30s"), (60 * S, "1m0s"), (3600 * S, "1h0m0s"),
    (3600 * S + 15 * 60 * S + 30 * S + 918273645, "1h15m30.918273645s"),
    (2 ** 63 - 1, "2562047h47m16.854775807s"), (-MS, "-1ms")])
def test_go_duration(ns, text):
    assert health.go_duration(ns) == text


@pytest.mark.parametrize("field,value,message", [
    ("Interval", 1, "Interval in Healthcheck cannot be less than 1ms"),
    ("Interval", -S, "Interval in Healthcheck cannot be less than 1ms"),
    ("Timeout", MS - 1, "Timeout in Healthcheck cannot be less than 1ms"),
    ("StartPeriod", 5, "StartPeriod in Healthcheck cannot be less than 1ms"),
    ("StartInterval", 5, "StartInterval in Healthcheck cannot be less than 1ms"),
    ("Retries", -1, "Retries in Healthcheck cannot be negative")])
def test_dockerd_messages(field, value, message):
    with pytest.raises(errors.InvalidArgument) as e:
        health.validate_healthcheck({"Test": ["CMD", "true"], field: value})
    assert str(e.value) == message


def test_minimum_and_zero_accepted():
    doc = health.validate_healthcheck({"Test": ["CMD-SHELL", "true"], "Interval": MS,
                                       "Timeout": 0})
    assert doc == {"Test": ["CMD-SHELL", "true"], "Interval": MS, "Timeout": 0,
                   "StartPeriod": 0, "StartInterval": 0, "Retries": 0}
    assert health.settings(doc) == {"Interval": MS, "Timeout": 30 * S, "StartPeriod": 0,
                                    "StartInterval": 5 * S, "Retries": 3}
    assert health.validate_healthcheck(None) is None


HOSTILE = ["CMD true", [], {"Test": "CMD true"}, {"Test": ["CMD", 1]},
           {"Test": ["CMD", "a\0b"]}, {"Interval": "30s"}, {"Interval": 1.5},
           {"Retries": True}, {"Interval": 2 ** 64}, {"Tset": ["NONE"]}]


@pytest.mark.parametrize("doc", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_config(doc):
    with pytest.raises(errors.InvalidArgument) as e:
        health.validate_healthcheck(doc)
    assert "\n" not in str(e.value)


@given(st.dictionaries(st.sampled_from(["Test", "Interval", "Timeout", "Retries",
                                        "StartPeriod", "StartInterval", "Other"]),
                       st.none() | st.integers() | st.text() | st.lists(st.text())
                       | st.booleans() | st.floats(), max_size=7))
def test_any_json_accepted_or_invalid_argument(doc):
    try:
        out = health.validate_healthcheck(doc)
    except errors.InvalidArgument:
        return
    for name in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        assert out[name] == 0 or out[name] >= MS
    assert out["Retries"] >= 0


def test_probe_commands():
    assert health.probe_command({"Test": ["CMD", "cat", "/ok"]}) == ["cat", "/ok"]
    assert health.probe_command({"Test": ["CMD-SHELL", "test -e /ok"]}) == [
        "/bin/sh", "-c", "test -e /ok"]
    assert health.probe_command({"Test": ["CMD-SHELL", "x"]}, ["/bin/ash", "-e", "-c"]) == [
        "/bin/ash", "-e", "-c", "x"]
    assert health.probe_command({"Test": ["NONE"]}) is None
    assert health.probe_command({"Test": []}) is None
    assert health.probe_command({"Test": ["WHATEVER", "x"]}) is None
    assert health.probe_command(None) is None


def test_output_limit():
    assert health.limit_output(b"x" * 4096) == "x" * 4096
    assert health.limit_output(b"y" * 5000) == "y" * 4096 + "..."
    assert health.timeout_result(0, 1, 2 * S, b"")["Output"] == \
        "Health check exceeded timeout (2s)"
    entry = health.timeout_result(0, 1, 1500 * MS, b"partial")
    assert entry["ExitCode"] == -1
    assert entry["Output"] == "Health check exceeded timeout (1.5s): partial"


def test_intervals():
    cfg = {"Interval": 10 * S, "StartPeriod": 60 * S, "StartInterval": S}
    assert health.next_interval(cfg, "starting", 0, 5 * S) == S
    assert health.next_interval(cfg, "healthy", 0, 5 * S) == 10 * S
    assert health.next_interval(cfg, "starting", 0, 61 * S) == 10 * S
    assert health.next_interval({}, "starting", 0, 0) == 30 * S


class HealthMachine(RuleBasedStateMachine):
    """Probe results against a model of dockerd's handleProbeResult (documented rules)."""

    def __init__(self):
        super().__init__()
        self.config = {"Retries": 3, "StartPeriod": 10 * S}
        self.started = 1_000 * S
        self.health = health.reset(None)
        self.model_status = "starting"
        self.model_streak = 0
        self.model_log = []
        self.clock = self.started

    @rule(code=st.sampled_from([0, 1, 2, -1, 255]), step=st.integers(0, 6 * S))
    def probe(self, code, step):
        self.clock += step
        entry = health.result(self.clock, self.clock + MS, code, "out%d" % code)
        changed = health.apply_result(self.health, entry, self.config, self.started)
        old = self.model_status
        if code == 0:
            self.model_status, self.model_streak = "healthy", 0
        elif not (old == "starting" and self.clock - self.started < 10 * S):
            self.model_streak += 1
            if self.model_streak >= 3:
                self.model_status = "unhealthy"
        self.model_log = (self.model_log + [entry])[-5:]
        assert self.health["Status"] == self.model_status
        assert self.health["FailingStreak"] == self.model_streak
        assert self.health["Log"] == self.model_log
        assert changed == (self.model_status if self.model_status != old else None)
        assert timestamps.parse_ns(entry["Start"]) == self.clock

    @rule()
    def restart(self):
        self.health = health.reset(self.health)
        self.model_status, self.model_streak = "starting", 0
        self.started = self.clock
        assert self.health["Log"] == self.model_log

    @rule()
    def stop(self):
        assert health.stopped(self.health)["Status"] == "unhealthy"


TestHealthMachine = HealthMachine.TestCase
TestHealthMachine.settings = settings(max_examples=150, stateful_step_count=25, deadline=None)
