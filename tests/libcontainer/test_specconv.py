"""specconv: runtime config -> Plan, without running containers."""
import os
import subprocess
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc import errors
from pyrunc.containerd.runtime import spec as runtime_spec
from pyrunc.libcontainer import ocispec, specconv
from pyrunc.libcontainer.plan import MountStep, Namespace

# Kernel values (include/uapi/linux/mount.h, sched.h), written out independently of the code.
MS = dict(RDONLY=1, NOSUID=2, NODEV=4, NOEXEC=8, SYNCHRONOUS=16, REMOUNT=32, MANDLOCK=64,
          DIRSYNC=128, NOSYMFOLLOW=256, NOATIME=1024, NODIRATIME=2048, BIND=4096, REC=16384,
          SILENT=32768, POSIXACL=1 << 16, UNBINDABLE=1 << 17, PRIVATE=1 << 18, SLAVE=1 << 19,
          SHARED=1 << 20, RELATIME=1 << 21, I_VERSION=1 << 23, STRICTATIME=1 << 24,
          LAZYTIME=1 << 25)


@pytest.fixture
def bundle(tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                            "app:x:1000:1000::/home/app:/bin/sh\n")
    return str(tmp_path)


def example(**process):
    spec = runtime_spec.example_spec(args=["sh"], terminal=False)
    spec["mounts"] = [m for m in spec["mounts"] if m["type"] != "cgroup"]
    spec["process"].update(process)
    return spec


def plan_of(bundle, spec, **kw):
    return specconv.to_plan(ocispec.from_dict(spec), bundle, "c1", **kw)


def mount_with(bundle, options, type="tmpfs", source="tmpfs", destination="/mnt"):
    spec = example()
    spec["mounts"].append({"destination": destination, "type": type, "source": source,
                           "options": options})
    plan = plan_of(bundle, spec)
    return [m for m in plan.mounts if m.destination == destination][0]


def expect_invalid(bundle, spec, fragment, category=errors.InvalidArgument, **kw):
    with pytest.raises(category) as e:
        plan_of(bundle, spec, **kw)
    assert fragment in str(e.value)
    assert str(e.value).startswith("config.json: ")
    return str(e.value)


# -- the example config ---------------------------------------------------------------------

def test_example_spec(bundle):
    plan = plan_of(bundle, example())
    assert plan.rootfs == os.path.join(bundle, "rootfs")
    assert plan.readonly_root
    assert [n.flag for n in plan.namespaces] == [0x20000000, 0x40000000, 0x08000000,
                                                 0x04000000, 0x20000]
    assert plan.rootfs_propagation == 0      # runc's default (rslave) is the native core's
    assert plan.hostname == "runc"
    assert plan.args == ["sh"] and plan.cwd == "/"
    assert "HOME=/root" in plan.env
    assert plan.no_new_privileges
    assert [(r.resource, r.soft, r.hard) for r in plan.rlimits] == [(7, 1024, 1024)]
    mask = (1 << 29) | (1 << 5) | (1 << 10)   # AUDIT_WRITE, KILL, NET_BIND_SERVICE
    caps = plan.capabilities
    assert (caps.bounding, caps.effective, caps.permitted, caps.ambient) == (mask,) * 4
    assert caps.inheritable == 0
    assert plan.masked_paths[0] == "/proc/acpi" and "/proc/sys" in plan.readonly_paths


def test_example_mounts_in_order(bundle):
    plan = plan_of(bundle, example())
    mounts = [m for m in plan.mounts if m.kind == "mount"]
    assert [m.destination for m in mounts] == ["/proc", "/dev", "/dev/pts", "/dev/shm",
                                               "/dev/mqueue", "/sys"]
    dev = mounts[1]
    assert (dev.fstype, dev.source) == ("tmpfs", "tmpfs")
    assert dev.flags == MS["NOSUID"] | MS["STRICTATIME"]
    assert dev.data == "mode=755,size=65536k"
    pts = mounts[2]
    assert pts.data == "newinstance,ptmxmode=0666,mode=0620,gid=5"
    assert mounts[5].flags == MS["NOSUID"] | MS["NOEXEC"] | MS["NODEV"] | MS["RDONLY"]


def test_default_devices_and_links(bundle):
    plan = plan_of(bundle, example())
    assert [(d.path, d.kind, d.major, d.minor, d.mode) for d in plan.devices] == [
        ("/dev/null", "c", 1, 3, 0o666), ("/dev/random", "c", 1, 8, 0o666),
        ("/dev/full", "c", 1, 7, 0o666), ("/dev/tty", "c", 5, 0, 0o666),
        ("/dev/zero", "c", 1, 5, 0o666), ("/dev/urandom", "c", 1, 9, 0o666)]
    assert plan.dev_symlinks
    assert all(not d.bind for d in plan.devices)


