"""POST /build through pydockerd, driven by the docker CLIs (DOCKER_BUILDKIT=0, the classic
builder's client) and the docker SDK; hostile queries and contexts answered with one line and
nothing left behind (no container, no image, no file outside the daemon's scratch space);
/build/prune and /build/cancel."""
import base64
import gzip
import io
import json
import os
import re
import socket
import tarfile
import threading
import time
import urllib.parse

import pytest

from .conftest import DOCKER_CLIS

DOCKERFILE = ("FROM busybox\nARG WHO=nobody\nENV GREETING=hello\nWORKDIR /app\n"
              "COPY hello.txt .\nRUN cat hello.txt && echo \"$GREETING $WHO\"\n"
              "CMD [\"cat\", \"/app/hello.txt\"]\n")


def tar_of(files, mode="w"):
    """A tar archive of {name: bytes | TarInfo-modifier tuple}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            if isinstance(content, tuple):          # ("symlink", target) / ("dir",)
                if content[0] == "symlink":
                    info.type, info.linkname = tarfile.SYMTYPE, content[1]
                else:
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                t.addfile(info)
                continue
            info.size = len(content)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def build(daemon, body, query="", headers=None, timeout=120):
    """(status, the JSON messages or the error body) of one POST /build."""
    h = {"Content-Type": "application/x-tar"}
    h.update(headers or {})
    status, _, data = daemon.request("POST", "/v1.41/build" + ("?" + query if query else ""),
                                     body=body, headers=h, timeout=timeout)
    if status != 200:
        return status, json.loads(data)
    return status, [json.loads(line) for line in data.splitlines() if line.strip()]


def stream_text(messages):
    return "".join(m.get("stream", "") for m in messages)


def error_of(messages):
    return next((m for m in messages if "error" in m), None)


def leftovers(daemon):
    """What a failed build must not leave: containers, and images beyond busybox."""
    cs = json.loads(daemon.request("GET", "/v1.41/containers/json?all=1")[2])
    images = json.loads(daemon.request("GET", "/v1.41/images/json?all=1")[2])
    return [c["Id"][:12] for c in cs], sorted(i["Id"] for i in images)


def scratch_entries(daemon):
    out = []
    for dirpath, dirnames, filenames in os.walk(daemon.root):
        if os.path.basename(dirpath) == "tmp" and "builder" in dirpath:
            out += dirnames + filenames
    return out


@pytest.fixture
def bdaemon(dockerd):
    """pydockerd with busybox pulled from the loopback mirror."""
    dockerd.docker("pull", "busybox")
    return dockerd


HOSTILE_QUERIES = [
    ("version=2", "buildkit not supported by daemon"),
    ("version=3", 'invalid version "3"'),
    ("remote=http%3A%2F%2F127.0.0.1%3A1%2Fx", "remote build contexts are not supported"),
    ("buildargs=notjson", "error reading build args: "),
    ("buildargs=%5B%22a%22%5D", "error reading build args: must be a JSON object"),
    ("buildargs=%7B%22A%22%3A1%7D", "error reading build args: the value of A must be a "
                                    "string"),
    ("labels=%7B%22a%22%3Anull%7D", "error reading labels: the value of a must be a string"),
    ("labels=%7B%22%22%3A%22x%22%7D", "error reading labels: empty name"),
    ("memory=-5", "invalid memory: -5"),
    ("memory=abc", "invalid value for memory: 'abc' is not an integer"),
    ("memswap=-2", "invalid memswap: -2"),
    ("cpushares=-1", "invalid cpushares: -1"),
    ("cpuquota=-2", "invalid cpuquota: -2"),
    ("t=Bad%2F%2FName", "invalid reference format"),
    ("t=busybox%40sha256%3A" + "a" * 64, "build tag cannot contain a digest"),
    ("extrahosts=nohost", "invalid IP address in add-host"),
    ("extrahosts=h%3A999.1.1.1", "invalid IP address in add-host: '999.1.1.1'"),
    ("platform=linux%2Fno%2Fsuch%2Fthing", "platform"),
    ("squash=1", "squash is only supported with experimental mode"),
    ("isolation=hyperv", "the isolation build option is not supported"),
    ("ulimits=%5B%7B%22Name%22%3A%22nofile%22%7D%5D", "the ulimits build option is not "
                                                      "supported"),
    ("dockerfile=a%00b", "invalid dockerfile name"),
    ("networkmode=a%0Ab", "invalid networkmode"),
    ("t=" + "&t=".join("n%d" % i for i in range(101)), "too many tags: 101"),
]


@pytest.mark.parametrize("query,message", HOSTILE_QUERIES,
                         ids=[q.split("=")[0] + str(i) for i, (q, m) in
                              enumerate(HOSTILE_QUERIES)])
def test_hostile_query_is_one_400_line(bdaemon, query, message):
    before = leftovers(bdaemon)
    status, doc = build(bdaemon, tar_of({"Dockerfile": b"FROM busybox\nRUN touch /x\n"}),
                        query)
    assert status == 400, (status, doc)
    assert message in doc["message"], doc
    assert "\n" not in doc["message"]
    assert leftovers(bdaemon) == before
    assert scratch_entries(bdaemon) == []


def test_bad_registry_config_header(bdaemon):
    for value in ("!!!notbase64", base64.urlsafe_b64encode(b"[1]").decode(),
                  base64.urlsafe_b64encode(b'{"r.example": {"password": 5}}').decode(),
                  base64.urlsafe_b64encode(b'{"r.example": {"auth": "%%%"}}').decode()):
        status, doc = build(bdaemon, tar_of({"Dockerfile": b"FROM busybox\n"}),
                            headers={"X-Registry-Config": value})
        assert status == 400 and "invalid X-Registry-Config header" in doc["message"], doc


def test_huge_query_refused(bdaemon):
    before = leftovers(bdaemon)
    query = "t=" + "&t=".join("name%d" % i for i in range(20000))
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(bdaemon.sock)
    try:      # the server may answer and close before the whole request line is read
        s.sendall(("POST /v1.41/build?%s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
                   % query).encode())
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = s.recv(4096)
    s.close()
    assert answer.split(b" ")[1] in (b"400", b"414"), answer
    assert leftovers(bdaemon) == before


def test_docker_cli_builds(bdaemon, cli, tmp_path):
    """docker build (classic) against pydockerd: docker's lines, the cache on a rebuild, the
    image runs; a failing RUN exits with its code."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "hello.txt").write_text("hi there\n")
    env = {"DOCKER_BUILDKIT": "0"}
    os.environ.update(env)
    try:
        r = bdaemon.docker("build", "-t", "b3/one:v1", "-t", "b3/two", "--build-arg",
                           "WHO=you", str(ctx), cli=cli)
        lines = r.stdout.splitlines()
        assert lines[0].startswith("Sending build context to Docker daemon  ")
        steps = [line for line in lines if line.startswith("Step ")]
        assert steps == ["Step %d/7 : %s" % (i + 1, s) for i, s in
                         enumerate(DOCKERFILE.splitlines())]
        assert "hi there" in lines and "hello you" in lines
        assert re.fullmatch(r"Successfully built [0-9a-f]{12}", lines[-3])
        assert lines[-2:] == ["Successfully tagged b3/one:v1", "Successfully tagged b3/two:latest"]
        assert bdaemon.docker("run", "--rm", "b3/one:v1", cli=cli).stdout == "hi there\n"
        again = bdaemon.docker("build", "--build-arg", "WHO=you", str(ctx), cli=cli).stdout
        assert again.count(" ---> Using cache") == 6, again
        assert again.splitlines()[-1] == lines[-3]
        (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo failing && exit 3\n")
        r = bdaemon.docker("build", str(ctx), cli=cli, check=False)
        assert r.returncode == 3, r
        assert r.stderr.splitlines()[-1] == ("The command '/bin/sh -c echo failing && exit 3' "
                                             "returned a non-zero code: 3")
        assert "failing" in r.stdout.splitlines()
        # as docker: --rm removes intermediate containers after a successful build only; the
        # failed step's container stays (exited 3), --force-rm removes it too
        ran = re.findall(r"^ ---> Running in ([0-9a-f]{12})$", r.stdout, re.M)
        cs = bdaemon.docker("ps", "-aq", cli=cli).stdout.split()
        assert cs == ran[-1:]
        state = json.loads(bdaemon.docker("inspect", cs[0]).stdout)[0]["State"]
        assert (state["Status"], state["ExitCode"]) == ("exited", 3)
        bdaemon.docker("rm", cs[0])
        r = bdaemon.docker("build", "--force-rm", str(ctx), cli=cli, check=False)
        assert r.returncode == 3
        assert bdaemon.docker("ps", "-aq", cli=cli).stdout.split() == []
    finally:
        os.environ.pop("DOCKER_BUILDKIT", None)


def test_docker28_dockerfile_outside_the_context(bdaemon, tmp_path):
    """docker 28 sends a Dockerfile from outside the context inside the archive under a random
    name, and ends that archive right after the file's data (no padding, no end blocks), which
    Debian's dockerd accepts."""
    if not os.path.exists(DOCKER_CLIS["docker28"]):
        pytest.skip("docker 28 CLI (%s) is not installed" % DOCKER_CLIS["docker28"])
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "hello.txt").write_text("outside works\n")
    outside = tmp_path / "outside.Dockerfile"
    outside.write_text("FROM busybox\nCOPY hello.txt /\nCMD [\"cat\", \"/hello.txt\"]\n")
    os.environ["DOCKER_BUILDKIT"] = "0"
    try:
        bdaemon.docker("build", "-f", str(outside), "-t", "outside:1", str(ctx))
    finally:
        os.environ.pop("DOCKER_BUILDKIT", None)
    assert bdaemon.docker("run", "--rm", "outside:1").stdout == "outside works\n"


