""".dockerignore rules (pyrunc.patternmatcher), against the Dockerfile reference's
".dockerignore file" section and Go's filepath.Match syntax, which docker's patterns extend
with ``**``; fnmatch is the independent oracle for the single-segment cases."""
import fnmatch
import re
import time

import pytest
from hypothesis import given, strategies as st

from pyrunc.errors import InvalidArgument
from pyrunc.patternmatcher import Matcher, clean, read_patterns


def excluded(patterns, paths):
    m = Matcher(patterns)
    return {p: m.excluded(p) for p in paths}


def test_read_patterns():
    text = ("\ufeff# comment\r\n*/temp*\r\n  # not a comment: indented\n\n   \n/foo/bar/\n"
            "./a/../b\n ! ./c/ \n!/d\n**/*.go\n//e//f\n..\n")
    assert read_patterns(text) == ["*/temp*", "# not a comment: indented", "foo/bar", "b",
                                   "!c", "!d", "**/*.go", "e/f", ".."]
    assert read_patterns(b"x\n# y\n") == ["x"]
    assert read_patterns("") == []


@pytest.mark.parametrize("path,expected", [
    ("a/b/../c", "a/c"), ("/../x", "/x"), ("../../x", "../../x"), ("", "."), ("./", "."),
    ("//a//", "/a"), ("a/./b/.", "a/b"), ("a/..", "."),
])
def test_clean_as_go(path, expected):
    assert clean(path) == expected


def test_documented_example():
    """The reference's example: */temp*, */*/temp*, temp?."""
    got = excluded(read_patterns("# comment\n*/temp*\n*/*/temp*\ntemp?\n"), [
        "somedir/temporary.txt", "somedir/temp", "somedir/subdir/temporary.txt", "tempa",
        "tempb", "temp", "tempab", "temporary.txt", "a/b/c/temp", "somedir/temp/inner/file"])
    assert got == {"somedir/temporary.txt": True, "somedir/temp": True,
                   "somedir/subdir/temporary.txt": True, "tempa": True, "tempb": True,
                   "temp": False, "tempab": False, "temporary.txt": False, "a/b/c/temp": False,
                   "somedir/temp/inner/file": True}


def test_double_star():
    got = excluded(["**/*.go"], ["main.go", "a/b/c.go", "a/go", "a.go/x", "x.gox"])
    assert got == {"main.go": True, "a/b/c.go": True, "a/go": False, "a.go/x": True,
                   "x.gox": False}
    got = excluded(["a/**/b", "c/**"], ["a/b", "a/x/y/b", "a/xb", "c/d/e", "c", "cd"])
    assert got == {"a/b": True, "a/x/y/b": True, "a/xb": False, "c/d/e": True, "c": False,
                   "cd": False}


@pytest.mark.parametrize("patterns,kept", [
    (["*.md", "!README.md"], {"README.md"}),
    (["*.md", "!README*.md", "README-secret.md"], {"README.md", "README-x.md"}),
    (["*.md", "README-secret.md", "!README*.md"], {"README.md", "README-x.md",
                                                   "README-secret.md"}),
])
def test_exceptions_later_rules_win(patterns, kept):
    paths = ["a.md", "README.md", "README-x.md", "README-secret.md", "doc.md"]
    assert {p for p, ex in excluded(patterns, paths).items() if not ex} == kept


def test_directories_and_exceptions_below_them():
    m = Matcher(read_patterns("build\n!build/keep\n/dist/\n"))
    assert m.excluded("build") and m.excluded("build/x") and m.excluded("build/x/y")
    assert not m.excluded("build/keep") and not m.excluded("build/keep/inner")
    assert m.excluded("dist/a/b") and not m.excluded("src/dist")
    assert m.exclusions and m.may_include_below("build") and not m.may_include_below("dist")
    assert not Matcher(["a"]).exclusions


def test_leading_slash_and_dot():
    for pattern in ["/foo/bar", "foo/bar", "./foo/bar", "foo/bar/"]:
        m = Matcher(read_patterns(pattern))
        assert m.excluded("foo/bar") and m.excluded("foo/bar/baz")
        assert not m.excluded("foo") and not m.excluded("x/foo/bar")
    assert Matcher(["a"]).excluded("./a") and Matcher(["a"]).excluded("a/")


