"""The warm create path: a create server for the pyrunc runtime, so that a create starts no
interpreter.

The cold path (``start_shim``) runs the shim, which detaches and runs ``pyrunc create``: a new
Python process, whose start-up and imports are a third of the create. On the warm path a
long-lived, single-threaded server (``pyrunc create-server FD IDLE``, an internal command of the
pyrunc program, so it runs from the protected interpreter like every pyrunc command) keeps
libcontainer's create path imported. Per request it forks; the child detaches (setsid and a
second fork, as the shim's own detaching), becomes the subreaper, makes the init's stdio pipes
(or the console socket's listener), runs the very ``pyrunc create`` command line the shim would
run, in process (``cli.main``), so the init is its child, and then executes the shim with
``--adopt``: the shim takes the create's exit code and descriptors and goes on exactly as after
its own create (the ``ok PID`` or ``err ...`` line on the ready pipe, the state files, the
events; on a failure, its own clean-up).

The protocol, on a ``SOCK_SEQPACKET`` socketpair between the lifecycle manager and the server:
one datagram per request, the shim's options (its argv without the program and without
``--ready-fd``) joined by NUL bytes, with the ready pipe's write end as ``SCM_RIGHTS``. The
server answers each with one datagram, ``ok`` (taken: from now on the ready pipe tells how the
create went) or ``err MESSAGE`` (refused: nothing was done), and it answers before it forks: a
request without an answer was not acted on, so the manager may run it on the cold path.

The server exits when the manager's end closes (its owner is gone: every descriptor of it is
closed then, whatever thread started the server, which PR_SET_PDEATHSIG would not ensure: it
fires when the starting thread ends, and the daemon creates from short-lived request
threads) and after ``IDLE_EXIT`` seconds without a request; the manager starts it again for the
create that finds it gone (that create runs on the cold path).
"""
from __future__ import annotations

import _signal
import os
import socket
import subprocess
import sys
import threading

from pyrunc import errors

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SERVER_COMMAND = "create-server"
IDLE_EXIT = 60.0            # seconds without a request after which the server exits
ANSWER_TIMEOUT = 30.0       # seconds the manager waits for the server to take a request
REQUEST_MAX = 65536

# The shim's options a request may carry: those with a value, and the flags.
_VALUE_OPTIONS = {"--id", "--state-dir", "--bundle", "--runtime", "--runtime-root", "--log",
                  "--log-max-size", "--log-max-file", "--events"}
_FLAG_OPTIONS = {"--terminal", "--stdin"}
_REQUIRED = ("--id", "--state-dir", "--bundle", "--runtime")

# What a create imports, imported once by the server before it freezes its heap.
_PRELOAD = ("pyrunc.containerd.runtime.log", "pyrunc.libcontainer.container",
            "pyrunc.libcontainer.process", "pyrunc.libcontainer.hooks",
            "pyrunc.libcontainer.ocispec", "pyrunc.libcontainer.specconv",
            "pyrunc.libcontainer.specconv.process", "pyrunc.libcontainer.seccomp",
            "pyrunc.libcontainer.cgroups", "pyrunc.libcontainer.cgroups.manager",
            "pyrunc.libcontainer.cgroups.devices", "pyrunc.libcontainer.cgroups.hierarchy",
            "pyrunc.libcontainer.cgroups.v1", "pyrunc.libcontainer.cgroups.v2",
            "pyrunc.libcontainer.descriptors", "pyrunc.libcontainer.plan",
            "pyrunc.libcontainer.system", "select")


def own_pyrunc() -> str:
    """The pyrunc command of this installation (the one the server runs as)."""
    return os.path.join(os.path.dirname(sys.executable), "pyrunc")


# ---------------------------------------------------------------------------- the manager's side

