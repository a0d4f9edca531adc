"""Containers and their lifecycle, modelled on runc's libcontainer (Factory, Container).

    f = Factory(root="/run/pyrunc")
    c = f.create("web", "/path/to/bundle")     # the init waits on the exec fifo: "created"
    c.start()                                  # "running"
    pid = c.exec(process_dict)                 # another process in it (our child)
    c.signal(signal.SIGTERM); c.wait()         # "stopped"
    c.destroy()                                # poststop hooks, cgroup and state removed

Status as runc computes it: "stopped" when the init (same pid and start time as recorded) is
gone or a zombie, else "paused" while the cgroup is frozen, else "created" while the init waits
on the exec fifo, else "running". Before the init is recorded the container is "creating" while
the creating process lives; if that process died, it is "stopped" and delete cleans up.
"""
from __future__ import annotations

import errno
import os
import time
from _signal import SIGKILL

from pyrunc.errors import (Conflict, FailedPrecondition, InvalidArgument, PyruncError,
                           SystemFailure, Unavailable)
from pyrunc.libcontainer import jsoncodec, timestamps
from pyrunc.libcontainer.namespaces import PROC_NAMES
from pyrunc.libcontainer.state import StateDir, alive, proc_stat, validate_id, write_pid_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from pyrunc.libcontainer.cgroups.manager import Manager

DEFAULT_ROOT = "/run/pyrunc"
RUNTIME_HOOKS = ("prestart", "create_runtime", "poststart", "poststop")

CREATING, CREATED, RUNNING, PAUSED, STOPPED = "creating", "created", "running", "paused", "stopped"


