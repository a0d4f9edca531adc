"""The seed's flows, each step run by pydocker and by the docker 28 CLI against the same daemon
and compared: exit code, stdout and stderr (the program's name aside); list outputs compared
cell by cell with times normalised ("2 seconds ago"), and pydocker's columns checked aligned."""
import re

AGO = re.compile(r"(Less than a second|About a minute|About an hour|\d+ (second|minute|hour|day|"
                 r"week|month|year)s?)( ago)?")


def norm_cells(text):
    rows = []
    for line in text.splitlines():
        rows.append([AGO.sub("<T>", cell) for cell in re.split(r" {2,}", line.rstrip())])
    return rows


def assert_aligned(text):
    """Every line's cells start at the header's column offsets (docker's tabwriter layout)."""
    lines = text.splitlines()
    if not lines:
        return
    starts = [m.start() for m in re.finditer(r"(?:^|(?<=   ))\S", lines[0])]
    for line in lines[1:]:
        for s in starts[1:]:
            assert line[s - 1:s] in (" ", ""), (s, lines[0], line)


def as_pydocker(text):
    """docker's message with the program's name changed (not docker.io)."""
    return re.sub(r"(?<![\w./])docker(?![\w.])", "pydocker", text)


def same(t, *args, input=None, table=False, prog_in_err=True):
    """Run ``args`` with both CLIs; assert the same outcome; return pydocker's Result."""
    mine = t.pydocker(*args, input=input)
    theirs = t.docker(*args, input=input)
    assert mine.code == theirs.code, (args, mine, theirs)
    if table == "unordered":
        # rows docker builds from a Go map (the tags of one image) come in any order
        a, b = norm_cells(mine.out), norm_cells(theirs.out)
        assert a[:1] == b[:1] and sorted(a[1:]) == sorted(b[1:]), (args, mine, theirs)
        assert_aligned(mine.out)
    elif table == "top":
        # ps's C (CPU use, a percentage of the process's life) is read at each call: one call
        # may see 1 where the other saw 0
        a, b = norm_cells(mine.out), norm_cells(theirs.out)
        assert a[:1] == b[:1] and a[0][3:4] == ["C"], (args, mine, theirs)
        assert [r[:3] + r[4:] for r in a] == [r[:3] + r[4:] for r in b], (args, mine, theirs)
        assert_aligned(mine.out)
    elif table:
        assert norm_cells(mine.out) == norm_cells(theirs.out), (args, mine, theirs)
        assert_aligned(mine.out)
    else:
        assert AGO.sub("<T>", mine.out) == AGO.sub("<T>", theirs.out), (args, mine, theirs)
    err = as_pydocker(theirs.err) if prog_in_err else theirs.err
    assert AGO.sub("<T>", mine.err) == AGO.sub("<T>", err), (args, mine, theirs)
    return mine


def twin(t, *args, mine="s1", theirs="s2"):
    """A command that changes state: pydocker on container ``mine``, docker on its twin
    ``theirs``; the answers must match with the names swapped."""
    a = t.pydocker(*[x.replace("{c}", mine) for x in args])
    b = t.docker(*[x.replace("{c}", theirs) for x in args])
    assert a.code == b.code, (args, a, b)
    assert a.out == b.out.replace(theirs, mine), (args, a, b)
    ids = re.compile(r"\b[0-9a-f]{64}\b|\b[0-9a-f]{12}\b")
    assert ids.sub("<ID>", a.err) == ids.sub("<ID>", as_pydocker(b.err.replace(theirs, mine))), (args, a, b)
    return a


