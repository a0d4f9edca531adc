"""--format templates that name a field the object lacks: docker fails with Go's text/template
error (``template: :1:2: executing "" at <.Nope>: can't evaluate field Nope in type ...``),
each command with its own prefix, position and type name, while a Go map's missing key prints
"<no value>". docker 28 on the same pydockerd is the oracle, byte for byte; a hypothesis test
holds the parser to its own error on any text."""
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc.cli.flags import TemplateError
from pyrunc.cli.template import GoTypes, Template, render_list

from .conftest import DOCKER28

NOPE = "{{.Nope}}"
CASES = [
    # ps: the context struct, positions (line:column of the field's second part), pipelines,
    # arguments, blocks, tables (whose "table " counts), and no rows at all
    ("ps", "-a", "--format", NOPE), ("ps", "-a", "--format", "x {{ .Nope }}"),
    ("ps", "-a", "--format", "{{.Names.Foo}}"), ("ps", "-a", "--format", "{{.Nope | upper}}"),
    ("ps", "-a", "--format", "{{json .Nope}}"), ("ps", "-a", "--format", "{{(.Nope)}}"),
    ("ps", "-a", "--format", "table {{.ID}}\t{{.Nope}}"),
    ("ps", "-a", "--format", "a\n{{.ID}}\n {{.Nope}}"),
    ("ps", "-a", "--format", "{{range .Nope}}{{end}}"),
    ("ps", "-a", "--format", "{{if .Nope}}y{{end}}"),
    ("ps", "-a", "--format", "{{with .Nope}}y{{end}}"),
    ("ps", "-a", "--format", "{{.Nope.Deeper}}"), ("ps", "-a", "--format", "{{.ID.Nope}}"),
    ("ps", "-a", "--format", '{{.Label "x"}}|{{.Labels}}'),
    ("ps", "--filter", "name=nothing-like-this", "--format", NOPE),
    ("ps", "--filter", "name=nothing-like-this", "--format", "table {{.Nope}}"),
    # images, volumes, stats: their structs, "table " not counted
    ("images", "--format", NOPE), ("images", "--format", "table {{.Repository}}\t{{.Nope}}"),
    ("images", "--format", "{{.Containers.x}}"),
    ("volume", "ls", "--format", NOPE), ("volume", "ls", "--format", "table {{.Nope}}"),
    ("volume", "ls", "--format", "{{.Labels.x}}"),
    ("stats", "--no-stream", "--format", NOPE),
    ("stats", "--no-stream", "--format", "table {{.Nope}}"),
    # inspect: containers and images as raw maps (missingkey=error) but for Go's map fields
    ("inspect", "-f", NOPE, "c1"), ("inspect", "-f", "{{.Config.Nope}}", "c1"),
    ("inspect", "-f", "{{.Config.Labels.x}}", "c1"),
    ("inspect", "-f", "{{.Config.Labels.y}}", "c1"),
    ("inspect", "-f", "{{.Name.Foo}}", "c1"), ("inspect", "-f", NOPE, "c1", "busybox"),
    ("inspect", "-f", "{{.State.Health.Status}}", "c1"),
    ("image", "inspect", "-f", NOPE, "busybox"), ("container", "inspect", "-f", NOPE, "c1"),
    ("volume", "inspect", "-f", NOPE, "v1"),
    # version (its template is named "version") and info: nested structs, nil ones, scalars
    ("version", "--format", NOPE), ("version", "--format", "{{.Client.Nope}}"),
    ("version", "--format", "{{.Server.Nope}}"),
    ("version", "--format", "{{.Server.Components.Nope}}"),
    ("version", "--format", "{{.Client.Platform.Nope}}"),
    ("version", "--format", "{{.Server.Platform.Nope}}"),
    ("version", "--format", "{{.Server.Version.x}}"),
    ("version", "--format", "{{.Server.Experimental.x}}"),
    ("info", "--format", NOPE), ("info", "--format", "{{.Plugins.Nope}}"),
    ("info", "--format", "{{.ClientInfo.Nope}}"), ("info", "--format", "{{.Swarm.Nope}}"),
    ("info", "--format", "{{.RegistryConfig.Nope}}"),
    ("info", "--format", "{{.Containers.x}}"), ("info", "--format", "{{.Labels.x}}"),
    ("info", "--format", "{{.Plugins.Volume.x}}"), ("info", "--format", "{{.Runtimes.x}}"),
    # events: tried before any event (exit 64)
    ("events", "--since", "0", "--until", "1", "--format", NOPE),
    ("events", "--since", "0", "--until", "1", "--format", "{{.Actor.Nope}}"),
]


@pytest.fixture
def objects(pyd):
    if not os.path.exists(DOCKER28):
        pytest.skip("docker 28 CLI (%s) is not installed" % DOCKER28)
    assert pyd.pydocker("create", "--name", "c1", "-l", "x=1", "busybox", "true").code == 0
    assert pyd.pydocker("volume", "create", "v1").code == 0
    assert pyd.pydocker("run", "-d", "--name", "c2", "busybox", "sleep", "120").code == 0
    yield pyd
    pyd.pydocker("rm", "-f", "c1", "c2")
    pyd.pydocker("volume", "rm", "v1")


