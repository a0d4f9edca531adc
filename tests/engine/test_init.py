"""pyrunc-init (``--init``): PID 1 of real containers run by the pyrunc runtime, bound at
/sbin/docker-init as the engine binds it. What it does is read from inside the container
(/proc, a trap in a shell) and from the runtime's exit status."""
import os
import pty
import select
import signal
import subprocess
import time

import pytest

from pyrunc.containerd.runtime.spec import example_spec, write_spec
from pyrunc.engine.initbin import INIT_DESTINATION, INIT_PATH


@pytest.fixture
def run_init(tmp_path, private_mount_ns, pyrunc_bin, busybox_rootfs):
    """run_init(script, popen=False) -> CompletedProcess (or the Popen of a foreground
    ``pyrunc run``) of a busybox container whose process is ``docker-init -- sh -c script``."""
    if not os.access(INIT_PATH, os.X_OK):
        pytest.fail("%s is not built: run setup.py build_ext" % INIT_PATH)
    root = str(tmp_path / "state")
    started = []

    def run(script, popen=False, terminal=False):
        cid = "init%d" % len(started)
        bundle = tmp_path / cid
        bundle.mkdir()
        subprocess.run(["cp", "-al", busybox_rootfs, str(bundle / "rootfs")], check=True)
        spec = example_spec(args=[INIT_DESTINATION, "--", "sh", "-c", script], terminal=terminal)
        spec["mounts"].append({"destination": INIT_DESTINATION, "type": "bind",
                               "source": INIT_PATH, "options": ["rbind", "ro"]})
        write_spec(str(bundle), spec)
        started.append(cid)
        cmd = [pyrunc_bin, "--root", root, "run", "-b", str(bundle), cid]
        if popen:
            return cid, subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True)
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=60)

    run.kill = lambda cid, sig: subprocess.run(
        [pyrunc_bin, "--root", root, "kill", cid, sig], capture_output=True, text=True,
        timeout=30)
    yield run
    for cid in started:
        subprocess.run([pyrunc_bin, "--root", root, "delete", "--force", cid],
                       capture_output=True, timeout=30)


def test_init_is_pid_1_and_the_command_its_child(run_init):
    r = run_init("cat /proc/1/cmdline | tr '\\0' ' '; echo; "
                 "grep PPid /proc/$$/status; echo pid $$")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(INIT_DESTINATION + " -- sh -c ")
    assert lines[1].split() == ["PPid:", "1"]
    assert lines[2] != "pid 1"


@pytest.mark.parametrize("code", [0, 1, 42, 255])
def test_exit_code_passes_through(run_init, code):
    r = run_init("exit %d" % code)
    assert r.returncode == code, r.stderr


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGUSR1, signal.SIGTERM])
def test_command_killed_by_a_signal_exits_128_plus_n(run_init, sig):
    # the shell kills itself: it is not PID 1, so the signal is not ignored
    r = run_init("kill -%d $$; sleep 5" % sig)
    assert r.returncode == 128 + sig, r.stderr


def test_a_missing_command_exits_127(run_init):
    r = run_init("exec /no/such/program")
    assert r.returncode == 127
    r = run_init("exec /etc/passwd")
    assert r.returncode == 126


def _proc_state(pid_var):
    return ("if [ -e /proc/$%s/stat ]; then cut -d' ' -f3 /proc/$%s/stat; else echo gone; fi"
            % (pid_var, pid_var))


def test_orphans_are_reaped(run_init):
    # the inner shell exits at once: its sleep is orphaned, reparented to PID 1 (the init);
    # once the sleep exits only the init can reap it
    script = ("o=$(sh -c 'sleep 0.3 >/dev/null & echo $!'); "
              "grep PPid /proc/$o/status; sleep 1.5; " + _proc_state("o"))
    r = run_init(script)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["PPid:", "1", "gone"]


def test_many_orphans_are_reaped(run_init):
    script = ("orphans=$(sh -c 'for i in $(seq 30); do sleep 0.2 >/dev/null & echo $!; done'); "
              "sleep 1.5; n=0; for o in $orphans; do "
              "[ -e /proc/$o ] && n=$((n+1)); done; echo left $n; "
              "grep -l '^State:.*Z' /proc/[0-9]*/status | wc -l")
    r = run_init(script)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["left", "0", "0"]


@pytest.mark.parametrize("name", ["TERM", "INT", "HUP", "USR1", "USR2", "WINCH", "QUIT"])
def test_signals_are_forwarded_to_the_command(run_init, name):
    # the trap runs in the command (PID 2); the signal is sent to the container, i.e. PID 1
    script = ("trap 'echo got %s; exit 3' %s; echo ready; while :; do sleep 0.05; done"
              % (name, name))
    cid, proc = run_init(script, popen=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        k = run_init.kill(cid, name)
        assert k.returncode == 0, k.stderr
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            run_init.kill(cid, "KILL")
            proc.wait(10)
    assert out == "got %s\n" % name
    assert proc.returncode == 3, err


def test_sigterm_to_a_command_without_a_trap_ends_it(run_init):
    # a shell as PID 1 would ignore SIGTERM; under the init, it is PID 2 and dies of it
    cid, proc = run_init("echo ready; while :; do sleep 0.05; done", popen=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        assert run_init.kill(cid, "TERM").returncode == 0
        proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            run_init.kill(cid, "KILL")
            proc.wait(10)
    assert proc.returncode == 128 + signal.SIGTERM


def test_in_a_container_with_a_terminal_the_command_is_the_foreground_group(run_init):
    # the runtime made PID 1 (the init) the session leader of the console: the command leads
    # its own group, which is the terminal's foreground group (fields of /proc/PID/stat)
    r = run_init("read -r _ _ _ _ pgrp sid _ tpgid _ < /proc/$$/stat; "
                 "echo \"ids $$ $pgrp $sid $tpgid\"", terminal=True)
    assert r.returncode == 0, r.stderr
    pid, pgrp, sid, tpgid = map(int, r.stdout.split("ids ", 1)[1].split()[:4])
    assert (pgrp, sid, tpgid) == (pid, 1, pid)


def test_usage_without_a_command():
    r = subprocess.run([INIT_PATH], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert r.stderr.startswith("usage: pyrunc-init")
    r = subprocess.run([INIT_PATH, "--"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2


def _read_until(fd, marker, timeout=10):
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError("no %r in %r" % (marker, data))
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data


def test_on_a_terminal_the_command_is_the_foreground_group():
    # the init runs in a new session with a pty as stdio; the kernel's view (/proc/PID/stat:
    # pgrp, session, tpgid) says who leads what, and ^C reaches the command's group only
    master, slave = pty.openpty()
    script = ("read -r _ _ _ _ pgrp sid _ tpgid _ < /proc/$$/stat; "
              "echo \"ids $$ $PPID $pgrp $sid $tpgid\"; "
              "trap 'echo got INT; exit 5' INT; echo ready; while :; do sleep 0.05; done")
    proc = subprocess.Popen([INIT_PATH, "--", "/bin/busybox", "sh", "-c", script],
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    try:
        out = _read_until(master, b"ready").decode()
        ids = next(line for line in out.splitlines() if line.startswith("ids ")).split()[1:]
        pid, ppid, pgrp, sid, tpgid = map(int, ids)
        assert ppid == proc.pid
        assert sid == proc.pid            # the init leads the session holding the terminal
        assert pgrp == pid                # the command leads its own group...
        assert tpgid == pid               # ... the terminal's foreground group
        os.write(master, b"\x03")         # ^C: SIGINT to the foreground group
        _read_until(master, b"got INT")
        assert proc.wait(20) == 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
