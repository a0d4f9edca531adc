"""Parsers of the image operations: --change lines, reference filter patterns, timestamps."""
import shlex

import pytest
from hypothesis import given, strategies as st

from pyrunc.engine.images import apply_changes
from pyrunc.engine.images.service import _path_match, parse_time
from pyrunc.errors import InvalidArgument

_keys = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_.-]{0,10}\Z")
_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=20)


@given(st.dictionaries(_keys, _values, min_size=1, max_size=5))
def test_env_and_label_pairs_round_trip(pairs):
    line = " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in pairs.items())
    config = apply_changes({}, ["ENV " + line, "LABEL " + line])
    assert config["Env"] == ["%s=%s" % kv for kv in pairs.items()]
    assert config["Labels"] == pairs


@given(st.lists(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e,
                                      blacklist_characters='"\\'), min_size=1, max_size=8),
                min_size=1, max_size=4))
def test_cmd_json_and_shell_forms(args):
    import json
    assert apply_changes({}, ["CMD " + json.dumps(args)])["Cmd"] == args
    # "[ ]" would be an (empty) exec form, and leading "--" words are the instruction's flags
    # (docker's "Unknown flag: ..."; tested below), as in docker
    if not args[0].startswith(("[", "--")):
        assert apply_changes({}, ["ENTRYPOINT " + " ".join(args)])["Entrypoint"] == \
            ["/bin/sh", "-c", " ".join(args)]


@pytest.mark.parametrize("line,message", [
    ("FROM scratch", "FROM is not a valid change command"),
    ("RUN true", "RUN is not a valid change command"),
    ("ENV", "ENV requires at least one argument"),
    ("ENTRYPOINT --0", "Unknown flag: 0"),
    ("ENV =x", "ENV names can not be blank"),
    ("LABEL onlykey", "LABEL must have two arguments"),
    ("EXPOSE http", "invalid containerPort: http"),
])
def test_bad_changes(line, message):
    with pytest.raises(InvalidArgument, match=message):
        apply_changes({}, [line])


@pytest.mark.parametrize("pattern,name,match", [
    ("busy*", "busybox", True), ("*", "library/busybox", False), ("*/*", "me/app", True),
    ("b?sybox", "busybox", True), ("[a-c]usybox", "busybox", True),
    ("[^a-c]usybox", "busybox", False), ("busybox:*", "busybox:latest", True),
    ("\\*", "*", True), ("\\*", "x", False),
])
def test_reference_patterns_are_path_match(pattern, name, match):
    assert _path_match(pattern, name) is match


@pytest.mark.parametrize("text,seconds", [
    ("2024-01-01T00:00:00Z", 1704067200.0),
    ("2024-01-01T00:00:00.5Z", 1704067200.5),
    ("2024-01-01T02:00:00.123456789+02:00", 1704067200.123456789),
    ("", 0.0), ("yesterday", 0.0)])
def test_parse_time(text, seconds):
    assert parse_time(text) == pytest.approx(seconds)