class CreateServer:
    """The manager's handle on its create server (started by ``start``, stopped by ``stop``).

    Safe to use from several threads: requests are handed over one at a time (the creates
    themselves run in parallel, in the server's detached children)."""

    def __init__(self, pyrunc: str | None = None, idle_exit: float = IDLE_EXIT) -> None:
        """``pyrunc``: the pyrunc command to run the server with (default: this
        installation's); ``idle_exit``: seconds without a request after which it exits."""
        self.pyrunc = pyrunc or own_pyrunc()
        self.idle_exit = idle_exit
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None

    @property
    def pid(self) -> int | None:
        """The running server's pid, None when there is none."""
        with self._lock:
            proc = self._proc
            return proc.pid if proc is not None and proc.poll() is None else None

    def _running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the server unless it runs (it imports while the first request waits)."""
        with self._lock:
            if not self._running():
                self._start()

    def _start(self) -> None:
        self._forget()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = subprocess.Popen(
                [self.pyrunc, SERVER_COMMAND, str(theirs.fileno()), repr(float(self.idle_exit))], pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.settimeout(ANSWER_TIMEOUT)
        self._sock = ours

    def _forget(self) -> None:
        """Let go of a server found gone (or about to be stopped): its socket, its zombie."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            self._proc = None

    def request(self, options: list[str], ready_w: int) -> bool:
        """Hand a create over: ``options`` are the shim's, ``ready_w`` the ready pipe's write
        end (the caller keeps and closes its own). True: the server took it; the ready pipe
        tells the outcome. False: the server was gone (it is started again for the next
        create) and nothing was done: the caller runs the create on the cold path. A refused
        request raises InvalidArgument."""
        data = b"\0".join(os.fsencode(o) for o in options)
        with self._lock:
            if not self._running():
                self._start()
                return False
            sock = self._sock
            assert sock is not None
            try:
                socket.send_fds(sock, [data], [ready_w])
                answer = sock.recv(4096)
            except (OSError, TimeoutError):
                answer = b""
            if not answer:              # gone (idle exit, killed): nothing was done
                self._start()
                return False
        if answer == b"ok":
            return True
        raise errors.InvalidArgument(answer.decode(errors="replace").partition(" ")[2])

    def stop(self) -> None:
        """Stop the server (its pid is ours: it is our child) and wait for it."""
        with self._lock:
            self._forget()


# ---------------------------------------------------------------------------- the server

def _refuse(sock: socket.socket, message: str) -> None:
    sock.send(("err create server: " + message.replace("\n", " ")).encode())


def _parse(data: bytes, own: str) -> dict[str, Any]:
    """A request's shim options, checked: known options only, the runtime this pyrunc."""
    words = [os.fsdecode(w) for w in data.split(b"\0")]
    opts: dict[str, Any] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word in _FLAG_OPTIONS:
            opts[word] = True
        elif word in _VALUE_OPTIONS and i + 1 < len(words):
            i += 1
            opts[word] = words[i]
        else:
            raise errors.InvalidArgument("option %s: not a shim option" % errors.shown(word))
        i += 1
    for name in _REQUIRED:
        if not opts.get(name):
            raise errors.InvalidArgument("option %s: missing" % name)
    if os.path.realpath(opts["--runtime"]) != os.path.realpath(own):
        raise errors.InvalidArgument("runtime %s: not this pyrunc (%s)"
                                     % (errors.shown(opts["--runtime"]), own))
    return opts


def serve(args: list[str]) -> int:
    """``pyrunc create-server FD IDLE``: serve create requests on the socket FD; exit after
    IDLE seconds without one (internal)."""
    import gc
    import importlib
    import select
    import stat
    from pyrunc.containerd.shim.client import shim_binary
    try:
        fd, idle = int(args[0]), float(args[1])
        if len(args) != 2 or fd < 0 or not 0 < idle < 1e6:
            raise ValueError
    except (ValueError, IndexError):
        raise errors.InvalidArgument("create-server: internal command: takes a socket fd and "
                                     "an idle time in seconds") from None
    try:
        is_socket = stat.S_ISSOCK(os.fstat(fd).st_mode)
    except OSError:
        is_socket = False
    if not is_socket:
        raise errors.InvalidArgument("create-server: internal command: fd %d is not a socket"
                                     % fd)
    sock = socket.socket(fileno=fd)
    os.set_inheritable(fd, False)
    if sock.type != socket.SOCK_SEQPACKET:
        raise errors.InvalidArgument("create-server: internal command: fd %d is not a "
                                     "SOCK_SEQPACKET socket" % fd)
    own, shim = own_pyrunc(), shim_binary()
    for name in _PRELOAD:
        importlib.import_module(name)
    gc.freeze()         # the children's copies of the heap stay shared
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while poller.poll(int(idle * 1000)):
        try:
            data, fds, _, _ = socket.recv_fds(sock, REQUEST_MAX, 4, socket.MSG_CMSG_CLOEXEC)
        except ConnectionResetError:
            return 0
        if not data and not fds:
            return 0                    # the manager's end is closed: the owner is gone
        try:
            if len(fds) != 1:
                raise errors.InvalidArgument("a request carries exactly one descriptor "
                                             "(the ready pipe), not %d" % len(fds))
            opts = _parse(data, own)
        except errors.PyruncError as e:
            for f in fds:
                os.close(f)
            try:
                _refuse(sock, str(e))
            except OSError:
                return 0
            continue
        ready_w = fds[0]
        try:
            sock.send(b"ok")
        except OSError:
            os.close(ready_w)
            return 0
        _spawn(sock, opts, ready_w, shim)
        os.close(ready_w)
    return 0


