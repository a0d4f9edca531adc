"""The lifecycle manager: tasks (containers run from bundles) that outlive the process using it.

Everything a task is lives on disk under the manager's root, so any process can pick up where
another one died:

    ROOT/tasks/ID/task.json      what was asked (bundle, runtime, stdio, log), written first
    ROOT/tasks/ID/shim.sock      the shim's socket (see pyrunc.containerd.shim)
    ROOT/tasks/ID/exit           the exit status, once the container has exited
    ROOT/tasks/ID/ID-json.log    the default json-file log of a detached container
    ROOT/locks/ID                the per-container flock; no global lock anywhere
    ROOT/runtime/NAME/           the runtime's own state root (its --root)
    ROOT/events.jsonl            the event log (pyrunc.containerd.tasks.events)

Once the container has exited (and its output is logged) the manager collects the status: the
shim's ``collect`` request, after which the shim exits, leaving the state directory with its
``exit`` file and the log. From then on state, wait and logs are answered from those files, and
delete runs the runtime's delete itself; a stopped container kept by the engine holds no shim.

A task whose shim is gone without an exit record is reported honestly: stopped, exit status
unknown; what the runtime left of it is force-deleted.
"""
from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import time
from dataclasses import dataclass
from typing import Optional

from pyrunc import errors
from pyrunc.containerd.shim.client import ShimClient, ShimGone, start_shim
from pyrunc.containerd.shim.logs import read_log
from pyrunc.containerd.shim.warm import CreateServer
from pyrunc.containerd.tasks.events import EventLog
from pyrunc.containerd.tasks.locking import IdLock
from pyrunc.containerd.tasks.runtime_binary import RuntimeBinary, resolve
from pyrunc.containerd.tasks.stats import read_stats
from pyrunc.libcontainer import timestamps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Iterator, Mapping
    from pyrunc.containerd.shim.client import Attachment
    from pyrunc.containerd.shim.logs import LogEntry

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
TASK_FILE = "task.json"
EXIT_FILE = "exit"
STARTUP_GRACE = 5.0     # seconds a just-spawned shim may take to open its socket

CREATED, RUNNING, PAUSED, STOPPED = "created", "running", "paused", "stopped"


@dataclass
class ExitStatus:
    status: Optional[int]           # None: unknown (the shim died before recording it)
    exited_at: Optional[str]
    oom_killed: bool = False


@dataclass
class TaskState:
    id: str
    status: str
    pid: int
    bundle: str
    runtime: str
    exit_status: Optional[int] = None
    exited_at: Optional[str] = None
    oom_killed: bool = False
    shim_pid: Optional[int] = None
    log_dropped: int = 0
    terminal: bool = False


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def _write_json(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f)
    os.rename(tmp, path)


def check_id(container_id: str) -> None:
    if not isinstance(container_id, str) or not ID_PATTERN.match(container_id):
        raise errors.InvalidArgument("container id %r: must match %s"
                                     % (container_id, ID_PATTERN.pattern))


def _wait_gone(pid, timeout=2.0):
    """Wait for a process that is exiting to be gone (or a zombie): its pidfd turns readable
    then (it need not be our child); /proc is polled where there is no pidfd."""
    if pid:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return
        except OSError:
            fd = None
        if fd is not None:
            try:
                poller = select.poll()
                poller.register(fd, select.POLLIN)
                poller.poll(timeout * 1000)
            finally:
                os.close(fd)
            return
    deadline = time.monotonic() + timeout
    while pid and time.monotonic() < deadline:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except (FileNotFoundError, ProcessLookupError):
            return
        time.sleep(0.002)


