"""System endpoints through the docker CLIs and SDK: version, info, events, system df, login;
and volumes (create, ls, inspect, rm, prune) with docker's output and errors."""
import json
import os
import re
import threading
import time

import pytest


def test_version(dockerd, cli):
    r = dockerd.docker("version", cli=cli)
    out = r.stdout
    assert "Server:" in out
    assert re.search(r"^  API version:\s+1\.43 \(minimum version 1\.24\)$", out, re.M)
    assert re.search(r"^  OS/Arch:\s+linux/", out, re.M)
    assert re.search(r"^ containerd:$", out, re.M)


def test_info(dockerd, cli, tmp_path):
    dockerd.docker("pull", "busybox")
    fmt = "{{.Images}} {{.Containers}} {{.OSType}} {{.DockerRootDir}} {{.DefaultRuntime}}"
    images, containers, ostype, root, runtime = dockerd.docker("info", "--format", fmt,
                                                               cli=cli).stdout.split()
    assert (images, containers, ostype) == ("1", "0", "linux")
    assert root == dockerd.root and runtime == "pyrunc"
    out = dockerd.docker("info", cli=cli).stdout
    # the lines of docker info that name this daemon's settings
    assert re.search(r"^ Registry Mirrors:\n  %s/$" % re.escape(dockerd.mirror_url), out,
                     re.M), out
    assert re.search(r"^ Kernel Version: %s$" % re.escape(os.uname().release), out, re.M)
    assert re.search(r"^ CPUs: %d$" % os.cpu_count(), out, re.M)
    assert re.search(r"^ Live Restore Enabled: true$", out, re.M)


def test_system_df(dockerd):
    dockerd.docker("pull", "busybox")
    dockerd.docker("volume", "create", "dfvol")
    out = dockerd.docker("system", "df").stdout.splitlines()
    assert re.split(r"\s{2,}", out[0].strip())[:3] == ["TYPE", "TOTAL", "ACTIVE"]
    rows = {re.split(r"\s{2,}", line.strip())[0]: re.split(r"\s{2,}", line.strip())
            for line in out[1:]}
    assert rows["Images"][1] == "1"
    assert rows["Local Volumes"][1] == "1"
    doc = json.loads(dockerd.request("GET", "/system/df")[2])
    assert doc["Images"][0]["RepoTags"] == ["busybox:latest"]
    assert doc["Images"][0]["SharedSize"] == 0
    assert doc["Volumes"][0]["Name"] == "dfvol"
    # an image on top of busybox shares its layer: docker system df -v shows it shared
    container = dockerd.docker("create", "busybox", "true").stdout.strip()
    dockerd.docker("commit", container, "ontop:1")
    dockerd.docker("rm", container)
    docs = {i["RepoTags"][0]: i for i in json.loads(dockerd.request("GET",
                                                                    "/system/df")[2])["Images"]}
    base = docs["busybox:latest"]
    assert base["SharedSize"] == docs["ontop:1"]["SharedSize"] > 0
    assert base["SharedSize"] <= base["Size"]
    for cli in ("docker28", "docker20"):
        out = dockerd.docker("system", "df", "-v", cli=cli).stdout
        row = [line for line in out.splitlines() if line.startswith("busybox ")][0]
        size, shared, unique = re.split(r"\s{2,}", row.strip())[4:7]
        assert size != "0B" and shared not in ("N/A", "0B") and unique == "0B", (cli, row)


def test_events_since_until_and_filters(dockerd):
    t0 = int(time.time())
    dockerd.docker("pull", "busybox")
    dockerd.docker("tag", "busybox", "ev/bb:1")
    dockerd.docker("volume", "create", "ev1")
    dockerd.docker("volume", "rm", "ev1")
    t1 = int(time.time()) + 1
    out = dockerd.docker("events", "--since", t0, "--until", t1, "--format",
                         "{{.Type}} {{.Action}}").stdout.splitlines()
    assert "image pull" in out and "image tag" in out
    assert out.index("volume create") < out.index("volume destroy")
    only = dockerd.docker("events", "--since", t0, "--until", t1, "--filter", "type=volume",
                          "--format", "{{.Action}} {{.Actor.ID}}").stdout.splitlines()
    assert only == ["create ev1", "destroy ev1"]
    r = dockerd.docker("events", "--since", t1 + 100, "--until", t0, check=False)
    assert r.returncode != 0 and "cannot be after" in r.stderr
    r = dockerd.docker("events", "--filter", "bogus=1", "--until", t1, check=False)
    assert r.returncode != 0 and "bogus" in r.stderr


def test_events_follow_with_sdk(dockerd):
    client = dockerd.client()
    got = []
    stream = client.events(decode=True, filters={"type": "volume"})

    def read():
        for event in stream:
            got.append(event)
            if len(got) == 2:
                return
    t = threading.Thread(target=read, daemon=True)
    t.start()
    time.sleep(0.5)
    client.volumes.create("followed")
    client.volumes.get("followed").remove()
    t.join(15)
    stream.close()
    client.close()
    assert [(e["Action"], e["Actor"]["ID"]) for e in got] == [("create", "followed"),
                                                             ("destroy", "followed")]
    assert all(e["scope"] == "local" and isinstance(e["timeNano"], int) for e in got)


