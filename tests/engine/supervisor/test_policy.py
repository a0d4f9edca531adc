"""Restart policies: the --restart flag's grammar against the docker CLI, dockerd's validation
messages, and the restart manager's decisions and back-off as a state machine."""
import os
import shutil
import subprocess

import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from pyrunc import errors
from pyrunc.engine.supervisor import policy

DOCKER = shutil.which("docker")


def _docker_cli_parse(text):
    """What the docker CLI says of ``--restart TEXT``: its parse error, or None when it went
    on to contact the (absent) daemon."""
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent/docker.sock",
               DOCKER_CONFIG="/nonexistent")
    proc = subprocess.run([DOCKER, "create", "--restart", text, "busybox"], env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    if "Cannot connect to the Docker daemon" in proc.stderr:
        return None
    first = proc.stderr.strip().splitlines()[0]
    assert first.startswith("docker: "), proc.stderr
    return first[len("docker: "):].rstrip(".")


def _ours(text):
    try:
        policy.parse_restart_policy(text)
    except errors.InvalidArgument as e:
        return str(e)
    return None


CLI_CASES = ["no", "always", "on-failure", "on-failure:3", "on-failure:", "on-failure:x",
             ":3", ":", "unless-stopped", "on-failure:-1", "on-failure:+2", "on-failure: 2",
             "bogus", "always:5", "on-failure:99999999999999999999", "on-failure:3:4",
             "on-failure:0x10", "on-failure:١"]


@pytest.mark.skipif(DOCKER is None, reason="the docker CLI is not installed")
@pytest.mark.parametrize("text", CLI_CASES)
def test_flag_grammar_matches_docker_cli(text):
    assert _ours(text) == _docker_cli_parse(text)


@pytest.mark.skipif(DOCKER is None, reason="the docker CLI is not installed")
@settings(max_examples=25, deadline=None)
@given(st.text(alphabet="on-failure:0123456789+- x", min_size=1, max_size=14))
def test_flag_grammar_matches_docker_cli_generated(text):
    assert _ours(text) == _docker_cli_parse(text)


def test_flag_values():
    assert policy.parse_restart_policy("on-failure:3") == {"Name": "on-failure",
                                                           "MaximumRetryCount": 3}
    assert policy.parse_restart_policy("always") == {"Name": "always", "MaximumRetryCount": 0}
    assert policy.parse_restart_policy("") == {"Name": "", "MaximumRetryCount": 0}


# dockerd's messages (api/types/container: ValidateRestartPolicy; daemon: AutoRemove)
BAD = [
    ({"Name": "always", "MaximumRetryCount": 2},
     "invalid restart policy: maximum retry count can only be used with 'on-failure'"),
    ({"Name": "no", "MaximumRetryCount": -1},
     "invalid restart policy: maximum retry count can only be used with 'on-failure' and "
     "cannot be negative"),
    ({"Name": "unless-stopped", "MaximumRetryCount": 1},
     "invalid restart policy: maximum retry count can only be used with 'on-failure'"),
    ({"Name": "on-failure", "MaximumRetryCount": -3},
     "invalid restart policy: maximum retry count cannot be negative"),
    ({"Name": "sometimes"},
     "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', "
     "'on-failure', or 'unless-stopped'"),
]


@pytest.mark.parametrize("doc,message", BAD)
def test_dockerd_messages(doc, message):
    with pytest.raises(errors.InvalidArgument) as e:
        policy.validate_restart_policy(doc)
    assert str(e.value) == message


def test_empty_name_keeps_any_count():
    assert policy.validate_restart_policy({"Name": "", "MaximumRetryCount": -1}) == {
        "Name": "", "MaximumRetryCount": -1}
    assert policy.is_none(policy.validate_restart_policy({"MaximumRetryCount": 5}))


def test_auto_remove_excludes_a_policy():
    with pytest.raises(errors.InvalidArgument) as e:
        policy.validate_host_config({"AutoRemove": True,
                                     "RestartPolicy": {"Name": "always"}})
    assert str(e.value) == "can't create 'AutoRemove' container with restart policy"
    assert policy.validate_host_config({"AutoRemove": True,
                                        "RestartPolicy": {"Name": "no"}})["Name"] == "no"


HOSTILE = [[], "always", {"Name": 3}, {"Name": "on-failure", "MaximumRetryCount": "3"},
           {"Name": "on-failure", "MaximumRetryCount": True},
           {"Name": "on-failure", "MaximumRetryCount": 2 ** 64},
           {"Name": "on-failure", "MaximumRetryCount": 1.5}, {"Nmae": "always"},
           {"Name": "x" * 100000}, {"Name": "\n\x1b[31mred"}]


@pytest.mark.parametrize("doc", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_documents_one_line(doc):
    with pytest.raises(errors.InvalidArgument) as e:
        policy.validate_restart_policy(doc)
    text = str(e.value)
    assert "\n" not in text and "\x1b" not in text and len(text) < 300


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(
                        st.sampled_from(["Name", "MaximumRetryCount", "x"]), c, max_size=3),
                    max_leaves=6))