class Factory:
    """Creates and loads the containers kept under ``root``."""

    def __init__(self, root: str = DEFAULT_ROOT, systemd_cgroup: bool = False) -> None:
        self.root = os.path.abspath(root)
        self.systemd_cgroup = systemd_cgroup

    def create(self, container_id: str, bundle: str, console_socket: str | None = None,
               pid_file: str | None = None, no_pivot: bool = False, no_new_keyring: bool = False,
               preserve_fds: int = 0, stdio: tuple[int, ...] = (0, 1, 2)) -> Container:
        """Create the container from ``bundle``: its init waits on the exec fifo until start.

        Everything is checked before anything is made; a failure leaves no process, cgroup or
        state directory behind.
        """
        validate_id(container_id)
        if preserve_fds < 0:
            raise InvalidArgument("--preserve-fds: must not be negative")
        from pyrunc.libcontainer import hooks, process

        spec, manager, plan, base, resources, runtime_hooks, state = self._prepare(
            container_id, bundle, no_pivot=no_pivot, no_new_keyring=no_new_keyring)
        if plan.terminal and not console_socket:
            raise InvalidArgument("process.terminal needs a console socket (--console-socket)")
        if console_socket and not plan.terminal:
            raise InvalidArgument("--console-socket: the container has no terminal "
                                  "(process.terminal is false)")
        console_fd = _connect_console(console_socket) if console_socket else None
        # what the init is given as stdio, for a checkpoint (runc's "external descriptors")
        from pyrunc.libcontainer.descriptors import descriptor_keys
        state["stdio"] = [] if plan.terminal else descriptor_keys(stdio)
        sd = StateDir.create(self.root, container_id)
        pid = announced_pid = None
        applied = False
        fifo_fd = None
        try:
            # "creating" until the init is recorded: if this process dies meanwhile, the
            # container reads as stopped and delete removes what was made (cgroup included).
            # No lock is held here: the init would inherit it until it execs.
            sd.write(state)
            fifo_fd = sd.make_fifo()
            # The first child creates the namespaces and the init inside the cgroup: it joins
            # the cgroup, made and limited beforehand, by itself, or (systemd) is placed there.
            join = manager.join()
            if join is not None:
                applied = True
                manager.create()
                if resources:
                    _set_resources(manager, resources)

            def on_pid(first_child):
                nonlocal applied
                if join is None:
                    applied = True
                    manager.apply(first_child)
                    if resources:
                        _set_resources(manager, resources)

            def on_hooks(init_pid):
                nonlocal announced_pid
                announced_pid = init_pid
                # The environment exists when these hooks run: their state says "created", as
                # the runtime-tools validation suite (hooks_stdin) and crun have it.
                state = _hook_state(base, CREATED, init_pid)
                hooks.run_all("prestart", runtime_hooks["prestart"], state)
                hooks.run_all("createRuntime", runtime_hooks["create_runtime"], state)
                return state

            def on_seccomp_fd(notify_fd):
                # the seccomp agent protocol: the listener gets the state and the notify fd
                try:
                    from pyrunc.libcontainer import seccomp
                    seccomp.send_to_listener(plan.seccomp.listener_path, notify_fd,
                                             _hook_state(base, CREATED, announced_pid).decode(),
                                             plan.seccomp.listener_metadata)
                finally:
                    os.close(notify_fd)

            pid = process.spawn_init(plan, exec_fifo_fd=fifo_fd, console_socket_fd=console_fd,
                                     preserve_fds=preserve_fds, stdio=stdio, cgroup=join,
                                     on_pid=on_pid, on_hooks=on_hooks,
                                     on_seccomp_fd=on_seccomp_fd)
            st = proc_stat(pid)
            if st is None:
                raise SystemFailure("start container init", errno.ESRCH,
                                    "the init exited during create")
            _record_init(sd, state, spec, manager, pid, st[1], pid_file)
        except BaseException as e:
            # a limit too low for the container to start: say which, as crun does
            failure = applied and isinstance(e, PyruncError) and manager.start_failure()
            _undo_create(pid, manager if applied else None, sd)
            if failure:
                raise InvalidArgument("config.json: %s (%s)" % (failure, e)) from None
            raise
        finally:
            if fifo_fd is not None:
                os.close(fifo_fd)
            if console_fd is not None:
                os.close(console_fd)
        return Container(self, sd, state, manager)

    def _prepare(self, container_id, bundle, **plan_options):
        """What create and restore check before they make anything: (spec, manager, plan,
        base state, resources, runtime hooks, the "creating" state)."""
        from pyrunc.libcontainer import cgroups, ocispec, hooks, specconv
        bundle = os.path.abspath(bundle)
        spec = ocispec.load(bundle)
        manager = cgroups.new_manager(spec.linux.cgroups_path if spec.linux else None,
                                      container_id, systemd=self.systemd_cgroup)
        base = {"ociVersion": spec.oci_version, "id": container_id, "bundle": bundle,
                "annotations": dict(spec.annotations)}
        plan = specconv.to_plan(spec, bundle, container_id, cgroup_manager=manager,
                                state_json=_hook_state(base, CREATED, 0),
                                state_root=self.root, **plan_options)
        runtime_hooks = {k: [hooks.to_dict(h) for h in specconv.hooks_of(spec.hooks, k)]
                         for k in RUNTIME_HOOKS}
        resources = specconv.cgroup_resources(spec)
        if resources:
            _check_resources(manager, resources)
        private_pid = any(ns.type == "pid" and not ns.path for ns in spec.linux.namespaces)
        state = dict(base, rootfs=plan.rootfs, pid=0, pid_start=0,
                     creator=[os.getpid(), proc_stat(os.getpid())[1]], created=timestamps.now(),  # type: ignore[index]
                     owner="", cgroup=manager.to_state(), private_pid_ns=private_pid,
                     namespace_paths={}, session_keyring=plan.session_keyring,
                     hooks={k: runtime_hooks[k] for k in ("poststart", "poststop")},
                     config=spec.raw)
        return spec, manager, plan, base, resources, runtime_hooks, state

    def restore(self, container_id: str, bundle: str, options: Any, criu: str = "criu",
                pid_file: Any = None) -> Container:
        """A new container ``container_id`` from ``bundle`` whose init is the process tree
        checkpointed in ``options.image_path`` (``Container.checkpoint``), restored by CRIU
        inside the container's new cgroup. The init is reparented to the nearest child
        subreaper as CRIU exits (make the caller one to reap it). No hook runs."""
        validate_id(container_id)
        from pyrunc.libcontainer import criu as checkpoints
        spec, manager, plan, _, resources, _, state = self._prepare(container_id, bundle)
        checkpoints.check_config(spec.raw, "restore")
        checkpoints.read_descriptors(options)
        join = manager.join()
        if join is None:
            raise Unavailable("restore: not supported with the systemd cgroup driver")
        sd = StateDir.create(self.root, container_id)
        pid = None
        try:
            sd.write(state)
            manager.create()
            if resources:
                manager.set(resources)
            pid, state["stdio"] = checkpoints.restore(plan.rootfs, plan.readonly_root,
                                                      spec.raw, manager, join, options, criu,
                                                      sd.path)
            st = proc_stat(pid)
            if st is None:
                raise SystemFailure("restore: the restored init exited", errno.ESRCH)
            _record_init(sd, state, spec, manager, pid, st[1], pid_file)
        except BaseException:
            _undo_create(pid, manager, sd)
            raise
        return Container(self, sd, state, manager)

    def load(self, container_id: str) -> Container:
        """The container ``container_id``; NotFound when there is none."""
        validate_id(container_id)
        sd = StateDir(self.root, container_id)
        state = sd.read()
        return Container(self, sd, state)

    def remove_unwritten(self, container_id: str) -> bool:
        """Remove the directory a create left when it died before writing any state (no
        state.json: nothing was spawned, no cgroup made), as runc's delete does; returns
        whether there was one."""
        validate_id(container_id)
        sd = StateDir(self.root, container_id)
        if not os.path.isdir(sd.path) or os.path.exists(sd.state_file):
            return False
        sd.remove()
        return True

    def list(self) -> Any:
        """Every container under root, sorted by id (unreadable entries are skipped)."""
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            try:
                out.append(self.load(name))
            except PyruncError:   # a container being created or deleted meanwhile
                continue
        return out