def container_flow(t, image):
    """run, ps, inspect, exec, logs, top, stop/start/restart, kill, pause, rename, wait, rm."""
    r = same(t, "run", "--rm", image, "echo", "hi")
    assert r.out == "hi\n"
    # the shell's status is the oracle (docker 28 against pydockerd sometimes reports 0 here:
    # its wait for condition=removed races the removal)
    r = t.pydocker("run", "--rm", image, "sh", "-c", "exit 3")
    assert (r.code, r.out, r.err) == (3, "", ""), r
    r = same(t, "run", "--rm", "-e", "A=1", "-w", "/tmp", "-u", "1:2", "--entrypoint", "sh",
             image, "-c", "echo $A $(pwd) $(id -u):$(id -g)")
    assert r.out == "1 /tmp 1:2\n"
    r = same(t, "run", "--rm", "-i", image, "cat", input="through stdin\n")
    assert r.out == "through stdin\n"
    mine = t.pydocker("run", "-d", "--name", "s1", "-l", "team=x", image, "sleep", "300")
    assert mine.code == 0 and re.fullmatch(r"[0-9a-f]{64}\n", mine.out), mine
    cid = mine.out.strip()
    r = same(t, "run", "-d", "--name", "s1", image, "true")
    assert r.code == 125 and r.err.startswith(
        'pydocker: Error response from daemon: Conflict. The container name "/s1" is already in'
        ' use by container "%s"' % cid)
    assert r.err.endswith("\n\nRun 'pydocker run --help' for more information\n")
    t.pydocker("create", "--name", "c1", image, "echo", "from-create")
    for args in (["ps"], ["ps", "-a"], ["ps", "-a", "--no-trunc"], ["ps", "-a", "-s"],
                 ["container", "ls", "-a", "--filter", "status=created"],
                 ["ps", "--filter", "label=team=x"], ["ps", "-l"], ["ps", "-n", "1"]):
        same(t, *args, table=True)
    for args in (["ps", "-q"], ["ps", "-aq"], ["ps", "-a", "--format", "{{.ID}} {{.Names}} "
                                                "{{.Command}} {{.Label \"team\"}}"],
                 ["ps", "--format", "{{.Names}}\t{{.Image}}|{{.State}}"],
                 ["ps", "--format", "table {{.Names}}\t{{.Image}}"],
                 ["ps", "-a", "--format", "{{json .Names}} {{upper .Names}} {{.Labels}}"]):
        same(t, *args)
    r = same(t, "ps", "--format", "json")
    assert '"Names":"s1"' in r.out
    r = same(t, "rm", "s1")
    assert r.code == 1 and "You cannot remove a running container %s" % cid in r.err
    same(t, "inspect", "-f", "{{.Config.Cmd}} {{.State.Running}} {{.Name}} "
         "{{json .Config.Labels}} {{.HostConfig.AutoRemove}}", "s1")
    same(t, "container", "inspect", "--format", "{{range .Config.Env}}{{.}};{{end}}", "s1")
    r = same(t, "inspect", "nosuch")
    assert r.code == 1
    assert same(t, "exec", "s1", "sh", "-c", "echo out; echo err >&2; exit 4").code == 4
    same(t, "exec", "-e", "X=2", "-w", "/etc", "-u", "5", "s1", "sh", "-c",
         "echo $X $(pwd) $(id -u)")
    same(t, "top", "s1", table="top")
    same(t, "port", "s1")
    assert t.docker("run", "-d", "--name", "s2", image, "sleep", "300").code == 0
    t.docker("create", "--name", "c3", image, "echo", "from-create")
    twin(t, "pause", "{c}")
    twin(t, "pause", "{c}")
    same(t, "ps", "--format", "{{.Names}} {{.State}}")
    twin(t, "unpause", "{c}")
    twin(t, "stop", "-t", "1", "{c}")
    same(t, "ps", "-a", table=True)
    same(t, "wait", "s1")
    twin(t, "start", "{c}")
    twin(t, "restart", "-t", "1", "{c}")
    twin(t, "kill", "-s", "KILL", "{c}")
    twin(t, "kill", "{c}")
    same(t, "wait", "s1")
    r = twin(t, "start", "-a", "{c}", mine="c1", theirs="c3")
    assert r.out == "from-create\n"
    same(t, "logs", "c1")
    same(t, "logs", "--tail", "1", "c1")
    assert t.pydocker("rename", "c1", "c2").code == 0
    same(t, "ps", "-a", "--format", "{{.Names}}")
    same(t, "rm", "nosuch1", "nosuch2")
    r = twin(t, "rm", "-f", "{c}")
    assert r.out == "s1\n"
    same(t, "rm", "s1")
    twin(t, "rm", "{c}", "nosuch", mine="c2", theirs="c3")
    same(t, "ps", "-a", table=True)


