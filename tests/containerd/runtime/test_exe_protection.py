"""The runc CVE-2019-5736 class of attack: a container's root opens /proc/PID/exe of a runtime
process that enters the container before its execve, and writes to that file (reopening
/proc/self/fd/N for writing) once it is no longer busy. pyrunc's processes there are clones of
the Python interpreter, so the file would be the host's interpreter.

The attacker is a small static C program, the root process of a container with every
capability (so that neither the capability check nor non-dumpability stops it from opening
the file: only the protection of the file itself does). It polls /proc/*/exe, opens every new
one read-only, and keeps reopening it for writing. It writes only to files the test names
(copies of the interpreter or of runc) and to unnamed files (a memfd copy), never to anything
else of the host.

The pyrunc command under attack is the installed launcher with a copy of the interpreter as
its Python: the copy's hash must not change. The control runs the same copy unprotected in the
container's pid namespace (nsenter): the attacker must change it. runc, given the same
attacker, must resist as well.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time

import pytest

from pyrunc.containerd.runtime.spec import DEFAULT_CAPS
from pyrunc.containerd.shim.client import start_shim
from pyrunc.containerd.shim.warm import CreateServer
from pyrunc.libcontainer.capabilities import CAPABILITIES
from support import exe_mount_id, need, unique_id

from .conftest import Runtime

ATTACKER = r"""
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAXPID 65536
#define MAXHELD 512

static int logfd;
static unsigned long allowed[64];
static int nallowed;
static unsigned char denied[MAXPID];  /* logged */
static unsigned long last_ino[MAXPID];  /* of the exe last opened; ~0 once held */
static struct { int pid, fd, last_err, done; } held[MAXHELD];
static int nheld, maxpid;

static void say(const char *fmt, long a, long b, long c, long d)
{
    char buf[160];
    int n = snprintf(buf, sizeof(buf), fmt, a, b, c, d);
    if (write(logfd, buf, (size_t)n) < 0)
        _exit(3);
}

static int may_write(const struct stat *st)
{
    if (st->st_nlink == 0)
        return 1;                          /* an unnamed copy (memfd) */
    for (int i = 0; i < nallowed; i++)
        if (allowed[i] == (unsigned long)st->st_ino)
            return 1;
    return 0;
}

static void try_pid(int pid)
{
    char path[64];
    struct stat st;
    int fd;

    if (pid <= 1 || pid >= MAXPID || last_ino[pid] == ~0UL || pid == getpid())
        return;
    snprintf(path, sizeof(path), "/proc/%d/exe", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if ((errno == EACCES || errno == EPERM) && !denied[pid]) {
            say("denied %ld %ld\n", pid, errno, 0, 0);
            denied[pid] = 1;
        }
        return;
    }
    if (pid > maxpid)
        maxpid = pid;
    fstat(fd, &st);
    if ((unsigned long)st.st_ino != last_ino[pid])
        say("seen %ld %ld %ld\n", pid, (long)st.st_ino, (long)st.st_nlink, 0);
    last_ino[pid] = (unsigned long)st.st_ino;
    if (!may_write(&st) || nheld == MAXHELD) {   /* watched again: it may execve */
        close(fd);
        return;
    }
    last_ino[pid] = ~0UL;
    held[nheld].pid = pid;
    held[nheld].fd = fd;
    held[nheld].last_err = -1;
    held[nheld++].done = 0;
}

static void try_writes(void)
{
    char path[64];
    for (int i = 0; i < nheld; i++) {
        if (held[i].done)
            continue;
        snprintf(path, sizeof(path), "/proc/self/fd/%d", held[i].fd);
        int w = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (w >= 0 && write(w, "\nREPLACED BY THE CONTAINER\n", 27) == 27) {
            say("wrote %ld\n", held[i].pid, 0, 0, 0);
            held[i].done = 1;
        } else if (errno != held[i].last_err) {
            held[i].last_err = errno;
            say("blocked %ld %ld\n", held[i].pid, errno, 0, 0);
        }
        if (w >= 0)
            close(w);
    }
}

