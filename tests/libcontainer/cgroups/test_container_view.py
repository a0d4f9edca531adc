"""How a container sees its cgroup: a real ``pyrunc run`` of a busybox bundle whose config has a
``cgroup`` mount (mount_steps), limits and its own cgroupsPath, with and without a cgroup
namespace. The limits are read from inside, the cgroup shows as the root inside a cgroup
namespace, and the mount is read-only as the spec's "ro" asks."""
import os
import subprocess
import uuid

import pytest

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
