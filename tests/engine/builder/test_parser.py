"""The Dockerfile parser against docker's rules.

Oracles: the Dockerfile reference (docs.docker.com) and docker's parser behaviour, written out
here as expected splits; and Debian's dockerd 20.10 with its classic builder, which must accept
and refuse exactly the Dockerfiles the parser accepts and refuses (``test_dockerd_agrees``). A
build with ``--target`` naming no stage stops right after the whole file is parsed and checked,
with "failed to reach build target", so the file's acceptance is read without running a step.
"""
import json
import os
import shutil
import subprocess
import time

import pytest
from hypothesis import given, settings, strategies as st

from pyrunc.engine.builder.dockerfile import (
    INSTRUCTIONS, Instruction, ParseError, parse, parse_duration, parse_instruction)
from pyrunc.errors import InvalidArgument

F = "FROM busybox\n"

# (name, Dockerfile, accepted by docker's classic builder). The table is checked against the
# parser below, and against dockerd by test_dockerd_agrees.
CASES = [
    ("lower case names", F + "run true\ncmd [\"sh\"]\n", True),
    ("unknown instruction", F + "FOO bar\n", False),
    ("escape directive", "# escape=`\n" + F + "RUN echo a `\n  b\n", True),
    ("bad escape token", "# escape=x\n" + F, False),
    ("escape twice", "# escape=`\n# escape=`\n" + F, False),
    ("syntax twice", "# syntax=a\n# syntax=b\n" + F, False),
    ("escape then syntax", "# escape=`\n# syntax=docker/dockerfile:1\n" + F, True),
    ("unknown directive ends them", "# foo=bar\n# escape=x\n" + F, True),
    ("comment ends directives", "# hello\n# escape=x\n" + F, True),
    ("blank line ends directives", "\n# escape=x\n" + F, True),
    ("directive after FROM is a comment", F + "# escape=x\n", True),
    ("escape applies: \\ is literal", "# ESCAPE = `\n" + F + "COPY a \\\nb\n", False),
    ("escape default: \\ continues", F + "COPY a \\\nb\n", True),
    ("RUN --network", F + "RUN --network=none true\n", False),
    ("RUN --security", F + "RUN --security=insecure true\n", False),
    ("RUN unknown flag", F + "RUN --foo=x true\n", False),
    ("COPY flags", F + "COPY --from=a --chown=1:1 x y\n", True),
    ("COPY --chmod parses", F + "COPY --chmod=755 x y\n", True),
    ("COPY quoted flag", F + 'COPY --chown="a b" x y\n', True),
    ("COPY -- ends flags", F + "COPY -- x y\n", True),
    ("COPY unknown flag", F + "COPY --foo=bar x y\n", False),
    ("COPY flag without value", F + "COPY --from x y\n", False),
    ("COPY flag twice", F + "COPY --from=a --from=b x y\n", False),
    ("COPY one argument", F + "COPY x\n", False),
    ("ADD --from", F + "ADD --from=a x y\n", False),
    ("FROM AS", "FROM busybox AS Build-1.x\nFROM build-1.x\n", True),
    ("FROM two words", "FROM busybox build\n", False),
    ("FROM bad stage name", "FROM busybox AS 1x\n", False),
    ("FROM four words", "FROM busybox AS a b\n", False),
    ("FROM alone", "FROM\n", False),
    ("FROM --platform", "FROM --platform=linux/amd64 busybox\n", True),
    ("FROM unknown flag", "FROM --foo=x busybox\n", False),
    ("same stage name twice", "FROM busybox AS a\nFROM busybox AS a\n", True),
    ("HEALTHCHECK NONE with args", F + "HEALTHCHECK NONE x\n", False),
    ("HEALTHCHECK NONE ignores flags", F + "HEALTHCHECK --interval=5s NONE\n", True),
    ("HEALTHCHECK options", F + "HEALTHCHECK --interval=1m30s --timeout=1.5s "
     "--start-period=300ms --retries=3 CMD [\"true\"]\n", True),
    ("HEALTHCHECK zero interval", F + "HEALTHCHECK --interval=0s CMD true\n", False),
    ("HEALTHCHECK under 1ms", F + "HEALTHCHECK --timeout=100us CMD true\n", False),
    ("HEALTHCHECK no unit", F + "HEALTHCHECK --interval=5 CMD true\n", False),
    ("HEALTHCHECK retries 0", F + "HEALTHCHECK --retries=0 CMD true\n", False),
    ("HEALTHCHECK retries word", F + "HEALTHCHECK --retries=x CMD true\n", False),
    ("HEALTHCHECK unknown type", F + "HEALTHCHECK CONNECT tcp\n", False),
    ("HEALTHCHECK CMD alone", F + "HEALTHCHECK CMD\n", False),
    ("HEALTHCHECK alone", F + "HEALTHCHECK\n", False),
    ("ONBUILD", F + "ONBUILD RUN echo hi\nONBUILD COPY --from=x a b\n", True),
    ("ONBUILD unknown trigger", F + "ONBUILD FOO bar\n", True),
    ("ONBUILD ONBUILD", F + "ONBUILD ONBUILD RUN x\n", False),
    ("ONBUILD FROM", F + "ONBUILD FROM busybox\n", False),
    ("ONBUILD MAINTAINER", F + "ONBUILD MAINTAINER me\n", False),
    ("ONBUILD alone", F + "ONBUILD\n", False),
    ("MAINTAINER", F + "MAINTAINER Jane Doe <jane@example.com>\n", True),
    ("MAINTAINER alone", F + "MAINTAINER\n", False),
    ("ENV forms", F + 'ENV A 1 2\nENV B=1 C="x y" D=a\\ b\n', True),
    ("ENV key alone", F + "ENV PATH\n", False),
    ("ENV word without =", F + "ENV A=1 B\n", False),
    ("ENV blank name", F + "ENV =x\n", False),
    ("ENV alone", F + "ENV\n", False),
    ("ENV flag", F + "ENV --foo=x A=1\n", False),
    ("LABEL quoted key", F + 'LABEL "a b"=c d=\n', True),
    ("LABEL key alone", F + "LABEL a\n", False),
    ("ARG before FROM", "ARG V=1\nARG W\n" + F + "ARG a b=c\n", True),
    ("RUN before FROM", "RUN true\n" + F, False),
    ("ARG blank name", F + "ARG =x\n", False),
    ("ARG alone", F + "ARG\n", False),
    ("ARG flags ignored", F + "ARG --foo x\n", True),
    ("STOPSIGNAL flags ignored", F + "STOPSIGNAL --foo=1 SIGKILL\n", True),
    ("STOPSIGNAL alone", F + "STOPSIGNAL\n", False),
    ("USER with space", F + "USER a b\n", True),
    ("WORKDIR alone", F + "WORKDIR\n", False),
    ("SHELL shell form", F + "SHELL /bin/sh -c\n", False),
    ("SHELL empty", F + "SHELL []\n", False),
    ("SHELL json", F + 'SHELL ["/bin/sh", "-c"]\n', True),
    ("VOLUME empty string", F + 'VOLUME [""]\n', False),
    ("VOLUME empty list", F + "VOLUME []\n", False),
    ("VOLUME words", F + "VOLUME /a /b\n", True),
    ("CMD number in array", F + 'CMD ["a", 1]\n', False),
    ("CMD unterminated array", F + 'CMD ["a"\n', True),
    ("CMD text after array", F + 'CMD ["a"] junk\n', True),
    ("CMD, RUN, ENTRYPOINT alone", F + "RUN\nCMD\nENTRYPOINT\n", True),
    ("EXPOSE alone", F + "EXPOSE\n", False),
    ("comments only", "# a\n  # b\n\n", False),
    ("escape at EOF", F + "RUN true \\", True),
    ("CRLF", "FROM busybox\r\nRUN a \\\r\n  b\r\n", True),
    ("BOM", "\ufeff" + F, True),
    ("comments and blank lines in continuations",
     F + "RUN a \\\n# c\n    # d\n\n  \\\n b\n", True),
    ("heredoc", F + "RUN <<EOF\necho hi\nEOF\n", False),
    ("leading whitespace", "  \t FROM busybox\n\t RUN true\n", True),
    ("line of 65535 bytes", F + "RUN " + "x" * 65531 + "\n", True),
    ("line over 65535 bytes", F + "RUN " + "x" * 70000 + "\n", False),
    ("bad substitution parses (expanded later)", "FROM ${x\n", True),
    ("non-ASCII", F + "LABEL \u00e9=\u00fc\nWORKDIR /a b\n", True),
    ("escape without spaces", "#escape=`\n" + F + "COPY a \\\nb\n", False),
    ("indented directive", "  # escape=`\n" + F + "COPY a \\\nb\n", False),
    ("two-character escape", "# escape=``\n" + F, False),
    ("escape backslash spelled out", "# Escape = \\\n" + F + "COPY a \\\nb\n", True),
    ("blank line before escape", "# syntax=x\n\n# escape=`\n" + F + "COPY a \\\nb\n", True),
    ("NBSP is not a separator", F + "RUN\u00a0true\n", False),
    ("NBSP inside FROM", "FROM busybox\u00a0AS x\n", False),
    ("tab and vertical tab", "FROM\tbusybox\nRUN\x0btrue\n", True),
    ("NBSP splits ENV words", F + "ENV A=1\u00a0B=2\n", True),
    ("mixed-case AS and stage", "FROM busybox As Build\nFROM build\n", True),
    ("lower-case ONBUILD trigger from", F + "onbuild from x\n", False),
    ("JSON trailing comma is shell form", F + 'CMD ["a",]\n', True),
    ("nested JSON array", F + 'CMD [["a"]]\n', False),
    ("JSON object is shell form", F + 'CMD {"a": 1}\n', True),
    ("HEALTHCHECK CMD glued to JSON", F + 'HEALTHCHECK CMD["true"]\n', False),
]


