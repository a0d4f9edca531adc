"""spawn_init drives the native core: each Plan field checked from inside a real container.

The init is a child of the test process (CLONE_PARENT), which reaps it; every test ends by
checking that no child is left behind.
"""
import os
import shutil
import socket
import stat
import struct
import subprocess
import tempfile
import time

import pytest

from pyrunc.errors import InvalidArgument, SystemFailure
from pyrunc.libcontainer.plan import (Capabilities, Device, Hook, MountStep, Namespace, Plan,
                                      Rlimit, Scheduler, Seccomp)
from pyrunc.libcontainer.process import spawn_init

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_REC, MS_PRIVATE, MS_SLAVE, MS_SHARED = 4096, 16384, 1 << 18, 1 << 19, 1 << 20
MOUNT_ATTR_RDONLY = 1
NS = {"pid": 0x20000000, "mount": 0x00020000, "uts": 0x04000000, "ipc": 0x08000000,
      "net": 0x40000000, "user": 0x10000000, "cgroup": 0x02000000, "time": 0x00000080}
RLIMIT_NOFILE = 7
CAP_KILL, CAP_NET_BIND_SERVICE, CAP_AUDIT_WRITE = 5, 10, 29

pytestmark = pytest.mark.usefixtures("private_mount_ns")


@pytest.fixture
def rootfs(tmp_path, busybox_rootfs):
    root = tmp_path / "rootfs"
    subprocess.run(["cp", "-al", busybox_rootfs, str(root)], check=True)
    return str(root)


@pytest.fixture
def public_rootfs(busybox_rootfs):
    """A rootfs on a path every uid can traverse (for user namespaces)."""
    top = tempfile.mkdtemp(prefix="pyrunc-test-")
    os.chmod(top, 0o755)
    root = os.path.join(top, "rootfs")
    subprocess.run(["cp", "-al", busybox_rootfs, root], check=True)
    yield root
    shutil.rmtree(top)


@pytest.fixture(autouse=True)
def nothing_left_behind():
    """No child process and no descriptor survive a test, whether spawn_init failed or not."""
    import support          # here: robustness scripts import this module without tests/ on the path
    fds = set(os.listdir("/proc/self/fd"))
    children = support.child_pids()
    yield
    assert support.child_pids() - children == set()
    assert set(os.listdir("/proc/self/fd")) == fds


def make_plan(rootfs, args, namespaces=("pid", "mount", "uts", "ipc", "net"), **changes):
    plan = Plan(
        container_id="test", bundle=os.path.dirname(rootfs), rootfs=rootfs,
        namespaces=[Namespace(NS[n]) for n in namespaces],
        mounts=[
            MountStep("mount", "/proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC),
            MountStep("mount", "/dev", "tmpfs", "tmpfs", MS_NOSUID, "mode=755,size=65536k"),
            MountStep("mount", "/dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
                      "newinstance,ptmxmode=0666,mode=0620"),
        ],
        devices=[Device("/dev/null", "c", 1, 3), Device("/dev/zero", "c", 1, 5),
                 Device("/dev/urandom", "c", 1, 9)],
        env=["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"],
        args=list(args))
    for k, v in changes.items():
        setattr(plan, k, v)
    return plan


def run(plan, **kw):
    """Spawn, let it run, collect stdout+stderr; returns (exit status, output)."""
    r, w = os.pipe()
    try:
        pid = spawn_init(plan, exec_fifo_fd=kw.pop("exec_fifo_fd", -1), stdio=(0, w, w), **kw)
    except BaseException:
        os.close(r)
        raise
    finally:
        os.close(w)
    out = b""
    with os.fdopen(r, "rb") as f:
        out = f.read()
    status = os.waitpid(pid, 0)[1]
    return os.waitstatus_to_exitcode(status), out.decode()


def sh(rootfs, script, **changes):
    return run(make_plan(rootfs, ["sh", "-c", script], **changes))


def mountinfo_line(text, mountpoint):
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4] == mountpoint:
            return fields
    raise AssertionError("%s not in mountinfo:\n%s" % (mountpoint, text))


def mount_options(fields):
    return set(fields[5].split(","))


def status_field(text, name):
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(name)


# --- lifecycle ----------------------------------------------------------------------------

def test_exit_status_is_the_programs(rootfs):
    assert sh(rootfs, "exit 7")[0] == 7


def test_init_is_pid_1_and_a_child_of_the_caller(rootfs):
    status, out = sh(rootfs, "echo $$")
    assert (status, out) == (0, "1\n")