def test_docker_build_without_buildkit_variable(bdaemon, cli, tmp_path):
    """Plain ``docker build``: without buildx both CLIs fall back to the classic builder's
    /build, as they do against dockerd."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nLABEL plain=1\n")
    assert "DOCKER_BUILDKIT" not in os.environ
    r = bdaemon.docker("build", "-t", "plain:1", str(ctx), cli=cli)
    assert r.stdout.splitlines()[-1] == "Successfully tagged plain:1"
    labels = json.loads(bdaemon.docker("inspect", "plain:1").stdout)[0]["Config"]["Labels"]
    assert labels == {"plain": "1"}


def test_sdk_build(bdaemon, tmp_path):
    import docker
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "hello.txt").write_text("hi sdk\n")
    client = bdaemon.client()
    image, logs = client.images.build(path=str(ctx), tag="sdk/built:1",
                                      buildargs={"WHO": "sdk"}, rm=True)
    logs = list(logs)
    assert image.tags == ["sdk/built:1"]
    aux = [m["aux"]["ID"] for m in logs if "aux" in m]
    assert aux == [image.id]
    text = stream_text(logs)
    assert "Step 1/7 : FROM busybox" in text and "hello sdk" in text
    assert image.attrs["Config"]["Cmd"] == ["cat", "/app/hello.txt"]
    assert image.attrs["Config"]["WorkingDir"] == "/app"
    assert "GREETING=hello" in image.attrs["Config"]["Env"]
    out = client.containers.run("sdk/built:1", remove=True)
    assert out == b"hi sdk\n"
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN exit 7\n")
    with pytest.raises(docker.errors.BuildError) as e:
        client.images.build(path=str(ctx))
    assert e.value.msg == "The command '/bin/sh -c exit 7' returned a non-zero code: 7"
    # a bare Dockerfile as the body (docker accepts one)
    image, _ = client.images.build(fileobj=io.BytesIO(b"FROM busybox\nLABEL a=b\n"))
    assert image.labels == {"a": "b"}
    client.close()


def test_from_pulls_through_the_mirror(dockerd):
    """FROM an image the daemon does not have: pulled with the daemon's registry mirror."""
    status, msgs = build(dockerd, tar_of({"Dockerfile": b"FROM hello-world\nLABEL x=y\n"}),
                         "t=hw%3Abuilt")
    assert status == 200 and error_of(msgs) is None, msgs
    statuses = [m.get("status", "") for m in msgs]
    assert any(s.startswith("Status: Downloaded newer image for hello-world") for s in statuses)
    assert "Successfully tagged hw:built\n" in stream_text(msgs)
    status, msgs = build(dockerd, tar_of({"Dockerfile": b"FROM nosuch/image:1\n"}))
    err = error_of(msgs) if status == 200 else msgs
    assert "nosuch/image" in (err.get("error") or err.get("message")), msgs