# Dockerfiles docker's parser accepts but its classic builder refuses when the step runs, with
# a message that does not depend on what ran before: the parser refuses them with that message.
REFUSED_WHEN_RUN = [
    ("RUN --mount", "FROM scratch\nRUN --mount=type=cache,target=/x true\n",
     "the --mount option requires BuildKit"),
    ("RUN --mount twice", "FROM scratch\nRUN --mount=type=tmpfs,target=/x --mount=type=tmpfs,"
     "target=/y true\n", "the --mount option requires BuildKit"),
]


@pytest.mark.parametrize("name,text,message", REFUSED_WHEN_RUN,
                         ids=[c[0] for c in REFUSED_WHEN_RUN])
def test_refuses_what_docker_refuses_when_run(name, text, message):
    with pytest.raises(ParseError, match="^dockerfile parse error line 2: " + message):
        parse(text)


@pytest.mark.parametrize("name,text,accepted", CASES, ids=[c[0] for c in CASES])
def test_accepts_and_refuses_as_docker(name, text, accepted):
    if accepted:
        assert parse(text).instructions
    else:
        with pytest.raises(ParseError) as e:
            parse(text)
        assert str(e.value).startswith("dockerfile parse error line ")
        assert "\n" not in str(e.value)


def _dockerd_accepts(d, text):
    r = subprocess.run([d.docker_cli, "build", "--target", "zz-no-such-stage", "-"],
                       input=text.encode(), env=dict(d.env, DOCKER_BUILDKIT="0"),
                       capture_output=True, timeout=120)
    err = r.stderr.decode(errors="replace")
    assert r.returncode != 0, r.stdout
    assert "Step 1/" not in r.stdout.decode(errors="replace")
    return "failed to reach build target" in err, err.strip()


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory):
    from dockerd_peer import DOCKERD, Dockerd, docker_client
    if not os.path.exists(DOCKERD) or not shutil.which("unshare"):
        pytest.skip("Debian's dockerd (package docker.io) is not installed")
    if docker_client() is None:
        pytest.skip("no docker CLI to drive dockerd")
    with Dockerd(str(tmp_path_factory.mktemp("dockerd"))) as d:
        d.docker_cli = docker_client()
        yield d


