"""``pydocker build``: the context it sends, proven against what the docker 28 CLI sends for the
same directory (a loopback catcher of the /build request stands in for the daemon), and whole
builds against Debian's dockerd (the reference server) and pydockerd, compared with docker's
output line by line (image and container IDs masked)."""
import io
import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import threading

import pytest

from support import unix_request

from .conftest import DOCKER28, Target

needs_docker28 = pytest.mark.skipif(not os.path.exists(DOCKER28),
                                    reason="docker 28 CLI (%s) is not installed" % DOCKER28)
HEX12 = re.compile(r"\b[0-9a-f]{12}\b")
FAKE_ID = "sha256:" + "ab" * 32


class Catcher:
    """A daemon that answers /_ping as API 1.41 and keeps each POST /build's query and body;
    its answer to /build is ``reply`` (JSON lines)."""

    def __init__(self, path):
        self.path = path
        self.requests = []
        self.reply = [{"stream": "Step 1/1 : FROM busybox\n"}, {"stream": " ---> 0123456789ab\n"},
                      {"aux": {"ID": FAKE_ID}},
                      {"stream": "Successfully built abababababab\n"}]
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(path)
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(10)
                try:
                    self._one(conn.makefile("rb"), conn)
                except (OSError, ValueError):
                    pass

    def _one(self, rfile, conn):
        line = rfile.readline().decode()
        method, target, _ = line.split(" ", 2)
        headers = {}
        while True:
            h = rfile.readline().decode().strip()
            if not h:
                break
            k, _, v = h.partition(":")
            headers[k.strip().lower()] = v.strip()
        if "/_ping" in target:
            conn.sendall(b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n"
                         b"Connection: close\r\nContent-Type: text/plain\r\n\r\nOK"
                         [:None if method == "GET" else -2])
            return
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int(rfile.readline().strip(), 16)
                if size == 0:
                    rfile.readline()
                    break
                body += rfile.read(size)
                rfile.readline()
        else:
            body = rfile.read(int(headers.get("content-length", "0")))
        self.requests.append((target, headers, body))
        data = b"".join(json.dumps(m).encode() + b"\r\n" for m in self.reply)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d"
                     b"\r\n\r\n" % len(data) + data)
        conn.shutdown(socket.SHUT_WR)       # the client reads all, then closes its side
        while rfile.read1(65536):
            pass

    def last(self):
        target, headers, body = self.requests[-1]
        from urllib.parse import parse_qs, urlsplit
        return parse_qs(urlsplit(target).query, keep_blank_values=True), headers, body

    def stop(self):
        self.stopped.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def catcher(tmp_path):
    c = Catcher(str(tmp_path / "catch.sock"))
    t = Target("unix://" + c.path, str(tmp_path / "client"))
    t.catcher = c
    t.env["DOCKER_BUILDKIT"] = "0"
    yield t
    c.stop()


def members(body):
    """name -> (type, mode, uid, gid, size, linkname, content) of a tar body."""
    out = {}
    # docker 28 ends the archive right after the data of a Dockerfile it appended (no padding,
    # no end blocks): completed here so that tarfile reads it
    body = body + b"\0" * (-len(body) % 512 + 1024)
    with tarfile.open(fileobj=io.BytesIO(body)) as t:
        for m in t:
            data = t.extractfile(m).read() if m.isreg() else b""
            out[m.name.rstrip("/")] = (m.type, m.mode & 0o7777, m.uid, m.gid, m.size,
                                       m.linkname, data)
    return out


def sent(target, *args, cwd=None, input=None, cli="pydocker"):
    run = target.pydocker if cli == "pydocker" else target.docker
    if cwd is not None:
        old = os.getcwd()
        os.chdir(cwd)
    try:
        r = run("build", *args, input=input)
    finally:
        if cwd is not None:
            os.chdir(old)
    assert r.code == 0, r
    return target.catcher.last()


def make_tree(root, files):
    for rel, content in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if isinstance(content, tuple):          # ("symlink", target)
            os.symlink(content[1], path)
        else:
            with open(path, "w") as f:
                f.write(content)


