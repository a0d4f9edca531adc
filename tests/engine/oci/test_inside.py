"""Each option of build_spec checked from inside a real container, run by pyrunc and by runc.

The oracles are the kernel's view from inside (/proc/self/status, /proc/self/limits,
mountinfo, cgroup files, id) and fixed numbers from outside the code: capability bits from
linux/capability.h, docker's default effective set 0xa80425fb.
"""
import os

import pytest


DOCKER_DEFAULT_CAPEFF = 0xA80425FB   # what `docker run busybox` shows in CapEff
CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_CHOWN, CAP_KILL, CAP_SYS_TIME = 12, 21, 0, 5, 25
CGROUP2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def status(text, key):
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("%s not in\n%s" % (key, text))


def mounts_by_target(mountinfo):
    """target -> (mount options, fs type, super options) of the last mount on each target."""
    out = {}
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        out[fields[4]] = (fields[5].split(","), fields[sep + 1], fields[sep + 3].split(","))
    return out


def cgroup_file(v1, v2):
    return "/sys/fs/cgroup/" + (v2 if CGROUP2 else v1)


# -- defaults --------------------------------------------------------------------------------

def test_default_container(oci_run):
    out = oci_run.sh("cat /proc/self/status; echo ===; cat /proc/self/mountinfo; echo ===; "
                     "id; echo ===; pwd; hostname; echo ===; env; echo ===; "
                     "cat /proc/keys /proc/timer_list /proc/interrupts 2>/dev/null | wc -c; "
                     "echo 1 > /proc/sys/vm/drop_caches; echo sysctl=$?; "
                     "cat /etc/hosts /etc/hostname /etc/resolv.conf; "
                     "cat /proc/self/oom_score_adj")
    st, mountinfo, ident, where, env, rest = out.split("===\n")
    assert int(status(st, "CapEff"), 16) == DOCKER_DEFAULT_CAPEFF
    assert int(status(st, "CapBnd"), 16) == DOCKER_DEFAULT_CAPEFF
    assert int(status(st, "CapInh"), 16) == 0 and int(status(st, "CapAmb"), 16) == 0
    assert status(st, "Seccomp") == "2"
    assert status(st, "NoNewPrivs") == "0"
    m = mounts_by_target(mountinfo)
    assert "ro" in m["/sys"][0] and m["/sys"][1] == "sysfs"
    assert m["/proc"][1] == "proc" and {"nosuid", "nodev", "noexec"} <= set(m["/proc"][0])
    assert m["/dev/shm"][1] == "tmpfs" and "size=65536k" in m["/dev/shm"][2]
    assert {"nosuid", "nodev", "noexec"} <= set(m["/dev/shm"][0])
    assert m["/dev/mqueue"][1] == "mqueue" and m["/dev/pts"][1] == "devpts"
    for f in ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf"):
        assert f in m and "rw" in m[f][0]
    # masked: a file is /dev/null, a directory an empty read-only tmpfs; read-only paths
    for path in ("/proc/keys", "/proc/timer_list", "/proc/interrupts"):
        assert os.path.exists(path) and path in m       # a bind of the container's /dev/null
    for path in ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"):
        assert os.path.exists(path) and "ro" in m[path][0]
    assert "/proc/acpi" not in m or "ro" in m["/proc/acpi"][0]
    assert "ro" in m["/sys/firmware"][0]
    assert ident.strip() == "uid=0(root) gid=0(root) groups=0(root)"
    assert where.split() == ["/", "ocitest"]
    env = env.split()
    assert "HOSTNAME=ocitest" in env and "PATH=" + (
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") in env
    lines = rest.split("\n")
    assert lines[0] == "0"                       # the masked files read nothing
    assert "sysctl=1" in rest
    assert "127.0.0.1\tlocalhost" in rest and "ocitest" in rest and "nameserver 127.0.0.1" in rest
    assert lines[-2] == "0"


def test_image_env_and_workdir(oci_run):
    out = oci_run.sh("pwd; env", image={"Env": ["PATH=/bin:/sbin", "A=image", "B=image"],
                                        "WorkingDir": "/tmp/work/../work", "Cmd": ["sh"]},
                     config={"Env": ["B=request", "C=request"]})
    lines = out.split()
    assert lines[0] == "/tmp/work"
    assert "PATH=/bin:/sbin" in lines and "A=image" in lines and "B=request" in lines
    assert "C=request" in lines and "B=image" not in lines


def test_tty_sets_term(oci_run):
    bundle, cid, spec = oci_run.bundle({"Cmd": ["true"], "Tty": True})
    assert spec["process"]["terminal"] is True
    assert "TERM=xterm" in spec["process"]["env"]


# -- capabilities, privileges, seccomp state -------------------------------------------------

def test_cap_add_and_drop(oci_run):
    out = oci_run.sh("grep CapEff /proc/self/status",
                     {"CapAdd": ["NET_ADMIN", "cap_sys_admin"], "CapDrop": ["CHOWN", "kill"]})
    eff = int(status(out, "CapEff"), 16)
    want = (DOCKER_DEFAULT_CAPEFF | 1 << CAP_NET_ADMIN | 1 << CAP_SYS_ADMIN) & \
        ~(1 << CAP_CHOWN | 1 << CAP_KILL)
    assert eff == want


def test_cap_drop_all_add_one(oci_run):
    out = oci_run.sh("grep -E 'CapEff|CapBnd' /proc/self/status",
                     {"CapDrop": ["ALL"], "CapAdd": ["SYS_TIME"]})
    assert int(status(out, "CapEff"), 16) == 1 << CAP_SYS_TIME
    assert int(status(out, "CapBnd"), 16) == 1 << CAP_SYS_TIME


def _own_bounding():
    with open("/proc/self/status") as f:
        return int(status(f.read(), "CapBnd"), 16)


def test_privileged(oci_run):
    out = oci_run.sh("cat /proc/self/status; echo ===; cat /proc/self/mountinfo; echo ===; "
                     "ls /dev", {"Privileged": True})
    st, mountinfo, dev = out.split("===\n")
    assert int(status(st, "CapEff"), 16) == _own_bounding()
    assert status(st, "Seccomp") == "0"
    m = mounts_by_target(mountinfo)
    assert "rw" in m["/sys"][0]
    assert "/proc/keys" not in m and "/proc/sys" not in m
    host_devices = {n for n in os.listdir("/dev") if n in ("loop0", "vda", "kmsg", "mem")}
    assert host_devices and host_devices <= set(dev.split())


def test_security_opts(oci_run):
    out = oci_run.sh("grep -E 'Seccomp|NoNewPrivs' /proc/self/status",
                     {"SecurityOpt": ["seccomp=unconfined", "no-new-privileges"]})
    assert status(out, "Seccomp") == "0" and status(out, "NoNewPrivs") == "1"
    out = oci_run.sh("grep -E 'Seccomp|NoNewPrivs' /proc/self/status",
                     {"SecurityOpt": ["no-new-privileges:false", "label=disable",
                                      "apparmor=unconfined"]})
    assert status(out, "Seccomp") == "2" and status(out, "NoNewPrivs") == "0"


def test_systempaths_unconfined(oci_run):
    out = oci_run.sh("cat /proc/self/mountinfo", {"SecurityOpt": ["systempaths=unconfined"]})
    m = mounts_by_target(out)
    assert "/proc/keys" not in m and "/proc/sys" not in m


# -- users -----------------------------------------------------------------------------------

PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "alice:x:1000:1000:Alice:/home/alice:/bin/sh\n"
          "bob:x:1001:1001::/home/bob:/bin/sh\n")
