"""How a container sees its cgroup: a real ``pyrunc run`` of a busybox bundle whose config has a
``cgroup`` mount (mount_steps), limits and its own cgroupsPath, with and without a cgroup
namespace. The limits are read from inside, the cgroup shows as the root inside a cgroup
namespace, and the mount is read-only as the spec's "ro" asks."""
import os
import subprocess
import uuid

import pytest

from support import exited

from pyrunc.libcontainer import cgroups

MB = 1 << 20
SCRIPT = """
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max
else
  cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max
fi
grep -E '^0::|:memory:' /proc/self/cgroup | cut -d: -f3
mkdir /sys/fs/cgroup/probe 2>/dev/null && echo writable || echo read-only
"""


@pytest.mark.parametrize("cgroupns", [False, True], ids=["host-cgroupns", "own-cgroupns"])
def test_container_sees_its_cgroup_and_limits(private_mount_ns, make_bundle, pyrunc_bin,
                                              tmp_path, cgroupns):
    name = "view-" + uuid.uuid4().hex[:8]
    path = "/pyrunc-cgroup-tests/" + name

    def mutate(spec):
        linux = spec["linux"]
        linux["resources"] = {"memory": {"limit": 48 * MB}, "pids": {"limit": 33}}
        linux["cgroupsPath"] = path
        linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != "cgroup"]
        if cgroupns:
            linux["namespaces"].append({"type": "cgroup"})
        assert any(m["type"] == "cgroup" and "ro" in m.get("options", []) for m in spec["mounts"])

    bundle = make_bundle(["sh", "-c", SCRIPT], mutate=mutate)
    try:
        r = subprocess.run([pyrunc_bin, "--root", str(tmp_path / "state"), "run", "--bundle",
                            bundle, name], capture_output=True, text=True, timeout=60)
    finally:
        for d in set(cgroups.new_manager(path, name).paths().values()):
            for leftover in (d, os.path.dirname(d)):
                try:
                    os.rmdir(leftover)
                except OSError:
                    pass
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert lines[:2] == [str(48 * MB), "33"]
    inside = lines[2:-1]
    assert all(p == "/" for p in inside) if cgroupns else all(p.endswith(path) for p in inside)
    assert inside and lines[-1] == "read-only"


def _cgroup_lines(pid):
    with open("/proc/%d/cgroup" % pid) as f:
        return [line.split(":", 2)[2] for line in f.read().splitlines()
                if line.startswith("0::") or ":memory:" in line]


def _unit(unit):
    """What systemd (not pyrunc) says of a unit: {"ActiveState": ..., "ControlGroup": ...}."""
    out = subprocess.run(["systemctl", "show", "-p", "ActiveState", "-p", "ControlGroup", unit],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_a_created_container_is_in_its_cgroup_until_deleted(private_mount_ns, make_bundle,
                                                            pyrunc_bin, tmp_path, driver):
    """The init of a created container is in the cgroup its config names, as the kernel reports
    it; with --systemd-cgroup that cgroup is a scope systemd itself runs (a directory made
    behind systemd's back would pass the kernel's check only). Delete takes both away."""
    name = "place-" + uuid.uuid4().hex[:8]
    if driver == "systemd":
        path, flags = "system.slice:pyrunc-test:" + name, ["--systemd-cgroup"]
        unit = "pyrunc-test-%s.scope" % name
        expected = "/system.slice/" + unit
    else:
        path, flags, unit = "/pyrunc-cgroup-tests/" + name, [], None
        expected = path

    def mutate(spec):
        spec["linux"]["cgroupsPath"] = path

    bundle = make_bundle(["sleep", "60"], mutate=mutate)
    cmd = [pyrunc_bin, "--root", str(tmp_path / "state")] + flags
    pid = None
    try:
        with open(tmp_path / "create.err", "w+") as err:     # the init keeps create's stdio
            r = subprocess.run(cmd + ["create", "--bundle", bundle, "--pid-file",
                                      str(tmp_path / "pid"), name],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=err, timeout=60)
            err.seek(0)
            assert r.returncode == 0, err.read()
        pid = int((tmp_path / "pid").read_text())
        inside = _cgroup_lines(pid)
        assert inside and all(p.endswith(expected) for p in inside), inside
        if unit:
            state = _unit(unit)
            assert state == {"ActiveState": "active", "ControlGroup": expected}, state
    finally:
        d = subprocess.run(cmd + ["delete", "--force", name], capture_output=True, text=True,
                           timeout=60)
    assert d.returncode == 0, d.stderr
    assert exited(pid)
    if unit:
        assert _unit(unit)["ActiveState"] != "active"
    else:
        for directory in set(cgroups.new_manager(path, name).paths().values()):
            assert not os.path.exists(directory)
            try:
                os.rmdir(os.path.dirname(directory))
            except OSError:
                pass
