"""Variable substitution in Dockerfile words (docker's shell lexer: ProcessWord, ProcessWords).

Oracle: the Dockerfile reference ("Environment replacement": ``$var``, ``${var}``,
``${var:-word}``, ``${var:+word}``, ``\\$`` escaping) and POSIX sh's quoting, which docker's
lexer follows (single quotes literal, double quotes escaping only ``"``, ``$`` and the escape
character, ``$`` before a non-name left alone).
"""
import time

import pytest
from hypothesis import given, strategies as st

from pyrunc.engine.builder.dockerfile import ExpandError, expand, expand_words
from pyrunc.errors import InvalidArgument

ENV = {"FOO": "/bar", "EMPTY": "", "SP": "a  b ", "X": "x", "K": "\ud55c\uad6d\uc5b4"}


@pytest.mark.parametrize("word,expected", [
    ("$FOO", "/bar"), ("${FOO}", "/bar"), ("${FOO}/baz", "/bar/baz"), ("$FOO/baz", "/bar/baz"),
    ("$FOOx", ""), ("${FOO}x", "/barx"), ("$UNSET", ""), ("a${UNSET}b", "ab"),
    ("\\$FOO", "$FOO"), ("\\${FOO}", "${FOO}"), ("\\\\$FOO", "\\/bar"),
    ("${FOO:-w}", "/bar"), ("${UNSET:-w}", "w"), ("${EMPTY:-w}", "w"),
    ("${FOO:+w}", "w"), ("${UNSET:+w}", ""), ("${EMPTY:+w}", ""),
    ("${FOO-w}", "/bar"), ("${UNSET-w}", "w"), ("${EMPTY-w}", ""),
    ("${FOO+w}", "w"), ("${UNSET+w}", ""), ("${EMPTY+w}", "w"),
    ("${UNSET:-$FOO}", "/bar"), ("${UNSET:-${X:+y}z}", "yz"), ("${UNSET:-a b}", "a b"),
    ("${FOO:?oops}", "/bar"), ("${EMPTY?oops}", ""),
    ("$", "$"), ("a$", "a$"), ("$.", "$."), ("$/x", "$/x"), ("he$1x", "hex"),
    ("'$FOO'", "$FOO"), ('"$FOO"', "/bar"), ("'a\\b'", "a\\b"), ('"a\\b"', "a\\b"),
    ('"a\\"b"', 'a"b'), ('"a\\$FOO"', "a$FOO"), ('"a\\\\b"', "a\\b"), ("a\\ b", "a b"),
    ("a\\tb", "atb"), ("trail\\", "trail"), ('"it\'s"', "it's"), ("'say \"hi\"'", 'say "hi"'),
    ("x'y'\"z\"", "xyz"), ("$K!", "\ud55c\uad6d\uc5b4!"), ("${K}", "\ud55c\uad6d\uc5b4"),
    ("", ""),
])
def test_expand(word, expected):
    assert expand(word, ENV) == expected


@pytest.mark.parametrize("word,expected", [
    ("`$FOO", "$FOO"), ("a`\"b", 'a"b'), ("C:\\dir\\$FOO", "C:\\dir\\/bar"),
    ('"a`"b"', 'a"b'), ('"a\\"', "a\\"),
])
def test_expand_with_backtick_escape(word, expected):
    assert expand(word, ENV, escape="`") == expected


@pytest.mark.parametrize("word,words", [
    ("a b  c", ["a", "b", "c"]), ("$SP", ["a", "b"]), ('"$SP"', ["a  b "]),
    ("x$SP", ["xa", "b"]), ("x${SP}y", ["xa", "b", "y"]), ('x"$SP"y', ["xa  b y"]),
    ("a\\ b c", ["a b", "c"]), ("'a b' \"c d\"", ["a b", "c d"]), ('""', []), ("", []),
    ("  lead trail  ", ["lead", "trail"]), ("$UNSET a", ["a"]),
])
def test_expand_words(word, words):
    assert expand_words(word, ENV) == words


@pytest.mark.parametrize("word,message", [
    ("${", "syntax error: missing '}'"), ("${FOO", "missing ':' in substitution"),
    ("${}", "syntax error: bad substitution"), ("${:-x}", "syntax error: bad substitution"),
    ("${{FOO}}", "syntax error: bad substitution"), ("${FOO:-x", "syntax error: missing '}'"),
    ("${FOO:x}", "unsupported modifier (x) in substitution"),
    ("${FOO*x}", "missing ':' in substitution"),
    ("${UNSET:?}", "UNSET: is not allowed to be unset"),
    ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
    ("${UNSET?must be set $X}", "UNSET: must be set x"),
    ("'open", "unexpected end of statement while looking for matching single-quote"),
    ('"open', "unexpected end of statement while looking for matching double-quote"),
    ('${X:-"}', "syntax error: missing '}'"),
])
def test_errors(word, message):
    with pytest.raises(ExpandError) as e:
        expand(word, ENV)
    assert str(e.value) == "failed to process %s: %s" % ('"%s"' % word.replace('"', '\\"'),
                                                        message)
    assert isinstance(e.value, InvalidArgument)


def test_bad_escape_character():
    with pytest.raises(InvalidArgument, match="invalid escape token"):
        expand("x", {}, escape="$")


