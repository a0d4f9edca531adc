"""docker exec: processes started in a running container, each with its own ID and record.

    ROOT/containers/ID/execs/EXEC.json   the exec's record (ExecInspect's fields + its Config)
    ROOT/containers/execs/EXEC           the container ID (finds the record by exec ID)

The exit code comes from the task's ``exec-EXEC.exit`` while the task exists; it is copied
into the record when seen, and before the task of an exited container is deleted.
"""
from __future__ import annotations

import json
import os
import secrets

from pyrunc.containerd.tasks import ExecProcess
from pyrunc.engine.container import state as cstate
from pyrunc.engine.container.store import write_json
from pyrunc.engine.oci.options import all_capabilities
from pyrunc.engine.oci.user import resolve_user
from pyrunc.errors import Conflict, InvalidArgument, NotFound, PyruncError
from pyrunc.libcontainer.capabilities import SETS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from pyrunc.engine.container.service import ContainerService
    from pyrunc.engine.container.store import Container

_HEX = frozenset("0123456789abcdef")


def _cmd_text(config: dict[str, Any]) -> str:
    return " ".join(config["Cmd"])


def _merge_env(base: list[str], extra: list[str]) -> list[str]:
    out = {e.split("=", 1)[0]: e for e in base}
    for e in extra:
        out[e.split("=", 1)[0]] = e
    return list(out.values())