@pytest.mark.parametrize("uid", [0, 1000])
def test_exec_fifo_holds_the_init_until_read(rootfs, tmp_path, uid):
    fifo = tmp_path / "exec.fifo"
    os.mkfifo(fifo)
    os.chmod(fifo, 0o622)  # as runc makes it: the init opens it after its uid changes
    fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
    try:
        pid = spawn_init(make_plan(rootfs, ["true"], uid=uid, gid=uid), exec_fifo_fd=fd)
    finally:
        os.close(fd)
    time.sleep(0.05)
    assert os.waitpid(pid, os.WNOHANG) == (0, 0)
    with open("/proc/%d/comm" % pid) as f:
        assert f.read() == "pyrunc:[2:INIT]\n"
    with open(fifo, "rb") as f:
        assert f.read() == b"0"
    assert os.waitpid(pid, 0)[1] == 0


def test_signals_start_at_their_defaults(rootfs):
    import signal
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN  # as Python sets it
        status, out = run(make_plan(rootfs, ["grep", "-E", "^Sig(Blk|Ign)",
                                             "/proc/self/status"]))
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    assert status == 0, out
    assert [line.split()[1] for line in out.splitlines()] == ["0" * 16, "0" * 16]


def test_spawns_from_several_threads_at_once(rootfs):
    import threading
    results = []

    def spawn_and_wait(n):
        for i in range(5):
            try:
                results.append(sh(rootfs, "echo %d-%d" % (n, i)))
            except Exception as e:  # reported by the assertion below
                results.append(e)

    threads = [threading.Thread(target=spawn_and_wait, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == sorted((0, "%d-%d\n" % (n, i)) for n in range(3)
                                     for i in range(5))


def test_callers_other_files_do_not_live_on_in_the_init(rootfs, tmp_path):
    import fcntl
    lock = os.open(tmp_path / "lock", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC)
    fcntl.flock(lock, fcntl.LOCK_EX)
    fifo = tmp_path / "exec.fifo"
    os.mkfifo(fifo, 0o622)
    fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
    try:
        pid = spawn_init(make_plan(rootfs, ["true"]), exec_fifo_fd=fd)
    finally:
        os.close(fd)
        os.close(lock)
    try:
        again = os.open(tmp_path / "lock", os.O_RDWR | os.O_CLOEXEC)
        fcntl.flock(again, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the waiting init holds no copy
        os.close(again)
    finally:
        with open(fifo, "rb") as f:
            f.read()
        os.waitpid(pid, 0)


def test_preserved_fds_are_inherited_and_others_closed(rootfs):
    r, w = os.pipe()
    saved = os.dup(3)
    os.dup2(r, 3)  # becomes inheritable-less at exec unless the core clears close-on-exec
    os.set_inheritable(3, False)
    try:
        status, out = run(make_plan(rootfs, ["ls", "/proc/self/fd"]), preserve_fds=1)
    finally:
        os.dup2(saved, 3)
        for fd in (r, w, saved):
            os.close(fd)
    # 0, 1, 2, the preserved 3, and the fd ls opens for the directory.
    assert status == 0, out
    assert sorted(int(x) for x in out.split()) == [0, 1, 2, 3, 4]


# --- namespaces ---------------------------------------------------------------------------

def test_new_namespaces_differ_from_the_host(rootfs):
    names = ["pid", "mnt", "uts", "ipc", "net", "cgroup"]
    status, out = sh(rootfs, "for n in %s; do readlink /proc/self/ns/$n; done" % " ".join(names),
                     namespaces=("pid", "mount", "uts", "ipc", "net", "cgroup"))
    assert status == 0
    inside = out.split()
    for name, link in zip(names, inside):
        assert link != os.readlink("/proc/self/ns/" + name), name


def test_join_network_namespace_by_path(rootfs):
    name = "pyrunc-test-%d" % os.getpid()
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        plan = make_plan(rootfs, ["readlink", "/proc/self/ns/net"])
        plan.namespaces = [n for n in plan.namespaces if n.flag != NS["net"]]
        plan.namespaces.append(Namespace(NS["net"], "/run/netns/" + name))
        status, out = run(plan)
        assert status == 0
        assert out.strip() == "net:[%d]" % os.stat("/run/netns/" + name).st_ino
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def test_a_second_container_joins_the_firsts_namespaces(rootfs, tmp_path, busybox_rootfs):
    first = make_plan(rootfs, ["sleep", "60"], hostname="first")
    init = spawn_init(first, exec_fifo_fd=-1)
    try:
        other = str(tmp_path / "other")
        subprocess.run(["cp", "-al", busybox_rootfs, other], check=True)
        plan = make_plan(other, ["sh", "-c", "hostname; cat /proc/1/comm; echo $$"],
                         namespaces=("mount",))
        plan.namespaces += [Namespace(NS[n], "/proc/%d/ns/%s" % (init, f))
                            for n, f in (("pid", "pid"), ("uts", "uts"), ("ipc", "ipc"),
                                         ("net", "net"))]
        status, out = run(plan)
        assert status == 0, out
        lines = out.split()
        assert lines[:2] == ["first", "sleep"]
        assert int(lines[2]) > 1
    finally:
        os.kill(init, 9)
        os.waitpid(init, 0)


def test_join_a_user_namespace_by_path(public_rootfs, busybox_rootfs):
    first = make_plan(public_rootfs, ["sleep", "60"],
                      namespaces=("user", "pid", "mount", "uts", "ipc", "net"),
                      uid_map="0 100000 65536\n", gid_map="0 100000 65536\n")
    first.devices = [Device(d.path, d.kind, d.major, d.minor, bind=True) for d in first.devices]
    init = spawn_init(first, exec_fifo_fd=-1)
    try:
        plan = make_plan(public_rootfs, ["cat", "/proc/self/uid_map"],
                         namespaces=("pid", "mount", "uts", "ipc", "net"))
        plan.namespaces.insert(0, Namespace(NS["user"], "/proc/%d/ns/user" % init))
        plan.devices = first.devices
        status, out = run(plan)
        assert status == 0, out
        assert " ".join(out.split()) == "0 100000 65536"
    finally:
        os.kill(init, 9)
        os.waitpid(init, 0)


def test_user_namespace_with_maps(public_rootfs):
    plan = make_plan(public_rootfs, ["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; "
                                                 "id -u; cat /proc/self/setgroups; "
                                                 "stat -c %u /bin/busybox"],
                     namespaces=("user", "pid", "mount", "uts", "ipc", "net"),
                     uid_map="0 100000 65536\n", gid_map="0 100000 65536\n",
                     setgroups_deny=True)
    plan.devices = [Device(d.path, d.kind, d.major, d.minor, bind=True) for d in plan.devices]
    plan.mounts[2].data = "newinstance,ptmxmode=0666,mode=0620"
    status, out = run(plan)
    assert status == 0, out
    lines = [" ".join(x.split()) for x in out.splitlines()]
    assert lines == ["0 100000 65536", "0 100000 65536", "0", "deny", "65534"]


def test_time_namespace_offsets(rootfs):
    status, out = sh(rootfs, "cut -d' ' -f1 /proc/uptime",
                     namespaces=("pid", "mount", "time"), time_offsets="boottime 86400 0\n")
    assert status == 0, out
    assert float(out) >= 86400


# --- mounts -------------------------------------------------------------------------------

@pytest.fixture
def host_dir(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "file").write_text("hello\n")
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(src / "sub")], check=True)
    yield str(src)
    subprocess.run(["umount", str(src / "sub")], check=True)


def test_bind_mount_with_options(rootfs, host_dir):
    plan = make_plan(rootfs, ["cat", "/proc/self/mountinfo"])
    plan.mounts.append(MountStep("mount", "/mnt/a/b", host_dir, None,
                                 MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC))
    status, out = run(plan)
    assert status == 0, out
    assert {"ro", "nosuid", "nodev", "noexec"} <= mount_options(mountinfo_line(out, "/mnt/a/b"))
    with pytest.raises(AssertionError):
        mountinfo_line(out, "/mnt/a/b/sub")  # not recursive


def test_rbind_with_recursive_readonly(rootfs, host_dir):
    plan = make_plan(rootfs, ["cat", "/proc/self/mountinfo"])
    plan.mounts.append(MountStep("mount", "/mnt", host_dir, None, MS_BIND | MS_REC,
                                 attr_set=MOUNT_ATTR_RDONLY))
    status, out = run(plan)
    assert status == 0, out
    assert "ro" in mount_options(mountinfo_line(out, "/mnt"))
    assert "ro" in mount_options(mountinfo_line(out, "/mnt/sub"))


def test_propagation_flags(rootfs, host_dir):
    plan = make_plan(rootfs, ["cat", "/proc/self/mountinfo"])
    plan.mounts += [MountStep("mount", "/shared", host_dir, None, MS_BIND,
                              propagation=MS_SHARED),
                    MountStep("mount", "/private", host_dir, None, MS_BIND,
                              propagation=MS_PRIVATE)]
    status, out = run(plan)
    assert status == 0, out
    shared = mountinfo_line(out, "/shared")
    private = mountinfo_line(out, "/private")
    assert any(f.startswith("shared:") for f in shared[6:shared.index("-")])
    assert private[6] == "-"


def test_bind_a_file_creates_the_target_file(rootfs, host_dir):
    plan = make_plan(rootfs, ["cat", "/etc/new/greeting"])
    plan.mounts.append(MountStep("mount", "/etc/new/greeting", os.path.join(host_dir, "file"),
                                 None, MS_BIND, source_is_dir=False))
    assert run(plan) == (0, "hello\n")


def test_tmpfs_mkdir_and_symlink_steps(rootfs):
    plan = make_plan(rootfs, ["sh", "-c", "stat -c %a /made; readlink /link; "
                                          "grep ' /scratch ' /proc/self/mountinfo"])
    plan.mounts += [MountStep("mkdir", "/made", mode=0o710),
                    MountStep("symlink", "/link", "/etc/hostname"),
                    MountStep("mount", "/scratch", "tmpfs", "tmpfs", MS_NODEV, "size=1m")]
    status, out = run(plan)
    assert status == 0, out
    lines = out.splitlines()
    assert lines[:2] == ["710", "/etc/hostname"]
    assert "nodev" in lines[2] and "size=1024k" in lines[2]


def test_remount_step_changes_an_existing_mount(rootfs):
    plan = make_plan(rootfs, ["cat", "/proc/self/mountinfo"])
    plan.mounts += [MountStep("mount", "/scratch", "tmpfs", "tmpfs", MS_NODEV),
                    MountStep("mount", "/scratch", None, None,
                              MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NODEV)]
    status, out = run(plan)
    assert status == 0, out
    assert {"ro", "nodev"} <= mount_options(mountinfo_line(out, "/scratch"))


def test_symlink_in_rootfs_cannot_lead_a_mount_out(rootfs, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), os.path.join(rootfs, "escape"))
    plan = make_plan(rootfs, ["true"])
    plan.mounts.append(MountStep("mount", "/escape/t", "tmpfs", "tmpfs"))
    assert run(plan)[0] == 0
    assert not (outside / "t").exists()
    assert os.path.isdir(os.path.join(rootfs, str(outside).lstrip("/"), "t"))