def test_classes_and_escapes():
    got = excluded(["[a-c]x", "\\*lit", "f[!o]o", "q\\?"],
                   ["ax", "dx", "*lit", "alit", "f!o", "fao", "q?", "qa"])
    # Go's filepath.Match has no [!...] negation in docker's patterns: "!" is literal there
    assert got == {"ax": True, "dx": False, "*lit": True, "alit": False, "f!o": True,
                   "fao": False, "q?": True, "qa": False}
    assert excluded(["[^a]b"], ["ab", "cb"]) == {"ab": False, "cb": True}


def test_regex_characters_are_literal():
    got = excluded(["a.b", "(x)|y", "c+{1}$"], ["a.b", "axb", "(x)|y", "x", "c+{1}$", "cc"])
    assert got == {"a.b": True, "axb": False, "(x)|y": True, "x": False, "c+{1}$": True,
                   "cc": False}


@pytest.mark.parametrize("pattern,message", [
    ("!", 'illegal exclusion pattern: "!"'), ("a[", "syntax error in pattern"),
    ("[]", "syntax error in pattern"), ("[z-a]", "syntax error in pattern"),
    ("a\\", "syntax error in pattern"), ("[a-]", "syntax error in pattern"),
])
def test_bad_patterns(pattern, message):
    with pytest.raises(InvalidArgument, match=message.replace("[", "\\[")):
        Matcher([pattern])


def test_blank_patterns_are_skipped():
    m = Matcher(["", "   ", "x"])
    assert len(m.patterns) == 1 and m.excluded("x")


def test_hostile_pattern_is_bounded():
    """Patterns a backtracking regular expression would take exponential time on."""
    start = time.monotonic()
    m = Matcher(["*" * 200 + "a" + "*?" * 100 + "b", "*a" * 30 + "*b"])
    assert not m.excluded("x" * 5000) and not m.excluded("a" * 3000)
    assert m.excluded("a" * 3000 + "b")
    m = Matcher(["**/" * 200 + "z"])
    assert m.excluded("/".join(["d"] * 300 + ["z"]))
    assert time.monotonic() - start < 30


def _go_regex(pattern):
    """Docker's translation of a pattern into a regular expression (as its Go code builds it;
    used here only with Python's re on short inputs, as a second oracle)."""
    out, i = "^", 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < len(pattern) and pattern[i] == "*":
                i += 1
                if i < len(pattern) and pattern[i] == "/":
                    i += 1
                out += ".*" if i == len(pattern) else "(.*/)?"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        else:
            out += re.escape(ch)
    return out + r"\Z"


_path = st.lists(st.text(st.sampled_from("ab*"), min_size=1, max_size=3), min_size=1,
                 max_size=4).map("/".join)
_star_pattern = st.lists(st.text(st.sampled_from("ab*?"), min_size=1, max_size=4), min_size=1,
                         max_size=4).map("/".join)


@given(_star_pattern, _path)
def test_stars_agree_with_dockers_regular_expression(pattern, path):
    if any(part in (".", "..") for part in pattern.split("/")):
        return
    hit = re.match(_go_regex(pattern), path) is not None
    parents = path.split("/")[:-1]
    hit = hit or any(re.match(_go_regex(pattern), "/".join(parents[:i + 1]))
                     for i in range(len(parents)))
    assert Matcher([pattern]).excluded(path) == hit


_segment = st.text(st.sampled_from("abc.-_"), min_size=1, max_size=6).filter(
    lambda s: s not in (".", ".."))
_glob = st.text(st.sampled_from("abc.-_*?"), min_size=1, max_size=6).filter(
    lambda s: s not in (".", ".."))


