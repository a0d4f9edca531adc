"""The native core under stress: clones from a busy multi-threaded parent, children killed at
any step, the exec fifo held until execve, the session keyring, the children's formatter.

A hang is the failure these tests look for, so the risky runs happen in a subprocess with a
timeout: a deadlocked child fails the test instead of blocking the suite.
"""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from hypothesis import given, settings, strategies as st

from pyrunc.errors import SystemFailure
from pyrunc.libcontainer.plan import Hook, Seccomp
from pyrunc.libcontainer.process import spawn_init

from .test_process import _bpf, ALLOW, LD_NR, make_plan, run, sh
from .test_process import nothing_left_behind, rootfs  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("private_mount_ns")

HERE = os.path.dirname(os.path.abspath(__file__))


def run_script(tmp_path, body, *args, timeout=90):
    """Run ``body`` (which sees ``spawn``/``make_plan``/``rootfs``) in a fresh interpreter."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent("""\
        import os, random, sys, threading, time
        sys.path.insert(0, %r)
        from test_process import make_plan, run
        from pyrunc.errors import SystemFailure
        from pyrunc.libcontainer.process import spawn_init
        rootfs = sys.argv[1]
        """ % HERE) + textwrap.dedent(body))
    try:
        p = subprocess.run([sys.executable, str(script)] + list(args), capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail("hung (a child deadlocked or the parent waited forever): %s"
                    % (e.stdout or b"")[-2000:])
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_spawn_while_other_threads_allocate_and_come_and_go(tmp_path, rootfs):
    # Other threads hold malloc's and glibc's thread-list locks at random moments; a child
    # that called into them (stdio, malloc, glibc's setxid broadcast) would wait forever.
    out = run_script(tmp_path, """
        stop = False

        def allocate():
            while not stop:
                junk = [bytearray(n) for n in range(1, 4096, 37)]
                "%s %d" % ("x" * 100, len(junk))

        def come_and_go():
            while not stop:
                t = threading.Thread(target=lambda: bytearray(1 << 16))
                t.start()
                t.join()

        workers = [threading.Thread(target=f) for f in (allocate, allocate, come_and_go)]
        for w in workers:
            w.start()
        try:
            ok = 0
            for i in range(40):
                # a uid change (setresuid, setgroups) and a failing step (the formatter)
                status, out = run(make_plan(rootfs, ["sh", "-c", "id -u"], uid=1000, gid=1000,
                                            additional_gids=[10, 20]))
                assert (status, out) == (0, "1000\\n"), (status, out)
                try:
                    run(make_plan(rootfs, ["no-such-program-%d" % i]))
                except SystemFailure as e:
                    assert "executable file not found" in str(e), e
                ok += 1
        finally:
            stop = True
            for w in workers:
                w.join()
        print("ok", ok)
        """, rootfs)
    assert out.split() == ["ok", "40"]


def paused_child(step_name="pyrunc:paused", timeout=10):
    """The pid of our child that paused at a test step."""
    deadline = time.monotonic() + timeout
    me = str(os.getpid())
    while time.monotonic() < deadline:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    stat = f.read()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            ppid = stat[stat.rindex(")") + 2:].split()[1]
            if comm == step_name and ppid == me:
                return int(pid)
        time.sleep(0.005)
    raise AssertionError("no child paused")


def kill_when_paused(result):
    def killer():
        try:
            pid = paused_child()
            result.append(pid)
            os.kill(pid, signal.SIGKILL)
        except Exception as e:  # reported by the test
            result.append(e)
    t = threading.Thread(target=killer)
    t.start()
    return t


@pytest.mark.parametrize("step,message", [
    (1, r"^container setup: killed by signal 9$"),
    (2, r"^container init: exited without a message \(killed by signal 9\)$"),
    (3, r"^container init: exited without a message \(killed by signal 9\)$"),
], ids=["stage1-after-cloning-the-init", "init-before-reporting", "init-after-reporting"])
def test_a_child_killed_at_any_step_fails_the_spawn_cleanly(rootfs, step, message):
    # nothing_left_behind (autouse) checks that both children are reaped and no fd is left
    killed = []
    t = kill_when_paused(killed)
    try:
        with pytest.raises(SystemFailure, match=message):
            run(make_plan(rootfs, ["true"], test_pause=step))
    finally:
        t.join()
    assert len(killed) == 1 and isinstance(killed[0], int), killed


def test_children_killed_at_random_moments_never_hang_the_parent(tmp_path, rootfs):
    out = run_script(tmp_path, """
        import signal
        random.seed(1234)
        outcomes = {"ran": 0, "failed": 0}

        def kill_children_later(delay):
            time.sleep(delay)
            with open("/proc/self/task/%d/children" % threading.main_thread().native_id) as f:
                pids = [int(p) for p in f.read().split()]
            for pid in pids:
                try:
                    with open("/proc/%d/comm" % pid) as f:
                        if f.read().startswith("pyrunc:"):
                            os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

        for i in range(60):
            t = threading.Thread(target=kill_children_later, args=(random.uniform(0, 0.006),))
            t.start()
            try:
                status, _ = run(make_plan(rootfs, ["true"]))
                outcomes["ran"] += 1
            except SystemFailure:
                outcomes["failed"] += 1
            t.join()
            try:
                os.waitpid(-1, os.WNOHANG)
                raise AssertionError("a child was left behind")
            except ChildProcessError:
                pass
        print(outcomes["ran"] + outcomes["failed"], outcomes["failed"] > 0)
        """, rootfs)
    assert out.split() == ["60", "True"]


def test_start_returns_once_the_program_has_executed(rootfs, tmp_path):
    # The init keeps the fifo's write end until execve (close-on-exec): reading the fifo to
    # EOF covers the startContainer hooks and ends when the program runs.
    fifo = tmp_path / "exec.fifo"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
    plan = make_plan(rootfs, ["sleep", "5"], start_container_hooks=[
        Hook("/bin/sh", ["sh", "-c", "sleep 0.3"])])
    try:
        pid = spawn_init(plan, exec_fifo_fd=fd)
    finally:
        os.close(fd)
    try:
        started = time.monotonic()
        with open(fifo, "rb") as f:
            assert f.read() == b"0"  # to EOF
        assert time.monotonic() - started >= 0.3
        with open("/proc/%d/comm" % pid) as f:
            assert f.read() == "sleep\n"
        assert not [os.readlink("/proc/%d/fd/%s" % (pid, n))
                    for n in os.listdir("/proc/%d/fd" % pid) if int(n) > 2]
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_path_lookup_works_when_faccessat2_is_refused(rootfs):
    # An older seccomp profile answers EPERM to faccessat2 (439): the lookup must not use it.
    eperm = (0x06, 0, 0, 0x00050000 | 1)
    bpf = _bpf(LD_NR, (0x15, 0, 1, 439), eperm, ALLOW)
    for nnp in (True, False):
        assert sh(rootfs, "echo ran", seccomp=Seccomp(bpf), no_new_privileges=nnp) == \
            (0, "ran\n")


def session_keyrings(out):
    """(description, perm) of the keyrings in a /proc/keys listing."""
    found = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) > 8 and fields[7] == "keyring":
            found.append((fields[8].rstrip(":"), int(fields[4], 16)))
    return found


def test_the_init_joins_a_new_session_keyring(rootfs):
    status, out = sh(rootfs, "cat /proc/keys", session_keyring="_ses.web", uid=1000, gid=1000)
    assert status == 0, out
    rings = dict(session_keyrings(out))
    assert "_ses.web" in rings, out
    assert rings["_ses.web"] & 0x080000  # searchable by the container's uid, as with runc


def test_an_exec_joins_the_containers_session_keyring(rootfs):
    from .test_process import exec_in
    plan = make_plan(rootfs, ["sleep", "60"], session_keyring="_ses.box")
    pid = spawn_init(plan, exec_fifo_fd=-1)
    try:
        # as uid 1000 the root-owned keyring is visible only to a process that possesses it
        joined = exec_in(plan, pid, ["cat", "/proc/keys"], uid=1000, gid=1000)
        kept = exec_in(plan, pid, ["cat", "/proc/keys"], uid=1000, gid=1000,
                       session_keyring=None)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert joined[0] == 0 and kept[0] == 0, (joined, kept)
    assert "_ses.box" in dict(session_keyrings(joined[1])), joined[1]
    assert "_ses.box" not in dict(session_keyrings(kept[1])), kept[1]


def test_without_a_session_keyring_the_callers_is_kept(rootfs):
    status, out = sh(rootfs, "cat /proc/keys")
    assert status == 0, out
    assert "_ses.test" not in dict(session_keyrings(out))


def test_specconv_names_the_keyring_after_the_container(tmp_path, busybox_rootfs):
    from pyrunc.containerd.runtime import spec as runtime_spec
    from pyrunc.libcontainer import specconv
    from pyrunc.libcontainer.ocispec import load
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    spec = runtime_spec.example_spec(args=["true"])
    # the shared rootfs by its real path: a symlink to it as bundle/rootfs is refused, as runc
    # refuses it ("invalid rootfs: not an absolute path, or a symlink")
    spec["root"]["path"] = os.path.realpath(busybox_rootfs)
    spec["mounts"] = [m for m in spec["mounts"] if m["type"] != "cgroup"]
    runtime_spec.write_spec(str(bundle), spec)
    spec = load(str(bundle))
    assert specconv.to_plan(spec, str(bundle), "web").session_keyring == "_ses.web"
    assert specconv.to_plan(spec, str(bundle), "web", no_new_keyring=True).session_keyring \
        is None


# --- the children's formatter (core_fmt: no heap, no locale) ---------------------------------

INT = st.integers(-2**31, 2**31 - 1)
UINT = st.integers(0, 2**32 - 1)
ULONG = st.integers(0, 2**64 - 1)
TEXT = st.binary(max_size=40).map(lambda b: b.replace(b"\0", b"."))
PIECES = st.one_of(
    st.tuples(st.just("%d"), INT), st.tuples(st.just("%u"), UINT),
    st.tuples(st.just("%x"), UINT), st.tuples(st.just("%#x"), UINT),
    st.tuples(st.just("%#lx"), ULONG), st.tuples(st.just("%s"), TEXT),
    st.tuples(st.just("%.*s"), st.tuples(st.integers(0, 50), TEXT)),
    st.tuples(st.just("%%"), st.none()), st.tuples(st.just("lit/"), st.none()))


def c_args(spec, value):
    from pyrunc._core import ffi
    if spec in ("%d",):
        return [ffi.cast("int", value)]
    if spec in ("%u", "%x", "%#x"):
        return [ffi.cast("unsigned int", value)]
    if spec == "%#lx":
        return [ffi.cast("unsigned long", value)]
    if spec == "%s":
        return [ffi.new("char[]", value)]
    if spec == "%.*s":
        return [ffi.cast("int", value[0]), ffi.new("char[]", value[1])]
    return []


def expected_text(spec, value):
    if spec in ("%d", "%u"):
        return b"%d" % value
    if spec in ("%x", "%#x", "%#lx"):
        return (b"0x" if "#" in spec else b"") + b"%x" % value
    if spec == "%s":
        return value
    if spec == "%.*s":
        return value[1][:value[0]]
    return b"%" if spec == "%%" else spec.encode()


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, max_size=8), st.integers(1, 120))
def test_core_fmt_formats_like_printf_and_truncates(pieces, size):
    from pyrunc._core import ffi, lib
    fmt = "".join(spec for spec, _ in pieces).encode()
    args = [a for spec, value in pieces for a in c_args(spec, value)]
    want = b"".join(expected_text(spec, value) for spec, value in pieces)
    buf = ffi.new("char[]", size + 8)
    buf[size:size + 8] = b"\xaa" * 8  # a guard: nothing is written past size
    n = lib.core_fmt(buf, size, fmt, *args)
    assert n == len(want)
    assert ffi.string(buf, size) == want[:size - 1]
    assert ffi.buffer(buf + size, 8)[:] == b"\xaa" * 8