class TaskManager:
    """Creates tasks and finds the ones that exist (also those made by an earlier process)."""

    def __init__(self, root: str, runtime: str = "pyrunc",
                 runtimes: Mapping[str, str] | None = None, warm_create: bool = False) -> None:
        """``warm_create``: creates with this installation's pyrunc go through a create server
        (``pyrunc.containerd.shim.warm``: no interpreter started per create), started now and
        stopped by ``close``; other runtimes keep the shim's own run of their create."""
        self.root = os.path.abspath(root)
        self.runtime = runtime
        # containerd's configured runtimes: name -> the command run for it (a name or path);
        # a task created with such a name keeps its state under ROOT/runtime/NAME
        self.runtimes = dict(runtimes or {})
        self.tasks_dir = os.path.join(self.root, "tasks")
        self.locks_dir = os.path.join(self.root, "locks")
        for d in (self.tasks_dir, self.locks_dir):
            os.makedirs(d, exist_ok=True)
        self.event_log = EventLog(os.path.join(self.root, "events.jsonl"))
        self.create_server = CreateServer() if warm_create else None
        if self.create_server is not None:
            self.create_server.start()

    def close(self) -> None:
        """Stop the create server, if there is one (the tasks live on)."""
        if self.create_server is not None:
            self.create_server.stop()

    def __enter__(self) -> TaskManager:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def runtime_path(self, runtime: str | None = None) -> str:
        """Absolute path of ``runtime`` (default: the manager's): a name of ``runtimes`` is
        its command; anything else is a path, or a name looked up as ``resolve`` does.
        Unavailable when there is no such executable."""
        name = runtime or self.runtime
        return resolve(self.runtimes.get(name, name))

    def _lock(self, container_id, blocking=True):
        return IdLock(self.locks_dir, container_id, blocking)

    def create(self, container_id: str, bundle: str, *, runtime: Any = None, terminal: bool = False,
               stdin: bool = False, log_path: Any = None, log_max_size: int = 0,
               log_max_file: int = 1) -> Task:
        """Create a task from a bundle (created, not started); returns its ``Task``.

        ``log_path``: where the json-file log goes (default: in the task's state directory;
        ``False``: no log, output only to attached clients).
        """
        check_id(container_id)
        bundle = os.path.abspath(bundle)
        if not os.path.isfile(os.path.join(bundle, "config.json")):
            raise errors.NotFound("bundle %s: config.json not found" % bundle)
        if log_max_size < 0 or log_max_file < 1:
            raise errors.InvalidArgument("log: max-size must be >= 0 and max-file >= 1")
        if log_path and not os.path.isdir(os.path.dirname(os.path.abspath(log_path))):
            raise errors.NotFound("log %s: directory not found" % log_path)
        name = runtime or self.runtime
        runtime_path = self.runtime_path(name)
        runtime_root = os.path.join(self.root, "runtime", name if name in self.runtimes
                                    else os.path.basename(runtime_path))
        state_dir = os.path.join(self.tasks_dir, container_id)
        with self._lock(container_id) as lock:
            if os.path.exists(state_dir):
                if os.path.exists(os.path.join(state_dir, TASK_FILE)):
                    raise errors.AlreadyExists("container %s: already exists" % container_id)
                shutil.rmtree(state_dir)     # a create that died before starting its shim
            os.makedirs(runtime_root, exist_ok=True)
            os.mkdir(state_dir)
            if log_path is None:
                log_path = os.path.join(state_dir, container_id + "-json.log")
            meta = {"id": container_id, "bundle": bundle, "runtime": runtime_path,
                    "runtime_root": runtime_root, "terminal": bool(terminal),
                    "stdin": bool(stdin), "log": os.path.abspath(log_path) if log_path else None,
                    "created": timestamps.now()}
            _write_json(os.path.join(state_dir, TASK_FILE), meta)
            try:
                start_shim(container_id=container_id, state_dir=state_dir, bundle=bundle,
                           runtime=runtime_path, runtime_root=runtime_root, log=meta["log"],
                           log_max_size=log_max_size, log_max_file=log_max_file,
                           terminal=terminal, stdin=stdin, events=self.event_log.path,
                           server=self.create_server if self.create_server is not None
                           and RuntimeBinary(runtime_path).is_own_pyrunc() else None)
            except errors.PyruncError as e:
                shutil.rmtree(state_dir, ignore_errors=True)
                lock.remove()
                raise type(e)("container %s: %s" % (container_id, e)) from None
        return Task(self, container_id)

    def get(self, container_id: str) -> Any:
        check_id(container_id)
        task = Task(self, container_id)
        task.meta()
        return task

    def list(self) -> Any:
        """Every task under the root, in id order."""
        found = []
        for name in sorted(os.listdir(self.tasks_dir)):
            if os.path.exists(os.path.join(self.tasks_dir, name, TASK_FILE)):
                found.append(Task(self, name))
        return found

    def events(self, since: int = 0, follow: bool = False, timeout: float | None = None) -> Iterator[Any]:
        """``(offset, event)`` pairs from byte offset ``since`` of the event log."""
        return self.event_log.read(since=since, follow=follow, timeout=timeout)