@given(_glob, _segment, _segment)
def test_single_segment_patterns_agree_with_fnmatch(pattern, name, child):
    """A pattern without / matches a top-level name as fnmatch does (* and ? within the name),
    and a path below the name exactly when the name matches."""
    m = Matcher([pattern])
    assert m.excluded(name) == fnmatch.fnmatchcase(name, pattern)
    assert m.excluded(name + "/" + child) == fnmatch.fnmatchcase(name, pattern)
    assert Matcher([pattern, "!" + pattern]).excluded(name) is False


@given(_glob, _segment, _segment)
def test_double_star_matches_at_any_depth(pattern, a, name):
    m = Matcher(["**/" + pattern])
    assert m.excluded(a + "/" + name) == (fnmatch.fnmatchcase(name, pattern)
                                          or fnmatch.fnmatchcase(a, pattern))
    assert m.excluded(name) == fnmatch.fnmatchcase(name, pattern)


# -- against the docker CLI, which applies .dockerignore when it sends a build context --------

TREE = ["a.md", "README.md", "README-secret.md", "docs/x.md", "docs/keep.txt", "build/out.o",
        "build/keep/k", "build/keep/deep/k2", "src/main.go", "src/pkg/util.go", "tmp",
        "sub/temp1", "sub/deeper/temp2", "temp9", "x.txt", ".git/config", "odd name[1].txt",
        "lib/a/b/c.txt", "lib/a/skip.log", "lib/z.log", "cache/.keep", "cache/data",
        "deep/er/tmpx/keep", "deep/er/tmpx/other"]
IGNORE = """# what docker's reference shows, and more
*.md
!README*.md
README-secret.md
build
!build/keep
**/*.go
*/temp*
temp?
.git
/lib/**/*.log
./cache/
!cache/.keep
**/tmpx
!deep/er/tmpx/keep
"""


@pytest.mark.peer
@pytest.mark.parametrize("cli,old_rule", [("/usr/bin/docker", True),
                                          ("/usr/local/bin/docker", False)],
                         ids=["debian-cli-20.10", "docker-cli"])
def test_the_docker_cli_sends_what_the_matcher_keeps(tmp_path, tmp_path_factory, cli,
                                                    old_rule):
    """Build ``COPY . /ctx/`` from a context with a .dockerignore through the docker CLI and
    dockerd's classic builder; the files in the image are those the Matcher does not exclude
    (plus the Dockerfile and .dockerignore, which docker always sends).

    The matcher has current docker's rule: a path is excluded when a pattern matches it or any
    of its parent directories. docker 20.10's CLI tried only the parent as deep as the pattern
    has parts, so it sent deep/er/tmpx/other (under "**/tmpx", walked into for the exception)."""
    import os
    import shutil
    import subprocess
    import tarfile
    from dockerd_peer import DOCKERD, Dockerd
    if not os.path.exists(DOCKERD) or not shutil.which("unshare"):
        pytest.skip("Debian's dockerd (package docker.io) is not installed")
    if not os.path.exists(cli):
        pytest.skip("no docker CLI at %s" % cli)
    ctx = tmp_path / "ctx"
    for name in TREE:
        path = ctx / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)
    (ctx / ".dockerignore").write_text(IGNORE)
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY . /ctx/\n")
    m = Matcher(read_patterns(IGNORE))
    expected = {n for n in TREE if not m.excluded(n)} | {"Dockerfile", ".dockerignore"}
    assert "build/keep/deep/k2" in expected and "lib/a/skip.log" not in expected
    assert "deep/er/tmpx/other" not in expected
    if old_rule:
        expected.add("deep/er/tmpx/other")
    with Dockerd(str(tmp_path_factory.mktemp("dd"))) as d:
        env = dict(d.env, DOCKER_BUILDKIT="0")
        r = subprocess.run([cli, "build", "-q", "-t", "ctx:x", str(ctx)], env=env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        cid = d.docker("create", "ctx:x", "/none").stdout.strip()
        d.docker("export", "-o", str(tmp_path / "out.tar"), cid)
    with tarfile.open(tmp_path / "out.tar") as t:
        sent = {m.name[len("ctx/"):] for m in t.getmembers()
                if m.isfile() and m.name.startswith("ctx/")}
    assert sent == expected
