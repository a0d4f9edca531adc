"""The device cgroup of a container is runc's in every case, with runc 1.1 as the oracle.

runc always starts a container's device cgroup from deny-all and applies the config's
``linux.resources.devices`` rules (none when ``linux.resources`` or its ``devices`` is absent)
followed by its default allow-list (mknod of any device, /dev/null, zero, full, random,
urandom, tty, ptmx, pts, tun). pyrunc once applied nothing when the config had no device rules:
the container's cgroup allowed every device (``a *:* rwm``), so a root with CAP_MKNOD could
make a node for the host's disk and open it. runc gives ``linux.devices`` entries no rule of
their own (/dev/fuse stays denied); an entry at a default device's path drops that default.
"""
import os
import subprocess
import tempfile

import pytest

from support import need, unique_id
from pyrunc.libcontainer import ocispec, specconv
from pyrunc.containerd.runtime import spec as runtime_spec

pytestmark = pytest.mark.usefixtures("private_mount_ns")

FUSE = {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666,
        "uid": 0, "gid": 0}


def _no_resources(spec):
    spec["linux"].pop("resources", None)


def _no_devices(spec):
    spec["linux"]["resources"] = {"pids": {"limit": 1000}}


def _empty_devices(spec):
    spec["linux"]["resources"] = {"devices": []}


def _example_rules(spec):
    """runc spec's own: deny all."""


def _fuse_device_only(spec):
    spec["linux"].pop("resources", None)
    spec["linux"]["devices"] = [FUSE]


