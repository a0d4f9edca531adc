"""Image parents: the local link dockerd keeps from an image it built or committed to the image
it was made from, and what it changes in list, inspect, history, rmi and prune.

Oracles: the builder's own step lines (" ---> ID"), the images.json document on disk (read
again by a new Engine), a second store that loads a saved archive, and Debian's dockerd with
its classic builder (DOCKER_BUILDKIT=0) given the same Dockerfile and the same commands: its
``images``, ``images -a``, ``history``, ``rmi`` and ``image prune`` outputs, with each image
ID replaced by its place in the chain, are pyrunc's.
"""
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time

import pytest

from dockerd_peer import DOCKERD, Dockerd, docker_client
from pyrunc.engine import Engine
from pyrunc.engine.builder import BuildOptions
from pyrunc.engine.container.commit import commit
from pyrunc.engine.images import ImageService, archive
from pyrunc.errors import Conflict, NotFound

DOCKERFILE = b'FROM busybox\nENV A=b\nRUN echo hi > /f\nCMD ["sh"]\n'
CONFLICT = "conflict: unable to delete %s (cannot be forced) - image has dependent child images"


def context(dockerfile=DOCKERFILE):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        ti = tarfile.TarInfo("Dockerfile")
        ti.size = len(dockerfile)
        t.addfile(ti, io.BytesIO(dockerfile))
    buf.seek(0)
    return buf


def build(eng, tags=(), dockerfile=DOCKERFILE):
    """The built image's ID and the IDs the builder printed after each step, in order."""
    msgs = list(eng.builder.build(context(dockerfile), BuildOptions(tags=list(tags))))
    errors = [m["error"] for m in msgs if "error" in m]
    assert not errors, errors
    text = "".join(m.get("stream", "") for m in msgs)
    steps = re.findall(r" ---> ([0-9a-f]{12})\n", text)
    image_id = next(m["aux"]["ID"] for m in msgs if "aux" in m)
    return image_id, [eng.images.get(s).id for s in steps]


@pytest.fixture
def eng(tmp_path, exec_root):
    e = Engine(str(tmp_path / "root"), exec_root=exec_root)
    e.load_builtin("busybox")
    yield e
    for c in e.containers.store.all():
        e.containers.remove(c.id, force=True, volumes=True)


def ids(summaries):
    return {s["Id"] for s in summaries}


def test_build_records_each_step_as_the_parent_of_the_next(eng):
    base = eng.images.get("busybox").id
    top, steps = build(eng, ["built:1"])
    assert steps[0] == base and steps[-1] == top and len(steps) == 4
    for parent, child in zip(steps, steps[1:]):
        assert eng.images.inspect(child)["Parent"] == parent
    assert eng.images.inspect("busybox")["Parent"] == ""
    summary = {s["Id"]: s for s in eng.images.list()}
    assert [summary[s]["ParentId"] for s in steps] == [""] + steps[:-1]
    # docker images hides the intermediates, -a shows them; none is dangling
    assert ids(eng.images.list(all_images=False)) == {base, top}
    assert ids(eng.images.list(all_images=True)) == set(steps)
    assert eng.images.list({"dangling": ["true"]}) == []
    assert eng.images.list({"dangling": ["true"]}, all_images=False) == []
    assert ids(eng.images.list({"dangling": ["false"]})) == {base, top}
    # history names every image of the chain, with its tags
    hist = eng.images.history("built:1")
    assert [h["Id"] for h in hist] == steps[::-1]
    assert [h["Tags"] for h in hist] == [["built:1"], None, None, ["busybox:latest"]]


def test_the_record_survives_a_restart(eng, tmp_path, exec_root):
    top, steps = build(eng, ["built:1"])
    again = Engine(str(tmp_path / "root"), exec_root=exec_root)
    assert again.images.inspect(top)["Parent"] == steps[-2]
    assert ids(again.images.list(all_images=False)) == {steps[0], top}


def test_rmi_of_an_intermediate_is_refused_even_forced(eng):
    top, steps = build(eng, ["built:1"])
    for force in (False, True):
        with pytest.raises(Conflict) as e:
            eng.images.remove(steps[2], force=force)
        assert str(e.value) == CONFLICT % steps[2][7:19]
    assert ids(eng.images.list()) == set(steps)
    assert eng.images.prune()["ImagesDeleted"] is None
    assert ids(eng.images.list()) == set(steps)


def test_rmi_deletes_the_unnamed_parents_and_their_layer(eng):
    top, steps = build(eng, ["built:1"])
    run_layer = eng.images.get(steps[2]).top_chain
    assert run_layer in {s.name for s in eng.images.snapshotter.walk()}
    records = eng.images.remove("built:1")
    assert records == [{"Untagged": "built:1"},
                       {"Deleted": top}, {"Deleted": steps[2]}, {"Deleted": steps[1]}]
    assert ids(eng.images.list()) == {steps[0]}
    assert run_layer not in {s.name for s in eng.images.snapshotter.walk()}