TREE = {
    "Dockerfile": "FROM busybox\nCOPY . /ctx\n",
    "a.txt": "a", "b.log": "b", "keep.log": "k",
    "dir/x.txt": "x", "dir/sub/y.txt": "y", "dir/keep/z.txt": "z",
    "node_modules/m/index.js": "m", "docs/readme.md": "r",
    "abs-link": ("symlink", "/etc/passwd"), "up-link": ("symlink", "../../outside"),
}
IGNORES = [
    "",
    "*.log\n!keep.log\n",
    "# comment\n/dir\n!dir/keep\n",
    "**/*.txt\n!dir/sub/*\n",
    "node_modules\ndocs/\nDockerfile\n.dockerignore\n",
    "*\n!a.txt\n",
    "./dir/sub\n",
]


@needs_docker28
@pytest.mark.parametrize("ignore", IGNORES, ids=["none", "logs", "dir-exception", "globstar",
                                               "build-files", "only-one", "dot-slash"])
def test_context_is_what_docker_sends(catcher, tmp_path, ignore):
    """The same names, types, modes, owners and contents as docker 28's archive."""
    ctx = tmp_path / "ctx"
    make_tree(str(ctx), TREE)
    if ignore:
        (ctx / ".dockerignore").write_text(ignore)
    q1, h1, body1 = sent(catcher, "-t", "x:1", str(ctx), cli="docker")
    q2, h2, body2 = sent(catcher, "-t", "x:1", str(ctx))
    m1, m2 = members(body1), members(body2)
    assert sorted(m2) == sorted(m1)
    for name in m1:
        assert m2[name] == m1[name], name
    for m in m2.values():
        assert (m[2], m[3]) == (0, 0)
    if "abs-link" in m1:          # a symlink goes as a symlink, never what it points to
        assert m2["abs-link"][0] == tarfile.SYMTYPE and m2["abs-link"][5] == "/etc/passwd"
    assert "Dockerfile" in m2 and (not ignore or ".dockerignore" in m2)
    assert len(body2) % 512 == 0 and body2.endswith(b"\0" * 1024)
    assert q2["dockerfile"] == q1["dockerfile"] == ["Dockerfile"]
    assert q2["t"] == q1["t"] == ["x:1"]
    assert q2["version"] == ["1"]
    assert h2["content-type"] == "application/x-tar"
    assert json.loads(__import__("base64").urlsafe_b64decode(h2["x-registry-config"])) == {}


@needs_docker28
def test_dockerfile_outside_context_and_on_stdin(catcher, tmp_path):
    ctx = tmp_path / "ctx"
    make_tree(str(ctx), {"a.txt": "a", ".dockerignore": "b\n"})
    outside = tmp_path / "other.Dockerfile"
    outside.write_text("FROM busybox\nRUN true\n")
    for args, stdin in ((["-f", str(outside)], None), (["-f", "-"], outside.read_text())):
        got = []
        for cli in ("docker", "pydocker"):
            q, _, body = sent(catcher, *args, str(ctx), input=stdin, cli=cli)
            m = members(body)
            name = q["dockerfile"][0]
            assert re.fullmatch(r"\.dockerfile\.[0-9a-f]{20}", name), name
            assert m[name][6] == outside.read_bytes()
            # the sent .dockerignore lists the random name, so COPY . never copies it
            assert m[".dockerignore"][6].split() == [b"b", name.encode()]
            got.append(sorted(k for k in m if k != name))
        assert got[0] == got[1]


