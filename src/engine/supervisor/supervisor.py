"""The supervisor: the process that stays, applying restart policies and running health checks.

It watches the lifecycle manager's event log for exits and looks over every container on
each pass (at least once a second), so it notices what happened while no supervisor ran:

- an exit (collected by the container service on its first read, which emits ``die`` and
  removes an AutoRemove container) is judged by the container's restart policy; a restart
  marks the container restarting (State ``Restarting``, ``Running`` true, ``Pid`` 0,
  ``RestartCount`` + 1), waits out the back-off and starts it again (the ``start`` event).
  A container a user stopped or killed is not restarted.
- a running container with a ``Healthcheck`` is probed by an exec after each interval; the
  results go to ``State.Health`` and a change of status to a ``health_status`` event.

What it decided is kept beside the engine's containers (ROOT/supervisor/ID.json: the exit it
judged, the back-off, when the restart is due) and every change of a container happens under
the container's flock, after re-reading it, so a supervisor killed at any point leaves nothing
the next one would do twice. ROOT/supervisor/lock is held for as long as a supervisor runs: a
second one on the same root is refused (``Conflict``).
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import threading
import time

from pyrunc.containerd.shim.logs import read_log
from pyrunc.engine.supervisor import health as hc
from pyrunc.engine.supervisor import policy as rp
from pyrunc import errors
from pyrunc.errors import Conflict, NotFound, PyruncError
from pyrunc.libcontainer import timestamps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from pyrunc.engine.container.store import Container
    from pyrunc.engine.daemon import Engine

ZERO_TIME = "0001-01-01T00:00:00Z"
PASS_INTERVAL = 1.0         # seconds between full passes when nothing happens
TICK = 0.05                 # seconds between looks at the event log


def _write_json(path: str, value: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def _ns(text: str | None) -> int:
    if not text or text == ZERO_TIME:
        return 0
    return timestamps.parse_ns(text)


class _Monitor:
    """The health monitor of one run of a container (one StartedAt)."""

    def __init__(self, started_at: str, config: dict[str, Any], due_ns: int) -> None:
        self.started_at = started_at
        self.config = config
        self.due_ns = due_ns
        self.probe: threading.Thread | None = None


class Supervisor:
    """Restart policies and health checks for the containers of ``engine``.

    ``start()`` runs it in a thread of this process until ``stop()``; ``run()`` runs it in
    the calling thread until ``stop()`` (a process of its own); ``run_once()`` makes one pass
    and waits for the probes it started (tests). ``boot``: this supervisor starts with the
    daemon (dockerd's rules for stopped containers at start-up: ``always`` and, unless a user
    stopped them, ``unless-stopped`` and failed ``on-failure`` containers are started again);
    otherwise it resumes after another supervisor, judging only exits nobody judged yet.
    """

    def __init__(self, engine: Engine, *, boot: bool = False) -> None:
        self.engine = engine
        self.containers = engine.containers
        self.dir = os.path.join(engine.root, "supervisor")
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self.boot = boot
        self._lock_fd = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._monitors: dict[str, _Monitor] = {}
        self._offset = 0
        self._due: dict[str, int] = {}         # container ID -> restart due (ns)

    # ------------------------------------------------------------------ running
    def _acquire(self) -> None:
        if self._lock_fd >= 0:
            return
        fd = os.open(os.path.join(self.dir, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Conflict("another supervisor is running on %s" % self.engine.root) from None
        self._lock_fd = fd
        # events from now on wake the loop; what happened before is found by the first pass
        self._offset = self.engine.tasks.event_log.end()

    def _release(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def start(self) -> None:
        """Run in a background thread (Conflict if another supervisor runs on this root)."""
        if self._thread is not None:
            return
        self._acquire()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="pyrunc-supervisor",
                                        daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the loop to end after its current pass (safe in a signal handler)."""
        self._stop.set()

    def stop(self) -> None:
        """End the loop and the probes in flight; release the supervisor lock."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._join_probes()
        self._release()

    def run(self) -> None:
        """Run in the calling thread until ``stop()`` (from another thread or a signal
        handler)."""
        self._acquire()
        self._stop.clear()
        try:
            self._loop()
        finally:
            self._join_probes()
            self._release()

    def run_once(self) -> None:
        """One pass over every container; waits for the probes it started."""
        self._acquire()
        if self._thread is None:
            self._stop.clear()
        self._pass(time.time_ns())
        self._join_probes()

    def _join_probes(self) -> None:
        for m in list(self._monitors.values()):
            if m.probe is not None:
                m.probe.join()

    def _loop(self) -> None:
        last_pass = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            woken = self._exits_seen()
            now_ns = time.time_ns()
            due = any(t <= now_ns for t in self._due.values()) or any(
                m.due_ns <= now_ns and m.probe is None for m in self._monitors.values())
            if woken or due or now - last_pass >= PASS_INTERVAL:
                self._pass(now_ns)
                last_pass = now
            self._stop.wait(TICK)

    def _exits_seen(self) -> bool:
        found = False
        for offset, event in self.engine.tasks.event_log.read(since=self._offset):
            self._offset = offset
            if isinstance(event, dict) and event.get("type") in ("exit", "start", "delete"):
                found = True
        return found

    # ------------------------------------------------------------------ one pass
    def _pass(self, now_ns: int) -> None:
        ids = set(self.containers.store.ids())
        for cid in ids:
            try:
                self._supervise(cid, now_ns)
            except NotFound as e:
                if self.containers.store.load(cid) is None:
                    self._forget(cid)           # removed
                else:
                    errors.warn("supervisor: container %s: %s" % (cid[:12], e))
            except Exception as e:      # one container's trouble must not stop the others'
                errors.warn("supervisor: container %s: %s: %s"
                            % (cid[:12], type(e).__name__, e))
        for cid in set(self._monitors) - ids:
            self._monitors.pop(cid, None)
        for cid in set(self._due) - ids:
            self._due.pop(cid, None)
        self._collect_records(ids)
        self.boot = False

    def _supervise(self, cid: str, now_ns: int) -> None:
        c = self.containers.store.load(cid)
        if c is None:
            raise NotFound("No such container: %s" % cid)
        c = self.containers.refresh(c)
        if not os.path.isdir(c.dir):        # an AutoRemove one, removed by that read
            raise NotFound("No such container: %s" % cid)
        st = c.state
        if st.get("Restarting"):
            self._monitors.pop(cid, None)
            self._restart_when_due(c, now_ns)
        elif st.get("Running"):
            self._due.pop(cid, None)
            self._health(c, now_ns)
        else:
            self._due.pop(cid, None)
            self._monitors.pop(cid, None)
            if st.get("Status") == "exited" and c.record.get("HasBeenStartedBefore"):
                self._judge_exit(c, now_ns)

    # ------------------------------------------------------------------ restart policies
    def _record_path(self, cid: str) -> str:
        return os.path.join(self.dir, cid + ".json")

    def _record(self, cid: str) -> dict[str, Any]:
        try:
            with open(self._record_path(cid)) as f:
                value = json.load(f)
            return value if isinstance(value, dict) else {}
        except (FileNotFoundError, ValueError):
            return {}

    def _update_record(self, cid: str, **fields: Any) -> None:
        """Change fields of the record (hold the container's lock)."""
        record = self._record(cid)
        record.update(fields)
        _write_json(self._record_path(cid), record)

    def _forget(self, cid: str) -> None:
        self._monitors.pop(cid, None)
        self._due.pop(cid, None)
        try:
            os.unlink(self._record_path(cid))
        except FileNotFoundError:
            pass

    def _collect_records(self, ids: set[str]) -> None:
        """Drop the records of containers that were removed."""
        for name in os.listdir(self.dir):
            if name.endswith(".json") and name[:-5] not in ids:
                try:
                    os.unlink(os.path.join(self.dir, name))
                except FileNotFoundError:
                    pass

    def _judge_exit(self, c: Container, now_ns: int) -> None:
        """An exit nobody judged yet (or any stopped container at boot): restart or not."""
        record = self._record(c.id)
        finished = c.state["FinishedAt"]
        policy = c.host_config.get("RestartPolicy") or {}
        manually = bool(c.record.get("HasBeenManuallyStopped"))
        judged = record.get("exit") == finished
        if judged and isinstance(record.get("restart_at"), int) and not manually:
            # judged "restart" by a supervisor killed before it marked the container
            restart, due, count = True, record["restart_at"], c.restart_count + 1
            kept = float(record.get("delay", 0))
        elif self.boot and not rp.is_none(policy):
            restart = rp.restart_on_boot(policy, exit_code=c.state["ExitCode"],
                                         manually_stopped=manually,
                                         restart_count=c.restart_count, started_before=True)
            # dockerd starts them as a user's start would: RestartCount 0, not "stopped"
            due, count, kept = now_ns, 0, 0.0
        elif judged:
            return
        else:
            # a user's start resets RestartCount and with it the back-off (a fresh manager)
            delay = float(record.get("delay", 0)) if c.restart_count else 0.0
            manager = rp.RestartManager(policy, c.restart_count, delay)
            if manually:
                manager.cancel()
            ran_for = max(0, _ns(finished) - _ns(c.state["StartedAt"])) / 1e9
            restart, delay = manager.should_restart(c.state["ExitCode"], manually, ran_for)
            due, count, kept = now_ns + int(delay * 1e9), manager.restart_count, manager.delay
        with c.lock():
            c.reload()
            if c.state.get("Running") or c.state["FinishedAt"] != finished:
                return              # started (or judged) by someone else meanwhile
            # the decision first, then the container: a supervisor killed between the two
            # finds the decision (above) and finishes it
            self._update_record(c.id, exit=finished, delay=kept,
                                restart_at=due if restart else None)
            if restart:
                if self.boot:
                    c.record["HasBeenManuallyStopped"] = False
                self._mark_restarting(c, count)
                self._due[c.id] = due

    @staticmethod
    def _mark_restarting(c: Container, count: int) -> None:
        c.state.update(Status="restarting", Running=True, Restarting=True, Paused=False,
                       Pid=0)
        c.record["RestartCount"] = count
        c.save_state()

    def _restart_when_due(self, c: Container, now_ns: int) -> None:
        record = self._record(c.id)
        due = record.get("restart_at")
        if record.get("exit") != c.state["FinishedAt"] or not isinstance(due, int):
            due = now_ns            # marked by a supervisor whose record is lost: now
        if due > now_ns:
            self._due[c.id] = due
            return
        self._due.pop(c.id, None)
        try:
            self.containers.start_restarting(c.id)
        except NotFound:
            raise
        except PyruncError as e:
            errors.warn("supervisor: restart of %s: %s" % (c.id[:12], e))
            self._restart_failed(c, str(e))

    def _restart_failed(self, c: Container, message: str) -> None:
        """The restart itself failed: the container stays exited, with the reason (dockerd
        gives up on it too)."""
        with c.lock():
            c.reload()
            if c.state.get("Running") and not c.state.get("Restarting"):
                return
            c.state.update(Status="exited", Running=False, Restarting=False, Pid=0,
                           Error=c.state.get("Error") or message,
                           FinishedAt=timestamps.now())
            c.save_state()
            self._update_record(c.id, exit=c.state["FinishedAt"], restart_at=None)

    # ------------------------------------------------------------------ health checks
    def _health(self, c: Container, now_ns: int) -> None:
        try:        # checked at create; a record written otherwise is not trusted
            config = hc.validate_healthcheck(c.config.get("Healthcheck"))
        except errors.InvalidArgument:
            config = None
        shell = c.config.get("Shell")
        if not isinstance(shell, list) or not all(isinstance(w, str) for w in shell):
            shell = None
        argv = hc.probe_command(config, shell)
        if argv is None or config is None:
            self._monitors.pop(c.id, None)
            return
        started = c.state["StartedAt"]
        m = self._monitors.get(c.id)
        if m is None or m.started_at != started:
            status = self._reset_health(c, started)
            if status is None:
                return
            m = _Monitor(started, config,
                         now_ns + hc.next_interval(config, status, _ns(started), now_ns))
            self._monitors[c.id] = m
        if m.probe is not None or m.due_ns > now_ns or c.state.get("Paused"):
            return
        m.probe = threading.Thread(target=self._probe, args=(c.id, m, argv),
                                   name="pyrunc-health-%s" % c.id[:12], daemon=True)
        m.probe.start()

    def _reset_health(self, c: Container, started: str) -> str | None:
        """Health "starting" for a run of the container: once per StartedAt (a supervisor
        resuming after another keeps what that one recorded)."""
        with c.lock():
            c.reload()
            if not c.state.get("Running") or c.state["StartedAt"] != started:
                return None
            health = c.state.get("Health")
            if health is None or self._record(c.id).get("health_run") != started:
                health = hc.reset(health)
                c.state["Health"] = health
                c.save_state()
                self._update_record(c.id, health_run=started)
            return str(health["Status"])

    def _probe(self, cid: str, m: _Monitor, argv: list[str]) -> None:
        try:
            entry = self._run_probe(cid, argv, hc.settings(m.config)["Timeout"])
            if entry is not None:
                self._record_probe(cid, m, entry)
        except Exception as e:      # reported; the next probe comes after the interval
            errors.warn("supervisor: health check of %s: %s: %s"
                        % (cid[:12], type(e).__name__, e))
        finally:
            now_ns = time.time_ns()
            status = hc.STARTING
            try:
                c = self.containers.store.load(cid)
                status = ((c.state.get("Health") or {}).get("Status") if c else None) or status
            except (OSError, ValueError):
                pass
            m.due_ns = now_ns + hc.next_interval(m.config, status, _ns(m.started_at), now_ns)
            m.probe = None

    def _run_probe(self, cid: str, argv: list[str], timeout_ns: int) -> dict[str, Any] | None:
        """Run the probe in the container; its log entry (None: the container stopped, or
        the supervisor is stopping)."""
        start_ns = time.time_ns()
        try:
            exec_id = self.containers.exec_create(cid, {"Cmd": argv, "AttachStdout": True,
                                                        "AttachStderr": True})
        except Conflict:
            return None             # not running (any more)
        except PyruncError as e:
            return hc.result(start_ns, time.time_ns(), -1, str(e))
        try:
            return self._wait_probe(exec_id, start_ns, timeout_ns)
        finally:
            try:
                self.containers.execs.discard(exec_id)      # dockerd keeps no probe execs
            except PyruncError:
                pass

    def _wait_probe(self, exec_id: str, start_ns: int,
                    timeout_ns: int) -> dict[str, Any] | None:
        try:
            proc = self.containers.exec_start(exec_id, detach=True)
        except Conflict:
            return None
        except PyruncError as e:
            return hc.result(start_ns, time.time_ns(), -1, str(e))
        log = os.path.join(proc.task.state_dir, "exec-%s.log" % exec_id)
        deadline = start_ns + timeout_ns
        while True:                 # in slices, so that stop() does not wait out a probe
            left = deadline - time.time_ns()
            try:
                if left <= 0:
                    raise TimeoutError
                status = proc.wait(min(left, 200_000_000) / 1e9).status
                break
            except TimeoutError:
                if left <= 0 or self._stop.is_set():
                    self._kill_probe(proc)
                    self._settle_exec(exec_id)
                    if self._stop.is_set():
                        return None
                    return hc.timeout_result(start_ns, time.time_ns(), timeout_ns,
                                             _output(log))
            except (NotFound, PyruncError):
                return None         # the container (and its task) went away
        end_ns = time.time_ns()
        self._settle_exec(exec_id)
        return hc.result(start_ns, end_ns, -1 if status is None else status,
                         hc.limit_output(_output(log)))

    def _settle_exec(self, exec_id: str) -> None:
        try:
            self.containers.exec_inspect(exec_id)      # records its exit (exec_die)
        except PyruncError:
            pass

    @staticmethod
    def _kill_probe(proc: Any) -> None:
        """SIGKILL a probe past its timeout: through a pidfd taken while the probe is still
        running (checked after taking it), so a reused pid is never signalled."""
        try:
            fd = os.pidfd_open(proc.pid)
        except (ProcessLookupError, OSError):
            return
        try:
            try:
                proc.wait(0.001)
                return                  # exited: the pidfd may name another process
            except TimeoutError:
                pass
            try:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            except ProcessLookupError:
                return
        finally:
            os.close(fd)
        try:
            proc.wait(10)
        except (TimeoutError, PyruncError):
            pass

    def _record_probe(self, cid: str, m: _Monitor, entry: dict[str, Any]) -> None:
        c = self.containers.store.load(cid)
        if c is None:
            return
        with c.lock():
            c.reload()
            if not c.state.get("Running") or c.state["StartedAt"] != m.started_at:
                return              # a result of an earlier run: dropped, as dockerd does
            health = c.state.get("Health") or hc.reset(None)
            changed = hc.apply_result(health, entry, m.config, _ns(m.started_at))
            c.state["Health"] = health
            c.save_state()
        if changed is not None:
            self._emit(c, "health_status: " + changed)

    def _emit(self, c: Container, action: str) -> None:
        attributes = dict(c.config.get("Labels") or {})
        attributes.update(image=c.config.get("Image", ""), name=c.name.lstrip("/"))
        self.engine.events.emit("container", action, c.id, attributes)


def _output(path: str) -> bytes:
    """The probe's stdout and stderr as written, up to one byte past what is kept."""
    out = b""
    try:
        for entry in read_log(path):
            out += entry.text.encode("utf-8", "surrogateescape")
            if len(out) > hc.MAX_OUTPUT:
                break
    except (FileNotFoundError, ValueError):
        pass
    return out
