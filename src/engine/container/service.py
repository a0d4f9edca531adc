"""Containers made from images: dockerd's container half as a library.

A container's record (ROOT/containers/ID/config.v2.json) says what was asked and what was last
seen; the running process is the lifecycle manager's task of the same ID. Every read refreshes
the record from the task: a task that has exited is collected there (exit code, FinishedAt,
OOMKilled, the "die" event), its task deleted and its root filesystem unmounted, so states are
right without any process watching the containers. The exit is saved together with the events
it owes (PENDING_EXIT): a process killed before it finished leaves them to the next reader,
which tears down and emits each event once. An AutoRemove container (docker run --rm) is
removed by the read that finds its run ended (or by the start that failed); its wait result
is kept a while (ROOT/containers/exits/ID) for whoever waits for its removal. Every change
holds the container's flock.
"""
from __future__ import annotations

import errno as errno_
import json
import os
import shutil
import signal as signal_
import threading
import time

from pyrunc.engine.container import files, names, top, view
from pyrunc.engine.container import state as cstate
from pyrunc.engine.container.exec import ExecService
from pyrunc.engine.container.network import ContainerNetworking
from pyrunc.engine.container.store import (HOST_CONFIG, RECORD, Container, ContainerStore,
                                           is_full_id, write_json)
from pyrunc.engine.events import container_attributes
from pyrunc.engine.initbin import INIT_PATH
from pyrunc.engine.logger import parse_log_config, read_logs
from pyrunc.engine.oci import build_spec, merge_image_config
from pyrunc.engine.oci.spec import validate_host_config as validate_spec_options
from pyrunc.engine.snapshots.mount import mount_all, unmount
from pyrunc.engine.supervisor.health import validate_healthcheck
from pyrunc.engine.supervisor.policy import validate_host_config
from pyrunc.engine.volume import (copy_up, release_mounts, resolve_mounts, setup_mounts,
                                 teardown_mounts)
from pyrunc.errors import (Conflict, FailedPrecondition, InvalidArgument, NotFound, PyruncError,
                           SystemFailure)
from pyrunc.containerd.tasks import CREATED, PAUSED, STOPPED
from pyrunc.containerd.tasks.stats import read_stats
from pyrunc.libcontainer import state as lcstate
from pyrunc.libcontainer import timestamps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List
    from collections.abc import Callable, Iterator
    from pyrunc.containerd.shim.client import Attachment
    from pyrunc.containerd.tasks import ExecProcess, Task, TaskManager
    from pyrunc.engine.events import EventService
    from pyrunc.engine.images.service import ImageService
    from pyrunc.engine.volume import VolumeService

DEFAULT_STOP_TIMEOUT = 10
CGROUP_PARENT = "/pyrunc"
CGROUP_ROOT = "/sys/fs/cgroup"
UPDATABLE = ("BlkioWeight", "CpuShares", "CpuPeriod", "CpuQuota", "CpuRealtimePeriod",
             "CpuRealtimeRuntime", "CpusetCpus", "CpusetMems", "Memory", "MemorySwap",
             "MemoryReservation", "NanoCpus", "PidsLimit", "RestartPolicy", "KernelMemory")
# The record's key for an exit recorded but not yet settled (torn down, its events emitted).
PENDING_EXIT = "PendingExit"
# Seconds a removed container's wait result is kept for the waiters of its removal.
EXIT_KEPT = 600
# The record's key for the processes of the running task, [[init pid, start time], [shim pid,
# start time]]: while both live, a read knows the task runs without a request to its shim.
TASK_PROCESSES = "TaskProcesses"
# Seconds a read gives a shim whose init it found gone to record the exit.
EXIT_RECORDED = 2.0
# Seconds between looks at a container that another process may change (a waiter for its
# start or its removal); this process's own changes wake the waiters at once.
CHANGE_POLL = 0.1
_HEX = frozenset("0123456789abcdef")
# The record's key naming the process ([pid, start time]) restarting an AutoRemove container:
# its stop does not remove it while that process lives (dockerd lifts AutoRemove for the stop).
RESTARTER = "Restarter"
# When a removal began (ns), kept in the record while it is "removing".
REMOVING_SINCE = "RemovingSince"
# A removed container's record, renamed from config.v2.json before its destroy event: the
# container is gone from every listing when the event is seen, and a process that dies before
# the event leaves the next Engine what it needs to emit it (once).
DESTROYED = "destroyed.json"


def parse_signal(sig: Any) -> int:
    """A signal by number or name (``KILL``, ``SIGKILL``, ``9``); InvalidArgument otherwise."""
    if isinstance(sig, int) and not isinstance(sig, bool):
        number = sig
    elif isinstance(sig, str) and sig.strip().isascii() and sig.strip().isdigit():
        number = int(sig)
    elif isinstance(sig, str):
        name = sig.strip().upper()
        name = name if name.startswith("SIG") else "SIG" + name
        try:
            number = int(signal_.Signals[name])
        except KeyError:
            raise InvalidArgument("Invalid signal: %s" % sig) from None
    else:
        raise InvalidArgument("Invalid signal: %r" % (sig,))
    if not 0 < number <= 64:
        raise InvalidArgument("Invalid signal: %s" % sig)
    return number


def start_error_code(message: str, command: str) -> int | None:
    """docker's exit code for a process that could not start: 127 for a command not found,
    126 for one that cannot be executed, None for other failures."""
    text = message.lower()
    if command.lower() in text and ("executable file not found" in text
                                    or "no such file or directory" in text):
        return 127
    if "permission denied" in text:
        return 126
    if "not a directory" in text:
        return 127
    return None