HOSTILE_CONTEXTS = {
    "dotdot": {"Dockerfile": b"FROM busybox\nCOPY . /ctx\n", "../../../../b3-escape": b"x"},
    "absolute": {"Dockerfile": b"FROM busybox\nCOPY . /ctx\n", "/b3-escape-abs": b"x"},
    "through-symlink": {"Dockerfile": b"FROM busybox\nCOPY . /ctx\n",
                        "link": ("symlink", "/tmp"), "link/b3-escape-link": b"x"},
    "copy-abs-symlink-dir": {"Dockerfile": b"FROM busybox\nCOPY etc/passwd /stolen\n",
                             "etc": ("symlink", "/etc")},
    "copy-dotdot": {"Dockerfile": b"FROM busybox\nCOPY ../../../../etc/shadow /stolen\n"},
    "dockerfile-outside": {"Dockerfile": b"FROM busybox\n"},
}


@pytest.mark.parametrize("case", sorted(HOSTILE_CONTEXTS))
def test_hostile_context(bdaemon, case):
    """Entries that try to leave the context, and COPY sources that try to reach the host:
    refused or resolved inside the context, the host untouched, nothing left behind."""
    before = leftovers(bdaemon)
    query = "t=hostile%3A1"
    if case == "dockerfile-outside":
        query += "&dockerfile=..%2F..%2F..%2F..%2Fetc%2Fpasswd"
    status, msgs = build(bdaemon, tar_of(HOSTILE_CONTEXTS[case]), query)
    for path in ("/b3-escape", "/b3-escape-abs", "/tmp/b3-escape-link"):
        assert not os.path.exists(path), path
    if case == "dockerfile-outside":
        err = error_of(msgs) if status == 200 else msgs
        assert err is not None, msgs
        text = err.get("error") or err.get("message")
        assert "Cannot locate specified Dockerfile" in text or "root:" not in text, text
        assert "root:x:0:0" not in json.dumps(msgs)
    elif case.startswith("copy-"):
        assert status == 200 and error_of(msgs) is not None, msgs
        assert leftovers(bdaemon) == before
    else:
        # refused, or built with the entries kept inside the context
        if status == 200 and error_of(msgs) is None:
            out = bdaemon.docker("run", "--rm", "hostile:1", "find", "/ctx").stdout.split()
            assert all(p.startswith("/ctx") for p in out)
            bdaemon.docker("rmi", "hostile:1")
        else:
            assert leftovers(bdaemon) == before
    assert bdaemon.docker("ps", "-aq").stdout.split() == []
    assert scratch_entries(bdaemon) == []