# -- mount options ----------------------------------------------------------------------------

FLAG_WORDS = {
    "ro": ("set", MS["RDONLY"]), "rw": ("clear", MS["RDONLY"]),
    "nosuid": ("set", MS["NOSUID"]), "suid": ("clear", MS["NOSUID"]),
    "nodev": ("set", MS["NODEV"]), "dev": ("clear", MS["NODEV"]),
    "noexec": ("set", MS["NOEXEC"]), "exec": ("clear", MS["NOEXEC"]),
    "sync": ("set", MS["SYNCHRONOUS"]), "async": ("clear", MS["SYNCHRONOUS"]),
    "dirsync": ("set", MS["DIRSYNC"]), "remount": ("set", MS["REMOUNT"]),
    "mand": ("set", MS["MANDLOCK"]), "nomand": ("clear", MS["MANDLOCK"]),
    "noatime": ("set", MS["NOATIME"]), "atime": ("clear", MS["NOATIME"]),
    "nodiratime": ("set", MS["NODIRATIME"]), "diratime": ("clear", MS["NODIRATIME"]),
    "relatime": ("set", MS["RELATIME"]), "norelatime": ("clear", MS["RELATIME"]),
    "strictatime": ("set", MS["STRICTATIME"]), "nostrictatime": ("clear", MS["STRICTATIME"]),
    "lazytime": ("set", MS["LAZYTIME"]), "nolazytime": ("clear", MS["LAZYTIME"]),
    "iversion": ("set", MS["I_VERSION"]), "noiversion": ("clear", MS["I_VERSION"]),
    "acl": ("set", MS["POSIXACL"]), "noacl": ("clear", MS["POSIXACL"]),
    "silent": ("set", MS["SILENT"]), "loud": ("clear", MS["SILENT"]),
    "nosymfollow": ("set", MS["NOSYMFOLLOW"]), "symfollow": ("clear", MS["NOSYMFOLLOW"]),
    "defaults": ("set", 0),
}


@pytest.mark.parametrize("word", sorted(FLAG_WORDS))
def test_flag_words(bundle, word):
    how, flag = FLAG_WORDS[word]
    m = mount_with(bundle, [word])
    assert m.data == ""
    if how == "set":
        assert m.flags == flag
    else:
        # a clearing word undoes the flag its partner set earlier
        partner = [w for w, (h, f) in FLAG_WORDS.items() if f == flag and h == "set"][0]
        assert m.flags == 0
        assert mount_with(bundle, [partner, word]).flags == 0
        assert mount_with(bundle, [word, partner]).flags == flag


PROPAGATION_WORDS = {
    "private": MS["PRIVATE"], "rprivate": MS["PRIVATE"] | MS["REC"],
    "shared": MS["SHARED"], "rshared": MS["SHARED"] | MS["REC"],
    "slave": MS["SLAVE"], "rslave": MS["SLAVE"] | MS["REC"],
    "unbindable": MS["UNBINDABLE"], "runbindable": MS["UNBINDABLE"] | MS["REC"],
}


@pytest.mark.parametrize("word", sorted(PROPAGATION_WORDS))
def test_propagation_words(bundle, word):
    m = mount_with(bundle, ["nosuid", word])
    assert (m.flags, m.propagation, m.data) == (MS["NOSUID"], PROPAGATION_WORDS[word], "")


ATTR = dict(RDONLY=1, NOSUID=2, NODEV=4, NOEXEC=8, ATIME=0x70, RELATIME=0, NOATIME=0x10,
            STRICTATIME=0x20, NODIRATIME=0x80, NOSYMFOLLOW=0x200000)
RECURSIVE_WORDS = {
    "rro": (ATTR["RDONLY"], 0), "rrw": (0, ATTR["RDONLY"]),
    "rnosuid": (ATTR["NOSUID"], 0), "rsuid": (0, ATTR["NOSUID"]),
    "rnodev": (ATTR["NODEV"], 0), "rdev": (0, ATTR["NODEV"]),
    "rnoexec": (ATTR["NOEXEC"], 0), "rexec": (0, ATTR["NOEXEC"]),
    "rnodiratime": (ATTR["NODIRATIME"], 0), "rdiratime": (0, ATTR["NODIRATIME"]),
    "rnosymfollow": (ATTR["NOSYMFOLLOW"], 0), "rsymfollow": (0, ATTR["NOSYMFOLLOW"]),
    # access-time modes are set by clearing the whole atime field (mount_setattr(2))
    "rrelatime": (ATTR["RELATIME"], ATTR["ATIME"]), "rnorelatime": (0, ATTR["RELATIME"]),
    "rnoatime": (ATTR["NOATIME"], ATTR["ATIME"]), "ratime": (0, ATTR["NOATIME"]),
    "rstrictatime": (ATTR["STRICTATIME"], ATTR["ATIME"]),
    "rnostrictatime": (0, ATTR["STRICTATIME"]),
}