@pytest.mark.peer
def test_dockerd_agrees(dockerd):
    """Every case of the table, accepted or refused by dockerd's classic builder as the table
    (and so the parser) says."""
    wrong = []
    for name, text, accepted in CASES:
        theirs, message = _dockerd_accepts(dockerd, text)
        if theirs != accepted:
            wrong.append("%s: dockerd %s (%s)" % (name, "accepts" if theirs else "refuses",
                                                  message[-200:]))
    for name, text, message in REFUSED_WHEN_RUN:
        r = subprocess.run([dockerd.docker_cli, "build", "-"], input=text.encode(),
                           env=dict(dockerd.env, DOCKER_BUILDKIT="0"), capture_output=True,
                           timeout=120)
        if r.returncode == 0 or message not in r.stderr.decode(errors="replace"):
            wrong.append("%s: dockerd says %r" % (name, r.stderr.decode(errors="replace")))
    assert wrong == []


# changes whose result docker's commit computes (its classic builder's dispatchers, with the
# container's environment for the substitutions)
CHANGES = [
    "ENV PATH=$PATH:/opt/bin HOME2=${HOME:-none}",
    'ENV Q="a b" R=\'$x\' S=c\\ d',
    "ENV LEGACY value with  spaces",
    'LABEL "com.example.a b"="x=y" plain=1',
    "LABEL from.env=$PATH",
    "WORKDIR /srv/${NOPE:-app}",
    "WORKDIR sub",
    "USER ${NOPE:-1000}:0",
    'VOLUME ["/data", "/logs"]',
    "EXPOSE 80 53/udp",
    'CMD ["echo", "$PATH"]',
    "ONBUILD RUN echo ${HOME}  ",
]


