"""pydocker without a daemon: help texts against docker's reference output, flag and argument
errors against the docker 28 CLI itself (it parses before it connects), the no-daemon message,
and the parsers (flags, Go templates, units, references) under hypothesis."""
import json
import os
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from pyrunc.cli import flags, template, units
from pyrunc.cli.flags import Command, Flag, UsageError
from pyrunc.cli.reference import parse as parse_ref

from .conftest import DOCKER28, reference

NOWHERE = "unix:///nonexistent/pydocker-test.sock"


def run(argv, host=NOWHERE, input=None):
    env = dict(os.environ, DOCKER_HOST=host, DOCKER_CONFIG="/nonexistent-config",
               DOCKER_CLI_HINTS="false")
    env.pop("DOCKER_CONTEXT", None)
    p = subprocess.run(argv, env=env, capture_output=True, text=True, input=input, timeout=60,
                       stdin=None if input is not None else subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def pydocker(*args, **kw):
    return run([sys.executable, "-m", "pyrunc.cli", *args], **kw)


def docker(*args, **kw):
    if not os.path.exists(DOCKER28):
        pytest.skip("docker 28 CLI (%s) is not installed" % DOCKER28)
    return run([DOCKER28, *args], **kw)


def reference_block(command):
    """The output recorded for ``$ docker COMMAND --help`` in the reference."""
    text = reference("docker28-help.txt")
    m = re.search(r"^\$ docker %s --help\n(.*?)^\[exit 0\]" % re.escape(command), text,
                  re.S | re.M)
    assert m, command
    return m.group(1)


def as_pydocker(text):
    text = text.replace("Usage:  docker", "Usage:  pydocker").replace("Run 'docker",
                                                                       "Run 'pydocker")
    return re.sub(r"^(  docker .*)$", lambda m: m.group(1).replace("docker ", "pydocker "),
                  text, flags=re.M)


@pytest.mark.parametrize("command", ["container ls", "container", "network", "volume",
                                     "system"])
def test_help_is_dockers(command):
    code, out, err = pydocker(*command.split(), "--help")
    assert code == 0, err
    assert out == as_pydocker(reference_block(command))


def _flag_blocks(text):
    """Options block entries: flag name -> its lines."""
    blocks, name = {}, None
    for line in text.split("Options:\n", 1)[1].splitlines():
        m = re.match(r"^  (?:-\w, )?--([\w-]+)", line) or re.match(r"^      --([\w-]+)", line)
        if m:
            name = m.group(1)
            blocks[name] = [line]
        elif name and line.startswith("     "):
            blocks[name].append(line)
        else:
            name = None
    return blocks


def test_run_help_flags_are_dockers():
    """Every flag pydocker's run shows is laid out and worded as docker 28's (pydocker has a
    subset: the alignment column is docker's only if it has the longest flag too)."""
    code, out, _ = pydocker("container", "run", "--help")
    assert code == 0
    ref = reference_block("container run")
    assert out.split("Options:")[0] == as_pydocker(ref.split("Options:")[0])
    ours, theirs = _flag_blocks(out), _flag_blocks(ref)
    assert len(ours) > 55
    for name, lines in ours.items():
        assert name in theirs, name
        want = " ".join(" ".join(line.split()) for line in theirs[name])
        got = " ".join(" ".join(line.split()) for line in lines)
        assert got == want, name


ERROR_CASES = [
    ["ps", "--bogus"], ["ps", "-Z"], ["ps", "-n"], ["ps", "-n", "x"], ["ps", "--no-trunc=maybe"],
    ["ps", "extra"], ["rm"], ["rename", "a"], ["run"], ["images", "a", "b"],
    ["logs", "--tail"], ["stop", "--time", "soon", "x"], ["bogus"], ["image", "bogus"],
    ["exec", "onlyone"], ["container", "ls", "-q", "--nope"], ["volume", "create", "a", "b"],
]


@pytest.mark.parametrize("args", ERROR_CASES, ids=lambda a: " ".join(a))
def test_usage_errors_are_dockers(args):
    code, out, err = pydocker(*args)
    dcode, dout, derr = docker(*args)
    assert (code, out) == (dcode, dout)
    # docker 28 prints "SRun" for "requires at most": a typo in its template, not copied
    assert err == derr.replace("docker", "pydocker").replace("\nSRun '", "\nRun '")


def test_run_it_needs_a_terminal():
    code, out, err = pydocker("run", "-it", "busybox")
    assert (code, out, err) == docker("run", "-it", "busybox")
    assert err == "the input device is not a TTY\n"


def test_no_daemon():
    code, out, err = pydocker("ps")
    dcode, _, derr = docker("ps")
    assert code == dcode == 1
    first, hint = err.splitlines()
    assert first == derr.strip()
    assert first == ("Cannot connect to the Docker daemon at %s. Is the docker daemon running?"
                     % NOWHERE)
    assert "pydockerd" in hint


def test_default_host_is_pyrunc_socket():
    # an empty /run/pyrunc (when there is one) in a mount namespace of the client's own: no
    # daemon listens there, whatever runs on this machine
    code, _, err = run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                        '[ ! -d /run/pyrunc ] || mount -t tmpfs tmpfs /run/pyrunc; exec "$@"',
                        "client",
                        sys.executable, "-m", "pyrunc.cli", "ps"], host="")
    assert code == 1
    assert "unix:///run/pyrunc/docker.sock" in err


