"""The CLI's hand-written parsers against what they replace: the template's scanners
(pyrunc.cli.template.actions and tokens) against the regular expressions, pyrunc.cli.jsonio
against the json module; the same results on any text, hostile text included."""
import json
import re

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc.cli import jsonio, reference
from pyrunc.cli.template import Template, TemplateError, actions, tokens

ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|`[^`]*`|\||\(|\)|[^\s|()]+)')

# the characters the grammar gives a meaning, and some whitespace Python and re agree on
PIECES = st.lists(st.sampled_from(["{{", "}}", "{", "}", "-", " ", "\t", "\n", "\u2003",
                                   '"', "\\", "`", "|", "(", ")", ".", "a", "é", "\x1c"]),
                  max_size=30).map("".join)
TEXT = st.one_of(PIECES, st.text(max_size=40))


def expected_actions(text):
    return [(m.start(), m.end(), bool(m.group(1)), m.group(2), bool(m.group(3)))
            for m in ACTION.finditer(text)]


@settings(max_examples=3000, deadline=None)
@given(TEXT)
def test_actions_are_the_expressions(text):
    assert actions(text) == expected_actions(text)


@settings(max_examples=3000, deadline=None)
@given(TEXT)
def test_tokens_are_the_expressions(text):
    assert tokens(text) == TOKEN.findall(text)


def test_known_cases():
    assert expected_actions("a{{- .X -}}b") == actions("a{{- .X -}}b") == [(1, 11, True, ".X",
                                                                             True)]
    assert tokens('join .Names ", " | upper') == ["join", ".Names", '", "', "|", "upper"]
    assert tokens('"unterminated \\"x') == ['"unterminated', '\\"x']
    assert Template("{{- .A -}}  \n{{.B}}").render({"A": 1, "B": 2}) == "12"


@settings(max_examples=500, deadline=None)
@given(PIECES)
def test_hostile_templates_parse_or_say_why(text):
    try:
        Template(text).render({"a": 1})
    except TemplateError as e:
        assert str(e).startswith(("template:", "printf:")) or "executing" in str(e), e


DOCS = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda c: st.lists(c) | st.dictionaries(st.text(), c), max_leaves=20)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(DOCS.map(json.dumps), PIECES, st.text(max_size=30)))
def test_jsonio_decodes_as_json(text):
    def outcome(fn):
        try:
            return "ok", repr(fn(text))
        except ValueError as e:
            return type(e), str(e)
    assert outcome(jsonio.loads) == outcome(json.loads)
    assert outcome(lambda t: jsonio.loads(t.encode("utf-8", "surrogatepass"))) == outcome(
        lambda t: json.loads(t.encode("utf-8", "surrogatepass")))


@settings(max_examples=500, deadline=None)
@given(DOCS)
def test_jsonio_encodes_as_json(doc):
    assert jsonio.dumps(doc) == json.dumps(doc)
    if isinstance(doc, str):
        assert jsonio.quote(doc) == json.dumps(doc, ensure_ascii=False)


NAME = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)"
                  r"[a-z0-9]+)*)*")
TAG = re.compile(r"[\w][\w.-]{0,127}")
DOMAIN = re.compile(r"(?:[a-zA-Z0-9.-]+|\[[0-9a-fA-F:]+\])(?::[0-9]+)?")
DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}")
REF_TEXT = st.one_of(
    st.lists(st.sampled_from(["a", "z", "0", "9", ".", "_", "__", "-", "--", "/", ":", "[",
                              "]", "A", "f", "+", "é", "٣", "\n", " "]), max_size=25).map(
                                  "".join),
    st.text(max_size=40),
    st.lists(st.sampled_from(["sha256", ":", "a", "F", "0", "+", "."]), max_size=5).map(
        "".join).map(lambda s: s + "0123456789abcdef" * 2))


@settings(max_examples=2000, deadline=None)
@given(REF_TEXT)
def test_reference_predicates_are_the_expressions(text):
    assert reference.valid_name(text) == bool(NAME.fullmatch(text))
    assert reference.valid_tag(text) == bool(TAG.fullmatch(text))
    assert reference.valid_domain(text) == bool(DOMAIN.fullmatch(text))
    assert reference.valid_digest(text) == bool(DIGEST.fullmatch(text))


def test_reference_known_cases():
    assert reference.parse("localhost:5000/a/b:1").familiar() == "localhost:5000/a/b:1"
    assert reference.parse("[::1]:5000/x").name == "[::1]:5000/x"
    assert reference.parse("busybox").familiar() == "busybox"
    assert str(reference.parse("a__b--c.d")) == "docker.io/library/a__b--c.d"
    for bad in ("a___b", "-a", "a/", "busybox\n", "b:" + "t" * 129, "x@sha256:1234", "UP"):
        try:
            reference.parse(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


@pytest.mark.parametrize("data", [b"\x00000", b"\x000", b"0\x00", b"\xff\xfe", b"\xfe\xff\x000",
                                  '["a"]'.encode("utf-16"), '{"a": 1}'.encode("utf-32")])
def test_jsonio_reads_the_encodings_json_detects(data):
    def outcome(fn):
        try:
            return "ok", repr(fn(data))
        except ValueError as e:
            return type(e), str(e)
    assert outcome(jsonio.loads) == outcome(json.loads)
