"""The builder against Debian's dockerd and its classic builder (DOCKER_BUILDKIT=0), both on the
built-in busybox image: the same Dockerfiles and contexts give the same image Config, the same
history (``created_by``, ``empty_layer``) and the same file trees (paths, types, modes, owners,
contents, link targets) in a container of the image, read from both daemons' exports.
"""
import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile

import pytest

from dockerd_peer import DOCKERD, Dockerd, docker_client
from pyrunc.engine.builder import BuildOptions
from pyrunc.engine.container.archive import export

pytestmark = pytest.mark.peer

# what the two daemons write differently by design: the runtime's files (docker's init
# layer adds /etc/mtab and /.dockerenv)
SKIPPED = re.compile(r"^(\.dockerenv|etc/(hosts|hostname|resolv\.conf|mtab)|proc|sys|dev)(/|$)")
COPY_HASH = re.compile(r"((?:COPY|ADD) (?:--chown=\S*?)?(?:file|dir|multi)):[0-9a-f]{64}")


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory):
    if not os.path.exists(DOCKERD) or not docker_client() or not shutil.which("unshare"):
        pytest.skip("Debian's dockerd (package docker.io) and a docker CLI are not installed")
    with Dockerd(str(tmp_path_factory.mktemp("dockerd"))) as d:
        d.load_builtin("busybox")
        yield d


ALL = """\
FROM busybox
ARG V=1
ENV A=b C="d e"
ENV PATH=/opt/bin:$PATH A=again D=$A
LABEL x=y "q r"="s t"
RUN echo hi $V && mkdir /made && echo data > /made/f && chmod 640 /made/f
WORKDIR /app
WORKDIR w2
COPY a.txt sub /dst/
COPY a.txt /single
COPY --chown=nobody:nogroup sub /owned/
ADD pkg.tar.gz /opt/
EXPOSE 80 90/udp
USER nobody
VOLUME /v
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=3s --retries=2 CMD true
SHELL ["/bin/sh", "-xc"]
RUN echo in shell
ENTRYPOINT ["echo"]
CMD ["sh"]
ONBUILD RUN echo ob
"""

MULTI = """\
FROM busybox AS one
RUN mkdir -p /out && echo one > /out/one && ln -s one /out/link
FROM busybox
COPY --from=one /out /from-one/
ENTRYPOINT echo shell form
"""

MISC = """\
ARG BASE=busybox
FROM scratch AS files
COPY a.txt /a
FROM ${BASE}
MAINTAINER someone <s@example.com>
COPY --from=files /a /copied/renamed
ADD sub /added
EXPOSE 7000-7002/udp 22
VOLUME ["/v1", "/v2"]
HEALTHCHECK NONE
WORKDIR rel
USER 1:2
RUN ["sh", "-c", "echo exec form; id"]
"""

CASES = {"all": ALL, "multi": MULTI, "misc": MISC}


def write_context(path, dockerfile):
    path.mkdir()
    (path / "Dockerfile").write_text(dockerfile)
    (path / "a.txt").write_text("hello\n")
    (path / "sub").mkdir()
    (path / "sub" / "b").write_text("x\n")
    os.chmod(path / "sub" / "b", 0o600)
    os.symlink("b", path / "sub" / "l")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        ti = tarfile.TarInfo("pkg/inside")
        ti.size, ti.mode, ti.uid, ti.gid = 3, 0o700, 12, 34
        t.addfile(ti, io.BytesIO(b"in\n"))
    (path / "pkg.tar.gz").write_bytes(gzip.compress(buf.getvalue()))


def context_tar(path):
    """The context as the docker CLI sends it: a tar of the directory, owners 0:0."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name in sorted(os.listdir(path)):
            t.add(os.path.join(path, name), arcname=name,
                  filter=lambda ti: (setattr(ti, "uid", 0), setattr(ti, "gid", 0), ti)[2])
    buf.seek(0)
    return buf


def tree(stream):
    """{path: (type, mode, uid, gid, sha256 of content, link target)} of an export tar."""
    out = {}
    with tarfile.open(fileobj=stream, mode="r|") as t:
        for m in t:
            name = m.name.removeprefix("./").strip("/")
            if not name or SKIPPED.match(name):
                continue
            digest = ""
            if m.isreg():
                digest = hashlib.sha256(t.extractfile(m).read()).hexdigest()
            out[name] = (m.type if m.type != tarfile.AREGTYPE else tarfile.REGTYPE,
                         m.mode & 0o7777, m.uid, m.gid, digest, m.linkname)
    return out


def docker_image(d, tag):
    import json
    doc = json.loads(d.docker("image", "inspect", tag).stdout)[0]
    history_cfg = None
    # the history with empty_layer is in the image's config, read from docker save
    raw = subprocess.run([docker_client(), "save", tag], env=d.env, check=True,
                         capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(raw)) as t:
        manifest = json.load(t.extractfile("manifest.json"))[0]
        history_cfg = json.load(t.extractfile(manifest["Config"]))
    return doc["Config"], history_cfg


def docker_tree(d, tag):
    cid = d.docker("create", tag).stdout.strip()
    try:
        raw = subprocess.run([docker_client(), "export", cid], env=d.env, check=True,
                             capture_output=True).stdout
    finally:
        d.docker("rm", cid)
    return tree(io.BytesIO(raw))


def engine_tree(engine, image_id):
    cid = engine.containers.create({"Image": image_id, "Cmd": ["true"]})["Id"]
    try:
        with export(engine.containers, cid) as stream:
            return tree(io.BytesIO(stream.read()))
    finally:
        engine.containers.remove(cid, force=True, volumes=True)


def shown_history(history):
    return [(COPY_HASH.sub(r"\1:<hash>", h["created_by"]), bool(h.get("empty_layer")))
            for h in history]


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_image_as_dockerd(dockerd, engine, tmp_path, case):
    ctx = tmp_path / "ctx"
    write_context(ctx, CASES[case])
    tag = "b2-%s:1" % case
    r = subprocess.run([docker_client(), "build", "--build-arg", "V=7", "-t", tag, str(ctx)],
                       env=dict(dockerd.env, DOCKER_BUILDKIT="0"), capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    their_config, their_doc = docker_image(dockerd, tag)
    their_history = their_doc["history"]

    msgs = list(engine.builder.build(context_tar(ctx), BuildOptions(
        tags=[tag], build_args={"V": "7"})))
    errors = [m for m in msgs if "error" in m]
    assert not errors, msgs
    image = engine.images.get(tag)
    our_config = image.config["config"]
    for key in ("Image", "Hostname"):
        their_config.pop(key)
        our_config.pop(key)
    assert our_config == their_config
    assert shown_history(image.config["history"]) == shown_history(their_history)
    for key in ("author", "os", "architecture"):
        assert image.config.get(key) == their_doc.get(key), key
    # the steps printed: the same lines but for IDs (docker runs a container per metadata step)
    ours = [m["stream"] for m in msgs if m.get("stream", "").startswith("Step ")]
    theirs = [line + "\n" for line in r.stdout.splitlines() if line.startswith("Step ")]
    assert ours == theirs
    ours, theirs = engine_tree(engine, image.id), docker_tree(dockerd, tag)
    assert {k: v for k, v in ours.items() if theirs.get(k) != v} == \
        {k: v for k, v in theirs.items() if ours.get(k) != v}