def test_errors_are_docker28s(objects):
    mismatched = []
    for case in CASES:
        d, p = objects.docker(*case), objects.pydocker(*case)
        if (d.code, d.out, d.err) != (p.code, p.out, p.err):
            mismatched.append((case, d, p))
    assert not mismatched, "\n".join("%r\ndocker %r\npydocker %r" % m for m in mismatched)
    # the oracle did fail where a field is missing, and printed where a map's key is
    assert objects.docker("ps", "-a", "--format", NOPE).code == 1
    r = objects.pydocker("ps", "-a", "--format", NOPE)
    assert r.err == ('failed to execute template: template: :1:2: executing "" at <.Nope>: '
                     "can't evaluate field Nope in type *formatter.ContainerContext\n")
    assert objects.pydocker("info", "--format", "{{.Runtimes.x}}").out == "<no value>\n"
    # events' Go field names (Status, ID, TimeNano...) read their JSON keys
    import time
    until = str(int(time.time()))
    fmt = "{{.Type}} {{.Action}} {{.Actor.ID}} {{.ID}} {{.Status}} {{.Scope}} {{.TimeNano}}"
    d = objects.docker("events", "--since", "0", "--until", until, "--format", fmt)
    p = objects.pydocker("events", "--since", "0", "--until", until, "--format", fmt)
    assert (p.code, p.out, p.err) == (d.code, d.out, d.err)
    assert "container create " in p.out and "<no value>" not in p.out


DEBIAN_CASES = [
    ("network", "ls", "--format", NOPE), ("network", "ls", "--format", "table {{.Nope}}"),
    ("network", "ls", "--format", "{{.Labels.x}}"),
    ("network", "inspect", "-f", NOPE, "bridge"),
    ("network", "inspect", "-f", "{{.Options.zz}}", "bridge"),
    ("network", "inspect", "-f", "{{.IPAM.Nope}}", "bridge"),
    ("history", "--format", NOPE, "busybox"), ("history", "--format", "table {{.Nope}}", "busybox"),
    ("context", "ls", "--format", NOPE), ("ps", "-a", "--format", NOPE),
    ("inspect", "-f", NOPE, "busybox"), ("info", "--format", "{{.Plugins.Nope}}"),
]


def test_errors_against_debian_dockerd(debian_dockerd):
    """The reference server (its networks, history): the same words as docker 28's."""
    if not os.path.exists(DOCKER28):
        pytest.skip("docker 28 CLI (%s) is not installed" % DOCKER28)
    t = debian_dockerd
    mismatched = []
    for case in DEBIAN_CASES:
        d, p = t.docker(*case), t.pydocker(*case)
        if (d.code, d.out, d.err) != (p.code, p.out, p.err):
            mismatched.append((case, d, p))
    assert not mismatched, "\n".join("%r\ndocker %r\npydocker %r" % m for m in mismatched)
    assert "*network.networkContext" in t.pydocker("network", "ls", "--format", NOPE).err


def test_positions_and_types_in_process():
    go = GoTypes({(): "T", ("S",): "U"}, {(): frozenset(("Opt",))})
    data = {"A": "a", "S": {"B": 1}, "M": {"k": "v"}, "L": [{"X": 1}]}
    cases = {
        "{{.A}}{{.Opt}}{{.M.zz}}": "a<no value><no value>",
        "{{range .L}}{{.X}}{{end}}": "1",
        "{{with .S}}{{.B}}{{end}}": "1",
    }
    for text, want in cases.items():
        assert Template(text).render(data, None, go) == want
    errors = {
        "{{.Nope}}": 'template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in '
                     "type T",
        "ab\ncd {{- .S.Nope}}": 'template: :2:9: executing "" at <.S.Nope>: can\'t evaluate '
                                "field Nope in type U",
        "{{with .S}}\n{{.Nope}}{{end}}": 'template: :2:2: executing "" at <.Nope>: can\'t '
                                         "evaluate field Nope in type U",
        "{{.A.b}}": 'template: :1:4: executing "" at <.A.b>: can\'t evaluate field b in type '
                    "string",
    }
    for text, want in errors.items():
        with pytest.raises(TemplateError) as e:
            Template(text).render(data, None, go)
        assert str(e.value) == want, text
    raw = GoTypes(raw=True, maps=frozenset(("Labels",)))
    assert Template("{{.Labels.q}}").render({"Labels": {}}, None, raw) == "<no value>"
    with pytest.raises(TemplateError, match='map has no entry for key "q"'):
        Template("{{.Other.q}}").render({"Other": {}}, None, raw)
    # without GoTypes (lists docker formats leniently here) a missing field stays "<no value>"
    assert render_list("{{.Nope}}", [{"A": "1"}], {"A": "A"}) == "<no value>\n"


ACTION = st.sampled_from(["{{", "}}", "{{-", "-}}", " ", ".", ".A", ".Nope", ".S.B", "|",
                          "(", ")", '"', "`", "range", "if", "with", "else", "end", "json",
                          "printf", "index", "len", "join", "truncate", "1", "nil", "$x",
                          ":=", "/*", "*/", "\\", "\n", "table", "upper", '"x"', "5", "1e400",
                          "pad", "title", "split", "-1", ".M", ".L", "%d", "%*d"])


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(ACTION, max_size=14).map("".join)))
def test_parser_raises_only_its_error(text):
    """Any text: parsing and rendering give text or TemplateError, never another exception
    (the CLI turns TemplateError into one line and an exit status)."""
    data = {"A": "a", "S": {"B": 1}, "L": ["x", "y"], "M": {"k": 1}}
    for go in (None, GoTypes({(): "T", ("S",): "U"}), GoTypes(raw=True)):
        try:
            out = Template(text).render(data, None, go)
        except TemplateError:
            continue
        assert isinstance(out, str)
    try:
        render_list(text, [{"ID": "1", "Command": "c"}], {"ID": "CONTAINER ID",
                                                           "Command": "COMMAND"})
    except TemplateError:
        pass