def image_flow(t, image):
    for args in (["images"], ["image", "ls"], ["images", "--no-trunc"], ["images", "-a"],
                 ["images", image]):
        same(t, *args, table=True)
    same(t, "images", "-q")
    same(t, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}")
    same(t, "images", "--filter", "reference=" + image, "--format", "{{.Repository}}")
    assert t.pydocker("tag", image, "retagged:v1").code == 0
    same(t, "images", "retagged", table="unordered")
    same(t, "image", "inspect", "-f", "{{.Os}}/{{.Architecture}} {{.Config.Cmd}} "
         "{{.RepoTags}}", "retagged:v1")
    same(t, "inspect", "--type", "image", "-f", "{{len .RootFS.Layers}}", image)
    r = t.pydocker("rmi", "retagged:v1")
    assert (r.code, r.out) == (0, "Untagged: retagged:v1\n"), r
    same(t, "rmi", "retagged:v1")
    same(t, "volume", "create", "v1")
    same(t, "volume", "ls", table=True)
    same(t, "volume", "ls", "-q")
    same(t, "volume", "inspect", "-f", "{{.Name}} {{.Driver}}", "v1")
    r = t.pydocker("run", "--rm", "-v", "v1:/data", image, "sh", "-c", "echo kept > /data/f")
    assert r.code == 0, r
    r = same(t, "run", "--rm", "-v", "v1:/data:ro", image, "cat", "/data/f")
    assert r.out == "kept\n"
    assert t.pydocker("volume", "rm", "v1").out == "v1\n"
    same(t, "volume", "rm", "v1")
    same(t, "volume", "ls", "-q")


def files_flow(t, image, tmp):
    """cp both ways (and tar streams), diff, export, commit, logs -f, exec -d."""
    import io
    import tarfile
    assert t.pydocker("run", "-d", "--name", "f1", image, "sleep", "300").code == 0
    assert t.pydocker("exec", "f1", "sh", "-c", "echo data > /tmp/x; rm /etc/group").code == 0
    local = tmp / "x"
    r = t.pydocker("cp", "f1:/tmp/x", str(local))
    assert r.code == 0 and local.read_text() == "data\n", r
    (tmp / "y").write_text("in\n")
    assert t.pydocker("cp", str(tmp / "y"), "f1:/tmp/y").code == 0
    assert t.pydocker("exec", "f1", "cat", "/tmp/y").out == "in\n"
    assert t.pydocker("cp", str(tmp / "y"), "f1:/tmp").code == 0
    assert t.pydocker("exec", "f1", "ls", "/tmp").out.split() == ["x", "y"]
    r, d = t.pydocker("diff", "f1"), t.docker("diff", "f1")   # dockerd's order is its map's
    assert sorted(r.out.splitlines()) == sorted(d.out.splitlines()), (r, d)
    assert "C /tmp" in r.out and "D /etc/group" in r.out and "A /tmp/x" in r.out, r
    import subprocess
    import sys
    p = subprocess.run([sys.executable, "-m", "pyrunc.cli", "cp", "f1:/tmp/x", "-"],
                       env=t.env, capture_output=True)
    with tarfile.open(fileobj=io.BytesIO(p.stdout)) as tar:
        assert tar.extractfile("x").read() == b"data\n"
    p = subprocess.run([sys.executable, "-m", "pyrunc.cli", "export", "f1"], env=t.env,
                       capture_output=True)
    with tarfile.open(fileobj=io.BytesIO(p.stdout)) as tar:
        names = set(tar.getnames())
    assert "tmp/x" in names and "bin/busybox" in names and "etc/group" not in names
    assert t.pydocker("exec", "-d", "f1", "sh", "-c", "echo later > /tmp/z").code == 0
    r = t.pydocker("commit", "-m", "snap", "f1", "snap:1")
    assert r.code == 0 and r.out.startswith("sha256:"), r
    r = t.pydocker("run", "--rm", "snap:1", "cat", "/tmp/x", "/tmp/y")
    assert r.out == "data\nin\n", r
    t.pydocker("run", "-d", "--name", "f2", image, "sh", "-c", "echo a; sleep 1; echo b >&2")
    r = t.pydocker("logs", "-f", "f2")
    assert (r.code, r.out, r.err) == (0, "a\n", "b\n"), r
    r = t.pydocker("logs", "-t", "f2")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z a\n", r.out), r
    same(t, "logs", "--tail", "0", "f2")
    t.pydocker("rm", "-f", "f1", "f2")
    t.pydocker("rmi", "snap:1")
