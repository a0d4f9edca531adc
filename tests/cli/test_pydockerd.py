"""pydocker and the docker 28 CLI against pydockerd: the same commands, the same answers."""
import os
import re

import pytest

from .conftest import DOCKER28, reference
from .flows import container_flow, image_flow, same

pytestmark = pytest.mark.skipif(not os.path.exists(DOCKER28),
                                reason="docker 28 CLI (%s) is not installed" % DOCKER28)


def test_container_flow(pyd):
    container_flow(pyd, "busybox")


def test_image_flow(pyd):
    image_flow(pyd, "busybox")


def test_run_pulls_then_runs(pyd):
    """The seed's first flow: "Unable to find image" then the pull, as the reference shows."""
    r = pyd.pydocker("run", "--rm", "hello-world")
    assert r.code == 0, r
    assert "Hello from Docker!" in r.out
    lines = r.err.splitlines()
    assert lines[0] == "Unable to find image 'hello-world:latest' locally"
    assert lines[1] == "latest: Pulling from library/hello-world"
    assert re.fullmatch(r"[0-9a-f]{12}: Pulling fs layer", lines[2])
    assert lines[-2].startswith("Digest: sha256:")
    assert lines[-1] == "Status: Downloaded newer image for hello-world:latest"
    ref = reference("docker28-run.txt")
    shape = [re.sub(r"[0-9a-f]{12}:", "L:", x) for x in lines[2:-2]]
    assert all(s in ref.replace("d37baf56f4b5:", "L:") for s in shape)
    r = pyd.pydocker("pull", "hello-world")
    assert r.out.splitlines() == [
        "Using default tag: latest", "latest: Pulling from library/hello-world",
        lines[-2], "Status: Image is up to date for hello-world:latest",
        "docker.io/library/hello-world:latest"]


def test_run_failures_exit_codes(pyd):
    """127 for a command that is not there, 125 for what docker itself refuses (the docker CLI
    is not compared here: against pydockerd it waits for a removal that never comes)."""
    r = pyd.pydocker("run", "--rm", "busybox", "nosuchcmd")
    assert r.code == 127, r
    assert r.err.startswith("pydocker: Error response from daemon: ")
    assert "executable file not found" in r.err
    assert r.err.endswith("\n\nRun 'pydocker run --help' for more information\n")
    assert pyd.pydocker("ps", "-aq").out == ""
    r = pyd.pydocker("run", "--rm", "busybox", "/nonexistent")
    assert r.code == 127, r
    r = pyd.pydocker("run", "--restart", "always", "--rm", "busybox", "true")
    assert r.code == 125 and "Conflicting options" in r.err
    r = pyd.pydocker("run", "NoSuch:Image")
    assert r.code == 125
    r = same(pyd, "run", "--rm", "nosuchimage-xyz")
    assert r.code == 125


def test_daemon_errors(pyd):
    for args in (["rm", "nosuch"], ["stop", "nosuch"], ["rmi", "nosuch:latest"],
                 ["logs", "nosuch"], ["exec", "nosuch", "true"], ["pull", "nosuch/image:x"],
                 ["volume", "inspect", "nosuch"], ["image", "inspect", "nosuch"],
                 ["container", "inspect", "nosuch"], ["inspect", "--type", "volume", "x"],
                 ["inspect", "nosuch", "busybox", "-f", "{{.Os}}"]):
        r = same(pyd, *args)
        assert r.code == 1 and r.err.startswith(("Error response from daemon: ", "Error: ",
                                                 "[]")), (args, r)


def _runtimes_in_order(info):
    """docker info's text with its Runtimes line sorted: the docker CLI prints that line in
    the order it walks a Go map, which changes from run to run."""
    return re.sub(r"(?m)^( Runtimes: )(.*)$",
                  lambda m: m.group(1) + " ".join(sorted(m.group(2).split())), info)


def test_version_info_layout(pyd):
    r = pyd.pydocker("version")
    d = pyd.docker("version")
    assert r.code == d.code == 0
    mine = r.out.split("\nServer:", 1)[1]
    theirs = d.out.split("\nServer:", 1)[1]
    assert mine == theirs
    r, d = pyd.pydocker("info"), pyd.docker("info")
    assert _runtimes_in_order(r.out.split("Server:", 1)[1]) == \
        _runtimes_in_order(d.out.split("Server:", 1)[1])
    r, d = pyd.pydocker("system", "df"), pyd.docker("system", "df")
    assert r.out == d.out