int main(int argc, char **argv)
{
    logfd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0)
        return 2;
    for (int i = 2; i < argc && nallowed < 64; i++)
        allowed[nallowed++] = strtoul(argv[i], NULL, 10);
    DIR *proc = opendir("/proc");
    if (!proc)
        return 2;
    say("ready %ld\n", getpid(), 0, 0, 0);
    for (;;) {
        struct dirent *e;
        rewinddir(proc);
        while ((e = readdir(proc)))
            if (e->d_name[0] >= '1' && e->d_name[0] <= '9')
                try_pid(atoi(e->d_name));
        for (int p = maxpid + 1; p <= maxpid + 8; p++)   /* the next pids, between scans */
            try_pid(p);
        try_writes();
        sched_yield();
    }
}
"""


EROFS, EPERM, EACCES, ETXTBSY = 30, 1, 13, 26


def host_caps():
    """Every capability of CAPABILITIES (indexed by number) in our bounding set."""
    with open("/proc/self/status") as f:
        bnd = int(next(line for line in f if line.startswith("CapBnd:")).split()[1], 16)
    return [name for bit, name in enumerate(CAPABILITIES) if bnd >> bit & 1]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope="module")
def attacker(tmp_path_factory):
    need("gcc")
    d = tmp_path_factory.mktemp("attacker")
    (d / "attacker.c").write_text(ATTACKER)
    subprocess.run(["gcc", "-O2", "-static", "-o", str(d / "attacker"), str(d / "attacker.c")],
                   check=True, capture_output=True)
    return str(d / "attacker")


@pytest.fixture
def copied_pyrunc(tmp_path, pyrunc_bin):
    """The installed pyrunc command in a virtual environment of its own whose interpreter is a
    copy of ours (its packages are ours, through a .pth file); the copy's path."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python3"
    shutil.copy2(os.path.realpath(sys.executable), python)
    (venv / "pyvenv.cfg").write_text(
        "home = %s\ninclude-system-site-packages = false\n"
        % os.path.dirname(os.path.realpath(sys.executable)))
    site = venv / "lib" / ("python%d.%d" % sys.version_info[:2]) / "site-packages"
    site.mkdir(parents=True)
    (site / "ours.pth").write_text("import site; site.addsitedir(%r)\n"
                                   % sysconfig.get_paths()["purelib"])
    shutil.copy2(pyrunc_bin, venv / "bin" / "pyrunc")
    with open(os.path.join(os.path.dirname(pyrunc_bin), "pyrunc-python")) as f:
        body = f.read().split("\n", 1)[1]
    script = venv / "bin" / "pyrunc-python"
    script.write_text("#!%s\n%s" % (python, body))
    script.chmod(0o755)
    return str(python)


class Attack:
    """A running attacker container; ``log()`` is what it saw and did, as tuples."""

    def __init__(self, runtime, make_bundle, attacker, tmp_path, allowed, caps=None):
        self.runtime = runtime
        self.logdir = tmp_path / "attack-log"
        self.logdir.mkdir(exist_ok=True)
        self.logfile = self.logdir / "log"

        def mutate(spec):
            for k in ("bounding", "effective", "permitted", "ambient"):
                spec["process"]["capabilities"][k] = host_caps() if caps is None else caps
            spec["mounts"].append({"destination": "/log", "type": "bind",
                                   "source": str(self.logdir), "options": ["rbind", "rw"]})
        self.bundle = make_bundle(["/attacker", "/log/log"] + [str(os.stat(p).st_ino)
                                                               for p in allowed],
                                  mutate=mutate)
        shutil.copy2(attacker, os.path.join(self.bundle, "rootfs", "attacker"))
        self.cid = unique_id("attacker")
        runtime("run", "--detach", "--bundle", self.bundle, self.cid)
        self.pid = json.loads(runtime("state", self.cid).stdout)["pid"]
        self.wait_for(lambda log: any(e[0] == "ready" for e in log), "the attacker to start")

    def log(self):
        try:
            text = self.logfile.read_text()
        except FileNotFoundError:
            return []
        return [tuple(int(x) if x.isdigit() else x for x in line.split())
                for line in text.splitlines() if line.endswith(tuple("0123456789"))]

    def seen(self, ino):
        """In-container pids whose exe the attacker opened and found to be ``ino``."""
        return {e[1] for e in self.log() if e[0] == "seen" and e[2] == ino}

    def wait_for(self, predicate, what, timeout=15):
        deadline = time.monotonic() + timeout
        while not predicate(self.log()):
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for %s; the attacker's log:\n%s"
                                     % (what, self.logfile.read_text()))
            time.sleep(0.02)

    def join_pid_ns(self, spec):
        """A mutate() for a second container in the attacker's pid namespace."""
        spec["linux"]["namespaces"] = [
            ns if ns["type"] != "pid" else {"type": "pid", "path": "/proc/%d/ns/pid" % self.pid}
            for ns in spec["linux"]["namespaces"]]


