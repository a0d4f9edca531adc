"""run -it / exec -it in a real pseudo-terminal: raw mode (the container's shell echoes, not the
local terminal), the size sent on start and on SIGWINCH, Ctrl-P Ctrl-Q detaches, the exit
status passed through, the local terminal restored."""
import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time


def spawn(target, *args, rows=30, cols=100):
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(target.env)
        os.execv(sys.executable, [sys.executable, "-m", "pyrunc.cli", *args])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    return pid, fd


def read_until(fd, needle, timeout=30):
    buf = b""
    deadline = time.monotonic() + timeout
    while needle not in buf:
        left = deadline - time.monotonic()
        assert left > 0, "no %r in %r" % (needle, buf)
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    assert needle in buf, "no %r in %r" % (needle, buf)
    return buf


def finish(pid, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError("pydocker did not exit")


def test_run_it_shell(pyd):
    pid, fd = spawn(pyd, "run", "-it", "--name", "tty1", "busybox", "sh")
    try:
        read_until(fd, b"# ")
        os.write(fd, b"stty size; tty; echo $((6*7))\r")
        out = read_until(fd, b"42")
        assert b"30 100" in out and b"/dev/pts/" in out
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        os.kill(pid, signal.SIGWINCH)
        time.sleep(0.5)
        os.write(fd, b"stty size\r")
        read_until(fd, b"40 120")
        os.write(fd, b"exit 5\r")
        assert finish(pid) == 5
    finally:
        os.close(fd)
    r = pyd.pydocker("inspect", "-f", "{{.State.ExitCode}} {{.Config.Tty}}", "tty1")
    assert r.out == "5 true\n"


def test_detach_keys(pyd):
    pid, fd = spawn(pyd, "run", "-it", "--name", "tty2", "busybox", "sh")
    try:
        read_until(fd, b"# ")
        os.write(fd, b"\x10\x11")
        read_until(fd, b"read escape sequence")
        assert finish(pid) == 0
    finally:
        os.close(fd)
    r = pyd.pydocker("ps", "--format", "{{.Names}} {{.State}}")
    assert r.out == "tty2 running\n"
    pid, fd = spawn(pyd, "exec", "-it", "tty2", "sh", "-c", "echo ready; read x; exit $x")
    try:
        read_until(fd, b"ready")
        os.write(fd, b"7\r")
        assert finish(pid) == 7
    finally:
        os.close(fd)


def _pty_output(target, cli_argv):
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(target.env)
        os.execv(cli_argv[0], cli_argv)
    out = b""
    try:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(fd)
    assert finish(pid) == 0, out
    return out


def _shape(out):
    """The terminal control structure of a pull: layer ids and byte counts blanked, repeated
    progress updates of a layer collapsed (their number depends on timing)."""
    import re
    s = re.sub(rb"[0-9a-f]{12}:", b"L:", out)
    s = re.sub(rb"sha256:[0-9a-f]{64}", b"DIGEST", s)
    s = re.sub(rb"(Downloading|Extracting) +[0-9.]+[kMG]?B/[0-9.]+[kMG]?B", rb"\1 N", s)
    s = re.sub(rb"\[=*>? *\] ", b"", s)
    unit = rb"\x1b\[1A\x1b\[2K\rL: (?:Downloading|Extracting) N\r\x1b\[1B"
    return re.sub(rb"(?:%s)+" % unit, b"<progress>", s)


def test_pull_progress_on_a_terminal(pyd):
    """The same pull on the same daemon, on a terminal, by pydocker and docker 28: the same
    redrawn lines (cursor up, clear line, the layer's status, cursor down)."""
    from .conftest import DOCKER28
    if not os.path.exists(DOCKER28):
        import pytest
        pytest.skip("docker 28 CLI (%s) is not installed" % DOCKER28)
    mine = _pty_output(pyd, [sys.executable, "-m", "pyrunc.cli", "pull", "hello-world"])
    assert pyd.pydocker("rmi", "hello-world").code == 0
    theirs = _pty_output(pyd, [DOCKER28, "pull", "hello-world"])
    assert b"\x1b[1A\x1b[2K\r" in mine and b": Pull complete \r\x1b[1B" in mine, mine
    assert _shape(mine) == _shape(theirs), (mine, theirs)
