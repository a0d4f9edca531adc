"""The engine's inspect and list documents against Debian's dockerd, field by field.

The same container request (built by the docker SDK's own helpers, so the oracle for the
request's shape is docker's too) goes to dockerd, in its own network namespace, and to the
engine; the documents must have the same keys, and the same values wherever the value is not
particular to one daemon (IDs, times, PIDs, paths of its store, its network).
"""
import os
import shutil

import pytest

from dockerd_peer import DOCKERD, Dockerd

docker = pytest.importorskip("docker", reason="the docker SDK (pip package docker) is not installed")

pytestmark = pytest.mark.peer

# Values particular to one daemon: present in both, compared only for their type.
PARTICULAR = {
    "Id", "Created", "Pid", "StartedAt", "FinishedAt", "ResolvConfPath", "HostnamePath",
    "HostsPath", "LogPath", "Hostname", "Image", "GraphDriver", "SandboxID", "SandboxKey",
    "NetworkSettings", "Source", "Name", "Driver", "Runtime", "Mountpoint", "MergedDir",
    "UpperDir", "WorkDir", "LowerDir", "EndpointID", "MacAddress", "IPAddress", "Gateway",
    "NetworkID", "Networks", "Platform", "CgroupParent", "MountLabel", "ProcessLabel",
    "AppArmorProfile", "ExecIDs", "Isolation", "CgroupnsMode", "NetworkMode", "SizeRw",
    "SizeRootFs", "ImageID", "Ports", "Status",
}

# Paths docker masks since 20.10 (the dockerd here), as docker 28 does and the engine does:
# with dockerd 20.10 the engine's list must be dockerd's plus exactly these.
MASKED_SINCE_20_10 = {"/proc/interrupts", "/sys/devices/virtual/powercap"}


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory):
    if not os.path.exists(DOCKERD) or not shutil.which("unshare"):
        pytest.skip("Debian's dockerd (package docker.io) is not installed")
    with Dockerd(str(tmp_path_factory.mktemp("dockerd"))) as d:
        d.load_builtin("busybox")
        yield d


def request(client):
    """What `docker run -d --name N -e A=1 -l team=x -m 64m -w /tmp busybox sleep 300` sends."""
    host = client.api.create_host_config(mem_limit="64m", binds=None)
    config = client.api.create_container_config(
        "busybox", ["sleep", "300"], environment=["A=1"], labels={"team": "x"},
        working_dir="/tmp", host_config=host)
    config.pop("HostConfig")
    return config, host


def compare(ours, theirs, path=""):
    """Differences between two JSON documents: missing or extra keys, different values."""
    diffs = []
    if isinstance(theirs, dict) and isinstance(ours, dict):
        for key in sorted(set(theirs) | set(ours)):
            where = "%s.%s" % (path, key)
            if key not in ours:
                diffs.append("%s: missing (dockerd has %r)" % (where, theirs[key]))
            elif key not in theirs:
                diffs.append("%s: extra (dockerd has none)" % where)
            elif key in PARTICULAR:
                if theirs[key] is not None and ours[key] is not None and \
                        type(ours[key]) is not type(theirs[key]):
                    diffs.append("%s: %s, dockerd's is %s" % (
                        where, type(ours[key]).__name__, type(theirs[key]).__name__))
            else:
                diffs += compare(ours[key], theirs[key], where)
    elif ours != theirs:
        diffs.append("%s: %r, dockerd's is %r" % (path, ours, theirs))
    return diffs


def run_both(engine, dockerd, name):
    client = docker.DockerClient(base_url=dockerd.host, version="1.41")
    config, host = request(client)
    theirs = client.api.create_container(**_sdk_args(config, host), name=name)["Id"]
    client.api.start(theirs)
    ours = engine.containers.create(dict(config), dict(host), name=name)["Id"]
    engine.containers.start(ours)
    return client, ours, theirs


def _sdk_args(config, host):
    return {"image": config["Image"], "command": config["Cmd"], "environment": config["Env"],
            "labels": config["Labels"], "working_dir": config["WorkingDir"],
            "host_config": host}


def test_inspect_matches_dockerd(engine, dockerd):
    client, ours, theirs = run_both(engine, dockerd, "inspect-vs-dockerd")
    try:
        mine = engine.containers.inspect(ours)
        ref = client.api.inspect_container(theirs)
        masked = mine["HostConfig"].pop("MaskedPaths")
        assert set(masked) - set(ref["HostConfig"].pop("MaskedPaths")) == MASKED_SINCE_20_10
        diffs = compare(mine, ref)
        # The Config and HostConfig the user asked for must agree exactly where they overlap.
        for section in ("Config", "HostConfig"):
            for key in ("Cmd", "Env", "Labels", "WorkingDir", "Memory", "Entrypoint", "Tty",
                        "OpenStdin", "RestartPolicy", "ShmSize", "ReadonlyRootfs", "Privileged"):
                if key in ref[section]:
                    if mine[section].get(key) != ref[section][key] and not (
                            section == "Config" and key == "Env"):
                        diffs.append("%s.%s: %r, dockerd's is %r" % (
                            section, key, mine[section].get(key), ref[section][key]))
        assert mine["State"]["Status"] == ref["State"]["Status"] == "running"
        assert sorted(mine["Config"]["Env"]) == sorted(ref["Config"]["Env"])
        assert not diffs, "\n".join(diffs)
    finally:
        client.api.remove_container(theirs, force=True)
        engine.containers.remove(ours, force=True)


def test_list_matches_dockerd(engine, dockerd):
    client, ours, theirs = run_both(engine, dockerd, "list-vs-dockerd")
    try:
        mine = [c for c in engine.containers.list() if c["Id"] == ours]
        ref = [c for c in client.api.containers() if c["Id"] == theirs]
        assert len(mine) == len(ref) == 1
        diffs = compare(mine[0], ref[0])
        assert mine[0]["Command"] == ref[0]["Command"]
        assert mine[0]["Names"] == ref[0]["Names"]
        assert mine[0]["State"] == ref[0]["State"]
        assert not diffs, "\n".join(diffs)
    finally:
        client.api.remove_container(theirs, force=True)
        engine.containers.remove(ours, force=True)


def test_exited_state_matches_dockerd(engine, dockerd):
    client = docker.DockerClient(base_url=dockerd.host, version="1.41")
    theirs = client.api.create_container("busybox", ["sh", "-c", "exit 3"])["Id"]
    client.api.start(theirs)
    client.api.wait(theirs)
    ours = engine.containers.create({"Image": "busybox", "Cmd": ["sh", "-c", "exit 3"]})["Id"]
    engine.containers.start(ours)
    engine.containers.wait(ours)
    try:
        mine, ref = engine.containers.inspect(ours)["State"], client.api.inspect_container(theirs)["State"]
        assert compare(mine, ref) == []
        assert mine["Status"] == ref["Status"] == "exited"
        assert mine["ExitCode"] == ref["ExitCode"] == 3
    finally:
        client.api.remove_container(theirs, force=True)
        engine.containers.remove(ours, force=True)