def test_truncated_contexts_are_refused(bdaemon):
    before = leftovers(bdaemon)
    # a header claiming 2 GB with a few bytes behind it
    df = b"FROM busybox\n"
    first = tarfile.TarInfo("Dockerfile")
    first.size = len(df)
    info = tarfile.TarInfo("big")
    info.size = 2 << 30
    body = (first.tobuf(tarfile.USTAR_FORMAT) + df + b"\0" * (512 - len(df))
            + info.tobuf(tarfile.USTAR_FORMAT) + b"x" * 4096)
    status, msgs = build(bdaemon, body)
    assert status >= 400 or error_of(msgs) is not None, msgs
    assert leftovers(bdaemon) == before
    assert scratch_entries(bdaemon) == []
    # a gzip stream that ends inside an entry (a truncated download): one error, no leftovers
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb") as gz:
        gz.write(body)
    status, msgs = build(bdaemon, raw.getvalue())
    assert status >= 400 or error_of(msgs) is not None, msgs
    assert leftovers(bdaemon) == before
    assert scratch_entries(bdaemon) == []


def _anon_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError("no RssAnon for %d" % pid)


def test_gzip_bomb_is_streamed(bdaemon):
    """1 GiB of zeros in a 1 MB gzip body: unpacked as a stream (the daemon's anonymous
    memory grows by far less than the data), the scratch space emptied after the build. The
    size bound itself (the builder's 8 GiB of file data) is not reached here: it would write
    8 GiB on a shared machine."""
    raw = io.BytesIO()
    size = 1 << 30
    with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) as gz:
        t = tarfile.open(fileobj=gz, mode="w|")
        df = b"FROM busybox\nLABEL bomb=defused\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(df)
        t.addfile(info, io.BytesIO(df))
        info = tarfile.TarInfo("zeros")
        info.size = size
        zeros = b"\0" * (1 << 20)

        class Zeros(io.RawIOBase):
            left = size

            def readable(self):
                return True

            def readinto(self, b):
                n = min(len(b), self.left, len(zeros))
                b[:n] = zeros[:n]
                self.left -= n
                return n
        t.addfile(info, io.BufferedReader(Zeros(), 1 << 20))
        t.close()
    body = raw.getvalue()
    assert len(body) < 2 << 20
    pid = bdaemon.proc.pid
    before = _anon_kib(pid)
    peak = [before]
    done = threading.Event()

    def sample():         # the daemon's own memory (the spooled file's mapped pages aside)
        while not done.wait(0.02):
            peak[0] = max(peak[0], _anon_kib(pid))
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        status, msgs = build(bdaemon, body, "t=bomb%3A1", timeout=600)
    finally:
        done.set()
        sampler.join()
    assert status == 200 and error_of(msgs) is None, msgs
    grown = peak[0] - before
    assert grown < 256 << 10, "anonymous memory grew by %d MiB" % (grown >> 10)
    assert scratch_entries(bdaemon) == []


