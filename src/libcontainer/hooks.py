"""Running lifecycle hooks in the runtime's namespaces: the state JSON on stdin, a timeout.

prestart and createRuntime hooks that fail stop the creation; poststart and poststop failures
are logged as warnings and the lifecycle goes on, as the runtime spec says. createContainer and
startContainer hooks run inside the container, from the native core.
"""
from __future__ import annotations

import os

from pyrunc.errors import PyruncError, warn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from pyrunc.libcontainer.plan import Hook


class HookFailed(PyruncError):
    """A hook exited non-zero, was killed, timed out or could not be run."""


def to_dict(hook: Hook) -> dict[str, Any]:
    """A ``plan.Hook`` as the dict kept in the state directory (what ``run`` takes)."""
    return {"path": hook.path, "args": hook.args, "env": hook.env, "timeout": hook.timeout}


def run(kind: str, hook: Any, state_json: bytes) -> None:
    """Run one hook (a ``to_dict`` dict); raises HookFailed naming the hook kind and path."""
    path, args, timeout = hook["path"], hook["args"], hook["timeout"]
    name = "%s hook %s" % (kind, path)
    import signal
    import subprocess   # only when there is a hook: 2 ms to import
    env = {}
    for entry in hook["env"]:
        key, sep, value = entry.partition("=")
        if sep:
            env[key] = value
    try:
        proc = subprocess.Popen(args or [path], executable=path, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, close_fds=True, start_new_session=True)
    except OSError as e:
        raise HookFailed("%s: %s" % (name, os.strerror(e.errno).lower())) from None  # type: ignore[arg-type]
    try:
        out, err = proc.communicate(state_json, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise HookFailed("%s: timed out after %ds" % (name, timeout)) from None
    if proc.returncode != 0:
        how = ("killed by signal %d" % -proc.returncode if proc.returncode < 0
               else "exit status %d" % proc.returncode)
        detail = (err or out).decode(errors="replace").strip().replace("\n", " ")
        raise HookFailed("%s: %s%s" % (name, how, ": " + detail if detail else ""))


def run_all(kind: str, hooks: Any, state_json: bytes) -> None:
    """Run ``hooks`` in order; the first failure stops them and is raised."""
    for hook in hooks:
        run(kind, hook, state_json)


def run_all_warn(kind: str, hooks: Any, state_json: bytes) -> None:
    """Run every hook; a failure is logged as a warning and the next hook runs."""
    for hook in hooks:
        try:
            run(kind, hook, state_json)
        except HookFailed as e:
            warn(str(e))