class Task:
    """One container driven through its shim."""

    def __init__(self, manager: Any, container_id: str) -> None:
        self.manager = manager
        self.id = container_id
        self.state_dir = os.path.join(manager.tasks_dir, container_id)
        self.client = ShimClient(self.state_dir)
        self._meta = None

    def __repr__(self):
        return "<Task %s>" % self.id

    def meta(self) -> Any:
        if self._meta is None:
            self._meta = _read_json(os.path.join(self.state_dir, TASK_FILE))
            if self._meta is None:
                raise errors.NotFound("container %s: not found" % self.id)
        return self._meta

    def runtime(self) -> RuntimeBinary:
        meta = self.meta()
        return RuntimeBinary(meta["runtime"], meta["runtime_root"])

    # ------------------------------------------------------------------ state

    def state(self) -> Any:
        meta = self.meta()
        try:
            return self._collect_if_stopped(self._from_shim(meta, self.client.call_json("state")))
        except ShimGone:
            pass
        with self.manager._lock(self.id):
            return self._state_locked()

    def _from_shim(self, meta, st):
        return TaskState(id=self.id, status=st["status"], pid=st["pid"], bundle=meta["bundle"],
                         runtime=meta["runtime"], exit_status=st.get("exit_status"),
                         exited_at=st.get("exited_at"), oom_killed=st["oom_killed"],
                         shim_pid=st["shim_pid"], log_dropped=st["log_dropped"],
                         terminal=st["terminal"])

    def _collect_if_stopped(self, st):
        """A state from the shim: once it says the container has exited, collect the status."""
        if st.status == STOPPED and st.exit_status is not None:
            self._collect(st.shim_pid)
        return st

    def _collect(self, shim_pid=None):
        """Ask the shim for the exit record and to exit (it leaves the exit file behind)."""
        if shim_pid is None:
            try:
                with open(os.path.join(self.state_dir, "shim.pid")) as f:
                    shim_pid = int(f.read())
            except (FileNotFoundError, ValueError):
                pass
        try:
            self.client.call("collect")
        except (ShimGone, errors.FailedPrecondition):
            return            # gone already (collected by someone else), or not exited yet
        _wait_gone(shim_pid)

    def _from_exit(self, meta, record):
        return TaskState(id=self.id, status=STOPPED, pid=record.get("pid") or 0,
                         bundle=meta["bundle"], runtime=meta["runtime"],
                         exit_status=record["exit_status"], exited_at=record["exited_at"],
                         oom_killed=record.get("oom_killed", False),
                         log_dropped=record.get("log_dropped", 0), terminal=meta["terminal"])

    def _shim_alive(self):
        try:
            with open(os.path.join(self.state_dir, "shim.pid")) as f:
                pid = int(f.read())
        except (FileNotFoundError, ValueError):
            pid = None
        if pid is not None:
            try:
                with open("/proc/%d/comm" % pid) as f:
                    return f.read().strip() == "pyrunc-shim"
            except (FileNotFoundError, ProcessLookupError):
                return False
        try:       # a shim spawned a moment ago may not have written its pid yet
            age = time.time() - os.stat(os.path.join(self.state_dir, TASK_FILE)).st_mtime
        except FileNotFoundError:
            return False
        return age < STARTUP_GRACE

    def _state_locked(self):
        """The true state, holding the task's lock; settles a dead shim."""
        if not os.path.exists(os.path.join(self.state_dir, TASK_FILE)):
            raise errors.NotFound("container %s: not found" % self.id)
        meta = self.meta()
        deadline = time.monotonic() + STARTUP_GRACE
        while True:
            try:
                return self._collect_if_stopped(
                    self._from_shim(meta, self.client.call_json("state")))
            except ShimGone:
                pass
            record = _read_json(os.path.join(self.state_dir, EXIT_FILE))
            if record is not None:
                return self._from_exit(meta, record)
            if not self._shim_alive() or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        return self._from_exit(meta, self._settle_dead_shim(meta))

    def _settle_dead_shim(self, meta):
        """The shim died before recording an exit: remove the container, record 'unknown'."""
        try:
            self.runtime().force_delete(self.id)
        except errors.PyruncError:
            pass            # what cannot be deleted now is retried by delete()
        pid = 0
        try:
            with open(os.path.join(self.state_dir, "init.pid")) as f:
                pid = int(f.read())
        except (FileNotFoundError, ValueError):
            pass
        record = {"id": self.id, "pid": pid, "exit_status": None, "exited_at": timestamps.now(),
                  "oom_killed": False, "shim_died": True}
        _write_json(os.path.join(self.state_dir, EXIT_FILE), record)
        self.manager.event_log.append(self.id, "exit", pid=pid, exit_status=None,
                                      shim_died=True)
        return record

    # ------------------------------------------------------------------ lifecycle

    def _settled_state(self, locked):
        return self._state_locked() if locked else self.state()

    def _call(self, *words, timeout=30.0, locked=False):
        """A request to the shim; a shim found gone is settled and reported (``locked``: the
        caller holds this task's lock)."""
        try:
            return self.client.call(*words, timeout=timeout)
        except ShimGone:
            st = self._settled_state(locked)
            raise errors.FailedPrecondition("container %s is %s" % (self.id, st.status)) from None

    def start(self) -> None:
        """Start a created task. With this installation's own pyrunc the runtime's start runs
        in this process (no interpreter started for it): the shim records the start
        (``start by-client``), then the init is released here."""
        runtime = self.runtime()
        with self.manager._lock(self.id):
            if not runtime.is_own_pyrunc():
                self._call("start", locked=True)
                return
            self._call("start", "by-client", locked=True)
            runtime.start_in_process(self.id)

    def kill(self, sig: int = signal.SIGTERM, all: bool = False) -> None:
        self._call("kill", int(sig), *(["all"] if all else []))

    def pause(self) -> None:
        with self.manager._lock(self.id):
            self._call("pause", locked=True)

    def resume(self) -> None:
        with self.manager._lock(self.id):
            self._call("resume", locked=True)

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the container has exited and its output is logged; ``ExitStatus``."""
        return self._wait(timeout, locked=False)

    def _wait(self, timeout, locked):
        self.meta()
        try:
            record = self.client.call_json("wait", timeout=timeout)
        except ShimGone:
            st = self._settled_state(locked)
            if st.status != STOPPED:
                raise errors.FailedPrecondition("container %s: shim gone while %s"
                                                % (self.id, st.status)) from None
            return ExitStatus(st.exit_status, st.exited_at, st.oom_killed)
        except TimeoutError:
            raise TimeoutError("container %s: still running after %ss"
                               % (self.id, timeout)) from None
        self._collect()
        return ExitStatus(record["exit_status"], record["exited_at"], record["oom_killed"])

    def delete(self, force: bool = False) -> ExitStatus:
        """Delete the container and its state; running ones only with ``force`` (SIGKILL)."""
        with self.manager._lock(self.id) as lock:
            st = self._state_locked()
            if st.status in (RUNNING, PAUSED):
                if not force:
                    raise errors.FailedPrecondition("container %s is %s: stop it first"
                                                    % (self.id, st.status))
                if st.status == PAUSED:
                    self._call("resume", locked=True)
                try:
                    self.client.call("kill", int(signal.SIGKILL))
                except (ShimGone, errors.FailedPrecondition):
                    pass
                self._wait(None, locked=True)
            try:
                record = self.client.call_json("delete")
                _wait_gone(st.shim_pid)
            except ShimGone:      # collected (or died): the runtime's delete is ours to run
                self.runtime().force_delete(self.id)
                record = _read_json(os.path.join(self.state_dir, EXIT_FILE)) or {}
                self.manager.event_log.append(self.id, "delete",
                                              exit_status=record.get("exit_status"))
            shutil.rmtree(self.state_dir, ignore_errors=True)
            lock.remove()
        return ExitStatus(record.get("exit_status"), record.get("exited_at"),
                          record.get("oom_killed", False))

    # ------------------------------------------------------------------ processes, resources

    def pids(self) -> list[int]:
        """Host pids of the container's processes (the runtime's ``ps``)."""
        self.meta()
        return self.runtime().ps(self.id)

    def update(self, resources: dict[str, dict[str, int]]) -> None:
        """Change the container's cgroup limits (OCI ``linux.resources`` subset)."""
        self.meta()
        self.runtime().update(self.id, resources)

    def stats(self) -> dict[str, dict[str, int]]:
        st = self.state()
        if st.status == STOPPED:
            raise errors.FailedPrecondition("container %s is stopped" % self.id)
        return read_stats(st.pid)

    def exec(self, exec_id: Any, process: Any, *, tty: bool = False, stdin: bool = False,
             attach: bool = False) -> ExecProcess:
        """Run another process in the container; ``process`` is an OCI process or an argv list.

        Its output goes to ``exec-ID.log`` in the state directory (json-file format). With
        ``attach`` the returned process has an ``attachment`` connected before it ran, so no
        output is missed; ``stdin`` keeps its stdin open for the attachment; ``tty`` gives it
        a pty (stdout only, resizable).
        """
        if not isinstance(exec_id, str) or not re.match(r"^[A-Za-z0-9_.-]{1,64}$", exec_id):
            raise errors.InvalidArgument("exec id %r: must be 1-64 of [A-Za-z0-9_.-]"
                                         % (exec_id,))
        if isinstance(process, (list, tuple)):
            with open(os.path.join(self.meta()["bundle"], "config.json")) as f:
                base = json.load(f)["process"]
            process = dict(base, args=list(process))
            process.pop("consoleSize", None)
        if not process.get("args"):
            raise errors.InvalidArgument("exec %s: process.args: must be a non-empty array"
                                         % exec_id)
        process = dict(process, terminal=bool(tty))
        path = os.path.join(self.state_dir, "exec-%s.json" % exec_id)
        _write_json(path, process)
        options = ",".join(name for name, on in (("tty", tty), ("stdin", stdin),
                                                 ("attach", attach)) if on) or "-"
        if not attach:
            return ExecProcess(self, exec_id, int(self._call("exec", exec_id, options, path)))
        try:
            pid, attachment = self.client.attach("exec", exec_id, options, path)
        except ShimGone:
            raise errors.FailedPrecondition("container %s is not running" % self.id) from None
        return ExecProcess(self, exec_id, int(pid), attachment)

    def resize(self, columns: int, rows: int) -> None:
        self._call("resize", int(columns), int(rows))

    # ------------------------------------------------------------------ stdio

    def attach(self) -> Attachment:
        """A live ``Attachment`` to the container's stdio."""
        self.meta()
        try:
            return self.client.attach("attach")[1]
        except ShimGone:
            raise errors.FailedPrecondition("container %s is not running" % self.id) from None

    def logs(self) -> list[LogEntry]:
        """Every json-file log entry still on disk, oldest first."""
        path = self.meta()["log"]
        if not path:
            raise errors.FailedPrecondition("container %s: created without a log" % self.id)
        return list(read_log(path))