def test_rmi_stops_at_a_named_parent_and_untags_a_parent_it_keeps(eng):
    top, steps = build(eng, ["built:1"])
    eng.images.tag(steps[2], "inter:1")
    # inter:1 has a child: rmi only removes the name
    assert eng.images.remove("inter:1") == [{"Untagged": "inter:1"}]
    assert ids(eng.images.list()) == set(steps)
    eng.images.tag(steps[2], "inter:1")
    assert eng.images.remove("built:1") == [{"Untagged": "built:1"}, {"Deleted": top}]
    assert ids(eng.images.list(all_images=False)) == {steps[0], steps[2]}
    assert ids(eng.images.list()) == set(steps[:3])
    assert eng.images.remove("inter:1") == [{"Untagged": "inter:1"}, {"Deleted": steps[2]},
                                            {"Deleted": steps[1]}]


def test_no_prune_keeps_the_parents(eng):
    top, steps = build(eng, ["built:1"])
    assert eng.images.remove("built:1", prune=False) == [{"Untagged": "built:1"},
                                                         {"Deleted": top}]
    # the last step is now a dangling image, its parent an intermediate
    assert ids(eng.images.list({"dangling": ["true"]})) == {steps[2]}
    assert ids(eng.images.list(all_images=False)) == {steps[0], steps[2]}


def test_a_parent_used_by_a_container_stops_the_chain(eng):
    top, steps = build(eng, ["built:1"])
    cid = eng.containers.create({"Image": steps[1]})["Id"]
    assert eng.images.remove("built:1") == [{"Untagged": "built:1"}, {"Deleted": top},
                                            {"Deleted": steps[2]}]
    eng.containers.remove(cid, force=True)
    assert ids(eng.images.list({"dangling": ["true"]})) == {steps[1]}


def test_prune_deletes_an_untagged_build_with_its_parents(eng):
    kept, kept_steps = build(eng, ["built:1"])
    top, steps = build(eng, dockerfile=DOCKERFILE + b"LABEL x=y\n")
    # the cache gives the same first steps: only the LABEL step is new
    assert steps[:4] == kept_steps and steps[4] == top
    assert ids(eng.images.list({"dangling": ["true"]})) == {top}
    report = eng.images.prune()
    assert report["ImagesDeleted"] == [{"Deleted": top}]
    eng.images.remove("built:1")
    top, steps = build(eng, dockerfile=b"FROM busybox\nENV Q=1\nENV R=2\n")
    report = eng.images.prune()
    assert report["ImagesDeleted"] == [{"Deleted": top}, {"Deleted": steps[1]}]
    assert ids(eng.images.list()) == {steps[0]}


def test_prune_all_untags_a_named_parent_and_keeps_it(eng):
    top, steps = build(eng, ["built:1"])
    eng.images.tag(steps[2], "inter:1")
    eng.images.remove("busybox")       # untagged only: it is a parent
    report = eng.images.prune(all_images=True)
    deleted = report["ImagesDeleted"]
    assert {"Untagged": "inter:1"} in deleted and {"Untagged": "built:1"} in deleted
    assert [d["Deleted"] for d in deleted if "Deleted" in d] == steps[::-1]
    assert eng.images.list() == []


def test_commit_records_the_containers_image(eng):
    top, steps = build(eng, ["built:1"])
    cid = eng.containers.create({"Image": "built:1", "Cmd": ["sh", "-c", "echo x > /g"]})["Id"]
    eng.containers.start(cid)
    assert eng.containers.wait(cid, timeout=60)["StatusCode"] == 0
    new = commit(eng.containers, cid, "committed:1")
    assert eng.images.inspect(new)["Parent"] == top
    eng.containers.remove(cid, force=True)
    assert eng.images.remove("built:1") == [{"Untagged": "built:1"}]
    hist = eng.images.history("committed:1")
    assert [h["Id"] for h in hist] == [new] + steps[::-1]
    assert eng.images.remove("committed:1") == [{"Untagged": "committed:1"}, {"Deleted": new},
                                                {"Deleted": top}, {"Deleted": steps[2]},
                                                {"Deleted": steps[1]}]