GROUP = ("root:x:0:\nalice:x:1000:\nbob:x:1001:\nstaff:x:50:alice,bob\naudio:x:29:alice\n"
         "video:x:44:\n")


@pytest.mark.parametrize("user, group_add, want", [
    ("alice", None, "uid=1000(alice) gid=1000(alice) groups=29(audio),50(staff),1000(alice)"),
    ("bob:video", None, "uid=1001(bob) gid=44(video) groups=44(video)"),
    ("1000", ["video", "4242"],
     "uid=1000(alice) gid=1000(alice) groups=29(audio),44(video),50(staff),1000(alice),4242"),
    ("4000:4001", None, "uid=4000 gid=4001 groups=4001"),
    ("", ["staff"], "uid=0(root) gid=0(root) groups=0(root),50(staff)"),
])
def test_user(oci_run, user, group_add, want):
    # the kernel keeps supplementary groups sorted, so id lists them in numeric order
    hc = {"GroupAdd": group_add} if group_add else {}
    out = oci_run.sh("id", hc, config={"User": user},
                     files={"/etc/passwd": PASSWD, "/etc/group": GROUP})
    assert out.strip() == want


# -- mounts, root filesystem -----------------------------------------------------------------

def test_readonly_rootfs_tmpfs_shm(oci_run):
    out = oci_run.sh("touch /rootfile; echo root=$?; touch /scratch/f; echo tmpfs=$?; "
                     "cp /bin/busybox /scratch/busybox && /scratch/busybox true; echo exec=$?; "
                     "cat /proc/self/mountinfo",
                     {"ReadonlyRootfs": True, "Tmpfs": {"/scratch": "size=4m,exec,mode=1770"},
                      "ShmSize": 8 << 20})
    assert "root=1" in out and "tmpfs=0" in out and "exec=0" in out
    m = mounts_by_target(out)
    assert "ro" in m["/"][0]
    assert m["/scratch"][1] == "tmpfs" and "size=4096k" in m["/scratch"][2]
    assert "mode=1770" in m["/scratch"][2] and "noexec" not in m["/scratch"][0]
    assert {"nosuid", "nodev"} <= set(m["/scratch"][0])
    assert "size=8192k" in m["/dev/shm"][2]
    assert "ro" in m["/etc/hosts"][0]           # as dockerd binds it with a read-only root