def test_top_level_help_lists_commands():
    code, out, _ = pydocker("--help")
    assert code == 0
    for name in ("run", "ps", "images", "container", "image", "volume", "network", "system",
                 "rmi", "logs", "exec", "inspect", "wait", "stats"):
        assert re.search(r"^  %s +\S" % name, out, re.M), name
    assert out.startswith("Usage:  pydocker [OPTIONS] COMMAND\n")


# -- parsers ----------------------------------------------------------------------------------

def _cmd():
    return Command("t", "[OPTIONS]", "test", None, [
        Flag("all", "a", ""), Flag("quiet", "q", ""), Flag("name", "n", "string"),
        Flag("env", "e", "list", multi=True), Flag("count", "c", "int")], interspersed=True)


def test_pflag_forms():
    opts, args = _cmd().parse(["-aq", "-nfoo", "--env=A=1", "-e", "B=2", "x", "--count", "3",
                               "--", "-a"])
    assert opts["all"] and opts["quiet"] and opts["name"] == "foo"
    assert opts["env"] == ["A=1", "B=2"] and opts["count"] == 3 and args == ["x", "-a"]
    opts, _ = _cmd().parse(["-n=bar", "--all=false"])
    assert opts["name"] == "bar" and opts["all"] is False


@given(st.lists(st.text(min_size=0, max_size=12), max_size=8))
@settings(max_examples=400, deadline=None)
def test_flag_parser_total(argv):
    """Whatever a user types ends in values or a UsageError, never another exception."""
    try:
        _cmd().parse(argv)
    except UsageError as e:
        assert str(e) and "\n" not in str(e)


@given(st.lists(st.sampled_from(["a", "q"]), min_size=1, max_size=4),
       st.text(alphabet="abcxyz=:/", min_size=1, max_size=10))
def test_combined_short_flags(bools, value):
    opts, args = _cmd().parse(["-" + "".join(bools) + "n", value])
    assert opts["name"] == value and args == []
    for b in bools:
        assert opts[{"a": "all", "q": "quiet"}[b]] is True


JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) |
                       st.text(max_size=8), lambda c: st.lists(c, max_size=3) |
                       st.dictionaries(st.text(alphabet="abcXYZ", min_size=1, max_size=4), c,
                                       max_size=3), max_leaves=10)


@given(st.dictionaries(st.sampled_from(["A", "B", "Cc"]), JSONISH, max_size=3))
def test_template_json_is_json(data):
    out = template.Template("{{json .}}").render(data)
    assert json.loads(out) == data