def exec_until_seen(attack, ino, times=3, tries=60):
    """Run ``exec`` until the attacker has opened the exe of ``times`` exec processes."""
    for _ in range(tries):
        attack.runtime("exec", attack.cid, "true")
        if len(attack.seen(ino)) >= times:
            return
    raise AssertionError("the attacker never saw the exec processes' exe (%d tries):\n%s"
                         % (tries, attack.logfile.read_text()))


def second_container(attack, make_bundle, ino, create=None):
    """create (the attacker opens the waiting init's exe) and start a container in the
    attacker's pid namespace; ``create(bundle, id)`` instead of the runtime's create."""
    before = attack.seen(ino)

    def mutate(spec):
        for k in ("bounding", "effective", "permitted", "ambient"):
            spec["process"]["capabilities"][k] = host_caps()
        attack.join_pid_ns(spec)
    cid = unique_id("second")
    path = make_bundle(["sleep", "100"], mutate=mutate)
    if create is None:
        attack.runtime("create", "--bundle", path, cid)
    else:
        create(path, cid)
    attack.wait_for(lambda log: attack.seen(ino) - before, "the attacker to open the init's exe")
    attack.runtime("start", cid)


def blocked_for_good(attack, pids, errnos):
    """Wait until every pid's file no longer busy has failed to open for writing with one of
    ``errnos`` (the processes are gone, so only the protection stops the write)."""
    def done(log):
        last = {}
        for e in log:
            if e[0] == "blocked":
                last[e[1]] = e[2]
        return all(last.get(p) in errnos for p in pids) or any(e[0] == "wrote" for e in log)
    attack.wait_for(done, "the writes to be refused for good")


def test_exec_create_start_do_not_expose_the_interpreter(tmp_path, private_mount_ns,
                                                          make_bundle, attacker, copied_pyrunc):
    python = copied_pyrunc
    ino = os.stat(python).st_ino
    control = str(tmp_path / "control-python3")
    shutil.copy2(python, control)
    digest = sha256(python)
    rt = Runtime("pyrunc", os.path.join(os.path.dirname(python), "pyrunc"),
                 str(tmp_path / "state"))
    try:
        attack = Attack(rt, make_bundle, attacker, tmp_path, [python, control])
        exec_until_seen(attack, ino)
        second_container(attack, make_bundle, ino)
        pids = attack.seen(ino)
        blocked_for_good(attack, pids, {EROFS})
        log = attack.log()
        assert not [e for e in log if e[0] == "wrote"], log
        assert sha256(python) == digest

        # The control: the same interpreter run unprotected in the container's pid namespace.
        # The attacker opens it while it runs, then replaces it.
        subprocess.run(["nsenter", "-t", str(attack.pid), "-p", "--", control, "-S", "-c",
                        "import time; time.sleep(1)"], check=True, timeout=30)
        ctl = attack.seen(os.stat(control).st_ino)
        assert ctl, attack.log()
        attack.wait_for(lambda log: any(e[0] == "wrote" and e[1] in ctl for e in log),
                        "the attacker to replace the unprotected copy")
        assert sha256(control) != digest
        assert ("blocked", min(ctl), ETXTBSY) in attack.log()    # while it ran
        assert sha256(python) == digest
    finally:
        rt.cleanup()