def test_sysfs_mqueue_and_devpts(rootfs):
    plan = make_plan(rootfs, ["cat", "/proc/self/mountinfo"])
    plan.mounts += [MountStep("mount", "/sys", "sysfs", "sysfs",
                              MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC),
                    MountStep("mount", "/dev/mqueue", "mqueue", "mqueue",
                              MS_NOSUID | MS_NODEV | MS_NOEXEC)]
    status, out = run(plan)
    assert status == 0, out
    assert mountinfo_line(out, "/sys")[-3] == "sysfs"
    assert mountinfo_line(out, "/dev/mqueue")[-3] == "mqueue"
    assert mountinfo_line(out, "/dev/pts")[-3] == "devpts"


# --- devices and /dev ---------------------------------------------------------------------

def test_devices_and_dev_symlinks(rootfs):
    plan = make_plan(rootfs, ["sh", "-c", "stat -c '%F %t:%T %a %u:%g' /dev/null /dev/fifo "
                                          "/dev/blk; for l in fd stdin stdout stderr ptmx; "
                                          "do readlink /dev/$l; done"])
    plan.devices += [Device("/dev/fifo", "p", mode=0o600), Device("/dev/blk", "b", 7, 200,
                                                                   mode=0o640, uid=1, gid=2)]
    status, out = run(plan)
    assert status == 0, out
    assert out.splitlines() == [
        "character special file 1:3 666 0:0", "fifo 0:0 600 0:0",
        "block special file 7:c8 640 1:2",
        "/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2", "pts/ptmx"]