@pytest.mark.parametrize("word", sorted(RECURSIVE_WORDS))
def test_recursive_attribute_words(bundle, word):
    m = mount_with(bundle, ["rbind", word], type="none", source="/tmp")
    assert (m.attr_set, m.attr_clr) == RECURSIVE_WORDS[word]
    assert m.flags == MS["BIND"] | MS["REC"] and m.data == ""


def test_recursive_attribute_later_word_wins(bundle):
    m = mount_with(bundle, ["rbind", "rro", "rrw"], type="none", source="/tmp")
    assert (m.attr_set, m.attr_clr) == (0, ATTR["RDONLY"])


def test_data_options_pass_through_in_order(bundle):
    m = mount_with(bundle, ["size=1m", "nodev", "mode=700", "uid=5"])
    assert m.data == "size=1m,mode=700,uid=5" and m.flags == MS["NODEV"]


def test_tmpcopyup_is_dropped_with_a_warning(bundle, warnings_seen):
    m = mount_with(bundle, ["tmpcopyup", "size=1m"])
    assert m.data == "size=1m"
    assert "mounts[6].options: 'tmpcopyup' is not supported, ignored" in "".join(warnings_seen)


def test_known_options_match_runc_table():
    from pyrunc.libcontainer.specconv.mounts import known_options
    words = set(known_options())
    assert words == set(FLAG_WORDS) | {"bind", "rbind"} | set(PROPAGATION_WORDS) | \
        set(RECURSIVE_WORDS)


def test_bind_mount_relative_source_is_in_bundle(bundle):
    os.mkdir(os.path.join(bundle, "data"))
    open(os.path.join(bundle, "file"), "w").close()
    d = mount_with(bundle, ["bind", "ro"], type="none", source="data", destination="/data")
    assert (d.source, d.fstype, d.source_is_dir) == (os.path.join(bundle, "data"), "bind", True)
    assert d.flags == MS["BIND"] | MS["RDONLY"]
    f = mount_with(bundle, ["rbind"], type="bind", source="file", destination="/f")
    assert f.source_is_dir is False and f.flags == MS["BIND"] | MS["REC"]


def test_bind_type_without_option_is_a_bind(bundle):
    m = mount_with(bundle, [], type="bind", source="/tmp", destination="/t")
    assert m.flags == MS["BIND"] and m.source == "/tmp"


def test_bind_source_missing(bundle):
    spec = example()
    spec["mounts"].append({"destination": "/x", "type": "bind", "source": "nope",
                           "options": ["bind"]})
    msg = expect_invalid(bundle, spec, "mounts[6].source: nope: no such file or directory",
                         errors.NotFound)
    assert msg == "config.json: mounts[6].source: nope: no such file or directory"


def test_relative_destination_is_made_absolute(bundle):
    spec = example()
    spec["mounts"].append({"destination": "mnt/x/../y", "type": "tmpfs", "source": "tmpfs"})
    assert plan_of(bundle, spec).mounts[6].destination == "/mnt/y"


def test_mount_needs_a_type(bundle):
    spec = example()
    spec["mounts"].append({"destination": "/x", "source": "x"})
    expect_invalid(bundle, spec, "mounts[6].type: must be set")


def test_dev_bind_mount_skips_devices(bundle):
    spec = example()
    spec["mounts"][1] = {"destination": "/dev", "type": "bind", "source": "/dev",
                         "options": ["rbind"]}
    plan = plan_of(bundle, spec)
    assert plan.devices == [] and not plan.dev_symlinks


def test_cgroup_mount_needs_manager(bundle):
    spec = example()
    spec["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup",
                           "source": "cgroup", "options": ["ro"]})
    expect_invalid(bundle, spec, "a cgroup mount needs the cgroup manager", errors.Unavailable)


def test_cgroup_mount_expands_via_manager(bundle):
    calls = []

    class Manager:  # stands in for the caller-supplied manager interface only
        def mount_steps(self, destination, flags, cgroupns):
            calls.append((destination, flags, cgroupns))
            return [MountStep("mount", destination, source="cgroup", fstype="cgroup2")]

    spec = example()
    spec["linux"]["namespaces"].append({"type": "cgroup"})
    spec["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup",
                           "source": "cgroup", "options": ["nosuid", "ro"]})
    plan = plan_of(bundle, spec, cgroup_manager=Manager())
    assert calls == [("/sys/fs/cgroup", MS["NOSUID"] | MS["RDONLY"], True)]
    assert plan.mounts[6].fstype == "cgroup2"


# -- namespaces and id maps -----------------------------------------------------------------