def _connect_console(path):
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise SystemFailure("connect console socket %s" % path, e.errno) from None
    return s.detach()


def _check_resources(manager, resources):
    """``linux.resources`` checked by the cgroup backend's own planning before anything is
    created: a malformed field, or (v1) a controller this host lacks, fails here. Warnings about
    ignored fields come once, when the manager sets the resources."""
    from pyrunc import errors
    if manager.version == 2:
        from pyrunc.libcontainer.cgroups.v2 import planned_writes
    else:
        from pyrunc.libcontainer.cgroups.v1 import planned_writes
    sink = errors.set_warning_sink(lambda message: None)
    try:
        writes = planned_writes(resources)
    finally:
        errors.set_warning_sink(sink)
    if manager.version == 1:
        from pyrunc.libcontainer.cgroups.manager import unavailable
        missing = sorted({c for c, _, _, _ in writes} - set(manager.paths()))
        if missing:
            raise unavailable(missing[0])


REFUSED_VALUE = (errno.EINVAL, errno.ENODEV, errno.ERANGE, errno.EOVERFLOW)
"""errnos of a cgroup write that mean the kernel refused the value written."""


def _set_resources(manager: Manager, resources: dict) -> None:
    """``manager.set(resources)``; the kernel refusing a value of the config (a device that
    does not exist, a number out of its range) is the config's fault: InvalidArgument."""
    try:
        manager.set(resources)
    except SystemFailure as e:
        if e.errno in REFUSED_VALUE:
            raise InvalidArgument("config.json: linux.resources: %s" % e) from None
        raise


def _record_init(sd, state, spec, manager, pid, pid_start, pid_file):
    """The container has its init: "created" or "running" from now on."""
    state.update(pid=pid, pid_start=pid_start, creator=None, created=timestamps.now(),
                 cgroup=manager.to_state(),
                 namespace_paths={ns.type: ns.path or "/proc/%d/ns/%s" % (
                     pid, PROC_NAMES[ns.type]) for ns in spec.linux.namespaces})
    sd.write(state)
    if pid_file:
        write_pid_file(pid_file, pid)


def _undo_create(pid, manager, sd):
    if pid:
        _kill_and_reap(pid)
    if manager is not None:
        try:
            manager.destroy()
        except Exception:
            pass
    sd.remove()