def test_terminal_master_goes_over_the_console_socket(rootfs):
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        plan = make_plan(rootfs, ["sh", "-c", "tty; stat -c %t:%T /dev/console /dev/pts/0; "
                                              "stty size; echo done"], terminal=True,
                         console_size=(30, 100))
        pid = spawn_init(plan, exec_fifo_fd=-1, console_socket_fd=theirs.fileno())
        _, fds, _, _ = socket.recv_fds(ours, 1024, 1)
        assert len(fds) == 1
        out = b""
        with os.fdopen(fds[0], "rb", buffering=0) as master:
            while True:
                try:
                    chunk = master.read(4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
        assert os.waitpid(pid, 0)[1] == 0
        lines = out.decode().split()
        assert lines[0] == "/dev/pts/0"
        assert lines[1] == lines[2]  # /dev/console is the pty
        assert lines[3:] == ["30", "100", "done"]
    finally:
        ours.close()
        theirs.close()


# --- pivot, masks, read-only --------------------------------------------------------------

@pytest.mark.parametrize("no_pivot", [False, True])
def test_root_is_the_rootfs(rootfs, no_pivot):
    status, out = sh(rootfs, "cat /etc/hostname; ls /bin/busybox; wc -l < /proc/self/mountinfo",
                     no_pivot=no_pivot)
    assert status == 0, out
    lines = out.split()
    assert lines[:2] == ["busybox", "/bin/busybox"]
    if not no_pivot:
        assert int(lines[2]) == 4  # /, /proc, /dev, /dev/pts: nothing of the host


def test_without_a_mount_namespace_the_init_chroots(rootfs):
    # runc's behaviour: the mounts are made in the caller's mount namespace, then chroot
    try:
        status, out = sh(rootfs, "readlink /proc/self/ns/mnt; ls /bin/busybox; touch /x",
                         namespaces=("pid", "uts"), readonly_root=True)
        assert status == 1, out
        lines = out.splitlines()
        assert lines[0] == os.readlink("/proc/self/ns/mnt")
        assert lines[1] == "/bin/busybox"
        assert "Read-only file system" in lines[2]
        with open("/proc/self/mountinfo") as f:  # the container's /proc, in our namespace
            assert " %s/proc " % rootfs in f.read()
    finally:
        subprocess.run(["umount", "-R", rootfs], capture_output=True)


def test_shared_rootfs_propagation(rootfs):
    status, out = sh(rootfs, "cat /proc/self/mountinfo",
                     rootfs_propagation=MS_SHARED | MS_REC)
    assert status == 0, out
    root = mountinfo_line(out, "/")
    assert any(f.startswith("shared:") for f in root[6:root.index("-")])


def test_masked_and_readonly_paths(rootfs):
    status, out = sh(rootfs, "cat /etc/hostname; ls /root | wc -l; touch /root/x || echo ro1; "
                             "touch /tmp/x || echo ro2; touch /etc/x && echo rw",
                     masked_paths=["/etc/hostname", "/root", "/does/not/exist"],
                     readonly_paths=["/tmp", "/also/missing"])
    assert status == 0, out
    lines = [x for x in out.splitlines() if not x.startswith("touch")]
    assert lines == ["0", "ro1", "ro2", "rw"]


def test_readonly_root(rootfs):
    status, out = sh(rootfs, "touch /x 2>&1; cat /proc/self/mountinfo", readonly_root=True)
    assert "Read-only file system" in out.splitlines()[0]
    assert "ro" in mount_options(mountinfo_line(out, "/"))


# --- process attributes -------------------------------------------------------------------

def test_hostname_domainname_sysctl_oom(rootfs):
    status, out = sh(rootfs, "hostname; cat /proc/sys/kernel/domainname "
                             "/proc/sys/net/ipv4/ip_forward /proc/self/oom_score_adj",
                     hostname="box", domainname="example.org",
                     sysctl=[("net.ipv4.ip_forward", "1")], oom_score_adj=500,
                     readonly_paths=["/proc/sys"])
    assert (status, out.split()) == (0, ["box", "example.org", "1", "500"])


def test_rlimits(rootfs):
    status, out = sh(rootfs, "grep 'open files' /proc/self/limits",
                     rlimits=[Rlimit(RLIMIT_NOFILE, 512, 1024)])
    assert out.split()[3:5] == ["512", "1024"]


def test_scheduler_io_priority_and_personality(rootfs):
    status, out = sh(rootfs, "cut -d' ' -f19,41 /proc/self/stat; ionice; uname -m",
                     scheduler=Scheduler(policy=3, nice=5), io_priority=(2 << 13) | 4,
                     personality=8)
    assert status == 0, out
    # nice 5, SCHED_BATCH; best-effort prio 4; PER_LINUX32
    assert out.splitlines()[0] == "5 3"
    assert out.splitlines()[1] == "best-effort: prio 4"
    assert out.splitlines()[2] in ("i686", "i386")


def test_user_groups_caps_and_nnp(rootfs):
    mask = (1 << CAP_KILL) | (1 << CAP_NET_BIND_SERVICE) | (1 << CAP_AUDIT_WRITE)
    caps = Capabilities(bounding=mask, effective=mask, permitted=mask, inheritable=mask,
                        ambient=mask)
    status, out = sh(rootfs, "cat /proc/self/status", uid=1000, gid=1001,
                     additional_gids=[10, 20], capabilities=caps, no_new_privileges=True)
    assert status == 0, out
    assert status_field(out, "Uid").split() == ["1000"] * 4
    assert status_field(out, "Gid").split() == ["1001"] * 4
    assert status_field(out, "Groups").split() == ["10", "20"]
    for name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status_field(out, name), 16) == mask, name
    assert status_field(out, "NoNewPrivs") == "1"