NS = {"pid": 0x20000000, "network": 0x40000000, "ipc": 0x08000000, "uts": 0x04000000,
      "mount": 0x20000, "cgroup": 0x02000000, "user": 0x10000000, "time": 0x80}


def test_namespace_flags_and_paths(bundle):
    spec = example()
    spec["linux"]["namespaces"] = [{"type": t} for t in NS if t != "user"]
    spec["linux"]["namespaces"][1]["path"] = "/proc/self/ns/net"
    plan = plan_of(bundle, spec)
    assert [(n.flag, n.path) for n in plan.namespaces] == [
        (f, "/proc/self/ns/net" if t == "network" else None) for t, f in NS.items()
        if t != "user"]


def test_namespace_errors(bundle):
    spec = example()
    spec["linux"]["namespaces"].append({"type": "pid"})
    expect_invalid(bundle, spec, "linux.namespaces[5].type: duplicate namespace 'pid'")
    spec = example()
    spec["linux"]["namespaces"][0]["path"] = "/proc/self/ns/nothing"
    expect_invalid(bundle, spec, "linux.namespaces[0].path: /proc/self/ns/nothing: no such",
                   errors.NotFound)
    spec = example()
    spec["linux"]["namespaces"][0]["path"] = "relative"
    expect_invalid(bundle, spec, "must be an absolute path")
    spec = example()
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"]
                                   if n["type"] != "mount"]
    # as with runc, no mount namespace is allowed: the init chroots in the runtime's own
    assert 0x00020000 not in [ns.flag for ns in plan_of(bundle, spec).namespaces]
    spec["linux"]["namespaces"].append({"type": "mount", "path": "/proc/self/ns/mnt"})
    expect_invalid(bundle, spec, "the mount namespace to join is the runtime's own")


def test_join_mount_namespace_by_path(bundle):
    holder = subprocess.Popen(["unshare", "--mount", "--propagation", "unchanged", "sleep", "30"])
    try:
        path = "/proc/%d/ns/mnt" % holder.pid
        wait = time.monotonic() + 5
        while os.readlink(path) == os.readlink("/proc/self/ns/mnt"):
            assert time.monotonic() < wait
            time.sleep(0.01)
        spec = example()
        for ns in spec["linux"]["namespaces"]:
            if ns["type"] == "mount":
                ns["path"] = path
        assert Namespace(0x20000, path) in plan_of(bundle, spec).namespaces
    finally:
        holder.kill()
        holder.wait()


def test_user_namespace_maps_and_devices(bundle):
    spec = example()
    spec["linux"]["namespaces"].append({"type": "user"})
    spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 1},
                                    {"containerID": 1, "hostID": 300000, "size": 10}]
    plan = plan_of(bundle, spec)
    assert plan.uid_map == "0 100000 65536\n"
    assert plan.gid_map == "0 200000 1\n1 300000 10\n"
    assert all(d.bind and (d.uid, d.gid) == (100000, 200000) for d in plan.devices)


def test_user_namespace_map_errors(bundle):
    spec = example()
    spec["linux"]["namespaces"].append({"type": "user"})
    expect_invalid(bundle, spec, "linux.uidMappings: a new user namespace needs mappings")
    spec = example()
    spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    expect_invalid(bundle, spec, "linux.uidMappings: needs a new user namespace")
    spec = example()
    spec["linux"]["namespaces"].append({"type": "user"})
    spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 0}]
    spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    expect_invalid(bundle, spec, "linux.uidMappings[0].size: must be greater than zero")
    spec["linux"]["uidMappings"] = [{"containerID": 1, "hostID": 1000, "size": 1}]
    expect_invalid(bundle, spec, "mapping for the container's root")


def test_time_offsets(bundle):
    spec = example()
    spec["linux"]["namespaces"].append({"type": "time"})
    spec["linux"]["timeOffsets"] = {"monotonic": {"secs": 86400, "nanosecs": 5},
                                    "boottime": {"secs": -3}}
    assert plan_of(bundle, spec).time_offsets == "boottime -3 0\nmonotonic 86400 5\n"
    spec["linux"]["namespaces"].pop()
    expect_invalid(bundle, spec, "linux.timeOffsets: needs a new time namespace")


# -- devices -----------------------------------------------------------------------------------

def test_linux_devices(bundle):
    spec = example()
    spec["linux"]["devices"] = [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o20640,
         "uid": 7, "gid": 8},
        {"path": "/dev/loop9", "type": "b", "major": 7, "minor": 9},
        {"path": "/dev/pipe", "type": "p"},
        {"path": "/dev/null", "type": "u", "major": 1, "minor": 3, "fileMode": 0o600}]
    devices = {d.path: d for d in plan_of(bundle, spec).devices}
    fuse = devices["/dev/fuse"]
    assert (fuse.kind, fuse.major, fuse.minor, fuse.mode, fuse.uid, fuse.gid) == \
        ("c", 10, 229, 0o640, 7, 8)
    assert (devices["/dev/loop9"].kind, devices["/dev/loop9"].mode) == ("b", 0o666)
    assert devices["/dev/pipe"].kind == "p"
    assert (devices["/dev/null"].kind, devices["/dev/null"].mode) == ("c", 0o600)
    assert len([d for d in plan_of(bundle, spec).devices if d.path == "/dev/null"]) == 1