def _spawn(sock: socket.socket, opts: dict[str, Any], ready_w: int, shim: str) -> None:
    """Fork the detached child that creates the container and becomes its shim; reap the
    intermediate process (gone at once), never the child."""
    try:
        pid = os.fork()
    except OSError as e:
        _say(ready_w, "err Unknown create server: fork: %s" % e.strerror)
        return
    if pid == 0:
        try:
            sock.close()
            os.setsid()
            if os.fork() == 0:
                _create_and_adopt(opts, ready_w, shim)
        except OSError as e:
            _say(ready_w, "err Unknown create server: %s" % e)
        finally:
            os._exit(0)
    while True:
        try:
            os.waitpid(pid, 0)
            return
        except InterruptedError:
            continue
        except ChildProcessError:
            return


def _create_and_adopt(opts: dict[str, Any], ready_w: int, shim: str) -> None:
    """In the detached child: ``pyrunc create`` in process, then the shim in adopt mode.
    Never returns."""
    from pyrunc.containerd.runtime import cli
    from pyrunc.libcontainer import system
    try:
        system.set_child_subreaper()
        state_dir = os.path.realpath(opts["--state-dir"])
        os.chdir(state_dir)
        os.umask(0o022)
        nul = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        args = (["--root", opts["--runtime-root"]] if opts.get("--runtime-root") else []) + [
            "create", "--bundle", opts["--bundle"], "--pid-file", state_dir + "/init.pid"]
        out_r = err_r = in_w = listener_fd = -1
        if opts.get("--terminal"):
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                os.unlink("console.sock")
            except FileNotFoundError:
                pass
            listener.bind("console.sock")
            listener.listen(64)
            listener_fd = listener.detach()
            console = state_dir + "/console.sock"
            if len(console) >= 108:     # too long for a socket address: through a descriptor
                console = "/proc/self/fd/%d/console.sock" % os.open(
                    ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            args += ["--console-socket", console]
            capture = os.open("runtime.err", os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                              0o600)
            stdio = (nul, nul, capture)
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            in_r = nul
            if opts.get("--stdin"):
                in_r, in_w = os.pipe()
            stdio = (in_r, out_w, err_w)
        for target, source in enumerate(stdio):
            os.dup2(source, target)
        args.append(opts["--id"])
    except BaseException as e:          # before the create: nothing made yet
        _say(ready_w, "err Unknown create server: %s" % e)
        os._exit(1)
    try:
        rc = cli.main(args)
    except BaseException as e:          # noqa: BLE001 - as the command's own last resort
        os.write(2, ("pyrunc: internal error: %s: %s\n" % (type(e).__name__, e)).encode())
        rc = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:
            pass
    for fd in (out_r, err_r, in_w, listener_fd, ready_w):
        if fd >= 0:
            os.set_inheritable(fd, True)
    # the dispositions the shim gets on the cold path (subprocess's restore_signals): the
    # interpreter ignores SIGPIPE and SIGXFSZ, and ignored signals survive execve
    for signo in (_signal.SIGPIPE, _signal.SIGXFSZ):
        _signal.signal(signo, _signal.SIG_DFL)
    argv = [shim]
    for name, value in opts.items():
        argv += [name] if value is True else [name, value]
    argv += ["--ready-fd", str(ready_w),
             "--adopt", "%d,%d,%d,%d,%d" % (rc, out_r, err_r, in_w, listener_fd)]
    try:
        os.execv(shim, argv)
    except OSError as e:
        if rc == 0:
            _destroy(opts)
        _say(ready_w, "err Unknown exec %s: %s" % (shim, e.strerror))
    os._exit(1)


def _destroy(opts: dict[str, Any]) -> None:
    """Remove a container created for a shim that could not run."""
    from pyrunc.libcontainer.container import Factory
    try:
        factory = Factory(root=opts["--runtime-root"]) if opts.get("--runtime-root") else Factory()
        factory.load(opts["--id"]).destroy(force=True)
    except errors.PyruncError:
        pass


def _say(fd: int, line: str) -> None:
    try:
        os.write(fd, (" ".join(line.split()) + "\n").encode())
    except OSError:
        pass