def _kill_and_reap(pid, start_time=None, timeout=10.0):
    """SIGKILL ``pid`` and wait until it is gone (reaped if it is our child)."""
    if start_time is not None and not alive(pid, start_time):
        _reap(pid)
        return
    try:
        os.kill(pid, SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _reap(pid):
            return
        st = proc_stat(pid)
        if st is None or (start_time is not None and st[1] != start_time) or st[0] in "ZXx":
            if st is not None and st[0] == "Z":
                _reap(pid)
            return
        time.sleep(0.005)


def _reap(pid):
    """Reap ``pid`` if it is our child and has exited; True when it was reaped or is gone."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    except ChildProcessError:
        return False


def _last_wins(env):
    """``NAME=value`` entries with one per name: the last value, at the first one's place."""
    values = {}
    for entry in env:
        name = entry.partition("=")[0]
        values[name] = entry
    return list(values.values())


def _hook_state(base, status, pid):
    doc = {"ociVersion": base["ociVersion"], "id": base["id"], "status": status}
    if pid:
        doc["pid"] = pid
    doc["bundle"] = base["bundle"]
    if base.get("annotations"):
        doc["annotations"] = base["annotations"]
    return jsoncodec.dumps(doc).encode()


class Container:
    """One container: its state directory, init process and cgroup."""

    def __init__(self, factory: Any, state_dir: StateDir, state: dict[str, Any],
                 manager: Manager | None = None) -> None:
        self.factory = factory
        self._sd = state_dir
        self._state = state
        self._manager = manager

    @property
    def id(self) -> str:
        return self._sd.id

    @property
    def pid(self) -> int:
        return self._state["pid"]

    @property
    def bundle(self) -> Any:
        return self._state["bundle"]

    @property
    def config(self) -> Any:
        """The config.json document the container was created from."""
        return self._state["config"]

    @property
    def manager(self) -> Manager:
        if self._manager is None:
            from pyrunc.libcontainer import cgroups
            self._manager = cgroups.load_manager(self._state["cgroup"])
        return self._manager

    @property
    def status(self) -> str:
        st = self._state
        if not st["pid"]:
            creator = st.get("creator")
            return CREATING if creator and alive(*creator) else STOPPED
        if not alive(st["pid"], st["pid_start"]):
            return STOPPED
        if self.manager.freezer_state() == "FROZEN":
            return PAUSED
        if self._sd.fifo_exists():
            return CREATED
        return RUNNING

    def state(self) -> Any:
        """runc's ``state`` JSON as a dict (pid 0 once the container has stopped)."""
        st = self._state
        status = self.status
        doc = {"ociVersion": st["ociVersion"], "id": self.id,
               "pid": 0 if status == STOPPED else st["pid"], "status": status,
               "bundle": st["bundle"], "rootfs": st["rootfs"], "created": st["created"]}
        if st.get("annotations"):
            doc["annotations"] = st["annotations"]
        doc["owner"] = st["owner"]          # runc's key order: annotations before owner
        return doc

    def _hook_state(self, status):
        return _hook_state(self._state, status, self._state["pid"])

    def _run_hooks(self, kind, status):
        """Run the poststart or poststop hooks; a failing one is only a warning."""
        entries = self._state["hooks"][kind]
        if entries:
            from pyrunc.libcontainer import hooks
            hooks.run_all_warn(kind, entries, self._hook_state(status))

    def _reload(self):
        self._state = self._sd.read()

    def start(self) -> None:
        """Let the init exec the container's process; then run the poststart hooks."""
        with self._sd.lock():
            self._reload()
            status = self.status
            if status != CREATED:
                raise FailedPrecondition("cannot start a container that is %s" % status)
            self._release_init()
            self._run_hooks("poststart", RUNNING)

    def _release_init(self):
        """Open the exec fifo for reading, which lets the waiting init go on, and remove it.

        The init writes one byte and closes its end; reading until that end is closed means
        that, when the init keeps it open until exec (close-on-exec), the process has been
        executed by the time start returns and the poststart hooks run."""
        import select
        try:
            fd = os.open(self._sd.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise FailedPrecondition("cannot start a container that is %s" % self.status)
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            st = self._state
            released = False
            while True:
                if poller.poll(50):
                    try:
                        data = os.read(fd, 4096)
                    except BlockingIOError:
                        data = None
                    if data:
                        released = True
                    elif data == b"" and released:
                        return
                if not alive(st["pid"], st["pid_start"]):
                    if released:
                        return
                    raise FailedPrecondition("cannot start container %s: its init has exited"
                                             % self.id)
        finally:
            os.close(fd)
            try:
                os.unlink(self._sd.fifo)
            except FileNotFoundError:
                pass

    def exec(self, process: dict[str, Any], *, console_socket: Any = None, pid_file: Any = None,
             preserve_fds: int = 0, ignore_paused: bool = False, stdio: tuple[int, ...] = (0, 1, 2),
             source: str = "process.json", json_path: str = "") -> int:
        """Start ``process`` (a runtime-spec ``process`` object, as decoded JSON) in the
        container; returns its pid. The process is a child of the caller: reap it.

        It joins the init's namespaces and the container's cgroup, and gets the process's
        user, groups, env (a repeated name: the last one wins), cwd, capabilities, rlimits,
        noNewPrivileges, and the container's seccomp filter. No hook runs. Errors in
        ``process`` name ``source`` and the JSON path below ``json_path`` (``process.json:
        args: must be a non-empty array``). A created or running container accepts it; a paused one only with
        ``ignore_paused``: the process then joins the frozen cgroup once it is set up (a
        frozen cgroup would stop the setup half-way; runc hangs there) and goes on when the
        container is resumed, so a process quicker than that join may finish before.
        """
        if preserve_fds < 0:
            raise InvalidArgument("--preserve-fds: must not be negative")
        from pyrunc.libcontainer import ocispec, process as native
        from pyrunc.libcontainer.ocispec.fields import ConfigError, Invalid
        from pyrunc.libcontainer.specconv import process as specproc
        try:
            proc = ocispec.Process.decode(process, json_path)
        except Invalid as e:
            raise ConfigError(source, e.path, e.reason) from None
        with self._sd.lock():
            self._reload()
            status = self.status
            if status == STOPPED:
                raise FailedPrecondition("cannot exec in a stopped container")
            if status == CREATING:
                raise Conflict("container %s is being created" % self.id)
            if status == PAUSED and not ignore_paused:
                raise FailedPrecondition("cannot exec in a paused container "
                                         "(use --ignore-paused to override)")
            at = specproc.At(source, json_path)
            plan = self._exec_plan(proc, at)
            if plan.terminal and not console_socket:
                raise at.invalid("terminal", "needs a console socket (--console-socket)")
            if console_socket and not plan.terminal:
                raise InvalidArgument("--console-socket: the process has no terminal "
                                      "(use --tty)")
            console_fd = _connect_console(console_socket) if console_socket else None
            manager = self.manager
            frozen = status == PAUSED
            # a frozen cgroup would stop the setup half-way: join it once set up
            join = None if frozen else manager.join()

            def on_pid(first_child):
                if not frozen and join is None:
                    manager.apply(first_child)

            def on_seccomp_fd(notify_fd):
                try:
                    from pyrunc.libcontainer import seccomp
                    seccomp.send_to_listener(plan.seccomp.listener_path, notify_fd,
                                             self._hook_state(RUNNING).decode(),
                                             plan.seccomp.listener_metadata)
                finally:
                    os.close(notify_fd)

            try:
                pid = native.spawn_exec(plan, self._state["pid"],
                                        console_socket_fd=console_fd,
                                        preserve_fds=preserve_fds, stdio=stdio, cgroup=join,
                                        on_pid=on_pid, on_seccomp_fd=on_seccomp_fd)
            finally:
                if console_fd is not None:
                    os.close(console_fd)
            try:
                if frozen:
                    manager.apply(pid)
                    manager.freeze()   # the cgroup reads as frozen again once pid is too
                if pid_file:
                    write_pid_file(pid_file, pid)
            except BaseException:
                _kill_and_reap(pid)
                raise
            return pid

    def _exec_plan(self, proc, at):
        """The Plan of an exec'd process: the container's namespaces and seccomp filter, the
        rest from ``proc`` (an ``ocispec.Process``)."""
        from pyrunc.libcontainer import ocispec
        from pyrunc.libcontainer.namespaces import NAMESPACES
        from pyrunc.libcontainer.plan import Namespace, Plan
        from pyrunc.libcontainer.specconv import process as specproc
        st = self._state
        spec = ocispec.from_dict(st["config"])
        plan = Plan(container_id=self.id, bundle=st["bundle"], rootfs=st["rootfs"],
                    session_keyring=st.get("session_keyring"))
        plan.namespaces = [Namespace(NAMESPACES[ns.type]) for ns in spec.linux.namespaces]
        specproc.convert(plan, proc, "/proc/%d/root" % st["pid"], at=at)
        plan.env = _last_wins(plan.env)
        if spec.linux.seccomp:
            from pyrunc.libcontainer import seccomp
            plan.seccomp = seccomp.compile(spec.linux.seccomp, state_root=self.factory.root)
        return plan

    def signal(self, sig: int, all: bool = False) -> None:
        """Send ``sig`` to the init (or, with ``all``, to every process of the cgroup)."""
        self._reload()
        st = self._state
        if all:
            self._signal_all(sig)
            return
        if not st["pid"] or not alive(st["pid"], st["pid_start"]):
            raise FailedPrecondition("container %s is not running" % self.id)
        try:
            os.kill(st["pid"], sig)
        except ProcessLookupError:
            raise FailedPrecondition("container %s is not running" % self.id) from None
        # On cgroup v1 a frozen init does not die of SIGKILL until it is thawed: thaw a paused
        # container after SIGKILL, as runc does (other signals leave it paused).
        if sig == SIGKILL:
            try:
                if self.manager.freezer_state() == "FROZEN":
                    self.manager.thaw()
            except (PyruncError, OSError):   # its cgroup is gone: nothing to thaw
                pass

    def _signal_all(self, sig):
        """runc's way: freeze the cgroup so that nothing forks meanwhile, signal, thaw."""
        freeze = sig == SIGKILL and self.manager.exists()
        if freeze:
            try:
                self.manager.freeze()
            except SystemFailure as e:
                if e.errno != errno.ENOENT:
                    raise
                freeze = False      # a create killed part way made only some hierarchies
        try:
            for pid in self.manager.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if freeze:
                self.manager.thaw()

    def checkpoint(self, options: Any, criu: str = "criu") -> None:
        """Save the running container's processes in ``options.image_path`` through CRIU
        (``Factory.restore`` brings them back). As runc does, the container is then deleted,
        unless ``options.leave_running`` or ``options.pre_dump``."""
        from pyrunc.libcontainer import criu as checkpoints
        with self._sd.lock():
            self._reload()
            if self.status not in (RUNNING, PAUSED):
                raise FailedPrecondition("container %s is not running" % self.id)
            checkpoints.dump(self._state["pid"], self._state["rootfs"], self.config,
                             self.manager, options, criu, self._state.get("stdio"))
        if not (options.leave_running or options.pre_dump):
            self.destroy(force=True)

    def pause(self) -> None:
        with self._sd.lock():
            self._reload()
            status = self.status
            if status not in (RUNNING, CREATED):
                raise FailedPrecondition("container %s is %s, not running" % (self.id, status))
            self.manager.freeze()

    def resume(self) -> None:
        with self._sd.lock():
            self._reload()
            if self.status != PAUSED:
                raise FailedPrecondition("container %s is not paused" % self.id)
            self.manager.thaw()

    def wait(self) -> Any:
        """Wait for the init to exit; its exit status (128+signal) when it is our child."""
        st = self._state
        if not st["pid"]:
            return None
        try:
            _, status = os.waitpid(st["pid"], 0)
            code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code
        except ChildProcessError:
            while alive(st["pid"], st["pid_start"]):
                time.sleep(0.01)
            return None

    def destroy(self, force: bool = False) -> None:
        """Delete the container: kill a created one (or any with ``force``), remove its
        processes, cgroup and state, then run the poststop hooks."""
        with self._sd.lock():
            self._reload()
            st = self._state
            status = self.status
            if status == CREATING:
                raise Conflict("container %s is being created" % self.id)
            if status in (RUNNING, PAUSED) and not force:
                raise FailedPrecondition("cannot delete container %s that is not stopped: %s"
                                         % (self.id, status))
            if status == PAUSED or not st["private_pid_ns"] or not st["pid"]:
                self._signal_all(SIGKILL)   # no init recorded: its create died
            if st["pid"]:
                _kill_and_reap(st["pid"], st["pid_start"])
            self.manager.destroy()
            self._sd.remove()
            if st["pid"]:
                self._run_hooks("poststop", STOPPED)