def test_device_needs_numbers(bundle):
    spec = example()
    spec["linux"]["devices"] = [{"path": "/dev/x", "type": "c"}]
    expect_invalid(bundle, spec, "linux.devices[0]: a c device needs major and minor numbers")


# -- process -----------------------------------------------------------------------------------

def test_user_home_umask(bundle):
    plan = plan_of(bundle, example(user={"uid": 1000, "gid": 1000, "umask": 0o27,
                                         "additionalGids": [5, 6]}))
    assert (plan.uid, plan.gid, plan.additional_gids, plan.umask) == (1000, 1000, [5, 6], 0o27)
    assert "HOME=/home/app" in plan.env
    plan = plan_of(bundle, example(user={"uid": 4242, "gid": 0}))
    assert "HOME=/" in plan.env
    plan = plan_of(bundle, example(env=["HOME=/mine"]))
    assert plan.env == ["HOME=/mine"]


def test_home_lookup_stays_in_rootfs(bundle, tmp_path):
    rootfs = os.path.join(bundle, "rootfs")
    os.rename(os.path.join(rootfs, "etc", "passwd"), os.path.join(rootfs, "etc", "real"))
    os.symlink("/etc/real", os.path.join(rootfs, "etc", "passwd"))   # absolute: inside rootfs
    plan = plan_of(bundle, example(user={"uid": 1000, "gid": 0}))
    assert "HOME=/home/app" in plan.env


@pytest.mark.parametrize("env,fragment", [
    (["PATH"], "process.env[0]: invalid environment variable: missing '='"),
    (["A=1", "=x"], "process.env[1]: invalid environment variable: empty name"),
])
def test_env_errors(bundle, env, fragment):
    expect_invalid(bundle, example(env=env), fragment)


def test_rlimits(bundle):
    spec = example(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20},
                            {"type": "RLIMIT_CORE", "soft": 0, "hard": 2 ** 64 - 1}])
    assert [(r.resource, r.soft, r.hard) for r in plan_of(bundle, spec).rlimits] == \
        [(7, 10, 20), (4, 0, 2 ** 64 - 1)]


@pytest.mark.parametrize("rlimits,fragment", [
    ([{"type": "RLIMIT_FOO", "soft": 1, "hard": 1}],
     "process.rlimits[0].type: unknown rlimit 'RLIMIT_FOO'"),
    ([{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}] * 2,
     "process.rlimits[1].type: duplicate rlimit 'RLIMIT_NOFILE'"),
    ([{"type": "RLIMIT_NOFILE", "soft": 2, "hard": 1}],
     "process.rlimits[0]: soft limit 2 is above the hard limit 1"),
])
def test_rlimit_errors(bundle, rlimits, fragment):
    expect_invalid(bundle, example(rlimits=rlimits), fragment)


def test_all_rlimit_names(bundle):
    names = ["CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE", "MEMLOCK", "AS",
             "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME"]
    spec = example(rlimits=[{"type": "RLIMIT_" + n, "soft": 1, "hard": 1} for n in names])
    assert [r.resource for r in plan_of(bundle, spec).rlimits] == list(range(16))


def test_capabilities_unknown_to_the_kernel_are_ignored_with_warning(bundle, warnings_seen,
                                                                     monkeypatch):
    from pyrunc.libcontainer import capabilities
    monkeypatch.setattr(capabilities, "last_cap", lambda: 30)  # a kernel before CAP_SETFCAP
    caps = {"bounding": ["CAP_SYS_ADMIN", "CAP_SETFCAP"], "effective": ["CAP_CHOWN"],
            "permitted": [], "inheritable": ["CAP_SETFCAP"], "ambient": []}
    plan = plan_of(bundle, example(capabilities=caps))
    c = plan.capabilities
    assert (c.bounding, c.effective, c.permitted, c.inheritable, c.ambient) == \
        (1 << 21, 1, 0, 0, 0)
    assert "CAP_SETFCAP" in "".join(warnings_seen)


def test_capabilities_unknown_names_are_refused(bundle):
    caps = {"bounding": ["CAP_SYS_ADMIN", "CAP_NOPE"]}
    expect_invalid(bundle, example(capabilities=caps),
                   "process.capabilities.bounding[1]: unknown capability 'CAP_NOPE'")


