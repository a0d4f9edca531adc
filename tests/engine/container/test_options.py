"""Host options as the container's process sees them (/proc/self/status, /proc/mounts, id,
files), with pyrunc and runc. The oracles: the kernel's view from inside, the host's cgroup
files, and docker's documented values (its default capability mask is 0xa80425fb)."""
import os

import pytest

DOCKER_DEFAULT_CAPS = 0x00000000a80425fb


def _status_field(text, name):
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("%s not in status" % name)


def _cap_eff(out):
    return int(_status_field(out, "CapEff"), 16)


def test_default_capabilities_and_no_new_privs(engine, runtime, run_container):
    _, code, out, _ = run_container(engine, ["cat", "/proc/self/status"], runtime)
    assert code == 0
    assert _cap_eff(out) == DOCKER_DEFAULT_CAPS
    assert _status_field(out, "Seccomp") == "2"           # docker's default profile is on


def test_cap_drop_all_and_add_one(engine, runtime, run_container):
    _, _, out, _ = run_container(engine, ["cat", "/proc/self/status"], runtime,
                                 host_config={"CapDrop": ["ALL"], "CapAdd": ["CAP_KILL"]})
    assert _cap_eff(out) == 1 << 5                         # CAP_KILL is bit 5


def test_privileged_has_every_capability(engine, runtime, run_container):
    _, _, out, _ = run_container(engine, ["cat", "/proc/self/status"], runtime,
                                 host_config={"Privileged": True})
    with open("/proc/self/status") as f:
        ours = _cap_eff(f.read())
    assert _cap_eff(out) == ours
    assert _status_field(out, "Seccomp") == "0"


def test_readonly_rootfs(engine, runtime, run_container):
    _, code, _, err = run_container(engine, ["touch", "/newfile"], runtime,
                                    host_config={"ReadonlyRootfs": True})
    assert code == 1 and "Read-only file system" in err


def test_init_is_pid_one(engine, runtime, run_container):
    _, code, out, _ = run_container(engine, ["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"],
                                    runtime, host_config={"Init": True})
    assert code == 0 and out.startswith("/sbin/docker-init -- sh -c")


def test_memory_and_pids_limits_in_the_cgroup(engine, runtime):
    cs = engine.containers
    cid = cs.create({"Image": "busybox", "Cmd": ["sleep", "60"]},
                    {"Runtime": runtime, "Memory": 48 * 2**20, "PidsLimit": 33})["Id"]
    cs.start(cid)
    pid = cs.inspect(cid)["State"]["Pid"]
    groups = {}
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            _, names, path = line.rstrip("\n").split(":", 2)
            for n in names.split(","):
                groups[n] = path
    with open("/sys/fs/cgroup/memory%s/memory.limit_in_bytes" % groups["memory"]) as f:
        assert int(f.read()) == 48 * 2**20
    with open("/sys/fs/cgroup/pids%s/pids.max" % groups["pids"]) as f:
        assert f.read().strip() == "33"
    assert groups["memory"].endswith("/" + cid)
    hc = cs.inspect(cid)["HostConfig"]
    assert hc["MemorySwap"] == 2 * 48 * 2**20              # dockerd's default swap


def test_named_volume_outlives_its_container(engine, runtime, run_container):
    _, code, _, _ = run_container(engine, ["sh", "-c", "echo kept > /data/f"], runtime,
                                  host_config={"Binds": ["a1-shared:/data"]})
    assert code == 0
    _, code, out, _ = run_container(engine, ["cat", "/data/f"], runtime,
                                    host_config={"Binds": ["a1-shared:/data:ro"]})
    assert (code, out) == (0, "kept\n")
    for c in engine.containers.store.all():
        engine.containers.remove(c.id)
    engine.volumes.remove("a1-shared")


def test_anonymous_volume_gets_the_image_content(engine, runtime, run_container):
    cid, code, out, _ = run_container(engine, ["sh", "-c", "cat /etc/passwd | head -1; "
                                               "grep ' /etc ' /proc/mounts | wc -l"],
                                      runtime, Volumes={"/etc": {}})
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("root:")
    assert lines[1] == "1"
    mounts = engine.containers.inspect(cid)["Mounts"]
    assert [m["Destination"] for m in mounts] == ["/etc"] and mounts[0]["Type"] == "volume"
    assert os.path.exists(os.path.join(mounts[0]["Source"], "passwd"))
    name = mounts[0]["Name"]
    engine.containers.remove(cid, volumes=True)
    assert name not in {v["Name"] for v in engine.volumes.list()["Volumes"]}


def test_bind_read_only_and_tmpfs(engine, runtime, run_container, tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    (host / "in").write_text("from host\n")
    _, code, out, err = run_container(
        engine, ["sh", "-c", "cat /h/in; grep ' /scratch ' /proc/mounts | cut -d' ' -f3; "
                 "touch /h/x"], runtime,
        host_config={"Binds": ["%s:/h:ro" % host], "Tmpfs": {"/scratch": "size=1m"}})
    assert out.splitlines() == ["from host", "tmpfs"]
    assert code == 1 and "Read-only file system" in err
    assert not (host / "x").exists()


def test_host_network_keeps_the_hosts_names(engine, runtime, run_container):
    _, code, out, _ = run_container(
        engine, ["sh", "-c", "hostname; cat /etc/resolv.conf"], runtime,
        host_config={"NetworkMode": "host"})
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == os.uname().nodename
    with open("/etc/resolv.conf") as f:
        assert "\n".join(lines[1:]) == f.read().rstrip("\n")