class ExecProcess:
    """A process started in a running container with ``Task.exec``."""

    def __init__(self, task: Any, exec_id: str, pid: int,
                 attachment: Attachment | None = None) -> None:
        self.task = task
        self.id = exec_id
        self.pid = pid
        self.attachment = attachment

    def attach(self) -> Any:
        """A new ``Attachment`` to this process's stdio (output from now on)."""
        return self.task.client.attach("attach", self.id)[1]

    def resize(self, columns: int, rows: int) -> None:
        self.task._call("resize", int(columns), int(rows), self.id)

    def _file(self, suffix):
        return os.path.join(self.task.state_dir, "exec-%s.%s" % (self.id, suffix))

    def wait(self, timeout: float | None = None) -> ExitStatus:
        try:
            record = self.task.client.call_json("wait-exec", self.id, timeout=timeout)
        except (errors.NotFound, ShimGone):
            record = _read_json(self._file("exit"))
            if record is None:
                raise errors.NotFound("exec %s: no exit status recorded" % self.id) from None
        return ExitStatus(record["exit_status"], record["exited_at"])

    def output(self) -> tuple[Any, ...]:
        """(stdout, stderr) as text, from the exec's log."""
        out: dict[str, list[Any]] = {"stdout": [], "stderr": []}
        for entry in read_log(self._file("log")):
            out[entry.stream].append(entry.text)
        return "".join(out["stdout"]), "".join(out["stderr"])
