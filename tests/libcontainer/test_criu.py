"""What pyrunc tells CRIU, checked without running it (tests/containerd/runtime/test_checkpoint.py
runs it for real where the kernel lets it): every cgroup mount a container can see has a key
that restore maps to the new container's cgroup, on this host's layout."""
import pytest

from pyrunc.errors import InvalidArgument, Unavailable
from pyrunc.libcontainer import cgroups, criu
from pyrunc.libcontainer.cgroups import hierarchy


def test_every_cgroup_mount_of_this_host_maps_to_the_new_cgroup():
    with open("/proc/self/mountinfo") as f:
        mounts = hierarchy.parse_mountinfo(f.read())
    assert mounts
    targets = criu.cgroup_mount_map(cgroups.new_manager(None, "criu-keys"))
    for m in mounts:
        assert criu.cgroup_key(m) in targets, m


def test_keys_name_the_hierarchy():
    v1 = hierarchy.Mount("/sys/fs/cgroup/cpu,cpuacct", "/", "cgroup", ("cpu", "cpuacct"))
    named = hierarchy.Mount("/sys/fs/cgroup/systemd", "/", "cgroup", ("name=systemd",))
    v2 = hierarchy.Mount("/sys/fs/cgroup", "/", "cgroup2", ())
    assert [criu.cgroup_key(m) for m in (v1, named, v2)] == [
        "cgroup-cpu", "cgroup-name=systemd", "cgroup2"]


def test_bind_mounts_of_a_config():
    config = {"mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                         {"destination": "/data", "type": "bind", "source": "/srv/data"},
                         {"destination": "/etc/x", "source": "/x", "options": ["rbind", "ro"]}]}
    assert criu.bind_mounts(config) == [("/data", "/srv/data"), ("/etc/x", "/x")]


def test_options_are_checked():
    with pytest.raises(InvalidArgument, match="^--manage-cgroups-mode: 'loose' is not one of"):
        criu.Options("img", manage_cgroups_mode="loose")
    with pytest.raises(InvalidArgument, match="^--parent-path: must be relative"):
        criu.Options("img", parent_path="/abs")
    args = criu.Options("img", tcp_established=True, work_path="w").common_args("dump.log")
    assert "--tcp-established" in args and "--manage-cgroups=ignore" in args
    assert args[args.index("-W") + 1].endswith("/w")


def test_configs_pyrunc_cannot_checkpoint():
    with pytest.raises(Unavailable, match="^checkpoint: a container with a terminal"):
        criu.check_config({"process": {"terminal": True}}, "checkpoint")
    with pytest.raises(Unavailable, match="^restore: a container that joins a network namespace"):
        criu.check_config({"linux": {"namespaces": [{"type": "network", "path": "/x"}]}},
                          "restore")
