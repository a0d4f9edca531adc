"""Images through pydockerd with the real docker CLIs and the docker SDK: pull from the loopback
mirror (docker's progress output), list, inspect, history, tag, rmi, save/load, import, push,
prune, search; names missing from the mirror fail at once."""
import io
import json
import re
import tarfile
import time

import pytest

DIGEST = re.compile(r"^Digest: sha256:[0-9a-f]{64}$")


def test_pull_from_mirror_prints_docker_output(dockerd, cli):
    r = dockerd.docker("pull", "busybox", cli=cli)
    lines = r.stdout.splitlines()
    # the lines docker 28 prints against dockerd (reference output of docker pull)
    assert lines[0] == "Using default tag: latest"
    assert lines[1] == "latest: Pulling from library/busybox"
    assert any(line.endswith(": Pull complete") for line in lines)
    assert any(DIGEST.match(line) for line in lines)
    assert "Status: Downloaded newer image for busybox:latest" in lines
    if cli == "docker28":
        assert lines[-1] == "docker.io/library/busybox:latest"
    again = dockerd.docker("pull", "busybox:latest", cli=cli).stdout.splitlines()
    assert "Status: Image is up to date for busybox:latest" in again
    assert not any("Pull complete" in line for line in again)


def test_pull_missing_fails_at_once(dockerd):
    t0 = time.monotonic()
    r = dockerd.docker("pull", "nosuchimage:1.0", check=False)
    elapsed = time.monotonic() - t0
    assert r.returncode != 0
    assert r.stderr.startswith("Error response from daemon: ")
    assert "nosuchimage" in r.stderr
    assert elapsed < 10, "a name missing from the mirror took %.1fs" % elapsed
    r = dockerd.docker("pull", "Bad//Name", check=False)
    assert r.returncode != 0 and "invalid reference format" in r.stderr


def test_images_list_inspect_history(dockerd, cli):
    dockerd.docker("pull", "busybox")
    out = dockerd.docker("images", cli=cli).stdout.splitlines()
    assert re.split(r"\s{2,}", out[0].strip())[:3] == ["REPOSITORY", "TAG", "IMAGE ID"]
    row = re.split(r"\s{2,}", out[1].strip())
    assert row[:2] == ["busybox", "latest"] and re.fullmatch(r"[0-9a-f]{12}", row[2])
    ids = dockerd.docker("images", "-q", "--no-trunc", cli=cli).stdout.split()
    doc = json.loads(dockerd.docker("image", "inspect", "busybox", cli=cli).stdout)[0]
    assert ids == [doc["Id"]]
    assert doc["RepoTags"] == ["busybox:latest"]
    assert doc["Config"]["Cmd"] == ["sh"]
    hist = dockerd.docker("history", "--no-trunc", "--format", "{{.ID}}", "busybox",
                          cli=cli).stdout.split()
    assert hist[0] == doc["Id"]
    r = dockerd.docker("images", "--filter", "reference=nomatch*", "-q", cli=cli)
    assert r.stdout.strip() == ""
    r = dockerd.docker("images", "--filter", "bogus=1", check=False, cli=cli)
    assert r.returncode != 0 and "invalid filter 'bogus'" in r.stderr
    r = dockerd.docker("image", "inspect", "nosuch", check=False, cli=cli)
    assert r.returncode != 0 and "No such image: nosuch" in r.stderr


def test_tag_and_rmi(dockerd, cli):
    dockerd.docker("pull", "busybox")
    dockerd.docker("tag", "busybox", "mine/bb:v1", cli=cli)
    tags = json.loads(dockerd.docker("image", "inspect", "busybox").stdout)[0]["RepoTags"]
    assert sorted(tags) == ["busybox:latest", "mine/bb:v1"]
    r = dockerd.docker("rmi", "mine/bb:v1", cli=cli)
    assert r.stdout.strip() == "Untagged: mine/bb:v1"
    r = dockerd.docker("rmi", "busybox", cli=cli)
    assert r.stdout.splitlines()[0] == "Untagged: busybox:latest"
    assert any(line.startswith("Deleted: sha256:") for line in r.stdout.splitlines())
    assert dockerd.docker("images", "-q").stdout.strip() == ""
    r = dockerd.docker("rmi", "busybox", check=False, cli=cli)
    assert r.returncode != 0
    assert "No such image: busybox" in r.stderr