def _fuse_device_and_rule(spec):
    spec["linux"]["devices"] = [FUSE]
    spec["linux"]["resources"]["devices"].append(
        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"})


def _allow_all_then_deny_disk(spec):
    spec["linux"]["resources"] = {"devices": [
        {"allow": True, "access": "rwm"},
        {"allow": False, "type": "b", "major": 8, "access": "rwm"}]}


CONFIGS = {
    "no-resources": _no_resources,
    "no-devices": _no_devices,
    "empty-devices": _empty_devices,
    "deny-all": _example_rules,
    "fuse-device-only": _fuse_device_only,
    "fuse-device-and-rule": _fuse_device_and_rule,
    "allow-all-deny-disk": _allow_all_then_deny_disk,
}


def _run(binary, root, *args):
    """The command's outcome; output goes to files: a created container inherits them."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.run([binary, "--root", root, *args], stdin=subprocess.DEVNULL,
                              stdout=out, stderr=err, timeout=60)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.read().decode(),
                                           err.read().decode())


def _v1_devices_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            rest = fields[fields.index("-") + 1:]
            if rest[0] == "cgroup" and "devices" in rest[2].split(","):
                return fields[4]
    return None


def _bundle(make_bundle, args, mutate, cgroup):
    def change(spec):
        mutate(spec)
        spec["root"]["readonly"] = False            # for the nodes the scripts make in /tmp
        caps = spec["process"]["capabilities"]      # the threat: a root that may mknod
        for kind in ("bounding", "effective", "permitted"):
            caps[kind] = caps.get(kind, []) + ["CAP_MKNOD"]
        spec["linux"]["cgroupsPath"] = "/" + cgroup
    return make_bundle(args, mutate=change)


@pytest.mark.peer
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_devices_list_is_runcs(name, make_bundle, pyrunc_bin, tmp_path):
    """The kernel's devices.list of the created container's cgroup, pyrunc's and runc's."""
    runc = need("runc")
    mount = _v1_devices_mount()
    if mount is None:
        pytest.skip("this host has no cgroup v1 devices controller (devices.list)")
    lists = {}
    for tool, binary in (("runc", runc), ("pyrunc", pyrunc_bin)):
        cgroup = unique_id("devlist")
        bundle = _bundle(make_bundle, ["sleep", "60"], CONFIGS[name], cgroup)
        root = str(tmp_path / ("state-" + tool))
        cid = unique_id(tool)
        try:
            r = _run(binary, root, "create", "--bundle", bundle, cid)
            assert r.returncode == 0, (tool, r.stderr)
            with open(os.path.join(mount, cgroup, "devices.list")) as f:
                lists[tool] = sorted(f.read().splitlines())
        finally:
            _run(binary, root, "delete", "--force", cid)
    assert lists["pyrunc"] == lists["runc"]
    if name != "allow-all-deny-disk":   # the kernel lists a default-allow cgroup as a *:* rwm
        assert "a *:* rwm" not in lists["runc"], lists["runc"]


DISK_SCRIPT = ("echo x > /dev/null && head -c 1 /dev/zero | od -An -tx1 && "
               "head -c 1 /dev/urandom > /dev/null && echo ok; "
               "mknod /tmp/sda b 8 0; echo mknod=$?; head -c 1 /tmp/sda > /dev/null; echo open=$?; "
               "mknod /tmp/fuse c 10 229; head -c 1 /tmp/fuse; echo fuse=$?")


@pytest.mark.peer
@pytest.mark.parametrize("name", ["no-resources", "no-devices", "fuse-device-only"])
def test_host_disk_cannot_be_opened_as_under_runc(name, make_bundle, pyrunc_bin, tmp_path):
    """Inside the container: /dev/null, /dev/zero and /dev/urandom work; a node for the disk
    8:0 (and for /dev/fuse) can be made (mknod of any device is allowed) but opening it is
    refused by the device cgroup (EPERM), under pyrunc as under runc."""
    runc = need("runc")
    outs = {}
    for tool, binary in (("runc", runc), ("pyrunc", pyrunc_bin)):
        bundle = _bundle(make_bundle, ["sh", "-c", DISK_SCRIPT], CONFIGS[name], unique_id("disk"))
        root = str(tmp_path / ("state-" + tool))
        cid = unique_id(tool)
        try:
            r = _run(binary, root, "run", "--bundle", bundle, cid)
            assert r.returncode == 0, (tool, r.stderr)
            outs[tool] = (r.stdout.split(), r.stderr.count("Operation not permitted"))
        finally:
            _run(binary, root, "delete", "--force", cid)
    assert outs["runc"] == (["00", "ok", "mknod=0", "open=1", "fuse=1"], 2), outs["runc"]
    assert outs["pyrunc"] == outs["runc"]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_cgroup_v2_gets_a_device_program_in_every_case(name, tmp_path):
    """runc attaches its device filter on cgroup v2 whatever the config says; the program's
    rules start from deny-all (no rule allows every device unless the config's does)."""
    from pyrunc.libcontainer.cgroups import v2
    spec = runtime_spec.example_spec(args=["true"])
    CONFIGS[name](spec)
    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    resources = specconv.cgroup_resources(ocispec.from_dict(spec))
    programs = [rules for _, file, rules, _ in v2.planned_writes(resources)
                if file == v2.DEVICE_PROGRAM]
    assert len(programs) == 1
    rules = programs[0]
    assert any(r.allow and (r.type, r.major, r.minor) == ("c", 1, 3) for r in rules)
    if name != "allow-all-deny-disk":
        assert not any(r.allow and r.type == "a" for r in rules)


@pytest.mark.peer
def test_update_leaves_the_device_rules_as_runc_does(make_bundle, pyrunc_bin, tmp_path):
    """``update --resources`` with an allow-all device rule: runc ignores ``devices`` (the
    pids limit in the same file is set), so the cgroup keeps the config's rules."""
    runc = need("runc")
    mount = _v1_devices_mount()
    if mount is None:
        pytest.skip("this host has no cgroup v1 devices controller (devices.list)")
    update = tmp_path / "resources.json"
    update.write_text('{"devices": [{"allow": true, "access": "rwm"}], "pids": {"limit": 500}}')
    lists = {}
    for tool, binary in (("runc", runc), ("pyrunc", pyrunc_bin)):
        cgroup = unique_id("devupdate")
        bundle = _bundle(make_bundle, ["sleep", "60"], _no_resources, cgroup)
        root = str(tmp_path / ("state-" + tool))
        cid = unique_id(tool)
        try:
            r = _run(binary, root, "create", "--bundle", bundle, cid)
            assert r.returncode == 0, (tool, r.stderr)
            r = _run(binary, root, "update", "--resources", str(update), cid)
            assert r.returncode == 0, (tool, r.stderr)
            with open(os.path.join(mount, cgroup, "devices.list")) as f:
                lists[tool] = sorted(f.read().splitlines())
            pids = os.path.join(os.path.dirname(mount), "pids", cgroup, "pids.max")
            if os.path.exists(pids):
                with open(pids) as f:
                    assert f.read().strip() == "500", tool
        finally:
            _run(binary, root, "delete", "--force", cid)
    assert "a *:* rwm" not in lists["runc"], lists["runc"]
    assert lists["pyrunc"] == lists["runc"]