def test_user_mount_replaces_default(oci_run, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "marker").write_text("from host\n")
    mounts = [{"destination": "/dev/shm", "type": "bind", "source": str(shared),
               "options": ["rbind", "rprivate"]},
              {"destination": "/etc/hostname", "type": "bind", "source": str(shared / "marker"),
               "options": ["rbind", "ro"]}]
    out = oci_run.sh("cat /dev/shm/marker /etc/hostname; grep -c ' /dev/shm ' "
                     "/proc/self/mountinfo", mounts=mounts)
    assert out.split("\n")[:3] == ["from host", "from host", "1"]


def test_init(oci_run):
    out = oci_run.sh("cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$", {"Init": True})
    first, pid = out.strip().split("\n")
    assert first.startswith("/sbin/docker-init -- sh -c ")
    assert pid != "1"


# -- resources -------------------------------------------------------------------------------

def test_memory_cpu_pids(oci_run):
    files = [cgroup_file("memory/memory.limit_in_bytes", "memory.max"),
             cgroup_file("memory/memory.soft_limit_in_bytes", "memory.low"),
             cgroup_file("memory/memory.memsw.limit_in_bytes", "memory.swap.max"),
             cgroup_file("cpu/cpu.cfs_quota_us", "cpu.max"),
             cgroup_file("cpu/cpu.cfs_period_us", "cpu.max"),
             cgroup_file("cpu/cpu.shares", "cpu.weight"),
             cgroup_file("pids/pids.max", "pids.max"),
             cgroup_file("cpuset/cpuset.cpus", "cpuset.cpus")]
    out = oci_run.sh("; ".join("cat " + f for f in files),
                     {"Memory": 64 << 20, "MemoryReservation": 32 << 20,
                      "MemorySwap": 96 << 20, "NanoCpus": 500_000_000, "CpuShares": 512,
                      "PidsLimit": 42, "CpusetCpus": "0"})
    values = out.split()
    if not CGROUP2:
        assert values == [str(64 << 20), str(32 << 20), str(96 << 20), "50000", "100000",
                          "512", "42", "0"]
    else:
        assert values[0] == str(64 << 20) and "50000" in values and "42" in values