def test_no_capabilities_leaves_them_alone(bundle):
    spec = example()
    del spec["process"]["capabilities"]
    assert plan_of(bundle, spec).capabilities is None


def test_oom_score_adj_and_terminal(bundle):
    plan = plan_of(bundle, example(oomScoreAdj=-500, terminal=True))
    assert plan.oom_score_adj == -500 and plan.terminal


def test_hostname_needs_uts(bundle):
    spec = example()
    spec["domainname"] = "example.org"
    assert plan_of(bundle, spec).domainname == "example.org"
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "uts"]
    expect_invalid(bundle, spec, "hostname: cannot be set without a private UTS namespace")


def test_sysctl(bundle):
    spec = example()
    spec["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shmmax": "100",
                               "net/ipv4/conf/eth0.1/forwarding": "0",
                               "fs.mqueue.msg_max": "20"}
    assert plan_of(bundle, spec).sysctl == [
        ("fs.mqueue.msg_max", "20"), ("kernel.shmmax", "100"), ("net.ipv4.ip_forward", "1"),
        ("net.ipv4.conf.eth0/1.forwarding", "0")]


@pytest.mark.parametrize("name,drop,fragment", [
    ("vm.swappiness", None, "not in a separate kernel namespace"),
    ("kernel.hostname", None, "conflicts with the hostname field"),
    ("net.ipv4.ip_forward", "network", "not allowed in the host's network namespace"),
    ("kernel.sem", "ipc", "not allowed in the host's IPC namespace"),
])
def test_sysctl_errors(bundle, name, drop, fragment):
    spec = example()
    spec["linux"]["sysctl"] = {name: "1"}
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != drop]
    expect_invalid(bundle, spec, "linux.sysctl.%s: %s" % (name, fragment))


def test_rootfs_propagation(bundle):
    spec = example()
    spec["linux"]["rootfsPropagation"] = "slave"
    assert plan_of(bundle, spec).rootfs_propagation == MS["SLAVE"]
    spec["linux"]["rootfsPropagation"] = "shared"
    assert plan_of(bundle, spec).rootfs_propagation == MS["SHARED"]
    spec["linux"]["rootfsPropagation"] = "private"
    assert plan_of(bundle, spec).rootfs_propagation == MS["PRIVATE"]
    expect_invalid(bundle, spec, "not safe without pivot_root", no_pivot=True)
    # the recursive forms runc accepts and Docker writes, through the schema as well
    for word in ("rslave", "rshared", "rprivate", "runbindable"):
        spec["linux"]["rootfsPropagation"] = word
        assert ocispec.validate_schema(spec) == []
        assert plan_of(bundle, spec).rootfs_propagation == \
            MS[word[1:].upper()] | MS["REC"]


def test_rootfs_missing(bundle):
    spec = example()
    spec["root"]["path"] = "nothere"
    expect_invalid(bundle, spec, "root.path: nothere: no such directory", errors.NotFound)


def test_masked_paths_are_container_paths(bundle):
    spec = example()
    spec["linux"]["maskedPaths"] = ["/proc/kcore", "proc/x/../y"]
    assert plan_of(bundle, spec).masked_paths == ["/proc/kcore", "/proc/y"]


def test_hooks(bundle):
    spec = example()
    spec["hooks"] = {"createContainer": [{"path": "/bin/true", "args": ["true", "a"],
                                          "env": ["A=1"], "timeout": 5}],
                     "startContainer": [{"path": "/bin/echo"}],
                     "prestart": [{"path": "/bin/true"}]}
    plan = plan_of(bundle, spec, state_json=b"{}")
    h = plan.create_container_hooks[0]
    assert (h.path, h.args, h.env, h.timeout) == ("/bin/true", ["true", "a"], ["A=1"], 5)
    assert plan.start_container_hooks[0].path == "/bin/echo"
    assert plan.state_json == b"{}"
    spec["hooks"]["poststop"] = [{"path": "relative"}]
    expect_invalid(bundle, spec, "hooks.poststop[0].path: must be an absolute path")


def test_unsupported_features_are_refused(bundle):
    spec = example()
    spec["linux"]["intelRdt"] = {"closID": "x"}
    expect_invalid(bundle, spec, "linux.intelRdt", errors.Unavailable)


@pytest.mark.parametrize("where, change", [
    ("process.apparmorProfile", lambda s: s["process"].update(apparmorProfile="docker-default")),
    ("process.selinuxLabel",
     lambda s: s["process"].update(selinuxLabel="system_u:system_r:container_t:s0")),
    ("linux.mountLabel",
     lambda s: s["linux"].update(mountLabel="system_u:object_r:container_file_t:s0")),
])
def test_lsm_labels_are_refused_whatever_the_host(bundle, where, change):
    """pyrunc applies no AppArmor profile or SELinux label: accepting one on a host that has
    the LSM would run the container unconfined, so it is refused everywhere."""
    spec = example()
    change(spec)
    message = expect_invalid(bundle, spec, where, errors.Unavailable)
    assert message == "config.json: %s: not supported by pyrunc" % where