def test_prune_empties_the_cache(bdaemon):
    body = tar_of({"Dockerfile": b"FROM busybox\nRUN echo one > /one\nCMD [\"true\"]\n"})
    status, msgs = build(bdaemon, body, "t=pr%3A1")
    assert status == 200 and error_of(msgs) is None, msgs
    status, msgs = build(bdaemon, body, "t=pr%3A1")
    assert stream_text(msgs).count("Using cache") == 2
    status, _, data = bdaemon.request("POST", "/v1.41/build/prune")
    assert status == 200
    doc = json.loads(data)
    assert set(doc) == {"CachesDeleted", "SpaceReclaimed"}
    assert isinstance(doc["SpaceReclaimed"], int)
    status, msgs = build(bdaemon, body, "t=pr%3A1")
    assert "Using cache" not in stream_text(msgs), msgs
    status, _, data = bdaemon.request("POST", "/v1.41/build/prune?filters=%7B%22bogus%22%3A"
                                      "%7B%22x%22%3Atrue%7D%7D")
    assert status == 400 and b"invalid filter 'bogus'" in data


def _raw_build(daemon, body, query):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)
    s.connect(daemon.sock)
    s.sendall(("POST /v1.41/build?%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar"
               "\r\nContent-Length: %d\r\n\r\n" % (query, len(body))).encode() + body)
    return s


def _read_until(s, marker, limit=60):
    data = b""
    deadline = time.monotonic() + limit
    while marker not in data and time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_cancel_and_client_going_away(bdaemon):
    status, _, data = bdaemon.request("POST", "/v1.41/build/cancel")
    assert status == 400 and b"build ID not provided" in data
    body = tar_of({"Dockerfile": b"FROM busybox\nRUN echo started && sleep 30\n"
                                 b"RUN echo second\n"})
    s = _raw_build(bdaemon, body, "buildid=b3cancel&nocache=1")
    data = _read_until(s, b"started")
    assert b"started" in data
    t0 = time.monotonic()
    status, _, _ = bdaemon.request("POST", "/v1.41/build/cancel?id=b3cancel")
    assert status == 200
    data += _read_until(s, b"context canceled")
    s.close()
    assert b"context canceled" in data
    assert time.monotonic() - t0 < 20         # the step's sleep 30 was cut short
    assert b"Step 3/3" not in data
    # as docker's builder: a cancelled step's container is removed
    assert bdaemon.docker("ps", "-aq").stdout.split() == [], (data, bdaemon.output()[-3000:])
    # a client that goes away mid-build: the build stops, its container goes
    s = _raw_build(bdaemon, tar_of({"Dockerfile": b"FROM busybox\nRUN echo started && "
                                                  b"sleep 30\nRUN echo second\n"}), "nocache=1")
    assert b"started" in _read_until(s, b"started")
    s.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (bdaemon.docker("ps", "-aq").stdout.split()
                                           or scratch_entries(bdaemon)):
        time.sleep(0.5)
    assert bdaemon.docker("ps", "-aq").stdout.split() == []
    assert scratch_entries(bdaemon) == []