def test_memory_swap_default_is_twice(oci_run):
    if CGROUP2 or not os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"):
        pytest.skip("no v1 swap accounting on this host")
    out = oci_run.sh("cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes",
                     {"Memory": 16 << 20})
    assert out.strip() == str(32 << 20)


def test_cpu_quota_period(oci_run):
    if CGROUP2:
        out = oci_run.sh("cat /sys/fs/cgroup/cpu.max", {"CpuQuota": 20000, "CpuPeriod": 40000})
        assert out.split() == ["20000", "40000"]
    else:
        out = oci_run.sh("cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us "
                         "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
                         {"CpuQuota": 20000, "CpuPeriod": 40000})
        assert out.split() == ["20000", "40000"]


def test_ulimits(oci_run):
    out = oci_run.sh("cat /proc/self/limits",
                     {"Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200},
                                  {"Name": "nproc", "Soft": 50, "Hard": 60},
                                  {"Name": "core", "Soft": -1, "Hard": -1}]})
    lines = {line[:26].strip(): line[26:].split() for line in out.splitlines()[1:]}
    assert lines["Max open files"][:2] == ["100", "200"]
    assert lines["Max processes"][:2] == ["50", "60"]
    assert lines["Max core file size"][:2] == ["unlimited", "unlimited"]


def test_sysctls_and_oom_score_adj(oci_run):
    out = oci_run.sh("cat /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_unprivileged_port_start "
                     "/proc/self/oom_score_adj",
                     {"Sysctls": {"kernel.shmmax": "123456789",
                                  "net.ipv4.ip_unprivileged_port_start": "1024"},
                      "OomScoreAdj": 500})
    assert out.split() == ["123456789", "1024", "500"]


def test_devices(oci_run):
    out = oci_run.sh("ls -ln /dev/mynull /dev/myzero | awk '{print $1, $5, $6}'; "
                     "echo hi > /dev/mynull; echo write=$?; "
                     "head -c 3 /dev/myzero | wc -c; "
                     "cat /sys/fs/cgroup/devices/devices.list 2>/dev/null",
                     {"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull",
                                   "CgroupPermissions": "rwm"},
                                  {"PathOnHost": "/dev/zero", "PathInContainer": "/dev/myzero",
                                   "CgroupPermissions": "r"}]})
    lines = out.split("\n")
    assert lines[0].startswith("crw") and lines[0].split()[1:] == ["1,", "3"]
    assert lines[1].startswith("cr") and lines[1].split()[1:] == ["1,", "5"]
    assert "write=0" in out and lines[3] == "3"
    if not CGROUP2:
        assert "c 1:3 rwm" in out and "c 1:5 r" in out


def test_network_host(oci_run):
    out = oci_run.sh("readlink /proc/self/ns/net", {"NetworkMode": "host"})
    assert out.strip() == os.readlink("/proc/self/ns/net")
    out = oci_run.sh("readlink /proc/self/ns/net")
    assert out.strip() != os.readlink("/proc/self/ns/net")


def test_custom_seccomp_profile(oci_run):
    import json
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                             "errnoRet": 13}]}
    out = oci_run.sh("mkdir /tmp/d 2>&1; echo rc=$?; grep Seccomp: /proc/self/status",
                     {"SecurityOpt": ["seccomp=" + json.dumps(profile)]})
    assert "Permission denied" in out and "rc=1" in out and status(out, "Seccomp") == "2"