def test_root_with_reduced_caps_and_no_ambient(rootfs):
    mask = 1 << CAP_KILL
    caps = Capabilities(bounding=mask, effective=mask, permitted=mask)
    status, out = sh(rootfs, "cat /proc/self/status", capabilities=caps)
    for name, want in (("CapPrm", mask), ("CapEff", mask), ("CapBnd", mask), ("CapAmb", 0)):
        assert int(status_field(out, name), 16) == want, name
    assert status_field(out, "NoNewPrivs") == "0"


def test_umask_cwd_env_and_path_lookup(rootfs):
    plan = make_plan(rootfs, ["sh", "-c", "umask; pwd; echo $GREETING; which sh"],
                     umask=0o027, cwd="/tmp", env=["PATH=/usr/bin:/bin", "GREETING=hi"])
    assert run(plan) == (0, "0027\n/tmp\nhi\n/bin/sh\n")


def test_a_missing_cwd_is_created(rootfs):
    assert sh(rootfs, "pwd", cwd="/work/dir", readonly_root=True) == (0, "/work/dir\n")


def test_path_lookup_uses_the_containers_path(rootfs):
    os.makedirs(os.path.join(rootfs, "opt/tools"))
    with open(os.path.join(rootfs, "opt/tools/hello"), "w") as f:
        f.write("#!/bin/sh\necho from-opt\n")
    os.chmod(os.path.join(rootfs, "opt/tools/hello"), 0o755)
    assert run(make_plan(rootfs, ["hello"], env=["PATH=/opt/tools"])) == (0, "from-opt\n")


