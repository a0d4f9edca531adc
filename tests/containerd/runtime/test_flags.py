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


def _expected_signal(text):
    """The oracle: the C library's signal table as Python's signal module has it, read the way
    runc reads a signal (a number, or a name with or without SIG in any case, RTMIN+n, RTMAX-n);
    unlike runc, 0 and numbers past SIGRTMAX are refused. None when refused."""
    if text.isascii() and text.isdigit():
        return int(text) if 0 < int(text) <= signal.SIGRTMAX else None
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    for base in ("SIGRTMIN", "SIGRTMAX"):
        rest = name[len(base):]
        if name.startswith(base) and rest:
            if rest[0] not in "+-" or not (rest[1:].isascii() and rest[1:].isdigit()):
                return None
            num = getattr(signal, base) + int(rest[1:]) * (1 if rest[0] == "+" else -1)
            return num if signal.SIGRTMIN <= num <= signal.SIGRTMAX else None
    member = signal.Signals.__members__.get(name)
    return None if member is None else int(member)


_signal_texts = st.one_of(
    st.text(max_size=10),
    st.integers(-3, 70).map(str),
    st.builds(lambda name, sig, case: case(("SIG" if sig else "") + name),
              st.sampled_from([n[3:] for n in signal.Signals.__members__] + ["NOPE", "RTMIN+",
                                                                            "RTMAX-"]),
              st.booleans(), st.sampled_from([str.upper, str.lower, str.title])),
    st.builds(lambda base, sign, n: "%s%s%d" % (base, sign, n),
              st.sampled_from(["RTMIN", "RTMAX", "SIGRTMIN", "rtmax"]), st.sampled_from("+-*"),
              st.integers(0, 40)))


@given(_signal_texts)
def test_any_signal_text(text):
    want = _expected_signal(text)
    if want is None:
        with pytest.raises(InvalidArgument, match="unknown signal"):
            parse_signal(text)
    else:
        assert parse_signal(text) == want