class ContainerService:
    """Containers under ``root`` (ENGINE_ROOT/containers), run as ``tasks``' tasks."""

    def __init__(self, root: str, *, tasks: TaskManager, images: ImageService,
                 volumes: VolumeService, events: EventService, runtime: str = "pyrunc",
                 idmap: Any = None, group: int | None = None,
                 networking: ContainerNetworking | None = None) -> None:
        self.store = ContainerStore(root, tasks, group)
        self.networking = networking or ContainerNetworking(
            os.path.join(os.path.dirname(root), "network"))
        self.tasks = tasks
        self.images = images
        self.volumes = volumes
        self.events = events
        self.runtime = runtime
        self.idmap = idmap
        self.execs = ExecService(self)
        self._changes = threading.Condition()
        self._generation = 0        # this process's changes so far (start, exit, removal)
        # the records the last listing read, by ID: [the files' identities, record,
        # HostConfig, its summary once made (its Status aside, which moves with the clock)]
        self._listed: dict[str, List[Any]] = {}

    # ------------------------------------------------------------------ lookup, refresh
    def get(self, ref: str) -> Container:
        """The container ``ref`` names (full ID, unique ID prefix or name), refreshed from
        its task; NotFound when it is gone (an AutoRemove container that has exited)."""
        c = self.refresh(self.store.get(ref))
        if not os.path.isdir(c.dir):
            raise NotFound("No such container: %s" % ref)
        return c

    def refresh(self, c: Container) -> Container:
        """Bring ``c``'s state up to date with its task (collecting an exit, emitting its
        events, removing an AutoRemove container that has exited)."""
        if cstate.is_active(c.state):
            if self._task_alive(c):
                return c
        elif not c.record.get(PENDING_EXIT) and not _auto_removable(c):
            return c
        with c.lock() as lock:
            try:
                c.reload()
            except NotFound:        # removed meanwhile: ``c`` keeps its last state
                lock.remove()
                return c
            self._refresh_locked(c)
            if _auto_removable(c):  # docker run --rm: the daemon removes it, volumes too
                self._remove_locked(c, lock, volumes=True)
        return c

    def _task_alive(self, c):
        """Whether ``c``'s task still runs. A task whose processes are recorded
        (TASK_PROCESSES) is judged from /proc: running while its init and its shim live (one
        read while the init is the shim's child), no request to the shim; once one is gone
        the shim is given EXIT_RECORDED seconds to record the exit (the caller then collects
        it). Others (started before the processes were recorded, restarting) ask the shim."""
        procs = _task_processes(c)
        try:
            if procs is None:
                return self.tasks.get(c.id).state().status != STOPPED
            if _processes_alive(procs):
                return True
            task = self.tasks.get(c.id)
            try:
                task.wait(EXIT_RECORDED)
            except TimeoutError:        # the shim still has it running: its word stands
                return task.state().status != STOPPED
            except PyruncError:
                pass                    # the shim is gone: the caller settles the task
            return False
        except NotFound:
            return False

    def _refresh_locked(self, c):
        """Collect an exit the task has recorded (or finish collecting one a process that
        died part way through recorded); returns whether it did."""
        if c.record.get(PENDING_EXIT):
            self._settle_exit(c, recovering=True)
        if not cstate.is_active(c.state):
            return False
        if c.state["Restarting"]:       # the supervisor restarts it: no task until then
            if c.record.get("HasBeenManuallyStopped"):      # a user stopped it meanwhile
                c.state.update(Status=cstate.EXITED, Running=False, Restarting=False)
                c.save_state()
            return False
        try:
            task: Any = self.tasks.get(c.id)
            ts: Any = task.state()
        except NotFound:
            task = ts = None
        if ts is not None and ts.status != STOPPED:
            if (ts.status == PAUSED) != c.state["Paused"]:
                cstate.set_paused(c.state, ts.status == PAUSED)
                c.save_state()
            return False
        code = ts.exit_status if ts is not None and ts.exit_status is not None else 255
        oom = bool(ts is not None and ts.oom_killed)
        cstate.set_exited(c.state, code, ts.exited_at if ts is not None else None, oom)
        # the exit and the events it owes are recorded at once; whoever holds the lock next
        # after a crash finishes the teardown and emits what was not emitted
        c.record[PENDING_EXIT] = {
            "Since": timestamps.now_ns(),
            "Events": ([["oom", {}]] if oom else []) + [["die", {"exitCode": str(code)}]]}
        c.save_state()
        self._settle_exit(c, task)
        return True

    def _settle_exit(self, c, task=None, recovering=False):
        """Tear down after the exit recorded under PENDING_EXIT and emit its events, each once:
        ``recovering`` (the process that recorded it died) skips those already in the log."""
        pending = c.record[PENDING_EXIT]
        if recovering:
            try:
                task = self.tasks.get(c.id)
            except NotFound:
                task = None
        self._teardown(c, task)
        emitted = set()
        if recovering:
            since = "%d.%09d" % divmod(pending["Since"], timestamps.NS)
            emitted = {e["Action"] for e in self.events.query(
                since=since, filters={"type": ["container"], "container": [c.id]})}
        for action, extra in pending["Events"]:
            if action not in emitted:
                self._emit(c, action, extra or None)
        del c.record[PENDING_EXIT]
        c.save_state()
        self._changed()

    def _teardown(self, c, task):
        """After an exit: keep the execs' exit codes, delete the task, unmount the root."""
        if task is not None:
            self.execs.collect(c)
            try:
                task.delete(force=True)
            except NotFound:
                pass
        teardown_mounts(c.mount_points, self.volumes, c.id)
        self._unmount(c)
        self.networking.detach(c)
        c.save_state()

    def _unmount(self, c):
        for _ in range(8):          # a start that died part way may have stacked mounts
            try:
                unmount(c.rootfs)
            except SystemFailure as e:
                if e.errno in (errno_.EINVAL, errno_.ENOENT):
                    return
                raise

    def _changed(self) -> None:
        """Wake this process's waiters: a container started, exited or went."""
        with self._changes:
            self._generation += 1
            self._changes.notify_all()

    def _await_change(self, generation: int, left: Callable[[], float | None]) -> None:
        """Until this process changes a container after ``generation`` (read before the
        caller's last look), CHANGE_POLL seconds (changes of other processes) or the
        deadline (``left()``, raising TimeoutError), whichever comes first."""
        remaining = left()
        with self._changes:
            if self._generation == generation:
                self._changes.wait(CHANGE_POLL if remaining is None
                                   else min(CHANGE_POLL, remaining))

    def _emit(self, c: Container, action: str, extra: dict[str, str] | None = None) -> None:
        self.events.emit("container", action, c.id,
                         container_attributes(c.config, c.name, extra))

    # ------------------------------------------------------------------ create
    def create(self, config: dict[str, Any], host_config: dict[str, Any] | None = None,
               name: str | None = None, networking_config: dict[str, Any] | None = None,
               platform: str | None = None) -> dict[str, Any]:
        """docker create: a container from ``config["Image"]``; {"Id", "Warnings"}."""
        if not isinstance(config, dict):
            raise InvalidArgument("config: must be a JSON object")
        if name is not None and name != "":
            name = names.normalise(name)
        ref = config.get("Image")
        if not isinstance(ref, str) or not ref:
            raise InvalidArgument("config.Image: an image is required")
        image = self._image(ref)
        if platform:
            self._check_platform(ref, image, platform)
        merged = merge_image_config((image.config.get("config") or {}), config)
        merged["Image"] = ref
        merged = view.normalise_config(merged)
        validate_healthcheck(merged.get("Healthcheck"))
        if not merged.get("Entrypoint") and not merged.get("Cmd"):
            raise InvalidArgument("no command specified")
        hc = view.normalise_host_config(host_config or {}, self.runtime)
        self._check_runtime(hc["Runtime"])
        parse_log_config(hc["LogConfig"])
        self._check_restart_policy(hc)
        warnings = validate_spec_options(hc)     # docker checks the options at create
        network_settings = self.networking.prepare(hc, merged, networking_config, self.get)
        cid = self.store.new_id()
        undo: list[Any] = []
        with self.store.lock(cid) as lock:
            d = self.store.make_dir(cid)
            try:
                undo.append(lambda: self.store.release_names_of(cid))
                if name:
                    self.store.reserve_name(name, cid)
                else:
                    name = self.store.random_name(cid)
                mounts = resolve_mounts(hc, merged.get("Volumes") or {}, container_id=cid,
                                        volumes=self.volumes)
                undo.append(lambda: release_mounts(mounts, self.volumes, cid,
                                                   remove_anonymous=True))
                self.images.prepare_rootfs(cid, image.id)
                undo.append(lambda: self._remove_snapshot(cid))
                merged["Hostname"] = merged.get("Hostname") or (
                    os.uname().nodename if hc["NetworkMode"] == "host" else cid[:12])
                paths = files.write_container_files(d, merged["Hostname"], hc,
                                                    merged.get("Domainname") or "")
                entrypoint = list(merged.get("Entrypoint") or [])
                argv = entrypoint + list(merged.get("Cmd") or [])
                record = {
                    "ID": cid, "Name": name, "Created": timestamps.now(), "Path": argv[0],
                    "Args": argv[1:], "Config": merged, "State": cstate.new_state(),
                    "Image": image.id, "LogPath": os.path.join(d, cid + "-json.log"),
                    "Driver": self.images.snapshotter.name, "SnapshotKey": cid,
                    "Platform": image.config.get("os") or "linux", "RestartCount": 0,
                    "HasBeenStartedBefore": False, "HasBeenManuallyStopped": False,
                    "MountPoints": [m.to_dict() for m in mounts],
                    "NetworkSettings": network_settings,
                    **paths,
                }
                Container(self.store, record, hc).save()
            except BaseException:
                for step in reversed(undo):
                    try:
                        step()
                    except Exception:       # best effort: the first error is the one to report
                        pass
                shutil.rmtree(d, ignore_errors=True)
                lock.remove()
                raise
        c = self.store.load(cid)
        assert c is not None
        self._emit(c, "create")
        return {"Id": cid, "Warnings": warnings}

    def _image(self, ref):
        try:
            return self.images.get(ref)
        except NotFound:
            raise NotFound("No such image: %s" % ref) from None

    @staticmethod
    def _check_platform(ref, image, platform):
        want = platform.split("/")
        have = [image.config.get("os", ""), image.config.get("architecture", "")]
        if want[0] != have[0] or (len(want) > 1 and want[1] != have[1]):
            raise NotFound("image with reference %s was found but does not match the specified "
                           "platform: wanted %s, actual: %s" % (ref, platform, "/".join(have)))

    def _check_runtime(self, runtime):
        """A runtime the task manager knows by name (the engine's stock and configured ones)
        whose program is there; dockerd's 400 otherwise."""
        if not isinstance(runtime, str) or runtime not in self.tasks.runtimes:
            raise InvalidArgument("unknown or invalid runtime name: %s" % (runtime,))
        try:
            self.tasks.runtime_path(runtime)
        except PyruncError:
            raise InvalidArgument("unknown or invalid runtime name: %s" % runtime) from None

    @staticmethod
    def _check_restart_policy(hc):
        validate_host_config(hc)        # dockerd's rules and messages

    def _remove_snapshot(self, key):
        try:
            self.images.snapshotter.remove(key)
        except NotFound:
            pass

    # ------------------------------------------------------------------ start
    def start(self, ref: str, on_created: Callable[[Task], None] | None = None) -> None:
        """docker start; a running container is left as it is (docker's 304).
        ``on_created(task)`` runs once the task exists, before its process starts (the API's
        attach connects there, so none of the output is missed)."""
        self._start(ref, on_created)

    def _start(self, ref, on_created=None, restarting=False):
        c = self.store.get(ref)
        with c.lock() as lock:
            c.reload()
            if restarting and c.record.pop(RESTARTER, None) is not None:
                c.save_state()
            self._refresh_locked(c)
            status = c.state["Status"]
            if status == cstate.PAUSED:
                raise Conflict("cannot start a paused container, try unpause instead")
            if status in (cstate.RUNNING, cstate.RESTARTING):
                return
            if status in (cstate.REMOVING, cstate.DEAD):
                raise Conflict("container is marked for removal and cannot be started")
            if _auto_removable(c) and not restarting:   # its run ended: it goes
                self._remove_locked(c, lock, volumes=True)
                raise NotFound("No such container: %s" % ref)
            _check_bind_sources(c)
            c.record["RestartCount"] = 0            # a user's start, as docker's
            try:
                self._start_locked(c, on_created)
            except PyruncError:
                if c.host_config.get("AutoRemove"):     # docker run --rm: removed at once
                    self._remove_locked(c, lock, volumes=True)
                raise
        self._emit(c, "start")

    def start_restarting(self, ref: str) -> bool:
        """The supervisor's restart of a container its restart policy restarts (marked
        Restarting), keeping RestartCount; False when a user stopped it meanwhile."""
        c = self.store.get(ref)
        with c.lock():
            c.reload()
            if not c.state["Restarting"] or c.record.get("HasBeenManuallyStopped"):
                return False
            if not self._adopt_restarted(c):
                self._start_locked(c)
        self._emit(c, "start")
        return True

    def _adopt_restarted(self, c):
        """A restart whose process died after starting the task (made after the exit it
        restarts): that run is the restart, not started again."""
        try:
            task: Any = self.tasks.get(c.id)
            ts: Any = task.state()
            made = timestamps.parse_ns(task.meta()["created"])
        except NotFound:
            return False
        if ts.status == CREATED or made <= timestamps.parse_ns(c.state["FinishedAt"]):
            return False            # never ran, or the task of the exit itself
        cstate.set_running(c.state, ts.pid, task.meta()["created"])
        c.record[TASK_PROCESSES] = _processes_of(ts)
        c.record["HasBeenStartedBefore"] = True
        c.save_state()
        self._changed()
        return True

    def _start_locked(self, c, on_created=None):
        self._check_runtime(c.host_config.get("Runtime") or self.runtime)
        self._drop_task(c)
        self._unmount(c)
        os.makedirs(c.rootfs, exist_ok=True)
        mount_all(self.images.snapshotter.mounts(c.snapshot_key), c.rootfs)
        task = None
        recorded = False        # _start_failed recorded the reason
        try:
            mounts = c.mount_points
            setup_mounts(mounts, self.volumes, c.id)
            if not c.record["HasBeenStartedBefore"]:
                copy_up(mounts, c.rootfs)
            hc = c.host_config
            netns = self.networking.attach(c, self.get)
            spec = build_spec(config=c.config, host_config=hc, rootfs=c.rootfs,
                              container_dir=c.dir, mounts=[m.to_oci() for m in mounts],
                              cgroups_path=self._cgroups_path(c), hostname=c.config["Hostname"],
                              netns=netns, idmap=self.idmap,
                              init_path=INIT_PATH if hc.get("Init") else None)
            write_json(os.path.join(c.dir, "config.json"), spec)
            log = parse_log_config(hc.get("LogConfig"))
            try:
                task = self.tasks.create(
                    c.id, c.dir, runtime=hc.get("Runtime") or self.runtime,
                    terminal=bool(c.config.get("Tty")), stdin=bool(c.config.get("OpenStdin")),
                    log_path=False if log.type == "none" else c.log_path,
                    log_max_size=log.max_size, log_max_file=log.max_file)
                if on_created is not None:
                    on_created(task)
            except PyruncError as e:
                recorded = True
                raise self._start_failed(c, task, e) from None
            # the veths were plugged while the task was created: the process must find its
            # network up (a failure: the task is deleted below, as after a failed attach)
            self.networking.plugged(c)
            try:
                started_at = timestamps.now()       # before: a quick process may exit at once
                task.start()
            except PyruncError as e:
                recorded = True
                raise self._start_failed(c, task, e) from None
            ts = task.state()
            cstate.set_running(c.state, ts.pid, started_at)
            c.record[TASK_PROCESSES] = _processes_of(ts)
            c.record["HasBeenStartedBefore"] = True
            c.record["HasBeenManuallyStopped"] = False
            c.save_state()
            self._changed()
        except BaseException as e:
            if not c.state["Running"]:
                if isinstance(e, PyruncError) and not recorded:
                    # a failure before the process (mounts, network, spec): dockerd's 128
                    cstate.set_start_failed(c.state, 128, str(e))
                self._drop_task(c)
                self.networking.detach(c)
                c.save_state()
            teardown_mounts(c.mount_points, self.volumes, c.id)
            self._unmount(c)
            raise

    def _cgroups_path(self, c):
        parent = c.host_config.get("CgroupParent") or CGROUP_PARENT
        return "%s/%s" % (parent.rstrip("/"), c.id)

    def _remove_cgroup_parent(self, c):
        """Remove the parent cgroup the engine made for its containers (/pyrunc) once the last
        of them is gone, in every hierarchy; one still in use stays (the kernel refuses), and
        a create racing this makes it again (runtimes create the whole path). While this root
        has other containers it stays: one of them may be starting, its runtime between making
        the parent and its own cgroup (a v1 cpuset parent's files are written in between)."""
        parent = (c.host_config.get("CgroupParent") or CGROUP_PARENT).strip("/")
        if parent != CGROUP_PARENT.strip("/"):
            return                      # a parent the user named is the user's
        if any(cid != c.id and len(cid) == 64 and _HEX.issuperset(cid)
               for cid in os.listdir(self.store.root)):
            return
        try:
            hierarchies = [""] + os.listdir(CGROUP_ROOT)     # "": a unified (v2) root
        except OSError:
            return
        for name in hierarchies:
            try:
                os.rmdir(os.path.join(CGROUP_ROOT, name, parent))
            except OSError:             # absent, not a hierarchy, or still holding containers
                pass

    def _drop_task(self, c):
        try:
            task = self.tasks.get(c.id)
        except NotFound:
            return
        task.delete(force=True)

    def _start_failed(self, c, task, e):
        """Record why the process could not start (docker's exit code and reason)."""
        message = str(e)
        prefix = "container %s: " % c.id
        if message.startswith(prefix):
            message = message[len(prefix):]
        if task is not None:
            try:
                task.delete(force=True)
            except PyruncError:
                pass
        code = start_error_code(message, c.record["Path"])
        cstate.set_start_failed(c.state, 128 if code is None else code, message)
        c.save_state()
        if code is None:
            return e
        return InvalidArgument(message)

    # ------------------------------------------------------------------ stop, kill, restart
    def stop(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None:
        """docker stop: the stop signal, SIGKILL after ``timeout`` seconds (the container's
        StopTimeout, else 10; -1 waits for ever)."""
        c = self.get(ref)
        sig = parse_signal(signal or c.config.get("StopSignal") or "SIGTERM")
        if timeout is None:
            timeout = c.config.get("StopTimeout")
        if timeout is None:
            timeout = DEFAULT_STOP_TIMEOUT
        if not isinstance(timeout, int) or isinstance(timeout, bool):
            raise InvalidArgument("stop timeout: must be a whole number of seconds")
        if c.state["Status"] not in (cstate.RUNNING, cstate.PAUSED, cstate.RESTARTING):
            return                  # docker's 304: nothing to do, no event
        with c.lock():
            c.reload()
            c.record["HasBeenManuallyStopped"] = True
            c.save_state()
        if cstate.is_active(c.state):
            self._stop(c, sig, timeout)
        self._emit(c, "stop")

    def _stop(self, c, sig, timeout):
        try:
            task = self.tasks.get(c.id)
        except NotFound:
            self.refresh(c)
            return
        self._emit(c, "kill", {"signal": str(sig)})
        self._signal(task, sig, c.state["Paused"])
        try:
            if timeout == 0:
                raise TimeoutError("no time given")
            task.wait(None if timeout < 0 else timeout)
        except TimeoutError:
            self._emit(c, "kill", {"signal": str(int(signal_.SIGKILL))})
            self._signal(task, int(signal_.SIGKILL), False)
            try:
                task.wait()
            except FailedPrecondition:
                pass
        except FailedPrecondition:
            pass
        self.refresh(c)

    @staticmethod
    def _signal(task, sig, paused, every=True):
        """Send ``sig`` (``every``: to all the container's processes); thaw a paused one."""
        try:
            task.kill(sig, all=every)
        except (FailedPrecondition, NotFound):
            return                  # exited meanwhile
        if paused:
            try:
                task.resume()
            except PyruncError:
                pass                # thawed already (runc's kill --all thaws), or exited

    def restart(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None:
        """docker restart: stop (if running), then start. An AutoRemove container stays
        (dockerd lifts AutoRemove for the stop): RESTARTER names this process until the start,
        so one that dies in between leaves the container to be removed as usual."""
        c = self.get(ref)
        if cstate.is_active(c.state):
            marked = bool(c.host_config.get("AutoRemove"))
            if marked:
                with c.lock():
                    c.reload()
                    c.record[RESTARTER] = _this_process()
                    c.save_state()
            try:
                self.stop(ref, timeout=timeout, signal=signal)
            except BaseException:
                if marked:
                    with c.lock():
                        c.reload()
                        c.record.pop(RESTARTER, None)
                        c.save_state()
                    self.refresh(c)
                raise
        self._start(c.id, restarting=True)
        self._emit(c, "restart")

    def kill(self, ref: str, signal: str | int = "KILL") -> None:
        """docker kill: send ``signal``; SIGKILL also waits for the exit to be recorded."""
        sig = parse_signal(signal)
        c = self.get(ref)
        if not cstate.is_active(c.state):
            raise Conflict("Cannot kill container: %s: Container %s is not running"
                           % (ref, c.id))
        with c.lock():              # no restart by a restart policy after a user's kill
            c.reload()
            c.record["HasBeenManuallyStopped"] = True
            c.save_state()
        if c.state["Restarting"]:
            self.refresh(c)         # settles it as exited: the restart is cancelled
            return
        task = c.task()
        self._emit(c, "kill", {"signal": str(sig)})
        if sig == signal_.SIGKILL:          # a frozen process dies once thawed
            self._signal(task, sig, c.state["Paused"])
        else:
            self._signal(task, sig, False, every=False)
        if sig == signal_.SIGKILL:
            try:
                task.wait(DEFAULT_STOP_TIMEOUT)
            except (TimeoutError, FailedPrecondition):
                pass
            self.refresh(c)

    def pause(self, ref: str) -> None:
        c = self.get(ref)
        with c.lock():
            c.reload()
            self._refresh_locked(c)
            if not cstate.is_active(c.state):
                raise Conflict("Container %s is not running" % c.id)
            if c.state["Paused"]:
                raise Conflict("Container %s is already paused" % c.id)
            c.task().pause()
            cstate.set_paused(c.state, True)
            c.save_state()
        self._emit(c, "pause")

    def unpause(self, ref: str) -> None:
        c = self.get(ref)
        with c.lock():
            c.reload()
            self._refresh_locked(c)
            if not c.state["Paused"]:
                raise Conflict("Container %s is not paused" % c.id)
            c.task().resume()
            cstate.set_paused(c.state, False)
            c.save_state()
        self._emit(c, "unpause")

    # ------------------------------------------------------------------ wait
    def wait(self, ref: str, condition: str = "not-running",
             timeout: float | None = None) -> dict[str, Any]:
        """docker wait: {"StatusCode", "Error"} once the condition holds; TimeoutError when
        ``timeout`` seconds pass first."""
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidArgument("invalid condition: %r" % (condition,))
        if timeout is not None and (not isinstance(timeout, (int, float))
                                    or isinstance(timeout, bool) or timeout < 0):
            raise InvalidArgument("wait timeout: must be a number of seconds")
        generation = self._generation
        c = self.refresh(self.store.get(ref))   # an AutoRemove one may go here: its code stays
        deadline = None if timeout is None else time.monotonic() + timeout

        def left():
            if deadline is None:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("container %s: %s not reached in %ss"
                                   % (c.id, condition, timeout))
            return remaining

        started = c.state["StartedAt"]
        if condition == "next-exit" and cstate.is_active(c.state):
            condition = "not-running"           # the running one's exit is the next
        while True:
            if condition == "removed" and not os.path.isdir(c.dir):
                return self.removed_exit(c.id) or _removed_result(c)    # kept by its remover
            if cstate.is_active(c.state):
                self._wait_task(c, generation, left)
            elif condition == "not-running" or (condition == "next-exit"
                                                and c.state["StartedAt"] != started):
                return _wait_result(c)
            else:                               # its start, or its removal
                self._await_change(generation, left)
            generation = self._generation
            fresh = self.store.load(c.id)
            if fresh is None:
                return self.removed_exit(c.id) or _removed_result(c)
            c = self.refresh(fresh)

    def _wait_task(self, c, generation, left):
        """Until ``c``'s task exits (``left()``: the seconds left, raising TimeoutError)."""
        try:
            c.task().wait(left())
        except TimeoutError:
            left()
        except (NotFound, FailedPrecondition):  # restarting: no task until it is started
            self._await_change(generation, left)

    # ------------------------------------------------------------------ remove, rename, update
    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        """docker rm (``force``: kill a running one; ``volumes``: remove its anonymous
        volumes)."""
        c = self.store.get(ref)
        with c.lock() as lock:
            c.reload()
            self._refresh_locked(c)
            if cstate.is_active(c.state) and not force:
                if c.state["Paused"]:
                    raise Conflict("You cannot remove a paused container %s. Unpause and then "
                                   "stop the container before attempting removal or force "
                                   "remove" % c.id)
                raise Conflict("You cannot remove a running container %s. Stop the container "
                               "before attempting removal or force remove" % c.id)
            if cstate.is_active(c.state) and not c.state["Restarting"]:
                self._emit(c, "kill", {"signal": str(int(signal_.SIGKILL))})
                self._kill_for_removal(c)
            self._remove_locked(c, lock, volumes)

    def _kill_for_removal(self, c):
        """SIGKILL the running ``c`` (its lock held) and collect the exit, so its code (137)
        is what the waiters of its removal get, as dockerd's; a task that does not go is
        deleted by force."""
        try:
            task = c.task()
        except NotFound:
            self._refresh_locked(c)
            return
        self._signal(task, int(signal_.SIGKILL), c.state["Paused"])
        try:
            task.wait(DEFAULT_STOP_TIMEOUT)
        except (TimeoutError, PyruncError):
            pass
        self._refresh_locked(c)
        if cstate.is_active(c.state):
            task.delete(force=True)
            self._refresh_locked(c)

    def _remove_locked(self, c, lock, volumes):
        """Remove the stopped container ``c`` whose flock ``lock`` is held; its wait result
        stays for the waiters of its removal (``removed_exit``)."""
        c.state["Status"] = cstate.REMOVING
        c.record.setdefault(REMOVING_SINCE, timestamps.now_ns())
        c.save_state()
        self._drop_task(c)
        self._remove_cgroup_parent(c)
        self._unmount(c)
        self.networking.detach(c)
        self._remove_snapshot(c.snapshot_key)
        release_mounts(c.mount_points, self.volumes, c.id, remove_anonymous=volumes)
        self.execs.forget(c)
        self.store.release_names_of(c.id)
        self._keep_exit(c)
        # dockerd emits destroy once the container is gone: no listing or inspect finds it
        os.rename(os.path.join(c.dir, "config.v2.json"), os.path.join(c.dir, DESTROYED))
        self._emit(c, "destroy")
        shutil.rmtree(c.dir)
        lock.remove()
        self._changed()

    def _exits_dir(self):
        return os.path.join(self.store.root, "exits")

    def _keep_exit(self, c):
        """Keep ``c``'s wait result (ROOT/containers/exits/ID) for EXIT_KEPT seconds after its
        removal; drop those kept longer."""
        d = self._exits_dir()
        os.makedirs(d, 0o700, exist_ok=True)
        old = time.time() - EXIT_KEPT
        for name in os.listdir(d):
            try:
                if os.lstat(os.path.join(d, name)).st_mtime < old:
                    os.unlink(os.path.join(d, name))
            except FileNotFoundError:
                pass                # dropped by another process meanwhile
        write_json(os.path.join(d, c.id), _removed_result(c))

    def removed_exit(self, container_id: str) -> dict[str, Any] | None:
        """The wait result ({"StatusCode", "Error"}) of the container of this full ID,
        removed within the last EXIT_KEPT seconds; None otherwise."""
        if not is_full_id(container_id):
            return None
        try:
            with open(os.path.join(self._exits_dir(), container_id)) as f:
                doc = json.load(f)
        except (FileNotFoundError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def rename(self, ref: str, name: str) -> None:
        new = names.normalise(name)
        c = self.get(ref)
        with c.lock():
            c.reload()
            old = c.name
            if new == old:
                raise InvalidArgument("Renaming a container with the same name as its current "
                                      "name")
            self.store.reserve_name(new, c.id)
            c.record["Name"] = new
            c.save_state()
            self.store.release_name(old, c.id)
        self._emit(c, "rename", {"oldName": old})

    def update(self, ref: str, update: dict[str, Any]) -> dict[str, Any]:
        """docker update: resources (applied to a running task too) and the restart policy."""
        if not isinstance(update, dict):
            raise InvalidArgument("update: must be a JSON object")
        unknown = sorted(k for k in update if k not in UPDATABLE)
        if unknown:
            raise InvalidArgument("update: %s cannot be updated" % ", ".join(unknown))
        c = self.get(ref)
        with c.lock():
            c.reload()
            self._refresh_locked(c)
            hc = dict(c.host_config)
            for k, v in update.items():
                if v is not None and not (k in ("CpusetCpus", "CpusetMems") and v == ""):
                    hc[k] = v
            hc = view.normalise_host_config(hc, self.runtime)
            if "RestartPolicy" in update and c.host_config.get("AutoRemove") \
                    and hc["RestartPolicy"]["Name"] != "no":
                raise InvalidArgument("Restart policy cannot be updated because AutoRemove is "
                                      "enabled for the container")
            self._check_restart_policy(hc)
            if hc["Memory"] and hc["MemorySwap"] > 0 and hc["Memory"] > hc["MemorySwap"]:
                raise InvalidArgument("Memory limit should be smaller than already set "
                                      "memoryswap limit, update the memoryswap at the same time")
            if update.get("NanoCpus") and (hc["CpuQuota"] or hc["CpuPeriod"]):
                raise InvalidArgument("Conflicting options: Nano CPUs cannot be updated as CPU "
                                      "Period/Quota has already been set")
            if cstate.is_active(c.state):
                resources = oci_resources(hc, update)
                if resources:
                    c.task().update(resources)
            c.host_config = hc
            c.save()
        self._emit(c, "update")
        return {"Warnings": []}

    # ------------------------------------------------------------------ reading
    def list(self, all: bool = False, limit: int = -1, size: bool = False,
             filters: Any = None) -> list[dict[str, Any]]:
        """docker ps: ContainerSummary dicts, newest first. Their nested values (Labels,
        Ports, Mounts, NetworkSettings...) are shared with the listing's cache: copy before
        changing them."""
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise InvalidArgument("limit: must be an integer")
        parsed = view.parse_filters(filters)
        match = view.Matcher(parsed, self.store.get, self._ancestor_ids)
        found = [c for c in map(self.refresh, self._load_all())
                 if os.path.isdir(c.dir)]      # not an AutoRemove one that went just now
        found.sort(key=lambda c: c.record["Created"], reverse=True)
        out = []
        for c in found:
            shows_all = all or limit > 0 or any(parsed.get(k) for k in ("status", "exited",
                                                                          "before", "since"))
            if not shows_all and not cstate.is_active(c.state):
                continue
            if not match(c):
                continue
            out.append(view.summary(c, self._size(c)) if size else self._summary(c))
            if limit > 0 and len(out) >= limit:
                break
        return out

    def _load_all(self) -> List[Container]:
        """Every container, as ``store.all()``, reading again only the records whose files
        changed since the last listing (every write replaces a file: a new inode)."""
        listed = {}
        out = []
        for cid in os.listdir(self.store.root):
            if len(cid) != 64 or not _HEX.issuperset(cid):
                continue            # not a container (names.json, locks, exits)
            d = os.path.join(self.store.root, cid)
            key = (_identity(os.path.join(d, RECORD)), _identity(os.path.join(d, HOST_CONFIG)))
            if key[0] is None:
                continue            # a create in progress, or removed
            hit = self._listed.get(cid)
            if hit is None or hit[0] != key:
                c = self.store.load(cid)    # read after the stat: a change meanwhile
                if c is None:               # shows next time
                    continue
                hit = [key, c.record, c.host_config, None]
            listed[cid] = hit
            record, host_config = hit[1], hit[2]
            # shared with the next listing: a refresh changes only a record it reloaded
            out.append(Container(self.store, record, host_config))
        self._listed = listed
        return out

    def _summary(self, c: Container) -> dict[str, Any]:
        """``view.summary(c)``, made once for a record the listings keep reading unchanged."""
        hit = self._listed.get(c.id)
        if hit is None or hit[1] is not c.record:       # read again by its refresh
            return view.summary(c)
        if hit[3] is None:
            hit[3] = view.summary(c)
        return dict(hit[3], Status=cstate.status_text(c.state))

    def _ancestor_ids(self, ref):
        target = self.images.get(ref)
        ids = {target.id}
        for img in self.images.images():        # images built on top of it: docker's rule
            if target.diff_ids and img.diff_ids[:len(target.diff_ids)] == target.diff_ids:
                ids.add(img.id)
        return ids

    def _size(self, c):
        try:
            rw = self.images.snapshotter.usage(c.snapshot_key).size
        except NotFound:
            rw = 0
        try:
            base = self.images.get(c.image_id).size
        except NotFound:
            base = 0
        return {"SizeRw": rw, "SizeRootFs": rw + base}

    def inspect(self, ref: str, size: bool = False) -> dict[str, Any]:
        c = self.get(ref)
        return view.inspect(c, self.images.snapshotter.name, self._size(c) if size else None,
                            self.execs.running_ids(c))

    def top(self, ref: str, ps_args: str | None = None) -> dict[str, Any]:
        """docker top: the container's processes as ``ps -ef`` shows them (``ps_args``: the
        host's ps with those options, its rows limited to the container's pids)."""
        c = self.get(ref)
        if not cstate.is_active(c.state):
            raise Conflict("Container %s is not running" % c.id)
        return top.top(c.task().pids(), ps_args)

    def stats(self, ref: str, stream: bool = False) -> Any:
        """docker stats: the Engine API's stats document, or (``stream``) an iterator of them,
        one a second, until the container stops."""
        c = self.get(ref)
        if not stream:
            return self._stats(c, None)
        return self._stats_stream(c)

    def _stats_stream(self, c):
        previous = None
        while True:
            c = self.get(c.id)
            doc = self._stats(c, previous)
            yield doc
            if not cstate.is_active(c.state):
                return
            previous = doc
            time.sleep(1)

    def _stats(self, c, previous):
        raw = None
        if cstate.is_active(c.state):
            try:
                raw = read_stats(c.task().state().pid)
            except (FileNotFoundError, ProcessLookupError, NotFound, FailedPrecondition):
                raw = None
        return top.stats_document(c.id, c.name, raw, previous)

    def logs(self, ref: str, **opts: Any) -> Iterator[Any]:
        """docker logs: ``LogMessage``s from the json-file log (read_logs' options: follow,
        tail, since, until, stdout, stderr); follow ends when the container stops."""
        c = self.get(ref)
        log = parse_log_config(c.host_config.get("LogConfig"))
        if log.type == "none":
            raise FailedPrecondition('configured logging driver does not support reading')

        def running():
            fresh = self.store.load(c.id)
            return fresh is not None and cstate.is_active(self.refresh(fresh).state)

        return read_logs(c.log_path, running=running, **opts)

    def attach(self, ref: str) -> Attachment:
        """An attachment to the running container's stdio (docker attach)."""
        c = self.get(ref)
        if not cstate.is_active(c.state):
            raise Conflict("You cannot attach to a stopped container, start it first")
        if c.state["Paused"]:
            raise Conflict("You cannot attach to a paused container, unpause it first")
        attachment = c.task().attach()
        self._emit(c, "attach")
        return attachment

    def resize(self, ref: str, height: int, width: int) -> None:
        c = self.get(ref)
        if not cstate.is_active(c.state):
            raise Conflict("Container %s is not running" % c.id)
        c.task().resize(width, height)
        self._emit(c, "resize", {"height": str(height), "width": str(width)})

    def prune(self, filters: Any = None) -> dict[str, Any]:
        """docker container prune: remove every stopped container (filters: until, label)."""
        parsed = view.parse_filters(filters) if filters else {}
        deleted, reclaimed = [], 0
        until = [_until(v) for v in parsed.pop("until", [])] if "until" in parsed else []
        labels = parsed.pop("label", [])
        for c in self.store.all():
            c = self.refresh(c)
            if cstate.is_active(c.state) or not os.path.isdir(c.dir):
                continue
            created = timestamps.parse_ns(c.record["Created"])
            if any(created >= u for u in until):
                continue
            if labels and not view.Matcher({"label": labels}, self.store.get,
                                           self._ancestor_ids)(c):
                continue
            size = self._size(c)["SizeRw"]
            try:
                self.remove(c.id)
            except (Conflict, NotFound):
                continue
            deleted.append(c.id)
            reclaimed += size
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    # ------------------------------------------------------------------ networks
    def port(self, ref: str) -> dict[str, Any]:
        """docker port: the published ports ({"80/tcp": [{"HostIp", "HostPort"}]})."""
        return dict(self.get(ref).record["NetworkSettings"].get("Ports") or {})

    def network_connect(self, ref: str, network: str,
                        endpoint_config: dict[str, Any] | None = None) -> None:
        """docker network connect (a running container gets the endpoint at once)."""
        self._network_change(ref, lambda c, running: self.networking.connect(
            c, network, endpoint_config, running))

    def network_disconnect(self, ref: str, network: str, force: bool = False) -> None:
        """docker network disconnect."""
        self._network_change(ref, lambda c, running: self.networking.disconnect(
            c, network, force, running))

    def _network_change(self, ref, change):
        c = self.get(ref)
        with c.lock():
            c.reload()
            self._refresh_locked(c)
            change(c, cstate.is_active(c.state))
            c.save_state()

    # ------------------------------------------------------------------ exec
    def exec_create(self, ref: str, config: dict[str, Any]) -> str:
        return self.execs.create(self.get(ref), config)

    def exec_start(self, exec_id: str, detach: bool = False,
                   tty: bool = False) -> ExecProcess:
        return self.execs.start(exec_id, detach=detach, tty=tty)

    def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        return self.execs.inspect(exec_id)

    def exec_resize(self, exec_id: str, h: int, w: int) -> None:
        self.execs.resize(exec_id, h, w)

    # ------------------------------------------------------------------ engine start-up
    def clean_abandoned(self) -> List[str]:
        """Remove what creates whose process died left (directory, name, snapshot), put back
        the names names.json lost, and finish removals that were interrupted; returns the IDs
        cleaned."""
        cleaned = []
        for cid in self.store.abandoned():
            with self.store.lock(cid) as lock:
                d = os.path.join(self.store.root, cid)
                if os.path.exists(os.path.join(d, "config.v2.json")):
                    continue
                self._destroyed(cid, os.path.join(d, DESTROYED))
                self._remove_snapshot(cid)
                self.store.release_names_of(cid)
                shutil.rmtree(d, ignore_errors=True)
                lock.remove()
                cleaned.append(cid)
        containers = self.store.all()
        self.store.restore_names(containers)
        for c in containers:
            if c.state["Status"] == cstate.REMOVING:
                try:
                    self.remove(c.id, force=True)
                    cleaned.append(c.id)
                except Conflict:
                    pass            # another process is removing it
        return cleaned

    def _destroyed(self, cid, path):
        """Emit the destroy event of a removal whose process died after renaming its record
        to ``path``, unless it emitted it already."""
        try:
            with open(path) as f:
                record = json.load(f)
        except (FileNotFoundError, ValueError):
            return
        if not isinstance(record, dict) or not isinstance(record.get("Config"), dict):
            return
        since = "%d.%09d" % divmod(int(record.get(REMOVING_SINCE) or 0), timestamps.NS)
        if any(True for _ in self.events.query(
                since=since, filters={"type": ["container"], "event": ["destroy"],
                                      "container": [cid]})):
            return
        self.events.emit("container", "destroy", cid, container_attributes(
            record["Config"], str(record.get("Name") or "")))

    def image_users(self, image_id: str) -> List[tuple[str, bool]]:
        """[(container ID, running)] of the containers made from ``image_id``."""
        return [(c.id, cstate.is_active(c.state)) for c in self.store.all()
                if c.image_id == image_id]


def _auto_removable(c: Container) -> bool:
    """An AutoRemove container (docker run --rm) whose run has ended: it exited, or its
    process could not start."""
    return bool(c.host_config.get("AutoRemove")) and not cstate.is_active(c.state) \
        and c.state["Status"] in (cstate.CREATED, cstate.EXITED) \
        and bool(c.record.get("HasBeenStartedBefore") or c.state.get("Error")) \
        and not _restarted_by_live_process(c)


def _identity(path: str) -> tuple[int, int, int] | None:
    """(inode, mtime, size) of the file at ``path``; None when there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _task_processes(c: Container) -> list[list[int]] | None:
    """The recorded processes of ``c``'s running task (TASK_PROCESSES), or None when they do
    not describe the current run (none recorded, restarting, another init)."""
    procs = c.record.get(TASK_PROCESSES)
    if c.state.get("Restarting") or not isinstance(procs, list) or len(procs) != 2:
        return None
    for proc in procs:
        if not (isinstance(proc, list) and len(proc) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in proc)):
            return None
    return procs if procs[0][0] == c.state.get("Pid") else None


def _processes_alive(procs: list[list[int]]) -> bool:
    """Whether the init and the shim of TASK_PROCESSES both still run: the init's
    /proc/PID/stat shows its start time, no zombie and (usually) the shim as its parent,
    which the kernel changes the moment the shim dies."""
    (pid, start), (shim, shim_start) = procs
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:             # gone (ENOENT, ESRCH)
        return False
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X", b"x") or int(fields[19]) != start:
        return False
    return int(fields[1]) == shim or lcstate.alive(shim, shim_start)


def _processes_of(ts: Any) -> list[list[int]] | None:
    """TASK_PROCESSES of a running task's state ``ts`` (None when its init or its shim is
    gone already)."""
    procs = []
    for pid in (ts.pid, ts.shim_pid):
        st = lcstate.proc_stat(pid) if pid else None
        if st is None:
            return None
        procs.append([pid, st[1]])
    return procs


def _check_bind_sources(c: Container) -> None:
    """dockerd's check of a start's settings: a --mount bind whose source is gone refuses the
    start before anything is done (the state is left as it was, an AutoRemove container
    too); a -v bind's missing source is created by the start."""
    for m in c.mount_points:
        if m.type == "bind" and not m.create_source and not os.path.lexists(m.source):
            raise InvalidArgument('invalid mount config for type "bind": bind source path does '
                                  'not exist: %s' % m.source)


def _this_process() -> list[int]:
    """[pid, start time] of this process (RESTARTER)."""
    pid = os.getpid()
    st = lcstate.proc_stat(pid)
    return [pid, st[1] if st is not None else 0]


def _restarted_by_live_process(c: Container) -> bool:
    owner = c.record.get(RESTARTER)
    if not (isinstance(owner, list) and len(owner) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in owner)):
        return False
    return owner[0] > 0 and lcstate.alive(owner[0], owner[1])


def _wait_result(c: Container) -> dict[str, Any]:
    error = c.state.get("Error") or None
    return {"StatusCode": c.state["ExitCode"], "Error": {"Message": error} if error else None}


def _removed_result(c: Container) -> dict[str, Any]:
    """The wait result for the removal of ``c``: its last exit code (a removal clears the
    error, as dockerd's)."""
    return {"StatusCode": c.state["ExitCode"], "Error": None}


def _until(value: str) -> int:
    try:
        return int(float(value) * timestamps.NS)
    except ValueError:
        return timestamps.parse_ns(value)


def oci_resources(hc: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """OCI linux.resources for the keys of ``update`` (values from the merged ``hc``)."""
    out: dict[str, Any] = {}
    memory = {}
    if "Memory" in update or "MemorySwap" in update:
        if hc["Memory"]:
            memory["limit"] = hc["Memory"]
        if hc["MemorySwap"]:
            memory["swap"] = hc["MemorySwap"]
    if "MemoryReservation" in update:
        memory["reservation"] = hc["MemoryReservation"]
    if memory:
        out["memory"] = memory
    cpu: dict[str, Any] = {}
    if "CpuShares" in update and hc["CpuShares"]:
        cpu["shares"] = hc["CpuShares"]
    if "NanoCpus" in update and hc["NanoCpus"]:
        cpu["period"] = 100000
        cpu["quota"] = hc["NanoCpus"] * 100000 // 1000000000
    if "CpuPeriod" in update and hc["CpuPeriod"]:
        cpu["period"] = hc["CpuPeriod"]
    if "CpuQuota" in update and hc["CpuQuota"]:
        cpu["quota"] = hc["CpuQuota"]
    if "CpusetCpus" in update and hc.get("CpusetCpus"):
        cpu["cpus"] = hc["CpusetCpus"]
    if "CpusetMems" in update and hc.get("CpusetMems"):
        cpu["mems"] = hc["CpusetMems"]
    if cpu:
        out["cpu"] = cpu
    if "PidsLimit" in update and hc.get("PidsLimit") is not None:
        out["pids"] = {"limit": hc["PidsLimit"] if hc["PidsLimit"] > 0 else -1}
    if "BlkioWeight" in update and hc.get("BlkioWeight"):
        out["blockIO"] = {"weight": hc["BlkioWeight"]}
    return out
