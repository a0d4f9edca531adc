"""Where a container's cgroup goes: mountinfo and /proc/self/cgroup parsing and runc's path
rules, on texts from hybrid, unified and namespaced hosts (no host access)."""
import posixpath

import pytest
from hypothesis import given, strategies as st

from pyrunc.errors import InvalidArgument
from pyrunc.libcontainer.cgroups import hierarchy

HYBRID_MOUNTINFO = """\
30 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid shared:11 - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:12 - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 / /sys/fs/cgroup/memory rw,nosuid shared:13 - cgroup cgroup rw,memory
35 30 0:31 / /sys/fs/cgroup/pids rw,nosuid shared:14 - cgroup cgroup rw,pids
"""
HYBRID_SELF = """\
12:pids:/user.slice
4:memory:/user.slice/session-1.scope
3:cpu,cpuacct:/
1:name=systemd:/user.slice/session-1.scope
0::/user.slice/session-1.scope
"""
UNIFIED_MOUNTINFO = ("29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - "
                     "cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n")


def test_hybrid_host_uses_v1_and_joins_the_unified_hierarchy():
    layout = hierarchy.layout_from(HYBRID_MOUNTINFO, HYBRID_SELF)
    assert (layout.mode, layout.version) == ("hybrid", 1)
    dirs = layout.dirs("/ctr/abc", "abc")
    assert dirs["cpu"] == dirs["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct/ctr/abc"
    assert dirs["memory"] == "/sys/fs/cgroup/memory/ctr/abc"
    assert dirs["name=systemd"] == "/sys/fs/cgroup/systemd/ctr/abc"
    assert dirs[""] == "/sys/fs/cgroup/unified/ctr/abc"


def test_relative_path_is_under_this_process_cgroup():
    layout = hierarchy.layout_from(HYBRID_MOUNTINFO, HYBRID_SELF)
    dirs = layout.dirs("", "abc")              # empty: the container id, relative
    assert dirs["memory"] == "/sys/fs/cgroup/memory/user.slice/session-1.scope/abc"
    assert dirs["pids"] == "/sys/fs/cgroup/pids/user.slice/abc"
    assert dirs["cpu"] == "/sys/fs/cgroup/cpu,cpuacct/abc"
    # on cgroup2 a relative path starts beside a .scope, whose processes block controllers
    assert dirs[""] == "/sys/fs/cgroup/unified/user.slice/abc"


def test_unified_host_and_climbing_paths_are_cleaned():
    layout = hierarchy.layout_from(UNIFIED_MOUNTINFO, "0::/system.slice/x.service\n")
    assert (layout.mode, layout.version) == ("unified", 2)
    assert layout.dirs("../../../etc", "c") == {"": "/sys/fs/cgroup/system.slice/x.service/etc"}
    assert layout.dirs("/a/../../b", "c") == {"": "/sys/fs/cgroup/b"}


def test_inside_a_cgroup_namespace_the_mount_root_is_taken_off():
    mountinfo = ("40 30 0:30 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
                 "41 30 0:31 /docker/abc /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n")
    layout = hierarchy.layout_from(mountinfo, "4:memory:/docker/abc/inner\n5:pids:/\n")
    dirs = layout.dirs("c1", "c1")
    assert dirs["memory"] == "/sys/fs/cgroup/memory/inner/c1"
    assert dirs["pids"] == "/sys/fs/cgroup/pids/c1"


def test_root_cgroup_is_refused():
    layout = hierarchy.layout_from(UNIFIED_MOUNTINFO, "0::/\n")
    with pytest.raises(InvalidArgument, match=r"^linux.cgroupsPath: '/' names the root cgroup"):
        layout.dirs("/", "x")


def test_mountinfo_escapes_are_decoded():
    line = r"40 30 0:30 / /mnt/with\040space rw - cgroup2 cgroup2 rw" + "\n"
    assert hierarchy.parse_mountinfo(line)[0].mountpoint == "/mnt/with space"


path_part = st.sampled_from(["a", "b", "..", ".", "", "x.slice", "c:d"])


@given(st.lists(path_part, max_size=8), st.booleans())
def test_clean_path_never_climbs(parts, absolute):
    raw = ("/" if absolute else "") + "/".join(parts)
    absolute = raw.startswith("/")
    cleaned = hierarchy.clean_path(raw)
    if not raw:
        assert cleaned == ""
        return
    assert ".." not in cleaned.split("/")
    assert cleaned.startswith("/") == absolute
    assert hierarchy.clean_path(cleaned) == cleaned
    assert posixpath.normpath(posixpath.join("/base", cleaned)).startswith("/base") or absolute


controller_names = st.lists(st.sampled_from(hierarchy.V1_CONTROLLERS), min_size=1, max_size=3,
                            unique=True)
cgroup_paths = st.lists(st.sampled_from(["a", "b.slice", "c.scope", "d-1"]), max_size=4).map(
    lambda p: "/" + "/".join(p))


@given(st.lists(st.tuples(controller_names, cgroup_paths), max_size=6), cgroup_paths)
def test_proc_cgroup_parses_what_the_kernel_writes(v1, v2):
    text = "".join("%d:%s:%s\n" % (i + 1, ",".join(c), p) for i, (c, p) in enumerate(v1))
    text += "0::%s\n" % v2
    parsed = hierarchy.parse_proc_cgroup(text)
    assert parsed[""] == v2
    expected = {}
    for controllers, path in v1:
        for c in controllers:
            expected[c] = path
    assert {k: v for k, v in parsed.items() if k} == expected