@pytest.mark.peer
def test_commit_changes_as_dockerd(dockerd):
    """The engine's apply_changes (``commit --change``, one parser with the builder) gives the
    Config dockerd's commit gives for the same changes on the same base Config."""
    from pyrunc.engine.images import apply_changes
    dockerd.load_builtin("busybox")
    cid = dockerd.docker("create", "busybox", "true").stdout.strip()
    try:
        base = json.loads(dockerd.docker("inspect", "busybox").stdout)[0]["Config"]
        args = ["commit"]
        for change in CHANGES:
            args += ["--change", change]
        r = dockerd.docker(*args, cid, "changed:1", check=False)
        assert r.returncode == 0, r.stderr
        theirs = json.loads(dockerd.docker("inspect", "changed:1").stdout)[0]["Config"]
    finally:
        dockerd.docker("rm", "-f", cid, check=False)
    ours = apply_changes(dict(base), CHANGES)
    for key in ("Env", "Labels", "WorkingDir", "User", "StopSignal", "Volumes", "ExposedPorts",
                "Cmd", "OnBuild"):
        assert ours.get(key) == theirs.get(key), key
    # one commit each: "--" ends the flags, leaving an empty shell form
    for change in ("CMD --", "ENTRYPOINT --", "CMD -- --", "ENTRYPOINT -- x"):
        cid = dockerd.docker("create", "busybox", "true").stdout.strip()
        try:
            r = dockerd.docker("commit", "--change", change, cid, "changed:2", check=False)
            assert r.returncode == 0, r.stderr
            theirs = json.loads(dockerd.docker("inspect", "changed:2").stdout)[0]["Config"]
        finally:
            dockerd.docker("rm", "-f", cid, check=False)
        key = "Cmd" if change.startswith("CMD") else "Entrypoint"
        assert apply_changes(dict(base), [change]).get(key) == theirs.get(key), change