def test_save_and_load_do_not_carry_the_parent(eng, tmp_path, private_mount_ns):
    top, steps = build(eng, ["built:1"])
    out = tmp_path / "built.tar"
    with open(out, "wb") as f:
        archive.save(eng.images, ["built:1"], f)
    other = ImageService(str(tmp_path / "other"))
    with open(out, "rb") as f:
        archive.load(other, f)
    assert other.inspect("built:1")["Parent"] == ""
    assert [h["Id"] for h in other.history("built:1")] == [top, "<missing>", "<missing>",
                                                          "<missing>"]
    # loaded again where it was built, it keeps the parent it had
    with open(out, "rb") as f:
        archive.load(eng.images, f)
    assert eng.images.inspect("built:1")["Parent"] == steps[2]


def test_a_parent_must_exist_and_is_never_the_image_itself(eng):
    base = eng.images.get("busybox")
    before = eng.images.store.state()
    missing = "sha256:" + "0" * 64
    config = dict(base.config, created="2020-01-01T00:00:00Z")
    with pytest.raises(NotFound, match="No such image: %s" % missing):
        eng.images.put_image(config, base.manifest["layers"], parent=missing)
    assert eng.images.store.state() == before
    image_id = eng.images.put_image(config, base.manifest["layers"], parent=base.id)
    assert eng.images.inspect(image_id)["Parent"] == base.id
    # a second put (another parent, or itself) does not change the record
    eng.images.put_image(config, base.manifest["layers"], parent=image_id)
    assert eng.images.inspect(image_id)["Parent"] == base.id


def test_a_damaged_record_of_parents_neither_loops_nor_crashes(eng):
    """images.json edited by hand: two images each the other's parent, one parent not a
    string. Listing, history and removal end, and an image with a child is still refused."""
    top, steps = build(eng, ["built:1"])
    with eng.images.store.transaction() as state:
        state["images"][steps[1]]["parent"] = steps[2]
        state["images"][top]["parent"] = {"not": "an id"}
    assert ids(eng.images.list()) == set(steps)
    assert eng.images.inspect(top)["Parent"] == ""
    hist = eng.images.history(steps[2])
    assert [h["Id"] for h in hist] == [steps[2], steps[1], steps[2]]
    with pytest.raises(Conflict):
        eng.images.remove(steps[2])
    assert eng.images.remove("built:1") == [{"Untagged": "built:1"}, {"Deleted": top}]


# --- against dockerd ---------------------------------------------------------------------

OTHER = b"FROM busybox\nENV Q=1\nENV R=2\n"


def _roles(chain, names=("busybox", "env", "run", "top")):
    """Image ID (full and short) -> its name in the comparison."""
    out = {}
    for name, image_id in zip(names, chain):
        out[image_id] = out[image_id[7:19]] = name
    return out


def _lines(lines, roles):
    return [re.sub(r"sha256:[0-9a-f]{64}|\b[0-9a-f]{12}\b",
                   lambda m: roles.get(m.group(0), "?"), line) for line in lines]


def _rows(lines, roles):
    return sorted(_lines(lines, roles))


def _images_only(lines, roles):
    """rmi's lines without dockerd's lines for the layers it deletes (pyrunc has none)."""
    return [x for x in lines if not x.lower().startswith("deleted") or x[9:] in roles]


class Pydockerd:
    """pydockerd over an existing engine root (no network), for the docker CLI."""

    def __init__(self, root, work):
        self.sock = os.path.join(work, "docker.sock")
        self.exec_root = tempfile.mkdtemp(prefix="pp-", dir="/run")
        config = os.path.join(work, "daemon.json")
        with open(config, "w") as f:
            f.write("{}")
        self.env = dict(os.environ, DOCKER_HOST="unix://" + self.sock,
                        DOCKER_CONFIG=os.path.join(work, "client-config"))
        self.log = open(os.path.join(work, "pydockerd.log"), "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pyrunc.engine.dockerd", "-H", "unix://" + self.sock,
             "--data-root", root, "--exec-root", self.exec_root, "--config-file", config,
             "--pidfile", os.path.join(work, "pydockerd.pid"), "--bridge", "none",
             "--iptables=false"], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not self._ping():
            assert self.proc.poll() is None and time.monotonic() < deadline, \
                "pydockerd did not start"
            time.sleep(0.05)

    def _ping(self):
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(self.sock)
                s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                return b"200 OK" in s.recv(100)
            except OSError:
                return False

    def docker(self, *args):
        r = subprocess.run([docker_client(), *args], env=self.env, capture_output=True,
                           text=True, timeout=60)
        return (r.stdout + r.stderr).splitlines()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.exec_root, ignore_errors=True)


FMT = "{{.Repository}}:{{.Tag}} {{.ID}}"


