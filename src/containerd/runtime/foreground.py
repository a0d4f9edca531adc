"""``pyrunc run`` in the foreground: create, start, forward signals, proxy the terminal, reap.

``Signals``, ``ConsoleReceiver`` and ``supervise`` serve ``pyrunc exec`` in the foreground too.

The run process makes itself a child subreaper before creating the container, so the container's
init (forked by an intermediate child) is reparented to it and its exit status can be collected.
Signals the run process receives are forwarded to the init, as runc does; with
``process.terminal`` the pty master arrives over a private console socket and is proxied to the
run process's own terminal, with window size changes passed on.
"""
from __future__ import annotations

import _signal
import errno
import gc
import os
import select
import sys

from pyrunc.containerd.runtime.signals import NUMBERS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FORWARDED = sorted(set(NUMBERS.values()) - {_signal.SIGKILL, _signal.SIGSTOP, _signal.SIGCHLD,
                                            _signal.SIGWINCH})


def set_child_subreaper() -> None:
    """prctl(PR_SET_CHILD_SUBREAPER, 1): orphans of the container's processes (a container
    without its own pid namespace) are reparented to us and reaped, as runc run does.

    The call is the native core's, which the run loads anyway to create the container."""
    from pyrunc.libcontainer.system import set_child_subreaper as set_it
    set_it()


def run(ctx: Any, flags: Any, container_id: str, create: Any) -> Any:
    """create + start (+ wait and delete unless detached); returns the exit code."""
    if flags["detach"]:
        container = create(ctx, flags, container_id)
        _start_or_destroy(container)
        return 0
    set_child_subreaper()
    console = None
    if flags["console_socket"] is None and _spec_wants_terminal(flags["bundle"]):
        console = ConsoleReceiver()
    # Signals are caught from here on; those that arrive before the container's process runs
    # wait in the wake-up pipe and are forwarded once it does, as runc does.
    with Signals() as signals:
        try:
            container = create(ctx, flags, container_id,
                               console_socket=console.path if console else None)
            master = console.receive() if console else None
        finally:
            if console:
                console.close()
        try:
            pid = container.state()["pid"]
            _start_or_destroy(container)
            return supervise(signals, pid, master)
        finally:
            if not flags["keep"]:
                container.destroy(force=True)


def _start_or_destroy(container):
    try:
        container.start()
    except BaseException:
        container.destroy(force=True)
        raise


def _spec_wants_terminal(bundle):
    """A peek at process.terminal; create validates the whole config and reports its errors."""
    from pyrunc.libcontainer import jsoncodec
    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            return jsoncodec.load(f)["process"]["terminal"] is True
    except (OSError, ValueError, KeyError, TypeError):
        return False


class ConsoleReceiver:
    """A private console socket: the container's init sends its pty master here."""

    def __init__(self) -> None:
        import socket
        import tempfile
        self.dir = tempfile.mkdtemp(prefix="pyrunc-console-")
        self.path = os.path.join(self.dir, "console.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.sock.bind(self.path)
        self.sock.listen(1)

    def receive(self) -> Any:
        import socket
        conn, _ = self.sock.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
        if not fds:
            from pyrunc.errors import SystemFailure
            raise SystemFailure("receive the console from the container", errno.EPROTO)
        return fds[0]

    def close(self) -> None:
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.rmdir(self.dir)


class Signals:
    """Catch every forwardable signal into a non-blocking wake-up pipe."""

    def __enter__(self):
        self.r, self.w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        _signal.set_wakeup_fd(self.w)
        self.saved = {}
        for sig in FORWARDED + [_signal.SIGCHLD, _signal.SIGWINCH]:
            try:
                self.saved[sig] = _signal.signal(sig, _noop)
            except (OSError, ValueError):
                pass
        return self

    def __exit__(self, *exc):
        for sig, handler in self.saved.items():
            _signal.signal(sig, handler)
        _signal.set_wakeup_fd(-1)
        os.close(self.r)
        os.close(self.w)


def supervise(signals: Any, pid: int, master: Any) -> Any:
    """Forward signals to ``pid`` (our child, or reparented to us), proxy ``master`` if given,
    and return ``pid``'s exit code."""
    gc.enable()         # bin/pyrunc turns it off for short commands; this one may wait for days
    tty = _Terminal(master) if master is not None else None
    try:
        if tty:
            tty.resize()
        status = _reap(pid)
        while status is None:
            fds = [signals.r] + (tty.fds() if tty else [])
            try:
                ready, _, _ = select.select(fds, [], [])
            except InterruptedError:
                continue
            if signals.r in ready:
                for sig in os.read(signals.r, 256):
                    if sig == _signal.SIGCHLD:
                        # several SIGCHLDs can come in one read: the first may reap the
                        # process, and a later one must not turn its status into "gone"
                        if status is None:
                            status = _reap(pid)
                    elif sig == _signal.SIGWINCH:
                        if tty:
                            tty.resize()
                    else:
                        try:
                            os.kill(pid, sig)
                        except ProcessLookupError:
                            pass
            if tty:
                tty.pump(ready)
        if tty:
            tty.drain()
        return status
    finally:
        if tty:
            tty.close()


def _noop(signum, frame):
    pass


def _reap(pid):
    """Reap every exited child (we are a subreaper); the init's exit code once it has exited."""
    status = None
    while True:
        try:
            child, raw = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status if status is not None else 255
        if child == 0:
            return status
        if child == pid:
            status = os.waitstatus_to_exitcode(raw)
            status = 128 - status if status < 0 else status


class _Terminal:
    """Copies stdin to the pty master and the master to stdout, stdin in raw mode."""

    def __init__(self, master):
        self.master = master
        self.stdin = sys.stdin.fileno()
        self.stdout = sys.stdout.fileno()
        self.saved = None
        self.stdin_open = True
        if os.isatty(self.stdin):
            import termios
            import tty
            self.saved = termios.tcgetattr(self.stdin)
            tty.setraw(self.stdin)

    def fds(self):
        return [self.master] + ([self.stdin] if self.stdin_open else [])

    def resize(self):
        if not os.isatty(self.stdin):
            return
        import fcntl
        import termios
        size = fcntl.ioctl(self.stdin, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)

    def pump(self, ready):
        if self.master in ready:
            self._copy_out()
        if self.stdin_open and self.stdin in ready:
            data = os.read(self.stdin, 65536)
            if data:
                _write_all(self.master, data)
            else:
                self.stdin_open = False
                _write_all(self.master, b"\x04")

    def _copy_out(self):
        try:
            data = os.read(self.master, 65536)
        except OSError as e:
            if e.errno == errno.EIO:  # the slave side is closed: the container exited
                return False
            raise
        if data:
            _write_all(self.stdout, data)
        return bool(data)

    def drain(self):
        os.set_blocking(self.master, False)
        try:
            while self._copy_out():
                pass
        except BlockingIOError:
            pass

    def close(self):
        if self.saved is not None:
            import termios
            termios.tcsetattr(self.stdin, termios.TCSADRAIN, self.saved)
        os.close(self.master)


def _write_all(fd, data):
    while data:
        n = os.write(fd, data)
        data = data[n:]