def test_the_warm_create_path_does_not_expose_the_interpreter(tmp_path, private_mount_ns,
                                                              make_bundle, attacker,
                                                              copied_pyrunc):
    """The lifecycle manager's create server (pyrunc.containerd.shim.warm) runs the create in
    a fork of itself: the waiting init is a clone of the server, which the pyrunc launcher
    started from a read-only clone of the interpreter as it starts every pyrunc command."""
    python = copied_pyrunc
    ino = os.stat(python).st_ino
    digest = sha256(python)
    pyrunc = os.path.join(os.path.dirname(python), "pyrunc")
    rt = Runtime("pyrunc", pyrunc, str(tmp_path / "state"))
    server = CreateServer(pyrunc=pyrunc)
    shims = []

    def warm_create(bundle, cid):
        state_dir = tmp_path / "tasks" / cid
        state_dir.mkdir(parents=True)
        init = start_shim(container_id=cid, state_dir=str(state_dir), bundle=bundle,
                          runtime=pyrunc, runtime_root=rt.root, server=server)
        shims.append(int((state_dir / "shim.pid").read_text()))
        assert exe_mount_id(init) == exe_mount_id(server.pid)    # the server's clone made it
    try:
        attack = Attack(rt, make_bundle, attacker, tmp_path, [python])
        server.start()
        second_container(attack, make_bundle, ino, create=warm_create)
        server.stop()           # no process runs the interpreter any more
        pids = attack.seen(ino)
        assert pids, attack.log()
        blocked_for_good(attack, pids, {EROFS})
        assert not [e for e in attack.log() if e[0] == "wrote"], attack.log()
        assert sha256(python) == digest
    finally:
        server.stop()
        for pid in shims:
            os.kill(pid, signal.SIGKILL)
        rt.cleanup()


@pytest.mark.peer
def test_runc_exec_does_not_expose_runc_either(tmp_path, private_mount_ns, make_bundle,
                                               attacker):
    runc = str(tmp_path / "runc")
    shutil.copy2(need("runc"), runc)
    digest = sha256(runc)
    rt = Runtime("runc", runc, str(tmp_path / "state"))
    try:
        attack = Attack(rt, make_bundle, attacker, tmp_path, [runc])
        ino = os.stat(runc).st_ino

        def runc_seen():     # runc runs itself from a read-only bind mount or a sealed memfd
            return {e[1] for e in attack.log()
                    if e[0] == "seen" and (e[2] == ino or e[3] == 0)}
        for _ in range(60):
            rt("exec", attack.cid, "true")
            if runc_seen():
                break
        pids = runc_seen()
        assert pids, attack.log()
        blocked_for_good(attack, pids, {EROFS, EPERM})
        assert not [e for e in attack.log() if e[0] == "wrote"], attack.log()
        assert sha256(runc) == digest
    finally:
        rt.cleanup()


def ns_pid(pid):
    """The pid of host process ``pid`` in its own pid namespace."""
    with open("/proc/%d/status" % pid) as f:
        return int(next(line for line in f if line.startswith("NSpid:")).split()[-1])


def test_processes_entering_the_container_are_not_dumpable(runtime, make_bundle, attacker,
                                                           tmp_path):
    """Defense in depth, as runc: a created container's init (a clone of the runtime, waiting
    for start) is not dumpable, so the container's root without CAP_SYS_PTRACE cannot open its
    /proc/PID/exe even with the same uid and capabilities. The same attacker opens the exe of
    the same process once it has run the container's program (which makes it dumpable)."""
    attack = Attack(runtime, make_bundle, attacker, tmp_path, [], caps=list(DEFAULT_CAPS))
    cid = unique_id("second")
    runtime("create", "--bundle", make_bundle(["sleep", "100"], mutate=attack.join_pid_ns), cid)
    pid = ns_pid(json.loads(runtime("state", cid).stdout)["pid"])
    attack.wait_for(lambda log: ("denied", pid, EACCES) in log or any(
        e[:2] == ("seen", pid) for e in log), "the attacker to try the init's exe")
    time.sleep(0.3)                 # the attacker keeps trying while the init waits
    assert ("denied", pid, EACCES) in attack.log()
    assert not [e for e in attack.log() if e[0] == "seen"], attack.log()
    runtime("start", cid)
    busybox = os.stat(os.path.join(attack.bundle, "rootfs", "bin", "busybox")).st_ino
    attack.wait_for(lambda log: any(e[:3] == ("seen", pid, busybox) for e in log),
                    "the attacker to open the container program's exe")
    assert not [e for e in attack.log() if e[0] == "seen" and e[2] != busybox]