# sched.h, ioprio.h and personality.h values, written out independently of the code
@pytest.mark.parametrize("scheduler, expected", [
    ({"policy": "SCHED_OTHER", "nice": -5}, dict(policy=0, nice=-5)),
    ({"policy": "SCHED_FIFO", "priority": 10}, dict(policy=1, priority=10)),
    ({"policy": "SCHED_RR", "priority": 99, "flags": ["SCHED_FLAG_RESET_ON_FORK"]},
     dict(policy=2, priority=99, flags=1)),
    ({"policy": "SCHED_BATCH", "nice": 19}, dict(policy=3, nice=19)),
    ({"policy": "SCHED_IDLE"}, dict(policy=5)),
    ({"policy": "SCHED_DEADLINE", "runtime": 10, "deadline": 20, "period": 30,
      "flags": ["SCHED_FLAG_RECLAIM", "SCHED_FLAG_DL_OVERRUN"]},
     dict(policy=6, runtime=10, deadline=20, period=30, flags=6)),
])
def test_scheduler(bundle, scheduler, expected):
    from pyrunc.libcontainer.plan import Scheduler
    assert plan_of(bundle, example(scheduler=scheduler)).scheduler == Scheduler(**expected)


@pytest.mark.parametrize("scheduler, fragment", [
    ({"policy": "SCHED_OTHER", "nice": 20}, "process.scheduler.nice: must be between -20 and 19"),
    ({"policy": "SCHED_OTHER", "priority": 1},
     "process.scheduler.priority: can only be set for SCHED_FIFO or SCHED_RR"),
    ({"policy": "SCHED_FIFO"}, "process.scheduler.priority: must be between 1 and 99"),
    ({"policy": "SCHED_BATCH", "runtime": 5}, "can only be set for SCHED_DEADLINE"),
    ({"policy": "SCHED_DEADLINE", "runtime": 30, "deadline": 20}, "0 < runtime <= deadline"),
])
def test_bad_scheduler(bundle, scheduler, fragment):
    expect_invalid(bundle, example(scheduler=scheduler), fragment)


def test_sched_iso_is_not_in_linux(bundle):
    expect_invalid(bundle, example(scheduler={"policy": "SCHED_ISO"}),
                   "process.scheduler.policy: SCHED_ISO is not implemented by Linux",
                   errors.Unavailable)


@pytest.mark.parametrize("io, value", [
    ({"class": "IOPRIO_CLASS_RT", "priority": 0}, 1 << 13),
    ({"class": "IOPRIO_CLASS_BE", "priority": 4}, 2 << 13 | 4),
    ({"class": "IOPRIO_CLASS_IDLE"}, 3 << 13),
])
def test_io_priority(bundle, io, value):
    assert plan_of(bundle, example(ioPriority=io)).io_priority == value


def test_bad_io_priority(bundle):
    expect_invalid(bundle, example(ioPriority={"class": "IOPRIO_CLASS_BE", "priority": 8}),
                   "process.ioPriority.priority: must be between 0 and 7")


@pytest.mark.parametrize("personality, value", [
    ({"domain": "LINUX"}, 0),
    ({"domain": "LINUX32"}, 8),
    ({"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE", "UNAME26"]}, 0x0040000 | 0x0020000),
])
def test_personality(bundle, personality, value):
    spec = example()
    spec["linux"]["personality"] = personality
    assert plan_of(bundle, spec).personality == value


def test_bad_personality_flag(bundle):
    spec = example()
    spec["linux"]["personality"] = {"domain": "LINUX", "flags": ["NOPE"]}
    expect_invalid(bundle, spec, "linux.personality.flags[0]: unknown flag 'NOPE'")


def test_console_size(bundle):
    assert plan_of(bundle, example()).console_size is None
    plan = plan_of(bundle, example(terminal=True, consoleSize={"height": 30, "width": 100}))
    assert plan.console_size == (30, 100)


# -- random configs ----------------------------------------------------------------------------

words = st.sampled_from(["ro", "rw", "bind", "rbind", "nosuid", "rro", "rprivate", "size=1m",
                         "mode=755", "remount", "rnoatime", "defaults", "", "x=y"])
paths = st.sampled_from(["/proc", "/dev", "/tmp", "rel/path", "/a/../b", "", "/", "/sys"])
ids = st.integers(min_value=-2, max_value=2 ** 32)
mounts = st.fixed_dictionaries({"destination": paths},
                               optional={"type": st.sampled_from(["tmpfs", "bind", "proc",
                                                                  "none", "cgroup", ""]),
                                         "source": st.sampled_from(["/tmp", "nope", "tmpfs",
                                                                    "rootfs", ""]),
                                         "options": st.lists(words, max_size=4)})