# -- terminal, namespaces, user namespace ----------------------------------------------------

def test_tty(oci_run):
    """process.terminal: the container's stdin is a terminal (the runtime run under a pty)."""
    import pty
    import subprocess
    bundle, cid, spec = oci_run.bundle({"Cmd": ["sh", "-c", "test -t 0 && echo is-a-tty; "
                                                "echo TERM=$TERM"], "Tty": True})
    oci_run.ids.append(cid)
    master, slave = pty.openpty()
    proc = subprocess.Popen([oci_run.binary, "--root", oci_run.state, "run", "-b", str(bundle),
                             cid], stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:          # EIO: the other side is closed
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(30) == 0, out
    text = out.decode(errors="replace")
    assert "is-a-tty" in text and "TERM=xterm" in text


def test_host_namespaces(oci_run):
    script = "for n in ipc pid uts net; do readlink /proc/self/ns/$n; done"
    host = [os.readlink("/proc/self/ns/" + n) for n in ("ipc", "pid", "uts", "net")]
    out = oci_run.sh(script, {"IpcMode": "host", "PidMode": "host", "UTSMode": "host",
                              "NetworkMode": "host"})
    assert out.split() == host
    out = oci_run.sh(script)
    assert all(a != b for a, b in zip(out.split(), host))


def test_cgroup_namespace_modes(oci_run):
    host = os.readlink("/proc/self/ns/cgroup")
    assert oci_run.sh("readlink /proc/self/ns/cgroup", {"CgroupnsMode": "host"}).strip() == host
    assert oci_run.sh("readlink /proc/self/ns/cgroup",
                      {"CgroupnsMode": "private"}).strip() != host


def test_user_namespace_remap(oci_run):
    from pyrunc.engine.idmap import IDMap, IDRange
    import pathlib
    import shutil
    import tempfile
    idmap = IDMap([IDRange(0, 200000, 65536)], [IDRange(0, 300000, 65536)])
    # the remapped root must be able to reach the bundle: a directory others may traverse
    where = pathlib.Path(tempfile.mkdtemp(prefix="pyrunc-oci-userns-"))
    try:
        where.chmod(0o711)
        out = oci_run.sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; "
                         "grep CapEff /proc/self/status", idmap=idmap, where=where,
                         # mount targets the remapped root could not create in a root
                         # filesystem whose owners are not shifted
                         files={"/etc/hosts": "", "/etc/resolv.conf": ""})
    finally:
        shutil.rmtree(where)
    lines = [line.split() for line in out.strip().split("\n")]
    assert lines[0] == ["0", "200000", "65536"] and lines[1] == ["0", "300000", "65536"]
    assert lines[2] == ["0"]
    assert int(lines[3][1], 16) == DOCKER_DEFAULT_CAPEFF


def test_device_cgroup_rules_and_blkio(oci_run):
    if CGROUP2:
        pytest.skip("the rules are read back from cgroup v1 files")
    out = oci_run.sh("cat /sys/fs/cgroup/devices/devices.list; echo ===; "
                     "cat /sys/fs/cgroup/blkio/blkio.throttle.read_bps_device "
                     "/sys/fs/cgroup/blkio/blkio.throttle.write_iops_device",
                     {"DeviceCgroupRules": ["c 4:64 r", "b 7:* rw"],
                      "BlkioDeviceReadBps": [{"Path": "/dev/vda", "Rate": 1048576}],
                      "BlkioDeviceWriteIOps": [{"Path": "/dev/vda", "Rate": 100}]})
    rules, blkio = out.split("===\n")
    assert "c 4:64 r" in rules.splitlines() and "b 7:* rw" in rules.splitlines()
    st = os.stat("/dev/vda")
    dev = "%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
    assert blkio.splitlines() == [dev + " 1048576", dev + " 100"]