@needs_docker28
def test_stdin_tar_and_dockerfile(catcher, tmp_path):
    df = "FROM busybox\nCMD [\"true\"]\n"
    q, _, body = sent(catcher, "-", input=df)
    m = members(body)
    assert list(m) == ["Dockerfile"] and m["Dockerfile"][6] == df.encode()
    q1, _, body1 = sent(catcher, "-", input=df, cli="docker")
    assert list(members(body1)) == ["Dockerfile"] and q1["dockerfile"] == q["dockerfile"]
    # a tar on stdin goes as it is, -f naming the Dockerfile inside it
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        info = tarfile.TarInfo("sub/My.Dockerfile")
        info.size = len(df)
        t.addfile(info, io.BytesIO(df.encode()))
    data = buf.getvalue()
    r = subprocess.run([sys.executable, "-m", "pyrunc.cli", "build", "-f",
                        "sub/My.Dockerfile", "-"], input=data, env=catcher.env,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r
    q, _, body = catcher.catcher.last()
    assert body == data and q["dockerfile"] == ["sub/My.Dockerfile"]
    r = catcher.pydocker("build", "-f", "-", "-", input=df)
    assert r.code == 1 and r.err.strip() == ("invalid argument: can't use stdin for both build "
                                             "context and dockerfile"), r


@needs_docker28
def test_flags_become_docker_query(catcher, tmp_path, monkeypatch):
    ctx = tmp_path / "ctx"
    make_tree(str(ctx), {"Dockerfile": "FROM busybox\n"})
    args = ["-t", "a/b:1", "-t", "c", "--build-arg", "A=1", "--build-arg", "FROM_ENV",
            "--build-arg", "UNSET_ONE", "--label", "l1=v", "--label", "l2", "--no-cache",
            "--pull", "--target", "stage", "--network", "host", "--add-host", "h:10.0.0.1",
            "--platform", "linux/amd64", "-m", "64m", "--force-rm", str(ctx)]
    catcher.env["FROM_ENV"] = "from-env"
    q1, _, _ = sent(catcher, *args, cli="docker")
    q2, _, _ = sent(catcher, *args)
    for key in ("t", "dockerfile", "nocache", "pull", "target", "networkmode", "extrahosts",
                "platform", "memory", "forcerm", "version"):
        assert q2.get(key) == q1.get(key), key
    for key in ("buildargs", "labels"):
        assert json.loads(q2[key][0]) == json.loads(q1[key][0]), key
    assert json.loads(q2["buildargs"][0]) == {"A": "1", "FROM_ENV": "from-env",
                                              "UNSET_ONE": None}


@needs_docker28
def test_compress_and_registry_config(catcher, tmp_path):
    """--compress sends the same archive gzipped; every credential of the client's config goes
    in X-Registry-Config, as docker 28 sends it."""
    import base64
    import gzip
    ctx = tmp_path / "ctx"
    make_tree(str(ctx), {"Dockerfile": "FROM busybox\n", "a.txt": "a"})
    os.makedirs(catcher.config_dir, exist_ok=True)
    auth = base64.b64encode(b"alice:wonderland").decode()
    with open(os.path.join(catcher.config_dir, "config.json"), "w") as f:
        json.dump({"auths": {"registry.example:5000": {"auth": auth},
                             "https://index.docker.io/v1/": {"auth": auth}}}, f)
    got = {}
    for cli in ("docker", "pydocker"):
        _, h, body = sent(catcher, "--compress", str(ctx), cli=cli)
        assert body[:2] == b"\x1f\x8b"
        got[cli] = (members(gzip.decompress(body)),
                    json.loads(base64.urlsafe_b64decode(h["x-registry-config"])))
    assert got["pydocker"][0] == got["docker"][0]
    assert got["pydocker"][1] == got["docker"][1]
    assert got["pydocker"][1]["registry.example:5000"]["password"] == "wonderland"


def test_output_quiet_iidfile_and_errors(catcher, tmp_path):
    ctx = tmp_path / "ctx"
    make_tree(str(ctx), {"Dockerfile": "FROM busybox\n"})
    r = subprocess.run([sys.executable, "-m", "pyrunc.cli", "build", str(ctx)],
                       env=catcher.env, capture_output=True, timeout=60)
    assert r.returncode == 0, r
    # docker's lines, as it writes them to a pipe (the upload's line ends in "\r\r\n")
    assert r.stdout.decode().split("\n") == [
        "Sending build context to Docker daemon  2.048kB\r\r", "Step 1/1 : FROM busybox",
        " ---> 0123456789ab", "Successfully built abababababab", ""]
    iid = tmp_path / "iid"
    iid.write_text("stale")
    r = catcher.pydocker("build", "-q", "--iidfile", str(iid), str(ctx))
    assert r.code == 0 and r.out == FAKE_ID + "\n" and r.err == "", r
    assert iid.read_text() == FAKE_ID
    catcher.catcher.reply = [
        {"stream": "Step 1/2 : RUN exit 3\n"},
        {"errorDetail": {"code": 3, "message": "The command '/bin/sh -c exit 3' returned a "
                         "non-zero code: 3"},
         "error": "The command '/bin/sh -c exit 3' returned a non-zero code: 3"}]
    r = catcher.pydocker("build", "--iidfile", str(iid), str(ctx))
    assert r.code == 3, r
    assert r.err == "The command '/bin/sh -c exit 3' returned a non-zero code: 3\n"
    assert not iid.exists()       # removed before the build, as docker does
    catcher.catcher.reply = [{"errorDetail": {"message": "no code"}, "error": "no code"}]
    r = catcher.pydocker("build", "-q", str(ctx))
    assert r.code == 1 and r.out == "", r
    # with -q, the held-back upload line comes first on a failure, as docker's
    assert r.err.startswith("Sending build context to Docker daemon  2.048kB\n")
    assert r.err.endswith("\nno code\n"), r


@needs_docker28
def test_bad_context_arguments(catcher, tmp_path):
    ctx = tmp_path / "ctx"
    make_tree(str(ctx), {"a.txt": "a"})
    r = catcher.pydocker("build", str(tmp_path / "missing"))
    assert r.code == 1 and r.err.startswith("unable to prepare context: path ") and \
        "not found" in r.err, r
    r = catcher.pydocker("build", str(ctx / "a.txt"))
    assert r.code == 1 and "context must be a directory" in r.err, r
    r = catcher.pydocker("build", str(ctx))
    assert r.code == 1 and "Dockerfile" in r.err and "no such file or directory" in r.err, r
    r = catcher.pydocker("build", "https://example.invalid/ctx.tar")
    assert r.code == 1 and "remote build contexts" in r.err, r
    r = catcher.pydocker("build")
    assert r.code == 1 and "requires 1 argument" in r.err, r
    for tag in ("Bad//Name", "x@sha256:aaaa"):
        r = catcher.pydocker("build", "-t", tag, str(ctx))
        d = catcher.docker("build", "-t", tag, str(ctx))
        assert r.code == d.code == 125, (r, d)
        assert r.err.splitlines()[0] == d.err.splitlines()[-5], (r, d)
    assert catcher.catcher.requests == []      # nothing was sent for any of them


@needs_docker28
def test_help_is_docker28s(catcher):
    r = catcher.pydocker("build", "--help")
    d = catcher.docker("build", "--help")
    assert r.code == 0 and d.code == 0
    want = d.out.replace("docker", "pydocker").replace(", pydocker builder build", "")
    assert r.out == want
    r = catcher.pydocker("image", "build", "--help")
    assert r.out.startswith("Usage:  pydocker image build [OPTIONS] PATH | URL | -\n")


def _masked(text):
    return HEX12.sub("<id>", text)


def build_both(t, ctx, *args, input=None):
    """The same build by docker 28 and pydocker on one daemon: both results."""
    env = dict(t.env, DOCKER_BUILDKIT="0")
    d = subprocess.run([DOCKER28, "build", *args, str(ctx)], env=env, input=input,
                       capture_output=True, text=True, timeout=300)
    saved, t.env = t.env, env
    try:
        p = t.pydocker("build", *args, str(ctx), input=input, timeout=300)
    finally:
        t.env = saved
    return d, p


def same_build_output(t, tmp_path):
    """Builds on ``t``'s daemon by both clients give the same lines (IDs masked) and exit
    codes; the built image runs."""
    ctx = tmp_path / "bctx"
    make_tree(str(ctx), {
        "Dockerfile": "FROM busybox\nARG WHO=nobody\nENV GREETING=hello\nWORKDIR /app\n"
                      "COPY hello.txt .\nRUN cat hello.txt && echo \"$GREETING $WHO\"\n"
                      "CMD [\"cat\", \"/app/hello.txt\"]\n",
        "hello.txt": "hi from the context\n", "secret.key": "nope",
        ".dockerignore": "*.key\n"})
    d, p = build_both(t, ctx, "--no-cache", "-t", "b3test:one", "--build-arg", "WHO=you")
    assert d.returncode == 0, d
    assert p.code == 0, p
    dl, pl = _masked(d.stdout).splitlines(), _masked(p.out).splitlines()
    assert pl == dl
    assert "hi from the context" in pl and "hello you" in pl
    assert pl[-1] == "Successfully tagged b3test:one"
    r = t.pydocker("run", "--rm", "b3test:one")
    assert r.code == 0 and r.out == "hi from the context\n", r
    r = t.pydocker("run", "--rm", "b3test:one", "ls", "/app")
    assert r.out.split() == ["hello.txt"], r       # secret.key was not sent
    # a warm rebuild: every step from the cache, in both
    d, p = build_both(t, ctx, "-t", "b3test:two", "--build-arg", "WHO=you")
    assert p.code == 0 and d.returncode == 0, (p, d)
    assert _masked(p.out).splitlines() == _masked(d.stdout).splitlines()
    assert p.out.count(" ---> Using cache") == 6, p.out
    # -q and --iidfile: the image ID alone
    iid = tmp_path / "iid"
    p = t.pydocker("build", "-q", "--iidfile", str(iid), str(ctx))
    assert p.code == 0 and re.fullmatch(r"sha256:[0-9a-f]{64}\n", p.out), p
    assert iid.read_text() == p.out.strip()
    # a Dockerfile outside the context (docker 28 sends it inside the archive under a random
    # name, its archive then ending without padding or end blocks)
    outside = tmp_path / "outside.Dockerfile"
    outside.write_text("FROM busybox\nCOPY hello.txt /\nCMD [\"cat\", \"/hello.txt\"]\n")
    p = t.pydocker("build", "--no-cache", "-f", str(outside), "-t", "b3test:outside", str(ctx))
    assert p.code == 0, p
    assert re.search(r"^Step 1/3 : FROM busybox$", p.out, re.M), p
    r = t.pydocker("run", "--rm", "b3test:outside")
    assert r.out == "hi from the context\n", r
    # a failing RUN: the error line on stderr, its exit code
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo failing && exit 3\n")
    d, p = build_both(t, ctx, "-t", "b3test:bad")
    assert d.returncode == 3 and p.code == 3, (d, p)
    assert p.err.splitlines()[-1] == d.stderr.splitlines()[-1] == \
        "The command '/bin/sh -c echo failing && exit 3' returned a non-zero code: 3"
    assert _masked(p.out).splitlines() == _masked(d.stdout).splitlines()
    # -q: nothing but the ID on success; on failure everything held back goes to stderr
    d, p = build_both(t, ctx, "-q")
    assert d.returncode == p.code == 3, (d, p)
    assert p.out == d.stdout == ""
    docker_err = d.stderr.split("environment-variable.\n\n", 1)[-1]
    assert _masked(p.err) == _masked(docker_err)
    # an unknown instruction, a missing base image
    (ctx / "Dockerfile").write_text("FROM busybox\nFOO bar\n")
    d, p = build_both(t, ctx)
    assert p.code == d.returncode != 0
    assert "unknown instruction: FOO" in p.err and "line 2" in p.err, p
    # a Dockerfile alone on stdin
    d, p = build_both(t, "-", "--no-cache", "-t", "b3test:stdin", input="FROM busybox\nCMD [\"true\"]\n")
    assert d.returncode == 0 and p.code == 0, (d, p)
    assert _masked(p.out).splitlines()[1:] == _masked(d.stdout).splitlines()[1:]


@needs_docker28
def test_against_debian_dockerd(debian_dockerd, tmp_path):
    same_build_output(debian_dockerd, tmp_path)


@needs_docker28
def test_against_pydockerd(pyd, tmp_path):
    same_build_output(pyd, tmp_path)


@needs_docker28
def test_pydockerd_prints_what_dockerd_prints(pyd, debian_dockerd, tmp_path):
    """The same build by pydocker on pydockerd and on Debian's dockerd: the same lines (IDs
    masked), cold and from the cache, and the same image config where the two builders must
    agree. The classic builder commits each metadata step (ARG, ENV, WORKDIR, EXPOSE, LABEL,
    ...) through a container it creates and removes, and says so as for RUN; COPY has none."""
    ctx = tmp_path / "same"
    make_tree(str(ctx), {
        "Dockerfile": "FROM busybox\nARG V=1\nENV APP_HOME=/app\nWORKDIR /app\nCOPY . /app/\n"
                      "RUN echo built > built.txt\nEXPOSE 8080\nLABEL team=b3\nVOLUME /data\n"
                      "STOPSIGNAL SIGINT\nSHELL [\"/bin/sh\", \"-c\"]\nONBUILD RUN echo ob\n"
                      "MAINTAINER b3\nUSER nobody\nHEALTHCHECK NONE\nENTRYPOINT [\"cat\"]\n"
                      "CMD [\"/app/built.txt\"]\n",
        "a.txt": "a\n", "sub/b.txt": "b\n"})
    outs, warm, configs = [], [], []
    for t in (pyd, debian_dockerd):
        r = t.pydocker("build", "--no-cache", "-t", "same:1", str(ctx))
        assert r.code == 0, r
        outs.append(_masked(r.out).splitlines())
        r = t.pydocker("build", "-t", "same:2", str(ctx))
        assert r.code == 0, r
        warm.append(_masked(r.out).splitlines())
        doc = json.loads(t.pydocker("image", "inspect", "same:1").out)[0]["Config"]
        configs.append({k: doc.get(k) for k in ("Cmd", "Env", "WorkingDir", "ExposedPorts",
                                                 "Labels", "Entrypoint", "User", "Volumes",
                                                 "StopSignal", "Shell", "OnBuild")})
        r = t.pydocker("run", "--rm", "same:1")
        assert r.code == 0 and r.out == "built\n", r
    assert outs[0] == outs[1]
    assert outs[1].count(" ---> Running in <id>") == 15
    assert warm[0] == warm[1]
    assert warm[1].count(" ---> Using cache") == 16
    assert configs[0] == configs[1]


def _get_json(t, path):
    """The JSON answer of GET ``path`` on ``t``'s daemon (a unix socket)."""
    return json.loads(unix_request(t.host.removeprefix("unix://"), "GET", path)[2])


def _df_rows(text):
    """``docker system df`` (-v)'s lines split into columns, IDs masked."""
    return [re.split(r"\s{2,}", line.strip()) for line in _masked(text).splitlines()]


@pytest.fixture
def bare_dockerd(tmp_path_factory):
    """Debian's dockerd with the built-in busybox alone, as ``pyd`` has it (in a directory of
    a short name: containerd's sockets go under it)."""
    from dockerd_peer import DOCKERD, Dockerd
    if not os.path.exists(DOCKERD):
        pytest.skip("Debian's dockerd (%s, package docker.io) is not installed" % DOCKERD)
    work = tmp_path_factory.mktemp("dd")
    with Dockerd(str(work)) as d:
        d.load_builtin("busybox")
        yield Target(d.host, str(work / "client"))


@needs_docker28
def test_system_df_counts_images_as_dockerd_after_a_build(pyd, bare_dockerd, tmp_path):
    """After a classic build of several steps, /system/df lists what ``docker images`` lists:
    the intermediate images the steps made (unnamed parents) are left out, and LayersSize
    counts each layer once. IDs are masked and the built image's CREATED left out (the two
    builds are made at different times, their images' created times differ); sizes are left
    out where the daemons measure the busybox layer each their own way (dockerd from its layer
    store, pydockerd from its unpacked snapshot), the built image's unique five bytes kept."""
    ctx = tmp_path / "df"
    make_tree(str(ctx), {
        "Dockerfile": "FROM busybox\nENV A=b\nLABEL x=y\nWORKDIR /app\nCOPY a.txt .\n"
                      "RUN echo hi > f\nEXPOSE 80\nCMD [\"sh\"]\n",
        "a.txt": "a\n"})
    docs, short, verbose = [], [], []
    for t in (pyd, bare_dockerd):
        r = t.pydocker("build", "--no-cache", "-t", "dfbuild:1", str(ctx))
        assert r.code == 0, r
        r = t.docker("system", "df")
        assert r.code == 0, r
        short.append(_df_rows(r.out))
        r = t.docker("system", "df", "-v")
        assert r.code == 0, r
        verbose.append(_df_rows(r.out.split("\nContainers space usage:")[0]))
        docs.append(_get_json(t, "/system/df"))
    mine, theirs = docs
    assert sorted(i["RepoTags"] for i in mine["Images"]) == \
        sorted(i["RepoTags"] for i in theirs["Images"]) == [["busybox:latest"], ["dfbuild:1"]]
    # the built image's own layers (the COPY's two bytes, the RUN's three) are its unique size
    for doc in docs:
        built = [i for i in doc["Images"] if i["RepoTags"] == ["dfbuild:1"]][0]
        assert built["Size"] - built["SharedSize"] == 5, doc
        assert doc["LayersSize"] == built["Size"], doc
    images = [[row[:3] for row in rows if row[0] == "Images"] for rows in short]
    assert images[0] == images[1] == [["Images", "2", "0"]]
    reclaimable = [[row[4].split()[-1] for row in rows if row[0] == "Images"] for rows in short]
    assert reclaimable[0] == reclaimable[1] == ["(100%)"]
    verbose = [[row[:3] + row[6:] for row in rows] for rows in verbose]
    assert verbose[0] == verbose[1]


@needs_docker28
@pytest.mark.parametrize("store", [None, "pyt-store"])
def test_registry_config_carries_helper_credentials(catcher, tmp_path, store):
    """X-Registry-Config holds what docker 28 sends: the credsStore's every registry (its
    ``list``) or else config.json's auths, then each credHelpers registry from its own helper,
    each secret under its own registry only."""
    import base64
    from .test_credentials import Helper
    bindir = tmp_path / "bin"
    bindir.mkdir()
    per, whole = Helper(bindir, "pyt-per"), Helper(bindir, "pyt-store")
    per.put("helped.example:5000", "hanna", "helper-secret")
    per.put("other.example:5000", "otto", "other-secret")      # the helper's, not asked for
    whole.put("stored.example:5000", "sam", "store-secret")
    whole.put("token.example", "<token>", "an-identity-token")
    catcher.env["PATH"] = str(bindir) + os.pathsep + catcher.env.get("PATH", "")
    ctx = tmp_path / "ctx"
    make_tree(str(ctx), {"Dockerfile": "FROM busybox\n"})
    conf = {"auths": {"plain.example": {"auth": base64.b64encode(b"pat:plain-secret").decode()},
                      "helped.example:5000": {}, "empty.example": {}},
            "credHelpers": {"helped.example:5000": "pyt-per", "missing.example": "pyt-per"}}
    if store:
        conf["credsStore"] = store
    got = {}
    for cli in ("docker", "pydocker"):
        with open(os.path.join(catcher.config_dir, "config.json"), "w") as f:
            json.dump(conf, f)
        _, h, _ = sent(catcher, str(ctx), cli=cli)
        got[cli] = json.loads(base64.urlsafe_b64decode(h["x-registry-config"]))
    assert got["pydocker"] == got["docker"]
    doc = got["pydocker"]
    assert doc["helped.example:5000"] == {"username": "hanna", "password": "helper-secret",
                                          "serveraddress": "helped.example:5000"}
    assert "other.example:5000" not in doc
    assert "other-secret" not in json.dumps(doc)
    if store:
        assert doc["stored.example:5000"]["password"] == "store-secret"
        assert doc["token.example"] == {"identitytoken": "an-identity-token",
                                        "serveraddress": "token.example"}
        assert "plain-secret" not in json.dumps(doc)
    else:
        assert doc["plain.example"]["password"] == "plain-secret"
        assert "store-secret" not in json.dumps(doc)
    # a credsStore that cannot list: docker 28 sends no credential at all, and builds
    conf["credsStore"] = "pyt-absent"
    with open(os.path.join(catcher.config_dir, "config.json"), "w") as f:
        json.dump(conf, f)
    for cli in ("docker", "pydocker"):
        _, h, _ = sent(catcher, str(ctx), cli=cli)
        assert json.loads(base64.urlsafe_b64decode(h["x-registry-config"])) == {}