# --- hooks and seccomp --------------------------------------------------------------------

def test_hooks_get_the_state_on_stdin(rootfs, tmp_path):
    seen = []

    def on_hooks(pid):
        seen.append(pid)
        return b'{"pid": %d}' % pid

    plan = make_plan(rootfs, ["true"])
    plan.create_container_hooks = [
        Hook("/bin/sh", ["sh", "-c", "cat > %s/create.json" % tmp_path], timeout=5)]
    plan.start_container_hooks = [Hook("/bin/sh", ["sh", "-c", "cat > /tmp/start.json"])]
    r, w = os.pipe()
    pid = spawn_init(plan, exec_fifo_fd=-1, stdio=(0, w, w), on_hooks=on_hooks)
    os.close(w)
    os.close(r)
    assert os.waitpid(pid, 0)[1] == 0
    assert seen == [pid]
    assert (tmp_path / "create.json").read_bytes() == b'{"pid": %d}' % pid
    with open(os.path.join(rootfs, "tmp/start.json"), "rb") as f:
        assert f.read() == b'{"pid": %d}' % pid


def _bpf(*insns):
    return b"".join(struct.pack("<HBBI", *i) for i in insns)


LD_NR = (0x20, 0, 0, 0)
ALLOW = (0x06, 0, 0, 0x7fff0000)


def test_seccomp_filter_is_loaded(rootfs):
    eperm = (0x06, 0, 0, 0x00050000 | 1)
    bpf = _bpf(LD_NR, (0x15, 0, 1, 83), eperm, (0x15, 0, 1, 258), eperm, ALLOW)  # mkdir(at)
    for nnp in (True, False):
        status, out = sh(rootfs, "mkdir /tmp/d 2>&1; grep Seccomp: /proc/self/status",
                         seccomp=Seccomp(bpf), no_new_privileges=nnp)
        assert "Operation not permitted" in out
        assert out.split()[-1] == "2"


