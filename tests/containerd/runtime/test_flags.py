"""The lean runc-style flag parser used by the pyrunc command."""
import signal

import pytest
from hypothesis import given, strategies as st

from pyrunc.containerd.runtime.flags import Flag, parse
from pyrunc.containerd.runtime.signals import parse_signal
from pyrunc.errors import InvalidArgument, PyruncError

FLAGS = [Flag("bundle,b", default="."), Flag("detach,d", kind=bool),
         Flag("preserve-fds", kind=int, default=0), Flag("env,e", kind=list)]


def test_forms():
    values, pos = parse(FLAGS, ["-b", "/x", "id", "--detach", "--preserve-fds=3", "-e", "A=1",
                                "--env", "B=2"], "run")
    assert values == {"bundle": "/x", "detach": True, "preserve_fds": 3, "env": ["A=1", "B=2"]}
    assert pos == ["id"]


def test_defaults_and_double_dash():
    values, pos = parse(FLAGS, ["id", "--", "-b"], "run")
    assert values["bundle"] == "." and values["detach"] is False and values["env"] == []
    assert pos == ["id", "-b"]


def test_no_interleave_stops_at_first_positional():
    values, pos = parse(FLAGS, ["-d", "id", "sh", "-b", "x"], "exec", interleave=False)
    assert values["detach"] and pos == ["id", "sh", "-b", "x"]


@pytest.mark.parametrize("argv,msg", [
    (["--nope"], "run: flag provided but not defined: --nope"),
    (["-b"], "run: flag needs an argument: -b"),
    (["--preserve-fds", "x"], "run: invalid value 'x' for flag --preserve-fds: not a number"),
    (["--detach=maybe"], "run: invalid boolean value 'maybe' for --detach=maybe"),
])
def test_errors(argv, msg):
    with pytest.raises(InvalidArgument) as e:
        parse(FLAGS, argv, "run")
    assert str(e.value) == msg


@given(st.lists(st.text(max_size=12), max_size=8))
def test_any_argv_parses_or_fails_cleanly(argv):
    try:
        values, pos = parse(FLAGS, argv, "run")
    except PyruncError:
        return
    assert set(values) == {"bundle", "detach", "preserve_fds", "env"}
    assert all(isinstance(p, str) for p in pos)


@pytest.mark.parametrize("text,num", [("KILL", 9), ("SIGKILL", 9), ("9", 9), ("term", 15),
                                      ("RTMIN+3", signal.SIGRTMIN + 3),
                                      ("SIGRTMAX-1", signal.SIGRTMAX - 1)])
def test_signals(text, num):
    assert parse_signal(text) == num


@pytest.mark.parametrize("text", ["FOO", "0", "99", "RTMIN+99", "SIG"])
def test_bad_signals(text):
    with pytest.raises(InvalidArgument, match="unknown signal"):
        parse_signal(text)


@given(st.text(max_size=10))
def test_any_signal_text(text):
    try:
        assert 0 < parse_signal(text) <= signal.SIGRTMAX
    except InvalidArgument:
        pass