# -- how each instruction's arguments are split ----------------------------------------------

def one(line, escape="\\"):
    return parse(F + line + "\n" if escape == "\\" else "# escape=`\n" + F + line + "\n"
                 ).instructions[1]


@pytest.mark.parametrize("line,cmd,args,is_json,flags", [
    ('RUN ["echo", "a b"]', "run", ["echo", "a b"], True, []),
    ("RUN echo  a   b ", "run", ["echo  a   b"], False, []),
    ('CMD [ "a" ,\t"b" ]', "cmd", ["a", "b"], True, []),
    ("CMD []", "cmd", [], True, []),
    ('CMD ["\\u00e9\\n", "\\/"]', "cmd", ["\u00e9\n", "/"], True, []),
    ('CMD ["\\ud83d\\ude00", "\\ud800x"]', "cmd", ["\U0001f600", "\ufffdx"], True, []),
    ("CMD ['a']", "cmd", ["['a']"], False, []),
    ('ENTRYPOINT "[\\"a\\"]"', "entrypoint", ['"[\\"a\\"]"'], False, []),
    ("ENV A 1  2 ", "env", ["A", "1  2"], False, []),
    ('ENV A=1 B="x y" C=a\\ b D=', "env", ["A", "1", "B", '"x y"', "C", "a\\ b", "D", ""],
     False, []),
    ("ENV A='q \"r\"' B=\"s 't'\"", "env", ["A", "'q \"r\"'", "B", "\"s 't'\""], False, []),
    ('LABEL "com.x y"="a=b"', "label", ['"com.x y"', '"a=b"'], False, []),
    ("ARG A=1 B", "arg", ["A=1", "B"], False, []),
    ('ARG A="x y"', "arg", ['A="x y"'], False, []),
    ("FROM busybox as build", "from", ["busybox", "as", "build"], False, []),
    ("FROM --platform=linux/arm64 busybox", "from", ["busybox"], False,
     ["--platform=linux/arm64"]),
    ("COPY --from=0 --chown=1:2 a b /c/", "copy", ["a", "b", "/c/"], False,
     ["--from=0", "--chown=1:2"]),
    ('COPY ["a b", "/c d/"]', "copy", ["a b", "/c d/"], True, []),
    ('ADD --chown="u g" x y', "add", ["x", "y"], False, ["--chown=u g"]),
    ("VOLUME /a\t/b", "volume", ["/a", "/b"], False, []),
    ('VOLUME ["/a b"]', "volume", ["/a b"], True, []),
    ("EXPOSE 80/tcp  443", "expose", ["80/tcp", "443"], False, []),
    ("WORKDIR /my dir", "workdir", ["/my dir"], False, []),
    ("USER 1000:1000", "user", ["1000:1000"], False, []),
    ("STOPSIGNAL SIGKILL", "stopsignal", ["SIGKILL"], False, []),
    ("MAINTAINER a <b@c>", "maintainer", ["a <b@c>"], False, []),
    ("SHELL [\"/bin/bash\", \"-c\"]", "shell", ["/bin/bash", "-c"], True, []),
    ("HEALTHCHECK --interval=5s CMD curl -f x", "healthcheck", ["CMD", "curl -f x"], False,
     ["--interval=5s"]),
    ('HEALTHCHECK CMD ["true"]', "healthcheck", ["CMD", "true"], True, []),
    ("HEALTHCHECK none", "healthcheck", ["none"], False, []),
    ("ONBUILD RUN echo hi", "onbuild", ["run", "echo hi"], False, []),
    ("Run echo", "run", ["echo"], False, []),
])
def test_arguments_split_as_docker(line, cmd, args, is_json, flags):
    ins = one(line)
    assert (ins.cmd, ins.args, ins.json, ins.flags) == (cmd, args, is_json, flags)
    assert ins.line == 2