def _cli_outputs(docker, roles):
    """What the docker CLI shows of a fresh build of DOCKERFILE tagged built:1."""
    return {"images": _rows(docker("images", "--no-trunc", "--format", FMT), roles),
            "images -a": _rows(docker("images", "-a", "--no-trunc", "--format", FMT), roles),
            "parent": _lines(docker("image", "inspect", "-f", "{{.Parent}}", "built:1",
                                    "busybox"), roles),
            "history": _lines(docker("history", "--format", "{{.ID}} {{.CreatedBy}}",
                                     "built:1"), roles)}


@pytest.mark.peer
def test_parents_as_dockerd_shows_them(eng, tmp_path, tmp_path_factory):
    if not os.path.exists(DOCKERD) or not docker_client() or not shutil.which("unshare"):
        pytest.skip("Debian's dockerd (package docker.io) and a docker CLI are not installed")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_bytes(DOCKERFILE)
    # a short directory: containerd's socket path under it must fit a socket address
    with Dockerd(str(tmp_path_factory.mktemp("dockerd"))) as d:
        d.env["DOCKER_BUILDKIT"] = "0"
        d.load_builtin("busybox")

        def docker(*args, check=True):
            r = d.docker(*args, check=check)
            return (r.stdout + r.stderr).splitlines()

        docker("build", "-t", "built:1", str(ctx))
        chain = docker("history", "-q", "--no-trunc", "built:1")[::-1]
        roles = _roles(chain)
        theirs_cli = _cli_outputs(docker, roles)
        fmt = "{{.Repository}}:{{.Tag}} {{.ID}}"
        theirs = {
            "images": _rows(docker("images", "--no-trunc", "--format", fmt), roles),
            "images -a": _rows(docker("images", "-a", "--no-trunc", "--format", fmt), roles),
            "dangling": _rows(docker("images", "-a", "-q", "-f", "dangling=true"), roles),
            "history": _rows(docker("history", "--no-trunc", "--format",
                                    "{{.ID}} {{.CreatedBy}}", "built:1"), roles),
            "rmi run": _rows(docker("rmi", chain[2], check=False), roles),
        }
        docker("tag", chain[2], "inter:1")
        # dockerd's rmi also prints the layers it deletes: only images are compared
        theirs["rmi built"] = _lines(_images_only(docker("rmi", "built:1"), roles), roles)
        theirs["rmi inter"] = _lines(_images_only(docker("rmi", "inter:1"), roles), roles)
        theirs["after"] = _rows(docker("images", "-a", "--no-trunc", "--format", fmt), roles)
        (ctx / "Dockerfile").write_bytes(OTHER)
        other = docker("build", "-q", str(ctx))[-1].strip()
        roles2 = _roles(docker("history", "-q", "--no-trunc", other)[::-1], ("busybox", "q", "r"))
        theirs["dangling 2"] = _rows(docker("images", "-q", "-f", "dangling=true"), roles2)
        theirs["prune"] = _rows(_images_only(docker("image", "prune", "-f")[1:-2], roles2),
                                roles2)
        theirs["after prune"] = _rows(docker("images", "-a", "--no-trunc", "--format", fmt),
                                      roles2)

    top, steps = build(eng, ["built:1"])
    roles = _roles(steps)
    svc = eng.images
    # the same through pydockerd's API and the same CLI
    pyd = Pydockerd(eng.root, str(tmp_path_factory.mktemp("pydockerd")))
    try:
        assert _cli_outputs(pyd.docker, roles) == theirs_cli
    finally:
        pyd.stop()

    def listing(**kw):
        return _rows(["%s %s" % ((s["RepoTags"] or ["<none>:<none>"])[0], s["Id"])
                      for s in svc.list(**kw)], roles)

    ours = {"images": listing(all_images=False), "images -a": listing(all_images=True),
            "dangling": _rows([s["Id"][7:19] for s in svc.list({"dangling": ["true"]})],
                              roles),
            "history": _rows(["%s %s" % (h["Id"], h["CreatedBy"])
                              for h in svc.history("built:1")], roles)}
    with pytest.raises(Conflict) as e:
        svc.remove(steps[2])
    ours["rmi run"] = _rows(["Error response from daemon: %s" % e.value], roles)
    svc.tag(steps[2], "inter:1")
    for key, name in (("rmi built", "built:1"), ("rmi inter", "inter:1")):
        ours[key] = _lines(["%s: %s" % next(iter(r.items())) for r in svc.remove(name)],
                           roles)
    ours["after"] = listing()
    top, steps = build(eng, dockerfile=OTHER)
    roles = _roles(steps, ("busybox", "q", "r"))
    ours["dangling 2"] = _rows([s["Id"][7:19] for s in svc.list({"dangling": ["true"]})],
                               roles)
    ours["prune"] = _rows(["deleted: %s" % r["Deleted"]
                           for r in svc.prune()["ImagesDeleted"] or ()], roles)
    ours["after prune"] = listing()
    assert ours == theirs