def test_events_and_save_load(pyd, tmp_path):
    tar = tmp_path / "busybox.tar"
    assert pyd.pydocker("save", "-o", tar, "busybox").code == 0
    assert tar.stat().st_size > 100000
    assert pyd.pydocker("rmi", "busybox").code == 0
    r = pyd.pydocker("load", "-i", tar)
    assert r.code == 0 and "Loaded image: busybox:latest" in r.out, r
    r = same(pyd, "events", "--since", "0", "--until", "1", "--filter", "type=image",
             "--format", "{{.Type}} {{.Action}}")
    assert "image load" in r.out or "image tag" in r.out or r.out == ""


def test_login_logout_config(pyd, tmp_path):
    """login writes ~/.docker/config.json's auths as docker does; logout removes it."""
    import base64
    import json
    cfg = os.path.join(pyd.config_dir, "config.json")
    r = pyd.pydocker("logout", "example.invalid")
    assert r.out == "Not logged in to example.invalid\n"
    with open(cfg, "w") as f:
        json.dump({"auths": {"example.invalid": {"auth": base64.b64encode(b"u:p").decode()}},
                   "psFormat": "table {{.Names}}\t{{.Status}}"}, f)
    pyd.pydocker("run", "-d", "--name", "fmt1", "busybox", "sleep", "30")
    r = pyd.pydocker("ps")
    assert r.out.splitlines()[0].split() == ["NAMES", "STATUS"]
    r = pyd.pydocker("logout", "example.invalid")
    assert r.out == "Removing login credentials for example.invalid\n"
    with open(cfg) as f:
        assert json.load(f)["auths"] == {}


def test_files_flow(pyd, tmp_path):
    from .flows import files_flow
    files_flow(pyd, "busybox", tmp_path)


def test_contexts(pyd):
    """A context made by pydocker is one docker 28 reads (the same files), and --context,
    DOCKER_CONTEXT and `context use` pick the daemon; ls as docker's."""
    from .conftest import Target
    t = Target("unix:///nonexistent/none.sock", pyd.config_dir)
    r = t.pydocker("context", "create", "pyd", "--docker", "host=" + pyd.host,
                   "--description", "under test")
    assert (r.code, r.out, r.err) == (0, "pyd\n", 'Successfully created context "pyd"\n'), r
    assert t.pydocker("ps").code == 1
    assert t.pydocker("--context", "pyd", "ps").code == 0
    assert t.docker("--context", "pyd", "ps").code == 0
    r = t.pydocker("context", "use", "pyd")
    assert r.out == "pyd\n" and r.err == 'Current context is now "pyd"\n'
    env_free = Target(pyd.host, pyd.config_dir)
    del env_free.env["DOCKER_HOST"]
    assert env_free.pydocker("images", "-q").out == pyd.pydocker("images", "-q").out != ""
    mine = env_free.pydocker("context", "ls")
    theirs = env_free.docker("context", "ls")
    # the header and the "pyd *" row (the default row names each client's default socket)
    for i in (0, 2):
        assert mine.out.splitlines()[i].split() == theirs.out.splitlines()[i].split()
    assert mine.out.splitlines()[2].split()[:2] == ["pyd", "*"]
    r = t.pydocker("context", "rm", "pyd")
    assert r.code == 1 and "is in use" in r.err
    assert t.pydocker("context", "use", "default").code == 0
    assert t.pydocker("context", "rm", "pyd").out == "pyd\n"
    assert "pyd" not in t.docker("context", "ls", "-q").out.split()


def test_push(pyd):
    """Push to the loopback registry: the first push uploads, and a repeated push prints what
    docker 28 prints for it on the same daemon."""
    domain = pyd.daemon.mirror_url.split("://", 1)[1].rstrip("/")
    target = "%s/cli/pushed:1" % domain
    assert pyd.pydocker("tag", "busybox", target).code == 0
    r = pyd.pydocker("push", target)
    assert r.code == 0, r
    lines = r.out.splitlines()
    assert lines[0] == "The push refers to repository [%s/cli/pushed]" % domain
    assert any(re.fullmatch(r"[0-9a-f]{12}: Pushed", x) for x in lines), r.out
    assert re.fullmatch(r"1: digest: sha256:[0-9a-f]{64} size: \d+", lines[-1]), r.out
    again = same(pyd, "push", target)
    assert "Layer already exists" in again.out