def test_original_line_and_line_numbers():
    d = parse("# escape=`\n\nFROM busybox\n\n  RUN echo a `\n  # comment\n\n   b  \nCMD x")
    assert d.escape == "`" and d.directives == {"escape": "`"}
    run, cmd = d.instructions[1:]
    assert run.original == "RUN echo a    b"          # continuation lines keep their indent
    assert (run.line, run.end_line) == (5, 8)
    assert run.args == ["echo a    b"]
    assert (cmd.line, cmd.original) == (9, "CMD x")
    assert d.warnings and "Empty continuation line" in d.warnings[0]


def test_continuations():
    # docker's rule: the escape character last on a line continues it when the character
    # before is not the escape character too; two or three of them end the instruction
    d = parse(F + "RUN a\\\nb \\ \t\n  c\nRUN x \\\\\nRUN y\\\\\\\nRUN z\nRUN w \\")
    assert [i.args[0] for i in d.instructions[1:]] == ["ab   c", "x \\\\", "y\\\\\\", "z", "w"]
    assert not d.warnings


def test_flags_only_at_the_start():
    ins = one("COPY a --from=x b")
    assert ins.flags == [] and ins.args == ["a", "--from=x", "b"]
    ins = one("COPY --from=stage\t--chown=1 a b")
    assert ins.flag("from") == "stage" and ins.flag("chown") == "1" and ins.flag("chmod") is None


def test_onbuild_trigger():
    ins = one("ONBUILD  copy --from=x a b  ")
    assert ins.trigger is not None
    assert (ins.trigger.cmd, ins.trigger.args, ins.trigger.flags) == (
        "copy", ["a", "b"], ["--from=x"])
    assert ins.expression == "copy --from=x a b  "
    assert ins.args == ["copy", "a", "b"]


def test_escape_backtick_splits_words_with_it():
    ins = one("ENV A=x`\"y B=1", escape="`")
    assert ins.args == ["A", 'x`"y', "B", "1"]
    with pytest.raises(ParseError, match="can't find = in \"y\""):
        one("ENV A=x\\ y", escape="`")


def test_bom_crlf_and_case():
    d = parse(b"\xef\xbb\xbf# escape=`\r\nfrom busybox\r\nRun a `\r\n  b\r\n")
    assert d.escape == "`"
    assert [(i.cmd, i.args) for i in d.instructions] == [("from", ["busybox"]),
                                                          ("run", ["a   b"])]