def test_save_load_roundtrip(dockerd, tmp_path):
    dockerd.docker("pull", "busybox")
    archive = tmp_path / "bb.tar"
    dockerd.docker("save", "-o", archive, "busybox")
    with tarfile.open(archive) as t:
        manifest = json.load(t.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == ["busybox:latest"]
    image_id = json.loads(dockerd.docker("image", "inspect", "busybox").stdout)[0]["Id"]
    dockerd.docker("rmi", "busybox")
    r = dockerd.docker("load", "-i", archive)
    assert "Loaded image: busybox:latest" in r.stdout
    assert json.loads(dockerd.docker("image", "inspect", "busybox").stdout)[0]["Id"] == \
        image_id
    r = dockerd.docker("load", input="this is not a tar", check=False)
    assert r.returncode != 0 and "not a valid archive" in r.stderr + r.stdout
    r = dockerd.docker("save", "nosuch", check=False)
    assert r.returncode != 0 and "nosuch" in r.stderr


def test_import_rootfs(dockerd, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = b"imported\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    path = tmp_path / "root.tar"
    path.write_bytes(buf.getvalue())
    r = dockerd.docker("import", "--change", "CMD [\"/hello\"]", "-m", "from a test", path,
                       "imported:1")
    image_id = r.stdout.strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", image_id)
    doc = json.loads(dockerd.docker("image", "inspect", "imported:1").stdout)[0]
    assert doc["Id"] == image_id and doc["Config"]["Cmd"] == ["/hello"]
    assert doc["Comment"] == "from a test"
    r = dockerd.docker("import", "http://127.0.0.1:1/x.tar", check=False)
    assert r.returncode != 0 and "not supported" in r.stderr


def test_push_to_loopback_registry(dockerd, mirror):
    dockerd.docker("pull", "busybox")
    target = "%s/pushed/bb:v1" % mirror.domain
    dockerd.docker("tag", "busybox", target)
    r = dockerd.docker("push", target)
    assert "The push refers to repository [%s/pushed/bb]" % mirror.domain in r.stdout
    assert re.search(r"^v1: digest: sha256:[0-9a-f]{64} size: \d+$", r.stdout, re.M)
    dockerd.docker("rmi", target)
    r = dockerd.docker("pull", target)
    assert "Status: Downloaded newer image for %s" % target in r.stdout or \
        "Status: Image is up to date for %s" % target in r.stdout


def test_prune_and_search(dockerd):
    dockerd.docker("pull", "busybox")
    r = dockerd.docker("image", "prune", "-f")
    assert r.stdout.strip().endswith("Total reclaimed space: 0B")
    assert dockerd.docker("images", "-q").stdout.strip() != ""
    r = dockerd.docker("image", "prune", "-a", "-f")
    assert "untagged: busybox:latest" in r.stdout
    assert dockerd.docker("images", "-q").stdout.strip() == ""
    r = dockerd.docker("search", "busybox", check=False)
    assert r.returncode != 0 and "not supported" in r.stderr


def test_sdk_images(dockerd):
    client = dockerd.client()
    try:
        image = client.images.pull("busybox", tag="latest")
        assert "busybox:latest" in image.tags
        assert [i.id for i in client.images.list()] == [image.id]
        image.tag("sdk/bb", "t1")
        assert "sdk/bb:t1" in client.images.get(image.id).tags
        blob = b"".join(image.save())
        assert blob[:512].rstrip(b"\0")
        client.images.remove("sdk/bb:t1")
        with pytest.raises(Exception) as info:
            client.images.get("nosuch")
        assert info.value.response.status_code == 404
    finally:
        client.close()


def test_images_columns_as_docker(dockerd, cli):
    """The columns and rows of docker image ls as docker 28 prints them against dockerd."""
    dockerd.docker("pull", "busybox")
    dockerd.docker("pull", "hello-world")
    out = dockerd.docker("image", "ls", cli=cli).stdout.splitlines()
    assert re.split(r"\s{2,}", out[0].strip()) == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED",
                                                   "SIZE"]
    rows = sorted(re.split(r"\s{2,}", line.strip()) for line in out[1:])
    assert [r[:2] for r in rows] == [["busybox", "latest"], ["hello-world", "latest"]]
    assert all(re.fullmatch(r"[0-9.]+[kM]?B", r[4]) and r[4] != "0B" for r in rows), rows
    only = dockerd.docker("image", "ls", "busybox", cli=cli).stdout.splitlines()[1:]
    assert [re.split(r"\s{2,}", line.strip())[0] for line in only] == ["busybox"]
    out = dockerd.docker("image", "ls", "--digests", "busybox", cli=cli).stdout.splitlines()
    assert re.split(r"\s{2,}", out[0].strip())[:3] == ["REPOSITORY", "TAG", "DIGEST"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", re.split(r"\s{2,}", out[1].strip())[2])


def test_pull_all_tags(dockerd, mirror):
    """docker pull -a: every tag the mirror lists (a second tag pushed here first)."""
    dockerd.docker("pull", "busybox")
    target = "%s/library/busybox:second" % mirror.domain
    dockerd.docker("tag", "busybox", target)
    dockerd.docker("push", target)
    dockerd.docker("rmi", target, "busybox")
    r = dockerd.docker("pull", "-a", "busybox")
    assert "latest: Pulling from library/busybox" in r.stdout
    assert "second: Pulling from library/busybox" in r.stdout
    tags = dockerd.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert sorted(tags) == ["busybox:latest", "busybox:second"]
