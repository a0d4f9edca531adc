"""The engine's builder: Dockerfiles built from tar contexts into images the engine runs.

Oracles: what the built image's containers print (read from inside them), the kernel's view of
mounts (/proc/self/mountinfo), the snapshot store and the container list before and after, and
the tar contexts built here (hostile ones included). The same Dockerfiles against Debian's
dockerd are in test_build_vs_dockerd.py.
"""
import bz2
import gzip
import http.server
import io
import json
import lzma
import os
import tarfile
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from pyrunc.engine import Engine
from pyrunc.engine.builder import BuildOptions
from pyrunc.engine.builder.context import Context


def make_tar(files, compress=None):
    """A context tar: ``files`` maps names to bytes (a file), None (a directory) or
    ("symlink", target) / ("mode", bytes, mode)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, value in files.items():
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            data = None
            if value is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            elif isinstance(value, tuple) and value[0] == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, value[1]
            elif isinstance(value, tuple) and value[0] == "mode":
                data, ti.mode = value[1], value[2]
            else:
                data, ti.mode = value, 0o644
            if data is not None:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            else:
                t.addfile(ti)
    raw = buf.getvalue()
    if compress == "gzip":
        raw = gzip.compress(raw)
    elif compress == "bzip2":
        raw = bz2.compress(raw)
    elif compress == "xz":
        raw = lzma.compress(raw)
    return io.BytesIO(raw)


def build(engine, files, **opts):
    """(messages, image ID or None, error message or None)."""
    body = files if isinstance(files, io.BytesIO) else make_tar(files)
    msgs = list(engine.builder.build(body, BuildOptions(**opts)))
    image_id = next((m["aux"]["ID"] for m in msgs if "aux" in m), None)
    error = next((m["error"] for m in msgs if "error" in m), None)
    return msgs, image_id, error


def stream(msgs):
    return "".join(m.get("stream", "") for m in msgs)


def run(engine, image, *cmd):
    """Run ``cmd`` in a container of ``image``: (exit code, stdout)."""
    config = {"Image": image}
    if cmd:
        config["Cmd"] = list(cmd)
    cid = engine.containers.create(config)["Id"]
    try:
        engine.containers.start(cid)
        code = engine.containers.wait(cid, timeout=60)["StatusCode"]
        out = "".join(m.line.decode() for m in engine.containers.logs(cid, stderr=False))
        return code, out
    finally:
        engine.containers.remove(cid, force=True, volumes=True)


def mounts():
    with open("/proc/self/mountinfo") as f:
        return sorted(line.split()[4] for line in f)


def leftovers(engine):
    """What a build may leave: containers, active snapshots (not the committed layers of the
    images it made), mounts, scratch entries."""
    tmp = os.path.join(engine.builder.root, "tmp")
    return {"containers": sorted(c.id for c in engine.containers.store.all()),
            "snapshots": sorted(s.name for s in engine.images.snapshotter.walk()
                                if s.kind != "committed"),
            "mounts": mounts(),
            "tmp": sorted(os.listdir(tmp)) if os.path.isdir(tmp) else []}


@pytest.fixture
def builder_engine(tmp_path, exec_root):
    """An Engine on a root of its own with the built-in busybox (so a cache and image counts
    are the test's own)."""
    eng = Engine(str(tmp_path / "root"), exec_root=exec_root)
    eng.load_builtin("busybox")
    yield eng
    for c in eng.containers.store.all():
        eng.containers.remove(c.id, force=True, volumes=True)


DOCKERFILE = b"""\
FROM busybox
ARG WHO=world
ENV GREETING=hello DIR=/app
LABEL org.example.title="the app" version=1
WORKDIR $DIR
COPY hello.txt sub ./
RUN echo "$GREETING $WHO" > built.txt && cat hello.txt
EXPOSE 8080/tcp
USER 1000:1000
CMD ["cat", "/app/built.txt", "/app/hello.txt", "/app/inner"]
"""


def context(**extra):
    files = {"Dockerfile": DOCKERFILE, "hello.txt": b"from the context\n", "sub": None,
             "sub/inner": b"inner file\n"}
    files.update(extra)
    return files


def test_build_runs_each_step_and_the_image_runs(builder_engine):
    eng = builder_engine
    before = leftovers(eng)
    msgs, image_id, error = build(eng, context(), tags=["app:1", "app:latest"],
                                  build_args={"WHO": "builder"})
    assert error is None, msgs
    text = stream(msgs)
    steps = [line for line in text.splitlines() if line.startswith("Step ")]
    assert steps == ["Step %d/10 : %s" % (i + 1, line)
                     for i, line in enumerate(DOCKERFILE.decode().splitlines())]
    assert "from the context\n" in text                     # the RUN's output, streamed
    run_id = text.split(" ---> Running in ")[1][:12]
    assert "Removing intermediate container %s\n" % run_id in text
    assert text.endswith("Successfully built %s\nSuccessfully tagged app:1\n"
                         "Successfully tagged app:latest\n" % image_id.split(":")[1][:12])
    assert eng.images.get("app:1").id == image_id == eng.images.get("app:latest").id
    config = eng.images.get(image_id).config["config"]
    assert config["Env"][1:] == ["GREETING=hello", "DIR=/app"]
    assert config["Labels"] == {"org.example.title": "the app", "version": "1"}
    assert config["WorkingDir"] == "/app" and config["User"] == "1000:1000"
    assert config["ExposedPorts"] == {"8080/tcp": {}}
    code, out = run(eng, image_id)
    assert (code, out) == (0, "hello builder\nfrom the context\ninner file\n")
    code, out = run(eng, image_id, "sh", "-c", "id -u; stat -c '%u:%g %a' /app/hello.txt /app")
    assert (code, out) == (0, "1000\n0:0 644\n0:0 755\n")
    assert leftovers(eng) == before


def test_history_marks_metadata_steps_as_empty_layers(builder_engine):
    eng = builder_engine
    msgs, image_id, error = build(eng, context(), build_args={"WHO": "x"})
    assert error is None, msgs
    img = eng.images.get(image_id)
    base = eng.images.get("busybox")
    history = img.config["history"][len(base.config["history"]):]
    by = [(h["created_by"], h.get("empty_layer", False)) for h in history]
    assert by[:4] == [("/bin/sh -c #(nop)  ARG WHO=world", True),
                      ("/bin/sh -c #(nop)  ENV GREETING=hello DIR=/app", True),
                      ("/bin/sh -c #(nop)  LABEL org.example.title=the app version=1", True),
                      ("/bin/sh -c #(nop) WORKDIR /app", False)]
    assert by[4][0].startswith("/bin/sh -c #(nop) COPY multi:") and by[4][0].endswith(
        " in ./ ") and not by[4][1]
    assert by[5] == ('|1 WHO=x /bin/sh -c echo "$GREETING $WHO" > built.txt && cat hello.txt',
                     False)
    assert by[6:] == [("/bin/sh -c #(nop)  EXPOSE 8080/tcp", True),
                      ("/bin/sh -c #(nop)  USER 1000:1000", True),
                      ('/bin/sh -c #(nop)  CMD ["cat" "/app/built.txt" "/app/hello.txt" '
                       '"/app/inner"]', True)]
    # one layer per non-empty step, on top of the base's
    assert len(img.diff_ids) == len(base.diff_ids) + 3


def test_rebuild_uses_the_cache_and_survives_a_restart(builder_engine, exec_root):
    eng = builder_engine
    _, first, error = build(eng, context())
    assert error is None
    msgs, again, _ = build(eng, context())
    assert again == first
    assert stream(msgs).count(" ---> Using cache\n") == 9
    assert " ---> Running in" not in stream(msgs)
    # a new Engine on the same root (a daemon restart) still has the cache
    reopened = Engine(eng.root, exec_root=exec_root)
    msgs, after_restart, _ = build(reopened, context())
    assert after_restart == first and stream(msgs).count(" ---> Using cache\n") == 9
    # a changed source file: the COPY and every later step are built again
    msgs, changed, _ = build(eng, context(**{"sub/inner": b"changed\n"}))
    assert changed != first
    assert stream(msgs).count(" ---> Using cache\n") == 4
    assert run(eng, changed)[1].endswith("changed\n")
    # --no-cache: nothing reused
    msgs, fresh, _ = build(eng, context(), no_cache=True)
    assert fresh != first and "Using cache" not in stream(msgs)
    # a build arg that reaches a RUN changes its key
    msgs, other_arg, _ = build(eng, context(), build_args={"WHO": "y"})
    assert stream(msgs).count(" ---> Using cache\n") == 5 and other_arg != first


def test_failing_run_reports_the_code_and_force_rm_leaves_nothing(builder_engine):
    eng = builder_engine
    df = b"FROM busybox\nRUN echo partial; echo oops >&2; exit 3\nCMD true\n"
    before = leftovers(eng)
    images_before = len(eng.images.images())
    msgs, image_id, error = build(eng, {"Dockerfile": df}, force_rm=True, tags=["never:1"])
    assert image_id is None
    assert error == "The command '/bin/sh -c echo partial; echo oops >&2; exit 3' returned a " \
                    "non-zero code: 3"
    assert msgs[-1] == {"errorDetail": {"message": error, "code": 3}, "error": error}
    assert "partial\n" in stream(msgs) and "oops\n" in stream(msgs)
    assert "Successfully" not in stream(msgs)
    assert leftovers(eng) == before
    assert len(eng.images.images()) == images_before
    with pytest.raises(Exception):
        eng.images.get("never:1")


def test_failing_run_keeps_its_container_without_force_rm(builder_engine):
    """docker's --rm removes intermediate containers of successful steps only."""
    eng = builder_engine
    before = leftovers(eng)
    msgs, _, error = build(eng, {"Dockerfile": b"FROM busybox\nRUN false\n"})
    assert error == "The command '/bin/sh -c false' returned a non-zero code: 1"
    kept = sorted(set(leftovers(eng)["containers"]) - set(before["containers"]))
    assert len(kept) == 1
    assert eng.containers.inspect(kept[0])["State"]["ExitCode"] == 1
    eng.containers.remove(kept[0], volumes=True)
    assert leftovers(eng) == before


@pytest.mark.parametrize("compress", [None, "gzip", "bzip2", "xz"])
def test_context_compressed_or_a_bare_dockerfile(builder_engine, compress):
    eng = builder_engine
    files = {"Dockerfile": b"FROM busybox\nCOPY f /f\nCMD [\"cat\", \"/f\"]\n", "f": b"data\n"}
    _, image_id, error = build(eng, make_tar(files, compress))
    assert error is None and run(eng, image_id) == (0, "data\n")
    # a Dockerfile alone as the body (not an archive)
    _, image_id, error = build(eng, io.BytesIO(b"FROM busybox\nCMD [\"echo\", \"bare\"]\n"))
    assert error is None and run(eng, image_id) == (0, "bare\n")


def test_a_context_stopping_after_its_last_member_is_whole(builder_engine):
    """Go's tar reader, so docker's daemon, takes an archive that stops right after its last
    member's data (no padding, no end-of-archive blocks: docker 28's CLI sends one when -f
    names a file outside the context) as whole; one stopping inside a header or a member's
    data is truncated."""
    files = {"Dockerfile": b"FROM busybox\nCOPY f g /\n", "f": b"data\n", "g": b"x" * 700}
    raw = make_tar(files).getvalue()
    data_end = 512 * 5 + 700            # three headers, the data of two of them, then g's
    assert raw[data_end - 700:data_end] == b"x" * 700 and not raw[data_end:].strip(b"\0")
    before = leftovers(builder_engine)
    for cut in (data_end, data_end + 100, 512 * 7):     # no padding, part of it, no end
        _, image_id, error = build(builder_engine, io.BytesIO(raw[:cut]))
        assert error is None, cut
        assert run(builder_engine, image_id, "cat", "/f", "/g") == (0, "data\n" + "x" * 700)
    for cut in (data_end - 1, 512 * 4 + 100, 512 * 4 + 600):   # in data, in a header
        _, _, error = build(builder_engine, io.BytesIO(raw[:cut]))
        assert error.startswith("build context: truncated archive"), (cut, error)
        assert "\n" not in error
    assert leftovers(builder_engine) == before


HOSTILE = [
    ({"../escape": b"x"}, "escape"),
    ({"/abs/file": b"x"}, None),
    ({"link": ("symlink", "/tmp"), "link/through": b"x"}, "symlink"),
]


@pytest.mark.parametrize("files,word", HOSTILE)
def test_hostile_context_is_refused_or_kept_inside(builder_engine, tmp_path, files, word):
    eng = builder_engine
    before = leftovers(eng)
    files = dict(files, Dockerfile=b"FROM busybox\nCOPY . /ctx/\n")
    msgs, image_id, error = build(eng, files)
    if error is None:
        # an absolute name is taken inside the context (as docker's tar reader cleans it)
        code, out = run(eng, image_id, "find", "/ctx", "-type", "f")
        assert "/ctx/abs/file" in out.split()
    else:
        assert error.startswith("build context: ") and "\n" not in error
    assert not os.path.exists("/escape") and not os.path.exists("/tmp/through")
    assert leftovers(eng) == before


def test_device_nodes_in_the_context_are_refused(builder_engine):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        ti = tarfile.TarInfo("Dockerfile")
        data = b"FROM busybox\n"
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
        dev = tarfile.TarInfo("null")
        dev.type, dev.devmajor, dev.devminor = tarfile.CHRTYPE, 1, 3
        t.addfile(dev)
    buf.seek(0)
    before = leftovers(builder_engine)
    msgs, image_id, error = build(builder_engine, buf)
    assert image_id is None and "device node" in error
    assert leftovers(builder_engine) == before


def test_copy_never_reads_outside_the_context(builder_engine):
    """Sources that climb out or symlinks pointing out resolve inside the context (docker's
    FollowSymlinkInScope), so the host's files never reach the image."""
    eng = builder_engine
    host_secret = "/etc/hostname"
    _, _, error = build(eng, {"Dockerfile": b"FROM busybox\nCOPY ../../etc/hostname /x\n"})
    assert error == "COPY failed: forbidden path outside the build context: " \
                    "../../etc/hostname ()"       # docker's words
    cases = ["COPY %s /x" % host_secret, "COPY /../../..%s /x" % host_secret,
             "COPY out/hostname /x", "COPY outlink /x"]
    for line in cases:
        files = {"Dockerfile": ("FROM busybox\n%s\n" % line).encode(),
                 "out": ("symlink", "/etc"), "outlink": ("symlink", "../../../../etc/hostname")}
        msgs, image_id, error = build(eng, files)
        assert image_id is None, line
        assert "file not found in build context" in error and "\n" not in error, error
    # the same names made inside the context are what is copied
    files = {"Dockerfile": b"FROM busybox\nCOPY out/hostname /x\nCOPY outlink /y\n",
             "out": ("symlink", "/etc"), "outlink": ("symlink", "../../etc/hostname"),
             "etc": None, "etc/hostname": b"inside\n"}
    _, image_id, error = build(eng, files)
    assert error is None
    assert run(eng, image_id, "cat", "/x", "/y") == (0, "inside\ninside\n")


def test_copy_keeps_symlinks_inside_a_directory_as_symlinks(builder_engine):
    files = {"Dockerfile": b"FROM busybox\nCOPY d /d\n", "d": None,
             "d/l": ("symlink", "/etc/passwd"), "d/f": ("mode", b"#!/bin/sh\n", 0o750)}
    _, image_id, error = build(builder_engine, files)
    assert error is None
    code, out = run(builder_engine, image_id, "sh", "-c",
                    "readlink /d/l; stat -c '%a %u' /d/f")
    assert (code, out) == (0, "/etc/passwd\n750 0\n")


def test_dockerignore_is_applied(builder_engine):
    files = {"Dockerfile": b"FROM busybox\nCOPY . /c/\nCMD [\"find\", \"/c\"]\n",
             ".dockerignore": b"# comment\n*.log\nsecret/\n!keep.log\n",
             "a.log": b"x", "keep.log": b"k", "secret": None, "secret/key": b"s", "ok": b"o"}
    _, image_id, error = build(builder_engine, files)
    assert error is None
    code, out = run(builder_engine, image_id)
    # the Dockerfile and .dockerignore stay unless .dockerignore names them, as in docker
    assert sorted(out.split()) == ["/c", "/c/.dockerignore", "/c/Dockerfile", "/c/keep.log",
                                   "/c/ok"]
    files[".dockerignore"] += b"Dockerfile\n.dockerignore\n"
    _, image_id, error = build(builder_engine, files)
    assert error is None
    assert sorted(run(builder_engine, image_id)[1].split()) == ["/c", "/c/keep.log", "/c/ok"]


def test_multi_stage_copy_from_and_target(builder_engine):
    df = b"""\
FROM busybox AS base
RUN echo base > /base.txt
FROM base AS tools
RUN echo tools > /tools.txt
FROM busybox
COPY --from=tools /tools.txt /base.txt /out/
COPY --from=0 /base.txt /zero.txt
COPY --from=busybox /etc/group /group
CMD ["cat", "/out/tools.txt", "/out/base.txt", "/zero.txt"]
"""
    eng = builder_engine
    _, image_id, error = build(eng, {"Dockerfile": df})
    assert error is None
    assert run(eng, image_id) == (0, "tools\nbase\nbase\n")
    code, out = run(eng, image_id, "ls", "/")
    assert "tools.txt" not in out.split()
    # an image by name: its file as the image has it
    assert run(eng, image_id, "cmp", "/group", "/etc/group")[0] == 0
    msgs, target_id, error = build(eng, {"Dockerfile": df}, target="tools")
    # docker counts the steps up to the target stage's end
    assert error is None and "Step 4/4 : RUN echo tools > /tools.txt\n" in stream(msgs)
    assert "Step 5/" not in stream(msgs)
    assert run(eng, target_id, "cat", "/tools.txt", "/base.txt") == (0, "tools\nbase\n")
    _, _, error = build(eng, {"Dockerfile": df}, target="nope")
    assert error == "failed to reach build target nope in Dockerfile"


def test_arg_before_from_and_proxy_args(builder_engine):
    df = b"""\
ARG BASE=busybox
FROM ${BASE}
ARG BASE
ARG V=default
RUN echo "$BASE $V $HTTP_PROXY" > /out
"""
    eng = builder_engine
    msgs, image_id, error = build(eng, {"Dockerfile": df},
                                  build_args={"V": "given", "HTTP_PROXY": "http://p:3128",
                                              "UNUSED": "x"})
    assert error is None
    assert run(eng, image_id, "cat", "/out") == (0, "busybox given http://p:3128\n")
    assert "[Warning] One or more build-args [UNUSED] were not consumed\n" in stream(msgs)
    history = eng.images.get(image_id).config["history"]
    # the proxy arg reaches the RUN but not its history
    assert history[-1]["created_by"] == \
        '|2 BASE=busybox V=given /bin/sh -c echo "$BASE $V $HTTP_PROXY" > /out'


def test_shell_entrypoint_healthcheck_volume_stopsignal_onbuild(builder_engine):
    eng = builder_engine
    df = b"""\
FROM busybox
SHELL ["/bin/sh", "-ec"]
RUN echo shell > /s
VOLUME /data
RUN echo lost > /data/x
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s --retries=3 CMD ["true"]
ENTRYPOINT ["/bin/echo", "entry"]
ONBUILD RUN echo triggered > /onbuild
"""
    _, base_id, error = build(eng, {"Dockerfile": df}, tags=["obbase:1"])
    assert error is None
    config = eng.images.get(base_id).config["config"]
    assert config["Shell"] == ["/bin/sh", "-ec"] and config["Volumes"] == {"/data": {}}
    assert config["StopSignal"] == "SIGINT"
    assert config["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 30000000000,
                                     "Retries": 3}
    assert config["Entrypoint"] == ["/bin/echo", "entry"] and config["Cmd"] is None
    assert config["OnBuild"] == ["RUN echo triggered > /onbuild"]
    code, out = run(eng, base_id, "x")
    assert (code, out) == (0, "entry x\n")
    # RUN in a VOLUME path: the change is not kept (docker's anonymous volume); the layer of
    # that step holds nothing under /data
    img = eng.images.get(base_id)
    layer = img.manifest["layers"][-1]["digest"]
    with tarfile.open(fileobj=io.BytesIO(eng.images.content.read(layer))) as t:
        assert not [m.name for m in t.getmembers() if m.name.startswith("data/")]
    msgs, child, error = build(eng, {"Dockerfile": b"FROM obbase:1\nCMD [\"y\"]\n"})
    assert error is None and "# Executing 1 build trigger\n" in stream(msgs)
    cfg = eng.images.get(child).config["config"]
    assert not cfg.get("OnBuild")
    container = eng.containers.create({"Image": child, "Entrypoint": ["cat"],
                                       "Cmd": ["/onbuild", "/s"]})["Id"]
    try:
        eng.containers.start(container)
        assert eng.containers.wait(container, timeout=60)["StatusCode"] == 0
        out = "".join(m.line.decode() for m in eng.containers.logs(container))
        assert out == "triggered\nshell\n"
    finally:
        eng.containers.remove(container, force=True, volumes=True)


def test_add_extracts_local_archives_and_fetches_urls(builder_engine, tmp_path, monkeypatch):
    eng = builder_engine
    inner = make_tar({"pkg": None, "pkg/file": b"from the archive\n"}, "gzip").getvalue()
    served = {"/remote.txt": b"fetched over http\n"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = served.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = "http://127.0.0.1:%d" % server.server_port
        df = ("FROM busybox\nADD pkg.tar.gz /opt/\nADD %s/remote.txt /r/\n"
              "COPY --chown=nobody:nogroup --chmod=600 f /owned\n" % url).encode()
        _, image_id, error = build(eng, {"Dockerfile": df, "pkg.tar.gz": inner, "f": b"f"})
        assert error is None
        code, out = run(eng, image_id, "sh", "-c",
                        "cat /opt/pkg/file /r/remote.txt; stat -c '%a %U %G' /r/remote.txt "
                        "/owned; grep -c nobody /etc/passwd")
        assert (code, out) == (0, "from the archive\nfetched over http\n600 root root\n"
                                  "600 nobody nogroup\n1\n")
        # a user alone: the group of the same name (docker's reading), numbers as they are
        _, _, error = build(eng, {"Dockerfile": b"FROM busybox\nCOPY --chown=nobody f /x\n",
                                  "f": b"f"})
        assert error.startswith("unable to convert uid/gid chown string to host mapping: ")
        assert "nobody" in error and "\n" not in error
        _, image_id, error = build(eng, {"Dockerfile": b"FROM busybox\nCOPY --chown=nobody:tty f "
                                                       b"/x\nCOPY --chown=12 f /y\n", "f": b"f"})
        assert error is None
        assert run(eng, image_id, "stat", "-c", "%u:%g", "/x", "/y") == (0, "65534:5\n12:12\n")
        # a file that only looks compressed is copied as it is
        _, image_id, error = build(eng, {"Dockerfile": b"FROM busybox\nADD fake.gz /\n",
                                         "fake.gz": b"\x1f\x8b\x08garbage"})
        assert error is None
        assert run(eng, image_id, "cat", "/fake.gz")[1].encode("latin-1", "replace") \
            .endswith(b"garbage")
        _, _, error = build(eng, {"Dockerfile": ("FROM busybox\nADD %s/missing /m\n"
                                                 % url).encode()})
        assert error is not None and "404" in error
        # a body past the size limit is refused, nothing kept
        from pyrunc.engine.builder import dispatch
        monkeypatch.setattr(dispatch, "MAX_URL_SIZE", 10)
        before = leftovers(eng)
        _, _, error = build(eng, {"Dockerfile": ("FROM busybox\nADD %s/remote.txt /r\n"
                                                 % url).encode()}, no_cache=True)
        assert error == "ADD failed: %s/remote.txt: larger than 10 bytes" % url
        assert leftovers(eng) == before
    finally:
        server.shutdown()
        server.server_close()


def test_errors_name_the_problem(builder_engine):
    eng = builder_engine
    cases = {
        b"FROM busybox\nFOO bar\n": "unknown instruction: FOO",
        b"FROM no-such-image-here\n": "no-such-image-here",
        b"FROM busybox\nCOPY missing /x\n": "file not found in build context",
        b"FROM busybox\nCOPY a b /x\n": "file not found",
        b"": "",
    }
    before = leftovers(eng)
    for df, word in cases.items():
        msgs, image_id, error = build(eng, {"Dockerfile": df})
        assert image_id is None and error and word in error and "\n" not in error, (df, error)
    _, _, error = build(eng, {"Dockerfile": b"FROM busybox\n"}, dockerfile="Other")
    assert error == "Cannot locate specified Dockerfile: Other"
    # a Dockerfile path that climbs out is taken inside the context
    _, _, error = build(eng, {"Dockerfile": b"FROM busybox\n", "etc": None},
                        dockerfile="../../../../../etc/hostname")
    assert error == "Cannot locate specified Dockerfile: ../../../../../etc/hostname"
    arch = eng.images.get("busybox").config["architecture"]
    _, image_id, error = build(eng, {"Dockerfile": ("FROM --platform=linux/%s busybox\n"
                                                    % arch).encode()})
    assert error is None
    _, _, error = build(eng, {"Dockerfile": b"FROM --platform=linux/s390x busybox\n"})
    assert error == ("image with reference busybox was found but does not match the specified "
                     "platform: wanted linux/s390x, actual: linux/%s" % arch)
    assert leftovers(eng) == before


def test_scratch_globs_and_chmod_in_the_cache_key(builder_engine):
    eng = builder_engine
    df = b"""\
FROM scratch AS files
COPY *.txt d?/ /files/
FROM busybox
COPY --from=files /files /files
COPY --chmod=%s one.txt /mode
CMD ["sh", "-c", "find /files | sort; stat -c %%a /mode"]
"""
    files = {"one.txt": b"1", "two.txt": b"2", "skip.md": b"s", "d1": None, "d1/in": b"i",
             "dockerfile": df % b"600"}
    msgs, image_id, error = build(eng, files)       # the lower-case name is docker's fallback
    assert error is None, msgs
    assert "Step 2/6 : COPY *.txt d?/ /files/\n ---> " in stream(msgs)
    assert run(eng, image_id)[1] == "/files\n/files/in\n/files/one.txt\n/files/two.txt\n600\n"
    files["dockerfile"] = df % b"640"
    msgs, other, error = build(eng, files)
    assert error is None and other != image_id
    assert run(eng, other)[1].endswith("\n640\n")
    # the scratch stage alone: one layer, one history entry, the host's platform
    _, scratch_id, error = build(eng, files, target="files")
    scratch = eng.images.get(scratch_id)
    assert len(scratch.diff_ids) == 1 and len(scratch.config["history"]) == 1
    assert (scratch.config["os"], scratch.config["architecture"]) == (
        "linux", {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine,
                                                             os.uname().machine))


def test_network_mode_and_extra_hosts_reach_run_steps(builder_engine):
    eng = builder_engine
    df = {"Dockerfile": b"FROM busybox\nRUN readlink /proc/self/ns/net > /ns; "
                        b"grep db /etc/hosts > /hosts || true\n"}
    host_ns = os.readlink("/proc/self/ns/net")
    _, host_id, error = build(eng, df, network_mode="host", extra_hosts=["db:10.1.2.3"])
    assert error is None
    ns, hosts = run(eng, host_id, "cat", "/ns")[1], run(eng, host_id, "cat", "/hosts")[1]
    assert ns == host_ns + "\n" and hosts.split() == ["10.1.2.3", "db"]
    _, none_id, error = build(eng, df, network_mode="none")
    assert error is None and none_id != host_id
    assert run(eng, none_id, "cat", "/ns")[1] != host_ns + "\n"


def test_quiet_gives_the_id_alone(builder_engine):
    msgs, image_id, error = build(builder_engine, context(), quiet=True)
    assert error is None
    assert [m for m in msgs if "stream" in m] == [{"stream": image_id + "\n"}]


def test_resource_limits_reach_run_steps(builder_engine):
    """The build's limits are the RUN containers' (the kernel's cgroup files as oracle)."""
    eng = builder_engine
    df = {"Dockerfile": b"FROM busybox\nRUN cat /sys/fs/cgroup/memory.max "
                        b"/sys/fs/cgroup/memory/memory.limit_in_bytes > /mem 2>/dev/null; "
                        b"true\n"}
    _, image_id, error = build(eng, df, resources={"Memory": 64 << 20})
    assert error is None
    assert run(eng, image_id, "cat", "/mem") == (0, "%d\n" % (64 << 20))


def test_builds_at_once_share_the_engine_and_the_cache(builder_engine):
    """Builds in threads (pydockerd serves each request in one) on one engine and one cache
    index: each gets its own image, nothing stays behind, and a rebuild hits the cache."""
    eng = builder_engine
    before = leftovers(eng)
    results = {}

    def one(i):
        df = ("FROM busybox\nENV SHARED=1\nRUN echo %d > /n\nCOPY f /f\n" % i).encode()
        results[i] = build(eng, {"Dockerfile": df, "f": b"%d" % i}, tags=["par:%d" % i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(results) == [0, 1, 2]
    for i, (msgs, image_id, error) in results.items():
        assert error is None, msgs
        assert run(eng, "par:%d" % i, "cat", "/n", "/f") == (0, "%d\n%d" % (i, i))
    for i in range(3):
        df = ("FROM busybox\nENV SHARED=1\nRUN echo %d > /n\nCOPY f /f\n" % i).encode()
        msgs, again, _ = build(eng, {"Dockerfile": df, "f": b"%d" % i})
        assert again == results[i][1] and stream(msgs).count("Using cache") == 3
    assert leftovers(eng) == before


def test_labels_of_the_build_are_steps_of_their_own(builder_engine):
    eng = builder_engine
    msgs, image_id, error = build(eng, {"Dockerfile": b"FROM busybox\nLABEL a=1\n"},
                                  labels={"z": "last", "b": "two words"})
    assert error is None
    steps = [line for line in stream(msgs).splitlines() if line.startswith("Step ")]
    assert steps == ["Step 1/4 : FROM busybox", "Step 2/4 : LABEL a=1",
                     "Step 3/4 : LABEL b=two words", "Step 4/4 : LABEL z=last"]
    img = eng.images.get(image_id)
    assert img.config["config"]["Labels"] == {"a": "1", "b": "two words", "z": "last"}
    assert [h["created_by"] for h in img.config["history"][-2:]] == [
        "/bin/sh -c #(nop)  LABEL b=two words", "/bin/sh -c #(nop)  LABEL z=last"]


def test_a_build_closed_mid_run_leaves_nothing(builder_engine):
    """A client that goes away (the stream closed) stops the build: the running step's
    container is killed and removed, its snapshot and mounts gone."""
    eng = builder_engine
    before = leftovers(eng)
    gen = eng.builder.build(make_tar({"Dockerfile": b"FROM busybox\n"
                                                   b"RUN echo started; sleep 300\n"}),
                            BuildOptions())
    for msg in gen:
        if msg.get("stream") == "started\n":
            break
    else:
        pytest.fail("the RUN's output never came")
    assert len(leftovers(eng)["containers"]) == len(before["containers"]) + 1
    gen.close()
    assert leftovers(eng) == before


def test_a_dead_builds_leftovers_are_swept(builder_engine):
    """What a build killed mid-step leaves (its directory, a snapshot mounted under it) goes
    with the next build; a live build's directory (its lock held) stays."""
    from pyrunc.engine.builder.dispatch import scratch_key
    from pyrunc.engine.snapshots.mount import mount_all
    eng = builder_engine
    before = leftovers(eng)
    tmp = os.path.join(eng.builder.root, "tmp")
    os.makedirs(tmp, exist_ok=True)
    dead = os.path.join(tmp, "build-dead")
    os.makedirs(os.path.join(dead, "rootfs"))
    open(os.path.join(dead, ".lock"), "w").close()
    key = scratch_key(dead)
    mount_all(eng.images.snapshotter.prepare(key, eng.images.get("busybox").top_chain),
              os.path.join(dead, "rootfs"))
    assert os.path.join(dead, "rootfs") in mounts()
    live = os.path.join(tmp, "build-live")
    os.makedirs(live)
    with open(os.path.join(live, ".lock"), "w") as held:
        import fcntl
        fcntl.flock(held, fcntl.LOCK_EX)
        _, _, error = build(eng, {"Dockerfile": b"FROM busybox\n"})
        assert error is None
        assert os.path.isdir(live)
    assert not os.path.exists(dead)
    os.remove(os.path.join(live, ".lock"))
    os.rmdir(live)
    assert leftovers(eng) == before


def test_prune_drops_the_cache(builder_engine):
    eng = builder_engine
    _, first, _ = build(eng, context(), tags=["kept:1"])
    result = eng.builder.prune()
    assert result["SpaceReclaimed"] >= 0 and first not in result["CachesDeleted"]
    assert len(result["CachesDeleted"]) >= 5
    msgs, again, _ = build(eng, context())
    # the tagged image stays; the intermediate steps are built again
    assert eng.images.get("kept:1").id == first
    assert " ---> Running in" in stream(msgs)


names = hs.text(alphabet="ab./\\-_ \x00é", min_size=1, max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(hs.lists(hs.tuples(names, hs.sampled_from(["file", "dir", "symlink", "hardlink"]),
                          names), max_size=6))
def test_context_extraction_stays_inside(tmp_path, members):
    """Whatever names a context tar holds, extraction writes only inside its directory or
    fails with one line (and removes what it wrote)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, target in members:
            ti = tarfile.TarInfo(name)
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif kind == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, target
            elif kind == "hardlink":
                ti.type, ti.linkname = tarfile.LNKTYPE, target
            ti.size = 0
            t.addfile(ti, io.BytesIO(b""))
    buf.seek(0)
    parent = tmp_path / "ctx"
    outside_before = sorted(os.listdir(tmp_path))
    try:
        ctx = Context.open(buf, str(parent))
    except Exception as e:
        assert "\n" not in str(e) and str(e)
        assert os.listdir(parent) == [] if parent.exists() else True
    else:
        try:
            for dirpath, dirnames, filenames in os.walk(ctx.root):
                for n in dirnames + filenames:
                    p = os.path.join(dirpath, n)
                    assert os.path.realpath(os.path.dirname(p)).startswith(ctx.root)
        finally:
            ctx.close()
    assert sorted(os.listdir(tmp_path)) == sorted(set(outside_before) | {"ctx"})


def _registry_server_class():
    """The registry tests' RegistryServer (their conftest, loaded under a name of its own)."""
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "registry", "conftest.py")
    spec = importlib.util.spec_from_file_location("builder_registry_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RegistryServer, module.REGISTRY_BIN


def test_from_pulls_a_missing_base_from_a_loopback_registry(tmp_path, exec_root):
    from pyrunc.engine.distribution.push import push
    from pyrunc.engine.registry import RegistryOptions, RegistryService
    server_class, binary = _registry_server_class()
    if not os.path.exists(binary):
        pytest.skip("docker-registry (%s) is not installed" % binary)
    registry = server_class(tmp_path / "registry").start()
    registries = RegistryService(RegistryOptions())
    try:
        seed = Engine(str(tmp_path / "seed"), exec_root=exec_root)
        seed.load_builtin("busybox")
        ref = "%s/library/busybox:latest" % registry.domain
        seed.images.tag("busybox", ref)
        push(ref, seed.images.content, registries, images=seed.images)
        eng = Engine(str(tmp_path / "root"), exec_root=exec_root)
        df = ("FROM %s\nRUN echo pulled > /p\nCMD [\"cat\", \"/p\"]\n" % ref).encode()
        # without a registry to pull through, a missing base is an error naming it
        _, _, error = build(eng, {"Dockerfile": df})
        assert error and ref.split(":")[0] in error and "\n" not in error
        msgs, image_id, error = build(eng, {"Dockerfile": df}, registries=registries)
        assert error is None, msgs
        statuses = [m.get("status", "") for m in msgs]
        assert any(s.startswith("Pulling from") for s in statuses), msgs
        assert any(s.startswith("Status: Downloaded newer image") for s in statuses), msgs
        assert eng.images.get(ref).id == seed.images.get("busybox").id
        assert run(eng, image_id) == (0, "pulled\n")
        # the base is there now: no pull unless asked for
        msgs, again, _ = build(eng, {"Dockerfile": df}, registries=registries)
        assert again == image_id and not any("status" in m for m in msgs)
        msgs, _, error = build(eng, {"Dockerfile": df}, registries=registries, pull=True)
        assert error is None and any("status" in m for m in msgs)
        # the built image is an ordinary one: pushed, pulled elsewhere, it runs there
        from pyrunc.engine.distribution.pull import pull
        built = "%s/built/app:1" % registry.domain
        eng.images.tag(image_id, built)
        push(built, eng.images.content, registries, images=eng.images)
        other = Engine(str(tmp_path / "other"), exec_root=exec_root)
        pull(built, other.images, registries)
        assert other.images.get(built).id == image_id
        assert run(other, built) == (0, "pulled\n")
        for c in eng.containers.store.all():
            eng.containers.remove(c.id, force=True, volumes=True)
    finally:
        registries.close()
        registry.stop()


def test_go_formatting_of_history_lines():
    """Go's Duration.String and strconv.Quote, as the HEALTHCHECK and CMD lines show them."""
    from pyrunc.engine.builder.dispatch import go_duration, go_quote_list
    assert [go_duration(n) for n in (0, 1, 1500, 100000000, 1500000000, 90000000000,
                                     7200000000000, 3723000000001)] == [
        "0s", "1ns", "1.5µs", "100ms", "1.5s", "1m30s", "2h0m0s", "1h2m3.000000001s"]
    assert go_quote_list(["a b", 'q"', "t\tn\n", "\x01", "é"]) == \
        '["a b" "q\\"" "t\\tn\\n" "\\x01" "é"]'


@pytest.mark.parametrize("pattern,name,matched", [
    # cases of Go's own path/filepath match tests (ErrBadPattern: no match)
    ("abc", "abc", True), ("*", "abc", True), ("*c", "abc", True), ("a*", "a", True),
    ("a*/b", "abc/b", True), ("a*/b", "a/c/b", False), ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b?c*x", "abxbbxdbxebxczzx", True), ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True), ("ab[b-d]", "abc", True), ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False), ("ab[^b-d]", "abc", False), ("ab[^e-g]", "abc", True),
    ("a\\*b", "a*b", True), ("a\\*b", "ab", False), ("a?b", "a☺b", True),
    ("a[^a]b", "a☺b", True), ("a???b", "a☺b", False), ("[a-ζ]*", "α", True),
    ("*[a-ζ]", "A", False), ("[\\]a]", "]", True), ("[\\-]", "-", True),
    ("[x\\-]", "x", True), ("[x\\-]", "-", True), ("[x\\-]", "z", False),
    ("[\\-x]", "-", True), ("[]a]", "]", False), ("[-]", "-", False), ("[x-]", "x", False),
    ("[^bc", "a", False), ("a[", "a", False), ("[", "a", False), ("\\", "a", False),
    ("*x", "xxx", True),
])
def test_copy_globs_match_as_go_does(pattern, name, matched):
    from pyrunc.engine.builder.context import go_match
    assert go_match(pattern, name) is matched
