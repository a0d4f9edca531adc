"""HostConfig options: docker's messages for bad values, the parsers under hypothesis, and every
spec build_spec accepts valid against the runtime spec's JSON Schema."""
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc.errors import InvalidArgument
from pyrunc.engine.oci import build_spec, options, validate_host_config
from pyrunc.libcontainer import ocispec

CMD = {"Cmd": ["true"]}


@pytest.fixture
def rootfs(tmp_path):
    r = tmp_path / "rootfs"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    return str(r)


def build(rootfs, host_config=None, config=CMD, **kw):
    return build_spec(config=config, host_config={} if host_config is None else host_config,
                      rootfs=rootfs,
                      container_dir=os.path.dirname(rootfs), mounts=kw.pop("mounts", []),
                      cgroups_path="/t/x", hostname="h", **kw)


@pytest.mark.parametrize("host_config, message", [
    ({"Memory": 1 << 20}, "Minimum memory limit allowed is 6MB"),
    ({"MemorySwap": 100 << 20}, "You should always set the Memory limit when using Memoryswap"),
    ({"Memory": 64 << 20, "MemorySwap": 32 << 20},
     "Minimum memoryswap limit should be larger than memory limit"),
    ({"MemoryReservation": 1 << 20}, "Minimum memory reservation allowed is 6MB"),
    ({"Memory": 16 << 20, "MemoryReservation": 32 << 20},
     "Minimum memory limit can not be less than memory reservation limit"),
    ({"MemorySwappiness": 101}, "valid memory swappiness range is 0-100"),
    ({"NanoCpus": 10 ** 9, "CpuPeriod": 100000},
     "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
    ({"NanoCpus": 10 ** 9, "CpuQuota": 100000},
     "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
    ({"NanoCpus": 10 ** 12}, "Range of CPUs is from 0.01 to"),
    ({"NanoCpus": -1}, "Range of CPUs is from 0.01 to"),
    ({"CpuPeriod": 10}, "CPU cfs period can not be less than 1ms"),
    ({"CpuQuota": 10}, "CPU cfs quota can not be less than 1ms"),
    ({"CpuQuota": -5}, "invalid CPU value"),
    ({"CpusetCpus": "0-"}, "Invalid value 0- for cpuset cpus"),
    ({"CpusetCpus": "9999"}, "Requested CPUs are not available - requested 9999, available: "),
    ({"CpusetMems": "a"}, "Invalid value a for cpuset mems"),
    ({"BlkioWeight": 5}, "Range of blkio weight is from 10 to 1000"),
    ({"CapAdd": ["NET_FOO"]}, 'unknown capability: "CAP_NET_FOO"'),
    ({"CapDrop": ["cap_bogus"]}, 'unknown capability: "CAP_BOGUS"'),
    ({"SecurityOpt": ["nonsense"]}, 'invalid --security-opt 1: "nonsense"'),
    ({"SecurityOpt": ["foo=bar"]}, 'invalid --security-opt 2: "foo=bar"'),
    ({"SecurityOpt": ["no-new-privileges=maybe"]},
     'invalid --security-opt 2: "no-new-privileges=maybe"'),
    ({"SecurityOpt": ["seccomp={bad json"]}, "Decoding seccomp profile failed"),
    ({"Devices": [{"PathOnHost": "/etc/hostname"}]},
     'error gathering device information while adding custom device "/etc/hostname": '
     'not a device node'),
    ({"Devices": [{"PathOnHost": "/nonexistent/dev"}]},
     'adding custom device "/nonexistent/dev": no such file or directory'),
    ({"Devices": [{"PathOnHost": "/dev/null", "CgroupPermissions": "rwx"}]},
     "invalid device mode: rwx"),
    ({"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "dev/null"}]},
     "bad format for path: dev/null"),
    ({"Ulimits": [{"Name": "nofiles", "Soft": 1, "Hard": 1}]}, "invalid ulimit type: nofiles"),
    ({"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 1}]},
     "ulimit soft limit must be less than or equal to hard limit: 10 > 1"),
    ({"Sysctls": {"kernel.domainname": "x"}}, "sysctl 'kernel.domainname' is not allowed"),
    ({"Sysctls": {"vm.swappiness": "1"}}, "sysctl 'vm.swappiness' is not allowed"),
    ({"Sysctls": {"net.ipv4.ip_forward": "1"}, "NetworkMode": "host"},
     "sysctl 'net.ipv4.ip_forward' is not allowed in host network namespace"),
    ({"Sysctls": {"kernel.shmmax": "1"}, "IpcMode": "host"},
     "sysctl 'kernel.shmmax' is not allowed in host ipc namespace"),
    ({"Sysctls": {"net..x": "1"}}, "is not allowed"),
    ({"Tmpfs": {"relative": ""}}, "mount path must be absolute"),
    ({"Tmpfs": {"/": ""}}, "destination can't be '/'"),
    ({"Tmpfs": {"/t": "size=1m,bogus"}}, 'Invalid tmpfs option "bogus"'),
    ({"ShmSize": -1}, "SHM size can not be less than 0"),
    ({"OomScoreAdj": 1001}, "Invalid value 1001, range for oom score adj is [-1000, 1000]"),
    ({"Memory": "lots"}, "HostConfig.Memory: must be an integer"),
    ({"CapAdd": "ALL"}, "HostConfig.CapAdd: must be an array of strings"),
    ({"Privileged": "yes"}, "HostConfig.Privileged: must be a boolean"),
    ({"PidMode": "container:x"}, "invalid PidMode"),
    ({"DeviceCgroupRules": ["c 1:3"]}, "invalid device cgroup rule format: 'c 1:3'"),
    ({"DeviceCgroupRules": ["x 1:3 rwm"]}, "invalid device cgroup rule format"),
    ({"DeviceCgroupRules": ["c 1:99999999999 r"]}, "invalid device cgroup rule format"),
    ({"BlkioDeviceReadBps": [{"Path": "/nonexistent", "Rate": 1}]},
     "error getting blkio device /nonexistent: no such file or directory"),
    ({"BlkioDeviceReadBps": [{"Path": "/etc/hostname", "Rate": 1}]}, "not a device node"),
    ({"BlkioDeviceReadBps": [{"Path": "/dev/null", "Rate": -1}]}, "integer >= 0"),
    ({"BlkioWeightDevice": [{"Path": "/dev/null", "Weight": 5}]},
     "Range of blkio weight is from 10 to 1000"),
    ([], "HostConfig: must be an object"),
])
def test_docker_messages(rootfs, host_config, message):
    with pytest.raises(InvalidArgument) as e:
        validate_host_config(host_config)
    assert message in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(InvalidArgument):
        build(rootfs, host_config)


@pytest.mark.parametrize("config, message", [
    ({}, "no command specified"),
    ({"Cmd": [], "Entrypoint": []}, "no command specified"),
    ({"Cmd": ["a\0b"]}, "NUL"),
    ({"Cmd": ["x"], "WorkingDir": "relative"},
     "the working directory 'relative' is invalid, it needs to be an absolute path"),
    ({"Cmd": ["x"], "Env": ["=x"]}, "invalid environment variable: =x"),
    ({"Cmd": ["x"], "Env": [3]}, "invalid environment variable"),
    ({"Cmd": ["x"], "User": "ghost"},
     "unable to find user ghost: no matching entries in passwd file"),
    ({"Cmd": ["x"], "Tty": "yes"}, "Config.Tty: must be a boolean"),
])
def test_config_messages(rootfs, config, message):
    with pytest.raises(InvalidArgument) as e:
        build(rootfs, {}, config)
    assert message in str(e.value)


def test_warnings():
    warnings = validate_host_config({"CpuShares": -5, "SecurityOpt": ["label=disable",
                                                                     "apparmor=x"]})
    assert "Changing requested CPUShares of -5 to minimum allowed of 2" in warnings
    assert sum("ignored" in w for w in warnings) == 2


def test_devices_from_symlink_and_directory(tmp_path):
    os.symlink("/dev/null", tmp_path / "link")
    (tmp_path / "devs").mkdir()
    os.mknod(tmp_path / "devs" / "z", 0o640 | 0o020000, os.makedev(1, 5))
    (tmp_path / "devs" / "plain").write_text("x")
    devs, rules = options.devices([{"PathOnHost": str(tmp_path / "link"),
                                    "PathInContainer": "/dev/n", "CgroupPermissions": "rw"},
                                   {"PathOnHost": str(tmp_path / "devs"),
                                    "PathInContainer": "/dev/sub"}])
    assert [(d["path"], d["type"], d["major"], d["minor"]) for d in devs] == \
        [("/dev/n", "c", 1, 3), ("/dev/sub/z", "c", 1, 5)]
    assert devs[1]["fileMode"] == 0o640
    assert rules == [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
                     {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"}]


def test_environment():
    env = options.environment(["PATH=/x", "A=1", "HOSTNAME=mine", "A=2", "B", "TERM"],
                              hostname="h", tty=True)
    assert env == ["PATH=/x", "HOSTNAME=mine", "A=2"]
    assert options.environment([], hostname="h", tty=False) == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=h"]


def test_capabilities_rules():
    default = list(options.capabilities([], [], False))
    assert len(default) == 14 and "CAP_NET_RAW" in default
    assert options.capabilities(["ALL"], ["chown"], False) == [
        c for c in options.all_capabilities() if c != "CAP_CHOWN"]
    assert options.capabilities(["net_admin"], ["ALL"], False) == ["CAP_NET_ADMIN"]
    assert options.capabilities([], [], True) == options.all_capabilities()


def test_tmpfs_option_merge():
    assert options.merge_tmpfs_options(["noexec", "nosuid", "nodev", "rprivate", "exec",
                                        "size=1m", "size=2m", "shared"]) == \
        ["nosuid", "nodev", "exec", "size=2m", "shared"]


# -- hypothesis ------------------------------------------------------------------------------

def reference_list(text):
    """A cpuset list read the slow, obvious way (the oracle for parse_list)."""
    if text == "":
        return set()
    out = set()
    for part in text.split(","):
        bounds = part.split("-")
        if len(bounds) > 2 or not all(b and b.isdigit() and b.isascii() for b in bounds):
            return None
        lo, hi = int(bounds[0]), int(bounds[-1])
        if hi < lo or hi > options.MAX_CPUSET_ID:
            return None
        out.update(range(lo, hi + 1))
    return out


@settings(max_examples=500, deadline=None)
@given(text=st.text("0123456789,-", max_size=10) | st.sampled_from(["65536", "65537",
                                                                   "0-65536", "1-0"]))
def test_cpuset_list(text):
    got, want = options.parse_list(text), reference_list(text)
    assert got == want


@settings(max_examples=300, deadline=None)
@given(names=st.lists(st.text(max_size=12) | st.sampled_from(
    ["all", "ALL", "net_admin", "CAP_SYS_ADMIN", "Cap_Chown", "sys_time"]), max_size=4))
def test_capability_names(names):
    try:
        got = options.normalize_capabilities(names)
    except InvalidArgument as e:
        assert str(e).startswith("unknown capability: \"CAP_") and "\n" not in str(e)
        return
    for name, out in zip(names, got):
        assert out == "ALL" if name.upper() == "ALL" else out.endswith(name.upper().replace(
            "CAP_", "", 1) if name.upper().startswith("CAP_") else name.upper())


@settings(max_examples=300, deadline=None)
@given(opts=st.lists(st.text(max_size=20) | st.sampled_from(
    ["no-new-privileges", "no-new-privileges=true", "no-new-privileges:false",
     "seccomp=unconfined", "label=disable", "apparmor=p", "systempaths=unconfined"]),
    max_size=4))
def test_security_options_never_crash(opts):
    try:
        parsed = options.security_options(opts)
    except InvalidArgument as e:
        assert "invalid --security-opt" in str(e)
        return
    assert isinstance(parsed.no_new_privileges, bool)


HOSTILE_VALUES = st.none() | st.booleans() | st.integers(-2 ** 65, 2 ** 65) | \
    st.text(max_size=10) | st.lists(st.text(max_size=6), max_size=3) | \
    st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3)
KEYS = ["Memory", "MemorySwap", "MemoryReservation", "MemorySwappiness", "NanoCpus",
        "CpuShares", "CpuQuota", "CpuPeriod", "CpusetCpus", "CpusetMems", "PidsLimit",
        "BlkioWeight", "OomScoreAdj", "ShmSize", "CapAdd", "CapDrop", "SecurityOpt",
        "Sysctls", "Tmpfs", "Ulimits", "Privileged", "ReadonlyRootfs", "Init", "NetworkMode",
        "IpcMode", "PidMode", "UTSMode", "GroupAdd", "MaskedPaths", "ReadonlyPaths", "Devices",
        "DeviceCgroupRules", "BlkioDeviceReadBps", "BlkioWeightDevice"]
GOOD_VALUES = {
    "Memory": st.sampled_from([0, 6 << 20, 64 << 20]), "MemorySwap": st.sampled_from([0, -1]),
    "CpuShares": st.integers(-10, 300000), "PidsLimit": st.none() | st.integers(-1, 100),
    "OomScoreAdj": st.integers(-1000, 1000), "ShmSize": st.integers(0, 1 << 30),
    "CapAdd": st.lists(st.sampled_from(["NET_ADMIN", "ALL", "sys_time"]), max_size=2),
    "CapDrop": st.lists(st.sampled_from(["CHOWN", "ALL", "kill"]), max_size=2),
    "SecurityOpt": st.lists(st.sampled_from(["no-new-privileges", "seccomp=unconfined",
                                             "label=disable"]), max_size=2),
    "Sysctls": st.dictionaries(st.sampled_from(["net.ipv4.ip_forward", "kernel.shmmax",
                                                "fs.mqueue.msg_max"]),
                               st.sampled_from(["1", "100"]), max_size=2),
    "Tmpfs": st.dictionaries(st.sampled_from(["/a", "/b/c", "/tmp"]),
                             st.sampled_from(["", "size=1m", "exec,mode=700"]), max_size=2),
    "Ulimits": st.lists(st.builds(lambda n, s: {"Name": n, "Soft": s, "Hard": s + 1},
                                  st.sampled_from(["nofile", "nproc", "core"]),
                                  st.integers(0, 1000)), max_size=2),
    "Privileged": st.booleans(), "ReadonlyRootfs": st.booleans(), "Init": st.booleans(),
    "NetworkMode": st.sampled_from(["", "host", "bridge", "none"]),
    "GroupAdd": st.lists(st.sampled_from(["5", "100"]), max_size=2),
}


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hc=st.fixed_dictionaries({}, optional={k: HOSTILE_VALUES for k in KEYS}))
def test_hostile_host_config(rootfs, hc):
    """Anything an API client sends: InvalidArgument in one line, or a valid spec."""
    try:
        spec = build(rootfs, hc)
    except InvalidArgument as e:
        assert "\n" not in str(e)
        return
    assert ocispec.validate_schema(json.loads(json.dumps(spec))) == []


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hc=st.fixed_dictionaries({}, optional=GOOD_VALUES))
def test_valid_options_give_schema_valid_specs(rootfs, hc):
    if hc.get("NetworkMode") == "host":       # net.* sysctls need a network namespace
        hc["Sysctls"] = {k: v for k, v in hc.get("Sysctls", {}).items()
                         if not k.startswith("net.")}
    spec = build(rootfs, hc)
    assert ocispec.validate_schema(json.loads(json.dumps(spec))) == []
    caps = spec["process"]["capabilities"]
    assert caps["bounding"] == caps["effective"] == caps["permitted"]
    assert ("seccomp" in spec["linux"]) == (not hc.get("Privileged") and
                                            "seccomp=unconfined" not in hc.get("SecurityOpt", []))
    destinations = [m["destination"] for m in spec["mounts"]]
    assert len(destinations) == len(set(destinations))


@pytest.mark.parametrize("mounts, message", [
    ([{"destination": 5}], "mounts[0]: must be an OCI mount with a destination"),
    (["/x"], "mounts[0]: must be an OCI mount with a destination"),
    ([{"destination": "/x", "type": "bind", "source": "/y", "options": "ro"}],
     "runtime config: mounts["),
    ([{"destination": "/x\0y", "type": "bind", "source": "/y"}], "runtime config: mounts["),
])
def test_hostile_mounts(rootfs, mounts, message):
    with pytest.raises(InvalidArgument) as e:
        build(rootfs, {}, mounts=mounts)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_user_mounts_sorted_after_defaults(rootfs):
    mounts = [{"destination": "/a/b/c", "type": "bind", "source": "/y", "options": ["rbind"]},
              {"destination": "/a", "type": "bind", "source": "/z", "options": ["rbind"]},
              {"destination": "/proc", "type": "bind", "source": "/p", "options": ["rbind"]}]
    spec = build(rootfs, {"Tmpfs": {"/a/b": ""}}, mounts=mounts)
    dests = [m["destination"] for m in spec["mounts"]]
    assert dests.count("/proc") == 1 and dests.index("/proc") > dests.index("/dev/shm")
    assert dests.index("/a") < dests.index("/a/b") < dests.index("/a/b/c")