def test_seccomp_listener_goes_to_the_parent(rootfs):
    bpf = _bpf(LD_NR, (0x15, 0, 1, 163), (0x06, 0, 0, 0x7fc00000), ALLOW)  # acct: notify
    got = []

    def on_seccomp_fd(fd):
        got.append(os.readlink("/proc/self/fd/%d" % fd))
        os.close(fd)

    status, _ = run(make_plan(rootfs, ["true"], seccomp=Seccomp(bpf, notify=True),
                              no_new_privileges=True), on_seccomp_fd=on_seccomp_fd)
    assert status == 0
    assert got == ["anon_inode:seccomp notify"]


# --- failures -----------------------------------------------------------------------------

def test_bad_fstype_names_the_step_and_leaves_nothing(rootfs):
    plan = make_plan(rootfs, ["true"])
    plan.mounts.append(MountStep("mount", "/mnt", "none", "nosuchfs"))
    with pytest.raises(SystemFailure) as e:
        run(plan)
    assert str(e.value) == "mount none on /mnt: no such device"
    assert e.value.step == "mount none on /mnt"
    assert "filesystem type" in e.value.hint


@pytest.mark.parametrize("args,message", [
    (["nosuch"], "exec nosuch: executable file not found in $PATH"),
    (["/bin/nope"], "exec /bin/nope: no such file or directory"),
    (["/etc/hostname"], "exec /etc/hostname: permission denied"),
])
def test_exec_errors_are_reported_before_ready(rootfs, args, message):
    with pytest.raises(SystemFailure, match="^%s$" % message.replace("$", r"\$")):
        run(make_plan(rootfs, args))


def test_namespace_errors(rootfs):
    plan = make_plan(rootfs, ["true"])
    plan.namespaces.append(Namespace(NS["cgroup"], "/nonexistent/ns"))
    with pytest.raises(SystemFailure, match="^open namespace /nonexistent/ns: no such file"):
        run(plan)
    plan.namespaces[-1] = Namespace(NS["cgroup"], "/proc/self/ns/uts")
    with pytest.raises(SystemFailure, match="^join cgroup namespace: invalid argument$"):
        run(plan)


def test_hook_failures(rootfs):
    plan = make_plan(rootfs, ["true"])
    plan.create_container_hooks = [Hook("/bin/sh", ["sh", "-c", "exit 3"])]
    with pytest.raises(SystemFailure, match="^createContainer hook 0 /bin/sh: exited with "
                                            "status 3$"):
        run(plan)
    plan.create_container_hooks = [Hook("/bin/sh", ["sh", "-c", "sleep 5"], timeout=1)]
    with pytest.raises(SystemFailure, match="timed out after 1s$"):
        run(plan)


def test_init_dying_without_a_message(rootfs):
    def on_hooks(pid):
        os.kill(pid, 9)
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)

    with pytest.raises(SystemFailure, match="^container init: exited without a message "
                                            r"\(killed by signal 9\)$"):
        run(make_plan(rootfs, ["true"]), on_hooks=on_hooks)


def test_first_child_dying_without_a_message(rootfs):
    def on_pid(pid):
        os.kill(pid, 9)
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)

    with pytest.raises(SystemFailure, match="^container setup: exited without a message "
                                            r"\(killed by signal 9\)$"):
        run(make_plan(rootfs, ["true"]), on_pid=on_pid)


def test_cgroup_join_failures_name_the_cgroup(rootfs):
    from pyrunc.libcontainer.cgroups.manager import Join
    with pytest.raises(SystemFailure, match="^join cgroup /nonexistent/tasks: "
                                            "no such file or directory$"):
        run(make_plan(rootfs, ["true"]), cgroup=Join(["/nonexistent/tasks"]))
    with pytest.raises(SystemFailure, match="^clone the container's first child into cgroup "
                                            "%s: bad file descriptor$" % rootfs):
        run(make_plan(rootfs, ["true"]), cgroup=Join((), rootfs))   # not a cgroup2 directory


def test_callback_exception_kills_the_children(rootfs):
    def on_hooks(pid):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run(make_plan(rootfs, ["true"]), on_hooks=on_hooks)


def test_oversized_hook_state_is_refused_cleanly(rootfs):
    with pytest.raises(InvalidArgument, match="^hook state: 70000 bytes, more than"):
        run(make_plan(rootfs, ["true"]), on_hooks=lambda pid: b"x" * 70000)