namespaces = st.lists(st.fixed_dictionaries(
    {"type": st.sampled_from(["pid", "network", "mount", "ipc", "uts", "user", "cgroup",
                              "time", "bogus"])},
    optional={"path": st.sampled_from(["/proc/self/ns/net", "/nope", "rel"])}), max_size=6)
idmaps = st.lists(st.fixed_dictionaries({"containerID": ids, "hostID": ids, "size": ids}),
                  max_size=2)
rlimits = st.lists(st.fixed_dictionaries({
    "type": st.sampled_from(["RLIMIT_NOFILE", "RLIMIT_CORE", "RLIMIT_BOGUS", "nofile"]),
    "soft": ids, "hard": ids}), max_size=3)
devices = st.lists(st.fixed_dictionaries(
    {"path": paths, "type": st.sampled_from(["c", "b", "u", "p", "x"])},
    optional={"major": ids, "minor": ids, "fileMode": ids}), max_size=2)


RANDOM_OK = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


@st.composite
def random_specs(draw):
    spec = example()
    if draw(st.booleans()):
        spec["mounts"] = draw(st.lists(mounts, max_size=4))
    if draw(st.booleans()):
        spec["linux"]["namespaces"] = draw(namespaces)
    if draw(st.booleans()):
        spec["linux"]["uidMappings"] = draw(idmaps)
        spec["linux"]["gidMappings"] = draw(idmaps)
    if draw(st.booleans()):
        spec["process"]["rlimits"] = draw(rlimits)
    if draw(st.booleans()):
        spec["linux"]["devices"] = draw(devices)
    if draw(st.booleans()):
        spec["process"]["env"] = draw(st.lists(st.sampled_from(["A=1", "B", "=c", "HOME=/x"]),
                                               max_size=3))
    if draw(st.booleans()):
        spec["linux"]["sysctl"] = draw(st.dictionaries(
            st.sampled_from(["net.core.somaxconn", "kernel.sem", "vm.x", "kernel.hostname",
                             "", "a..b"]), st.just("1"), max_size=2))
    if draw(st.booleans()):
        spec["linux"]["rootfsPropagation"] = draw(st.sampled_from(
            ["private", "rslave", "shared", "bogus", ""]))
    if draw(st.booleans()):
        spec["process"]["oomScoreAdj"] = draw(st.integers(-2000, 2000))
    if draw(st.booleans()):
        spec["process"]["cwd"] = draw(paths)
    if draw(st.booleans()):
        spec["hostname"] = draw(st.sampled_from(["", "h", None]))
    return spec


@settings(max_examples=300, deadline=None, suppress_health_check=RANDOM_OK)
@given(doc=random_specs(), no_pivot=st.booleans())
def test_random_configs_become_a_plan_or_a_clear_error(bundle, doc, no_pivot):
    try:
        plan = specconv.to_plan(ocispec.from_dict(doc), bundle, "c1", no_pivot=no_pivot)
    except errors.PyruncError as e:
        message = str(e)
        assert message and "\n" not in message
        assert isinstance(e, errors.CATEGORIES)
        return
    assert plan.args and plan.cwd.startswith("/")
    assert all(m.destination.startswith("/") for m in plan.mounts)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 65, 2 ** 65) | st.text(max_size=8) |
    st.sampled_from(["/", "rel", "/proc", "CAP_KILL", "RLIMIT_NOFILE", "bind", "user"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["type", "path", "source", "destination", "options", "soft", "hard",
                         "containerID", "hostID", "size", "major", "minor", "timeout", "args",
                         "x"]), inner, max_size=3),
    max_leaves=8)
SECTIONS = [("process",), ("process", "user"), ("process", "capabilities"),
            ("process", "rlimits"), ("process", "env"), ("mounts",), ("linux", "namespaces"),
            ("linux", "devices"), ("linux", "uidMappings"), ("linux", "sysctl"),
            ("linux", "maskedPaths"), ("linux", "timeOffsets"), ("hooks",), ("root",),
            ("hostname",), ("linux", "rootfsPropagation")]


@settings(max_examples=300, deadline=None, suppress_health_check=RANDOM_OK)
@given(section=st.sampled_from(SECTIONS), value=json_values)
def test_any_json_in_a_section_is_a_plan_or_a_clear_error(bundle, section, value):
    doc = example()
    parent = doc
    for key in section[:-1]:
        parent = parent.setdefault(key, {})
    parent[section[-1]] = value
    try:
        specconv.to_plan(ocispec.from_dict(doc), bundle, "c1")
    except errors.PyruncError as e:
        assert isinstance(e, errors.CATEGORIES) and str(e) and "\n" not in str(e)