@pytest.mark.parametrize("text,message", [
    (F + "FOO bar", "dockerfile parse error line 2: unknown instruction: FOO"),
    ("\n\n" + F + "\nRUN a \\\n b\nCOPY x", "dockerfile parse error line 7: COPY requires at "
     "least two arguments, but only one was provided. Destination could not be determined"),
    ("# escape=`\n# escape=\\\n" + F, "dockerfile parse error line 2: only one escape parser "
     "directive can be used"),
    ("# escape=x\n", "dockerfile parse error line 1: invalid escape token 'x' does not match "
     "` or \\"),
    ("RUN x\n" + F, "dockerfile parse error line 1: no build stage in current context"),
    ("FROM busybox AS 1x", 'dockerfile parse error line 1: invalid name for build stage: '
     '"1x", name can\'t start with a number or contain symbols'),
    (F + "COPY --chown x y", "dockerfile parse error line 2: Missing a value on flag: chown"),
    (F + "RUN --network=none x", "dockerfile parse error line 2: Unknown flag: network"),
    (F + "ENV A=1 B", "dockerfile parse error line 2: Syntax error - can't find = in \"B\". "
     "Must be of the form: name=value"),
    (F + "HEALTHCHECK --interval=1x CMD a", "dockerfile parse error line 2: time: unknown "
     "unit \"x\" in duration \"1x\""),
    (F + "HEALTHCHECK --retries=0 CMD a", "dockerfile parse error line 2: --retries must be "
     "at least 1 (not 0)"),
    (F + "HEALTHCHECK bogus", 'dockerfile parse error line 2: Unknown type "BOGUS" in '
     'HEALTHCHECK (try CMD)'),
    (F + "ONBUILD ONBUILD RUN x", "dockerfile parse error line 2: Chaining ONBUILD via "
     "`ONBUILD ONBUILD` isn't allowed"),
    (F + 'SHELL sh -c', "dockerfile parse error line 2: SHELL requires the arguments to be in "
     "JSON form"),
    (F + 'CMD ["a", null]', "dockerfile parse error line 2: when using JSON array syntax, "
     "arrays must be comprised of strings only"),
    ("# only\n\n", "dockerfile parse error line 2: file with no instructions"),
    ("", "dockerfile parse error line 0: file with no instructions"),
    (F + "RUN <<EOF\necho\nEOF", "dockerfile parse error line 3: unknown instruction: ECHO (a "
     "heredoc on line 2? heredocs are a BuildKit feature, not read by this builder)"),
])
def test_messages(text, message):
    with pytest.raises(ParseError) as e:
        parse(text)
    assert str(e.value) == message
    assert isinstance(e.value, InvalidArgument) and e.value.http_status == 400


def test_parse_instruction_alone():
    ins = parse_instruction("ENV A=1 B=2")
    assert (ins.cmd, ins.args) == ("env", ["A", "1", "B", "2"])
    assert parse_instruction("CMD [\"a\"]").json
    for bad, why in [("FOO x", "unknown instruction: FOO"), ("", "file with no instructions"),
                     ("RUN a\nRUN b", "without line breaks"), ("ENV", "at least one")]:
        with pytest.raises(ParseError, match=why):
            parse_instruction(bad)


@pytest.mark.parametrize("text,ns", [
    ("1ms", 10 ** 6), ("1.5s", 1500 * 10 ** 6), ("1h30m", 5400 * 10 ** 9), ("0", 0),
    ("300us", 300000), ("2\u00b5s", 2000), ("-1m", -60 * 10 ** 9), ("1m0.5s", 60500 * 10 ** 6),
    (".5s", 500 * 10 ** 6), ("3.s", 3 * 10 ** 9), ("0.3s", 3 * 10 ** 8), ("1.1ms", 1100000),
    ("2562047h47m16.854775807s", 2 ** 63 - 1), ("00000000000000000000000001s", 10 ** 9),
    ("1." + "0" * 5000 + "1s", 10 ** 9),
])
def test_durations_as_go(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["", "5", "1x", "s", ".s", "1.2.3s", "--1s", "1 s",
                                  "2562047h47m16.854775808s", "9" * 5000 + "s", "+"])
def test_bad_durations(text):
    with pytest.raises(InvalidArgument, match="^time: "):
        parse_duration(text)


# -- hostile input ----------------------------------------------------------------------------

def test_huge_single_line_is_refused_quickly():
    start = time.monotonic()
    with pytest.raises(ParseError, match="line 2: dockerfile line greater than max allowed "
                                         "size of 65535"):
        parse(F + "RUN " + "a" * (10 * 1024 * 1024))
    assert time.monotonic() - start < 30


def test_long_instruction_from_many_continuations():
    text = F + "RUN " + "echo aaaaaaaaaaaaaaaa \\\n" * 100000 + "true\n"
    start = time.monotonic()
    d = parse(text)
    assert d.instructions[1].args[0].endswith("true") and d.instructions[1].end_line == 100002
    assert time.monotonic() - start < 60