def test_invalid_plans(rootfs):
    with pytest.raises(InvalidArgument, match="args: must be a non-empty list"):
        run(make_plan(rootfs, []))
    with pytest.raises(InvalidArgument, match="terminal needs a console socket"):
        run(make_plan(rootfs, ["true"], terminal=True))


# --- spawn_exec: a process joining a running container -----------------------------------

@pytest.fixture(params=[False, True], ids=["pivot", "no-pivot"])
def running(rootfs, request):
    """A running container: its init sleeps; yields (plan, init pid), then kills and reaps."""
    plan = make_plan(rootfs, ["sleep", "60"], hostname="box", no_pivot=request.param)
    pid = spawn_init(plan, exec_fifo_fd=-1)
    yield plan, pid
    os.kill(pid, 9)
    os.waitpid(pid, 0)


def exec_in(plan, init_pid, args, **changes):
    from pyrunc.libcontainer.process import spawn_exec
    proc = plan.replace(args=list(args), **changes)
    r, w = os.pipe()
    try:
        pid = spawn_exec(proc, init_pid, stdio=(0, w, w))
    except BaseException:
        os.close(r)
        raise
    finally:
        os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read()
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), out.decode()


def test_exec_joins_the_containers_namespaces(running):
    plan, init = running
    status, out = exec_in(plan, init, ["sh", "-c", "hostname; echo $$; cat /proc/1/comm; "
                                                   "readlink /proc/self/ns/net; cat /etc/hostname"])
    assert status == 0, out
    lines = out.split()
    assert lines[0] == "box"
    assert int(lines[1]) > 1
    assert lines[2] == "sleep"
    assert lines[3] == os.readlink("/proc/%d/ns/net" % init)
    assert lines[4] == "busybox"  # the container's root, also without pivot_root


def test_exec_process_attributes(running):
    plan, init = running
    mask = 1 << CAP_KILL
    status, out = exec_in(plan, init, ["sh", "-c", "pwd; echo $X; umask; cat /proc/self/status"],
                          uid=1000, gid=1000, cwd="/tmp", env=["PATH=/bin", "X=y"],
                          umask=0o077, no_new_privileges=True,
                          capabilities=Capabilities(mask, mask, mask, mask, mask),
                          rlimits=[Rlimit(RLIMIT_NOFILE, 100, 200)])
    assert status == 0, out
    assert out.splitlines()[:3] == ["/tmp", "y", "0077"]
    assert status_field(out, "Uid").split() == ["1000"] * 4
    assert int(status_field(out, "CapEff"), 16) == mask
    assert status_field(out, "NoNewPrivs") == "1"


def test_exec_with_a_terminal(running):
    plan, init = running
    from pyrunc.libcontainer.process import spawn_exec
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        pid = spawn_exec(plan.replace(args=["sh", "-c", "tty; grep -c /dev/console "
                                                    "/proc/self/mountinfo; true"],
                                      terminal=True),
                         init, console_socket_fd=theirs.fileno())
        _, fds, _, _ = socket.recv_fds(ours, 1024, 1)
        with os.fdopen(fds[0], "rb", buffering=0) as master:
            out = b""
            while True:
                try:
                    chunk = master.read(4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
        assert os.waitpid(pid, 0)[1] == 0
        lines = out.decode().split()
        assert lines[0].startswith("/dev/pts/")
        assert lines[1] == "0"  # the container's /dev/console is left alone
    finally:
        ours.close()
        theirs.close()


def test_exec_errors(running):
    plan, init = running
    with pytest.raises(SystemFailure, match=r"^exec nosuch: executable file not found in \$PATH$"):
        exec_in(plan, init, ["nosuch"])
    assert os.waitpid(init, os.WNOHANG) == (0, 0)  # the container is untouched


def test_exec_into_a_user_namespace_container(public_rootfs):
    plan = make_plan(public_rootfs, ["sleep", "60"],
                     namespaces=("user", "pid", "mount", "uts", "ipc", "net"),
                     uid_map="0 100000 65536\n", gid_map="0 100000 65536\n")
    plan.devices = [Device(d.path, d.kind, d.major, d.minor, bind=True) for d in plan.devices]
    init = spawn_init(plan, exec_fifo_fd=-1)
    try:
        status, out = exec_in(plan, init, ["sh", "-c", "id -u; cat /proc/self/uid_map"])
        assert status == 0, out
        assert [" ".join(x.split()) for x in out.splitlines()] == ["0", "0 100000 65536"]
    finally:
        os.kill(init, 9)
        os.waitpid(init, 0)