def test_quiet_and_labels_over_the_api(bdaemon):
    body = tar_of({"Dockerfile": b"FROM busybox\nRUN echo noisy\n"})
    labels = urllib.parse.quote(json.dumps({"team": "b3", "empty": ""}))
    status, msgs = build(bdaemon, body, "q=1&nocache=1&t=q%3A1&labels=" + labels)
    assert status == 200 and error_of(msgs) is None, msgs
    text = stream_text(msgs)
    assert "noisy" not in text and "Step" not in text
    image_id = [m["aux"]["ID"] for m in msgs if "aux" in m][0]
    assert text.strip() == image_id
    doc = json.loads(bdaemon.request("GET", "/v1.41/images/q:1/json")[2])
    assert doc["Id"] == image_id
    assert doc["Config"]["Labels"] == {"team": "b3", "empty": ""}


# --- the query parser alone, on anything a client can send ------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

KEYS = ["t", "dockerfile", "q", "nocache", "pull", "rm", "forcerm", "buildargs", "labels",
        "target", "networkmode", "platform", "extrahosts", "memory", "memswap", "cpushares",
        "cpuperiod", "cpuquota", "remote", "version", "squash", "isolation", "ulimits",
        "shmsize", "cachefrom", "cgroupparent"]
JSONISH = st.one_of(st.text(max_size=30), st.builds(json.dumps, st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=6)))


def _request(query, headers=None):
    from pyrunc.engine.api import httputils
    return httputils.Request("POST", "/build", query, headers or {}, {}, "1.41", io.BytesIO(),
                             None)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), st.lists(JSONISH, min_size=1, max_size=3),
                       max_size=6))
def test_build_options_accepts_or_refuses_in_one_line(query):
    from pyrunc.engine.api.router.build import build_options
    from pyrunc.engine.builder import BuildOptions
    from pyrunc.errors import InvalidArgument
    try:
        options = build_options(_request(query))
    except InvalidArgument as e:
        assert e.message and "\n" not in e.message.strip()
        return
    assert isinstance(options, BuildOptions)
    assert all(":" in t.rsplit("/", 1)[-1] for t in options.tags)
    assert all(v is None or isinstance(v, str) for v in options.build_args.values())
    assert all(isinstance(v, str) for v in options.labels.values())
    assert all(v >= -1 for v in options.resources.values())


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=60), st.builds(
    lambda b: base64.urlsafe_b64encode(b).decode(), st.binary(max_size=60)),
    st.builds(lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode(),
              st.dictionaries(st.text(max_size=10), JSONISH, max_size=3))))
def test_registry_config_header_parser(value):
    from pyrunc.engine.api.router.build import registry_auths
    from pyrunc.errors import InvalidArgument
    try:
        doc = registry_auths(value)
    except InvalidArgument as e:
        assert e.message.startswith("invalid X-Registry-Config header")
        return
    assert isinstance(doc, dict)


def test_tags_normalised_like_moby():
    from pyrunc.engine.api.router.build import build_options
    options = build_options(_request({"t": ["a", "a:latest", "r.example:5000/x/y:v1", "",
                                            "b"]}))
    assert options.tags == ["docker.io/library/a:latest", "r.example:5000/x/y:v1",
                            "docker.io/library/b:latest"]
    options = build_options(_request({"rm": ["0"]}))
    assert options.rm is False and options.force_rm is False
    options = build_options(_request({"rm": ["0"], "forcerm": ["1"]}))
    assert options.rm is True and options.force_rm is True
    assert build_options(_request({})).rm is True


def test_sdk_options_reach_the_run_steps(bdaemon, tmp_path):
    """extra_hosts, network_mode, container_limits and labels given to the SDK reach the RUN
    containers and the image (read from inside the step: /etc/hosts, the interfaces, the
    cgroup's memory limit, v2 or v1)."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nRUN grep -w b3host /etc/hosts && ls /sys/class/net && "
        "(cat /sys/fs/cgroup/memory.max 2>/dev/null || "
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes)\n")
    client = bdaemon.client()
    image, logs = client.images.build(
        path=str(ctx), nocache=True, extra_hosts={"b3host": "10.9.8.7"}, network_mode="none",
        container_limits={"memory": 64 << 20}, labels={"from": "sdk"}, forcerm=True)
    text = stream_text(logs)
    assert re.search(r"^10\.9\.8\.7\s+b3host$", text, re.M), text
    run_out = text.split(" ---> Running in ", 1)[1].splitlines()[1:]
    assert "lo" in run_out and "eth0" not in run_out, text
    assert str(64 << 20) in run_out, text
    assert image.labels == {"from": "sdk"}
    assert bdaemon.docker("ps", "-aq").stdout.split() == []
    client.close()