def test_huge_numbers_in_flags():
    for flag in ["--retries=" + "9" * 6000, "--interval=" + "9" * 6000 + "s"]:
        with pytest.raises(ParseError, match="out of range|invalid duration"):
            parse(F + "HEALTHCHECK %s CMD true" % flag)


def test_control_characters_are_escaped_in_messages():
    with pytest.raises(ParseError) as e:
        parse(F + "COPY --\x1b[31m=x\x07 a b")
    assert str(e.value) == "dockerfile parse error line 2: Unknown flag: \\x1b[31m"
    with pytest.raises(ParseError, match=r"unknown instruction: FOO\\u0085$"):
        parse(F + "FOO\x85 x")


def test_invalid_utf8_names_the_line():
    with pytest.raises(ParseError, match="^dockerfile parse error line 3: invalid UTF-8 "
                                         r"\(byte 0xff\)$"):
        parse(b"FROM busybox\nRUN a\nRUN \xff\n")


def test_nul_is_refused_in_arguments_not_in_comments():
    assert len(parse(F + "# a\x00b\nRUN x").instructions) == 2
    for text in [F + "RUN a\x00b", F + 'CMD ["a\\u0000"]', F + "COPY --chown=\x00 a b"]:
        with pytest.raises(ParseError, match="line 2: NUL character in the arguments"):
            parse(text)


def test_deep_json_nesting_is_not_a_crash():
    ins = one("CMD " + "[" * 60000)
    assert ins.json is False and ins.args == ["[" * 60000]


_ascii_lines = st.lists(st.text(st.characters(min_codepoint=1, max_codepoint=0x7f),
                                max_size=40), max_size=12).map("\n".join)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300), _ascii_lines,
                 _ascii_lines.map(lambda t: F + t)))
def test_arbitrary_text_gives_a_dockerfile_or_a_parse_error(text):
    try:
        d = parse(text)
    except ParseError as e:
        assert str(e).startswith("dockerfile parse error line ") and "\n" not in str(e)
        return
    assert d.instructions and all(isinstance(i, Instruction) for i in d.instructions)
    assert d.instructions[0].cmd in ("from", "arg")
    for ins in d.instructions:
        assert ins.cmd == ins.cmd.lower() and ins.line >= 1 and ins.end_line >= ins.line
        if ins.json:
            assert json.loads(json.dumps(ins.args)) == ins.args


_instruction_names = st.sampled_from(INSTRUCTIONS + ("Healthcheck CMD", "ONBUILD RUN",
                                                    "HEALTHCHECK NONE", "onbuild copy"))
_arg_text = st.lists(st.one_of(
    st.sampled_from(["--from=a", "--chown=", "--chmod=7", "--platform=x", "--interval=1s",
                     "--retries=-1", "--timeout=.5ms", "--", "-", "AS", "as", "[", "]", '"',
                     "'", "\\", "`", "=", "a=b", "${x}", "$", '["a"]', "[1]", "#", "\t"]),
    st.text(max_size=6)), max_size=8).map(" ".join)


@settings(max_examples=500, deadline=None)
@given(_instruction_names, _arg_text, st.sampled_from(["", "# escape=`\n"]))
def test_arbitrary_arguments_give_an_instruction_or_a_parse_error(name, rest, directive):
    try:
        d = parse(directive + F + name + " " + rest + "\n")
    except ParseError as e:
        assert "\n" not in str(e) and e.reason and e.line >= 1
        return
    for ins in d.instructions:
        assert all(isinstance(a, str) for a in ins.args + ins.flags)
        assert all(f.startswith("--") for f in ins.flags)


@given(st.lists(st.text(st.characters(blacklist_categories=["Cs"]), max_size=10), max_size=5))
def test_json_form_round_trips(args):
    text = F + "CMD " + json.dumps(args)
    ins = parse(text).instructions[1] if "\x00" not in "".join(args) else None
    if ins is not None:
        assert ins.json and ins.args == args