def test_deep_nesting_is_an_error_not_a_crash():
    deep = "${A:-" * 5000 + "x" + "}" * 5000
    with pytest.raises(ExpandError, match="nested deeper than 100"):
        expand(deep, {})
    assert expand("${A:-" * 50 + "x" + "}" * 50, {}) == "x"


def test_large_word_in_bounded_time():
    word = "$X" * 200000 + "'" + "q" * 500000 + "'"
    start = time.monotonic()
    assert len(expand(word, ENV)) == 700000
    assert time.monotonic() - start < 30


def test_nul_and_odd_characters_are_kept():
    assert expand("a\x00b$X", ENV) == "a\x00bx"
    assert expand_words("a\u00a0b\x1cc", {}) == ["a", "b\x1cc"]   # Go's space set


_plain = st.text(st.characters(blacklist_characters="$'\"\\`", blacklist_categories=["Cs"]),
                 max_size=40)


@given(_plain)
def test_plain_words_round_trip(word):
    assert expand(word, ENV) == word
    assert expand(word, ENV, escape="`") == word


@given(st.lists(st.text(st.characters(whitelist_categories=["L", "N"]), min_size=1,
                        max_size=8), max_size=6))
def test_plain_words_split_at_spaces(words):
    assert expand_words(" ".join(words), {}) == words


@given(st.dictionaries(st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,8}\Z"),
                       st.text(st.characters(blacklist_categories=["Cs"]), max_size=10),
                       min_size=1, max_size=4))
def test_each_variable_form(env):
    for name, value in env.items():
        assert expand("$%s" % name, env) == value
        assert expand("${%s}" % name, env) == value
        assert expand('"${%s}"' % name, env) == value
        assert expand("${%s:-d}" % name, env) == (value or "d")
        assert expand("${%s:+a}" % name, env) == ("a" if value else "")
        assert expand("'${%s}'" % name, env) == "${%s}" % name


# -- against dockerd's classic builder ------------------------------------------------------

# label values (one word each), expanded by dockerd's builder with ENV A=1 EMPTY= K=...
LABEL_WORDS = [
    "$A", "${A}", "${A}x", "$Ax", "${A:-x}", "${UNSET:-x}", "${EMPTY:-x}", "${A:+y}",
    "${EMPTY:+y}", "${UNSET:+y}", '"${UNSET:-a b}"', "\\$A", "'$A'", '"a\\"b"', "'a\\b'",
    "a\\ b", "$A$A", "$1x", "$.", '"x$"', "${K}!", "\\\\$A", "'it'\\''s'", '"$A\'q\'"',
    "${A:-${UNSET:-deep}}", "${UNSET:-${A:+n}}", "${A?no}", '"\\$A\\\\"', "x'y'\"z\"", "",
    "${PATH:+p}",
]
BAD_WORDS = ["${A", "${}", "${A:x}", "${UNSET:?gone}", "'open"]


def _label_dockerfile(words, escape="\\"):
    esc = "" if escape == "\\" else "# escape=`\n"
    pairs = " ".join("k%d=%s" % (i, w) for i, w in enumerate(words))
    return esc + "FROM busybox\nENV A=1 EMPTY= K=\ud55c\nLABEL %s\n" % pairs


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory):
    import os
    import shutil
    from dockerd_peer import DOCKERD, Dockerd, docker_client
    if not os.path.exists(DOCKERD) or not shutil.which("unshare"):
        pytest.skip("Debian's dockerd (package docker.io) is not installed")
    if docker_client() is None:
        pytest.skip("no docker CLI to drive dockerd")
    with Dockerd(str(tmp_path_factory.mktemp("dockerd"))) as d:
        d.load_builtin("busybox")
        yield d


def _build(d, text, tag):
    import subprocess
    from dockerd_peer import docker_client
    return subprocess.run([docker_client(), "build", "-q", "-t", tag, "-"], input=text.encode(),
                          env=dict(d.env, DOCKER_BUILDKIT="0"), capture_output=True,
                          timeout=300)


@pytest.mark.peer
@pytest.mark.parametrize("escape", ["\\", "`"])
def test_substitution_as_dockerd(dockerd, escape):
    """The labels dockerd's builder computes are expand() of each word with the image's
    environment, for both escape characters."""
    import json
    words = [w.replace("\\", escape) if escape == "`" else w for w in LABEL_WORDS]
    r = _build(dockerd, _label_dockerfile(words, escape), "words:x")
    assert r.returncode == 0, r.stderr
    config = json.loads(dockerd.docker("inspect", "words:x").stdout)[0]["Config"]
    env = dict(e.split("=", 1) for e in config["Env"])
    assert env["K"] == "\ud55c" and env["EMPTY"] == ""
    ours = {"k%d" % i: expand(w, env, escape) for i, w in enumerate(words)}
    assert {k: v for k, v in config["Labels"].items() if k in ours} == ours


@pytest.mark.peer
def test_substitution_errors_as_dockerd(dockerd):
    for word in BAD_WORDS:
        r = _build(dockerd, _label_dockerfile([word]), "bad:x")
        with pytest.raises(ExpandError) as e:
            expand(word, {"A": "1", "EMPTY": ""})
        assert r.returncode != 0 and str(e.value) in r.stderr.decode(), r.stderr