def test_any_json_is_accepted_or_invalid_argument(doc):
    try:
        out = policy.validate_restart_policy(doc)
    except errors.InvalidArgument:
        return
    assert out["Name"] in ("", "no", "always", "on-failure", "unless-stopped")
    # docker lets an empty name carry any count (what versions before 25 created)
    assert out["MaximumRetryCount"] >= 0 or out["Name"] == ""
    assert out["MaximumRetryCount"] == 0 or out["Name"] in ("on-failure", "")


# ---------------------------------------------------------------- the restart manager


def expected_delay(consecutive):
    """docker's documented schedule: 100 ms, doubled per restart, at most one minute."""
    return min(0.1 * 2 ** (consecutive - 1), 60.0)


def test_backoff_schedule():
    m = policy.RestartManager({"Name": "always"})
    delays = [m.should_restart(1, False, 0.5)[1] for _ in range(14)]
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8]
    assert delays[-1] == 60.0 and max(delays) == 60.0
    assert m.should_restart(0, False, 10.0) == (True, 0.1)      # ran 10 s: reset


def test_on_failure_limit():
    m = policy.RestartManager({"Name": "on-failure", "MaximumRetryCount": 2})
    assert m.should_restart(3, False, 0)[0]
    assert m.should_restart(3, False, 0)[0]
    assert m.should_restart(3, False, 0) == (False, 0.0)
    assert m.restart_count == 2
    assert not policy.RestartManager({"Name": "on-failure"}).should_restart(0, False, 0)[0]


def test_boot_rules_differ_for_always_and_unless_stopped():
    kw = dict(exit_code=0, manually_stopped=True, restart_count=0, started_before=True)
    assert policy.restart_on_boot({"Name": "always"}, **kw)
    assert not policy.restart_on_boot({"Name": "unless-stopped"}, **kw)
    assert policy.restart_on_boot({"Name": "unless-stopped"}, **dict(kw, manually_stopped=False))
    assert not policy.restart_on_boot({"Name": "always"}, **dict(kw, started_before=False))
    assert not policy.restart_on_boot({"Name": "on-failure", "MaximumRetryCount": 2},
                                      **dict(kw, exit_code=1, restart_count=2))


POLICIES = st.sampled_from([{"Name": "no"}, {"Name": "always"}, {"Name": "unless-stopped"},
                            {"Name": "on-failure"},
                            {"Name": "on-failure", "MaximumRetryCount": 1},
                            {"Name": "on-failure", "MaximumRetryCount": 3}])


class RestartMachine(RuleBasedStateMachine):
    """Exits, user stops and restarts against a model written from docker's documentation."""

    def __init__(self):
        super().__init__()
        self.policy = None

    @rule(p=POLICIES)
    def start_by_user(self, p):
        # a user's start makes a fresh manager and RestartCount 0 (docker: ResetRestartManager)
        self.policy = p
        self.manager = policy.RestartManager(p)
        self.streak = 0
        self.count = 0
        self.stopped = False

    @rule()
    def user_stops(self):
        if self.policy is not None:
            self.manager.cancel()
            self.stopped = True

    @rule(code=st.integers(0, 255), ran=st.sampled_from([0.0, 0.05, 3.0, 9.99, 10.0, 500.0]))
    def container_exits(self, code, ran):
        if self.policy is None:
            return
        restart, delay = self.manager.should_restart(code, self.stopped, ran)
        name = self.policy["Name"]
        limit = self.policy.get("MaximumRetryCount", 0)
        want = (not self.stopped and name in ("always", "unless-stopped")) or (
            not self.stopped and name == "on-failure" and code != 0
            and (limit == 0 or self.count < limit))
        if name != "no" and not self.stopped:
            self.streak = 1 if ran >= 10 else self.streak + 1
        assert restart == want
        if restart:
            self.count += 1
            assert delay == expected_delay(self.streak)
        else:
            assert delay == 0.0
            self.policy = None          # stays exited until a user starts it

    @invariant()
    def count_matches(self):
        if self.policy is not None:
            assert self.manager.restart_count == self.count


TestRestartMachine = RestartMachine.TestCase
TestRestartMachine.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