@given(st.text(max_size=40))
@settings(max_examples=400, deadline=None)
def test_template_hostile_text(text):
    """Any --format text either renders or raises TemplateError (one line to the user)."""
    try:
        t = template.Template(text)
        t.render({"A": "x", "L": [1, 2], "M": {"k": "v"}})
    except template.TemplateError:
        pass


def test_template_functions():
    t = template.Template('{{join .L ","}}|{{upper .S}}|{{lower .S}}|{{title .T}}|'
                          '{{truncate .S 3}}|{{printf "%s-%d" .S 7}}|{{.S | lower}}|'
                          '{{range .L}}[{{.}}]{{end}}|{{if .E}}y{{else}}n{{end}}|{{.M.k}}|{{.L}}')
    out = t.render({"L": ["a", "b"], "S": "HeLLo", "T": "two words", "E": "", "M": {"k": 1}})
    assert out == "a,b|HELLO|hello|Two Words|HeL|HeLLo-7|hello|[a][b]|n|1|[a b]"


def test_tabwriter_is_dockers():
    """docker's image lists of the reference, re-laid out from their cells, are themselves."""
    text = reference("docker28-ls.txt")
    for cmd in ("image ls", "image ls -a --digests", "image ls --no-trunc"):
        block = text.split("$ docker %s\n" % cmd, 1)[1].split("[exit 0]")[0]
        rows = [re.split(r" {2,}", line) for line in block.splitlines()]
        assert template.tabwrite(rows) == block
    assert template.tabwrite([["PORTS", "NAMES"], ["", "x"]]) == "PORTS     NAMES\n          x\n"


@pytest.mark.parametrize("size,text", [(0, "0B"), (680, "680B"), (1990000, "1.99MB"),
                                       (999, "999B"), (1000, "1kB"), (2_040_000_000, "2.04GB"),
                                       (123456, "123kB")])
def test_human_size(size, text):
    assert units.human_size(size) == text


@pytest.mark.parametrize("secs,text", [(0.5, "Less than a second"), (1, "1 second"),
                                       (59, "59 seconds"), (61, "About a minute"),
                                       (600, "10 minutes"), (3600, "About an hour"),
                                       (7200, "2 hours"), (3 * 86400, "3 days"),
                                       (20 * 86400, "2 weeks"), (100 * 86400, "3 months"),
                                       (800 * 86400, "2 years")])
def test_human_duration(secs, text):
    assert units.human_duration(secs) == text


@given(st.integers(0, 10**15))
def test_human_size_three_digits(n):
    text = units.human_size(n)
    m = re.match(r"^([0-9.e+]+)(B|kB|MB|GB|TB|PB)$", text)
    assert m, text
    assert len(m.group(1).replace(".", "")) <= 3 or "e" in m.group(1)


@pytest.mark.parametrize("text,normalized,familiar", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("nginx:1.22", "docker.io/library/nginx:1.22", "nginx:1.22"),
    ("127.0.0.1:5000/library/busybox", "127.0.0.1:5000/library/busybox:latest",
     "127.0.0.1:5000/library/busybox:latest"),
    ("someuser/myapp:1.0.1", "docker.io/someuser/myapp:1.0.1", "someuser/myapp:1.0.1")])
def test_reference(text, normalized, familiar):
    r = parse_ref(text).with_default_tag()
    assert str(r) == normalized and r.familiar() == familiar


@pytest.mark.parametrize("bad", ["UPPER", "a:b:c", "", "x@sha256:12", "a//b", "-x", "a:" + "t" * 200])
def test_reference_rejects(bad):
    with pytest.raises(ValueError):
        parse_ref(bad)


def test_help_wrap_is_pflags():
    f = Flag("add-host", "", "list", "Add a custom host-to-IP mapping (host:ip)")
    g = Flag("health-start-period", "", "duration", "x")
    out = flags.flag_usages([f, g], 79)
    assert out.splitlines()[:2] == [
        "      --add-host list                  Add a custom host-to-IP mapping",
        "                                       (host:ip)"]