def test_volumes_with_cli(dockerd, cli):
    r = dockerd.docker("volume", "create", "--label", "k=v", "vol1", cli=cli)
    assert r.stdout.strip() == "vol1"
    anon = dockerd.docker("volume", "create", cli=cli).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", anon)
    out = dockerd.docker("volume", "ls", cli=cli).stdout.splitlines()
    assert re.split(r"\s+", out[0].strip()) == ["DRIVER", "VOLUME", "NAME"]
    assert sorted(re.split(r"\s+", line.strip())[1] for line in out[1:]) == sorted([anon,
                                                                                    "vol1"])
    doc = json.loads(dockerd.docker("volume", "inspect", "vol1", cli=cli).stdout)[0]
    assert (doc["Name"], doc["Driver"], doc["Labels"]) == ("vol1", "local", {"k": "v"})
    assert os.path.isdir(doc["Mountpoint"]) and doc["Mountpoint"].startswith(dockerd.root)
    names = dockerd.docker("volume", "ls", "-q", "--filter", "label=k=v", cli=cli).stdout
    assert names.split() == ["vol1"]
    r = dockerd.docker("volume", "inspect", "nosuch", check=False, cli=cli)
    assert r.returncode != 0 and "no such volume" in r.stderr.lower()
    r = dockerd.docker("volume", "create", "bad/name", check=False, cli=cli)
    assert r.returncode != 0 and "bad/name" in r.stderr
    assert dockerd.docker("volume", "rm", "vol1", cli=cli).stdout.strip() == "vol1"
    assert not os.path.exists(doc["Mountpoint"])
    r = dockerd.docker("volume", "prune", "-f", cli=cli)
    assert "Total reclaimed space" in r.stdout
    left = dockerd.docker("volume", "ls", "-q").stdout.split()
    if cli == "docker28":   # API >= 1.42: prune takes only anonymous volumes by default
        assert left == []


def test_volumes_with_sdk(dockerd):
    client = dockerd.client()
    try:
        v = client.volumes.create("sdkvol", labels={"a": "b"})
        assert client.volumes.get("sdkvol").attrs["Labels"] == {"a": "b"}
        assert [x.name for x in client.volumes.list()] == ["sdkvol"]
        v.remove()
        with pytest.raises(Exception) as info:
            client.volumes.get("sdkvol")
        assert info.value.response.status_code == 404
    finally:
        client.close()


def test_login_against_registry(dockerd, auth_registry):
    r = dockerd.docker("login", "-u", "alice", "--password-stdin", auth_registry.domain,
                       input="wonderland\n")
    assert "Login Succeeded" in r.stdout
    r = dockerd.docker("login", "-u", "alice", "--password-stdin", auth_registry.domain,
                       input="wrong\n", check=False)
    assert r.returncode != 0 and "401 Unauthorized" in r.stderr
    # the daemon stored nothing: credentials travel with each request
    assert not [f for f in os.listdir(dockerd.root) if "config" in f and f.endswith("json")]


def test_system_prune(dockerd, cli):
    dockerd.docker("pull", "busybox")
    dockerd.docker("volume", "create")
    r = dockerd.docker("system", "prune", "-a", "-f", "--volumes", cli=cli)
    assert "untagged: busybox:latest" in r.stdout
    assert "Total reclaimed space" in r.stdout
    assert dockerd.docker("images", "-q").stdout.strip() == ""
    assert dockerd.docker("volume", "ls", "-q").stdout.strip() == ""


def test_container_events_as_docker(dockerd):
    """The reference flow: docker run --rm, then docker events over the last minute."""
    dockerd.docker("pull", "busybox")
    dockerd.docker("run", "--rm", "--name", "evx", "busybox", "true")
    # the CLI sends --until 0s as whole seconds: what happened in this second comes after it
    # (dockerd answers the same), so let the second pass
    time.sleep(1.1)
    out = dockerd.docker("events", "--since", "1m", "--until", "0s", "--filter",
                         "type=container", "--format",
                         "{{.Status}} {{.Actor.Attributes.name}}").stdout.splitlines()
    assert [x for x in out if x.endswith(" evx")] == ["create evx", "attach evx", "start evx",
                                                      "die evx", "destroy evx"]


def test_push_and_pull_with_request_credentials(dockerd, auth_registry):
    """Credentials travel with each request (X-Registry-Auth): refused without a login,
    accepted after one."""
    dockerd.docker("pull", "busybox")
    target = "%s/private/bb:1" % auth_registry.domain
    dockerd.docker("tag", "busybox", target)
    r = dockerd.docker("push", target, check=False)
    assert r.returncode != 0
    assert "unauthorized" in (r.stdout + r.stderr).lower() or "401" in r.stdout + r.stderr
    dockerd.docker("login", "-u", "alice", "--password-stdin", auth_registry.domain,
                   input="wonderland\n")
    r = dockerd.docker("push", target)
    assert re.search(r"^1: digest: sha256:[0-9a-f]{64} size: \d+$", r.stdout, re.M)
    dockerd.docker("rmi", target)
    r = dockerd.docker("pull", target)
    assert "Downloaded newer image for %s" % target in r.stdout
    dockerd.docker("logout", auth_registry.domain)
    dockerd.docker("rmi", target)
    t0 = time.monotonic()
    r = dockerd.docker("pull", target, check=False)
    assert r.returncode != 0
    assert "pull access denied for %s" % target.rsplit(":", 1)[0] in r.stderr
    assert "Username" not in r.stdout + r.stderr    # a 404, as dockerd: the CLI asks nothing
    assert time.monotonic() - t0 < 10