class ExecService:
    def __init__(self, containers: ContainerService) -> None:
        self.containers = containers
        self.index = os.path.join(containers.store.root, "execs")
        os.makedirs(self.index, exist_ok=True)

    # records -------------------------------------------------------------------------------
    @staticmethod
    def _path(c: Container, exec_id: str) -> str:
        return os.path.join(c.dir, "execs", exec_id + ".json")

    def _load(self, exec_id: str) -> tuple[Container, dict[str, Any]]:
        if not isinstance(exec_id, str) or len(exec_id) != 64 or not set(exec_id) <= _HEX:
            raise NotFound("No such exec instance: %s" % (exec_id,))
        try:
            with open(os.path.join(self.index, exec_id)) as f:
                cid = f.read().strip()
            c = self.containers.store.get(cid)
            with open(self._path(c, exec_id)) as f:
                return c, json.load(f)
        except (FileNotFoundError, NotFound):
            raise NotFound("No such exec instance: %s" % exec_id) from None

    def _save(self, c: Container, record: dict[str, Any]) -> None:
        write_json(self._path(c, record["ID"]), record)

    # the API -------------------------------------------------------------------------------
    def create(self, c: Container, config: dict[str, Any]) -> str:
        """Record an exec of ``config`` (Cmd, Env, User, WorkingDir, Tty, AttachStdin/Stdout/
        Stderr, Privileged, DetachKeys) in the running container ``c``; returns its ID."""
        if not isinstance(config, dict):
            raise InvalidArgument("exec config: must be a JSON object")
        cmd = config.get("Cmd")
        if not isinstance(cmd, list) or not cmd or not all(isinstance(a, str) for a in cmd):
            raise InvalidArgument("No exec command specified")
        env = config.get("Env") or []
        if not isinstance(env, list) or not all(isinstance(e, str) and "=" in e for e in env):
            raise InvalidArgument("exec config: Env must be a list of NAME=value")
        for key in ("User", "WorkingDir", "DetachKeys"):
            if not isinstance(config.get(key) or "", str):
                raise InvalidArgument("exec config: %s must be a string" % key)
        self._check_running(c)
        exec_id = secrets.token_hex(32)
        record: dict[str, Any] = {
            "ID": exec_id, "ContainerID": c.id, "Running": False, "ExitCode": None, "Pid": 0,
            "Started": False, "CanRemove": False, "DetachKeys": config.get("DetachKeys") or "",
            "OpenStdin": bool(config.get("AttachStdin")),
            "OpenStdout": bool(config.get("AttachStdout", True)),
            "OpenStderr": bool(config.get("AttachStderr", True)),
            "ProcessConfig": {"tty": bool(config.get("Tty")), "entrypoint": cmd[0],
                              "arguments": cmd[1:], "privileged": bool(config.get("Privileged")),
                              "user": config.get("User") or ""},
            "Config": {"Cmd": list(cmd), "Env": list(env), "User": config.get("User") or "",
                       "WorkingDir": config.get("WorkingDir") or "",
                       "Tty": bool(config.get("Tty")),
                       "Privileged": bool(config.get("Privileged"))},
        }
        os.makedirs(os.path.join(c.dir, "execs"), exist_ok=True)
        self._save(c, record)
        with open(os.path.join(self.index, exec_id), "w") as f:
            f.write(c.id)
        self.containers._emit(c, "exec_create: " + _cmd_text(record["Config"]),
                              {"execID": exec_id})
        return exec_id

    @staticmethod
    def _check_running(c: Container) -> None:
        if not cstate.is_active(c.state):
            raise Conflict("Container %s is not running" % c.id)
        if c.state["Paused"]:
            raise Conflict("Container %s is paused, unpause the container before exec" % c.id)

    def _process(self, c: Container, config: dict[str, Any], tty: bool) -> dict[str, Any]:
        """The OCI process: the container's, with the exec's args, env, user and cwd."""
        with open(os.path.join(c.dir, "config.json")) as f:
            process = dict(json.load(f)["process"])
        process.pop("consoleSize", None)
        process["args"] = list(config["Cmd"])
        process["terminal"] = tty
        env = process.get("env") or []
        if config["User"]:      # the root as the container sees it, whoever mounted it
            root = "/proc/%d/root" % c.state["Pid"]
            user = resolve_user(root, config["User"], c.host_config.get("GroupAdd"))
            process["user"] = user.to_oci()
            env = _merge_env(env, ["HOME=" + user.home])    # the exec user's, as runc's
        if tty:
            env = _merge_env(env, ["TERM=xterm"])           # docker's for a terminal
        process["env"] = _merge_env(env, config["Env"])
        if config["WorkingDir"]:
            process["cwd"] = config["WorkingDir"]
        if config["Privileged"]:
            process["capabilities"] = {s: all_capabilities() for s in SETS if s != "ambient"}
            process.pop("apparmorProfile", None)
        return process

    def start(self, exec_id: str, detach: bool = False, tty: bool = False) -> ExecProcess:
        """Run the exec; attached unless ``detach`` (the returned process's ``attachment``
        carries its output, connected before it ran)."""
        c, record = self._load(exec_id)
        c = self.containers.refresh(c)
        with c.lock():
            if record["Started"]:
                raise Conflict("Error: Exec command %s is already running" % exec_id)
            self._check_running(c)
            config = record["Config"]
            tty = tty or config["Tty"]
            try:
                process = self._process(c, config, tty)
                proc = c.task().exec(exec_id, process, tty=tty, stdin=record["OpenStdin"],
                                     attach=not detach)
            except PyruncError as e:    # dockerd's codes: 127 not found, 126 otherwise
                from pyrunc.engine.container.service import start_error_code
                code = start_error_code(str(e), config["Cmd"][0])
                record.update(Started=True, ExitCode=126 if code is None else code)
                self._save(c, record)
                raise
            record.update(Started=True, Running=True, Pid=proc.pid)
            self._save(c, record)
        self.containers._emit(c, "exec_start: " + _cmd_text(config), {"execID": exec_id})
        return proc

    def _exit_code(self, c: Container, record: dict[str, Any]) -> int | None:
        path = os.path.join(self.containers.tasks.tasks_dir, c.id,
                            "exec-%s.exit" % record["ID"])
        try:
            with open(path) as f:
                return int(json.load(f)["exit_status"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def _settle(self, c: Container, record: dict[str, Any], task_gone: bool) -> bool:
        """Copy a seen exit into ``record``; returns whether it changed."""
        if not record["Running"]:
            return False
        code = self._exit_code(c, record)
        if code is None and not task_gone:
            return False
        # no record: the container's end killed it (SIGKILL with its pid namespace)
        record.update(Running=False, Pid=0, ExitCode=code if code is not None else 137)
        self._save(c, record)
        self.containers._emit(c, "exec_die", {"execID": record["ID"],
                                              "exitCode": str(record["ExitCode"])})
        return True

    def inspect(self, exec_id: str) -> dict[str, Any]:
        c, record = self._load(exec_id)
        c = self.containers.refresh(c)
        with c.lock():
            c, record = self._load(exec_id)
            self._settle(c, record, task_gone=not cstate.is_active(c.state))
        keys = ("ID", "Running", "ExitCode", "ProcessConfig", "OpenStdin", "OpenStderr",
                "OpenStdout", "CanRemove", "ContainerID", "DetachKeys", "Pid")
        return {k: record[k] for k in keys}

    def resize(self, exec_id: str, height: int, width: int) -> None:
        c, record = self._load(exec_id)
        if not record["Running"]:
            raise Conflict("exec %s is not running" % exec_id)
        ExecProcess(c.task(), exec_id, record["Pid"]).resize(width, height)

    def wait(self, exec_id: str, timeout: float | None = None) -> int | None:
        """Block until the exec has exited; its exit code."""
        c, record = self._load(exec_id)
        if record["Running"]:
            try:
                ExecProcess(c.task(), exec_id, record["Pid"]).wait(timeout)
            except NotFound:
                pass
        return self.inspect(exec_id)["ExitCode"]

    def discard(self, exec_id: str) -> None:
        """Drop the record and files of an exec that has exited (the supervisor's health
        probes: dockerd keeps none of them either)."""
        c, record = self._load(exec_id)
        with c.lock():
            self._settle(c, record, task_gone=not cstate.is_active(c.state))
            if record["Running"]:
                raise Conflict("exec %s is running" % exec_id)
            task_dir = os.path.join(self.containers.tasks.tasks_dir, c.id)
            for path in [self._path(c, exec_id), os.path.join(self.index, exec_id)] + [
                    os.path.join(task_dir, "exec-%s.%s" % (exec_id, ext))
                    for ext in ("json", "log", "exit", "pid")]:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass

    # the container's side ------------------------------------------------------------------
    def _records(self, c: Container) -> list[dict[str, Any]]:
        d = os.path.join(c.dir, "execs")
        out = []
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else ():
            try:
                with open(os.path.join(d, name)) as f:
                    out.append(json.load(f))
            except (FileNotFoundError, ValueError):
                continue
        return out

    def running_ids(self, c: Container) -> list[str]:
        return [r["ID"] for r in self._records(c) if r["Running"]]

    def collect(self, c: Container) -> None:
        """Before ``c``'s exited task is deleted: keep each running exec's exit code."""
        for record in self._records(c):
            self._settle(c, record, task_gone=True)

    def forget(self, c: Container) -> None:
        """``c`` is being removed: drop its execs from the index."""
        for record in self._records(c):
            try:
                os.unlink(os.path.join(self.index, record["ID"]))
            except FileNotFoundError:
                pass
