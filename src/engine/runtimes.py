"""The OCI runtimes an engine runs containers with, as dockerd has them.

Two are stock: ``pyrunc`` (this installation's own) and ``runc`` (found on PATH when used);
``Engine(runtimes=...)`` adds more or says where a stock one is, and pydockerd fills it from
``--add-runtime NAME=PATH`` and daemon.json's ``"runtimes": {"NAME": {"path": PATH,
"runtimeArgs": [...]}}``, where a stock name is refused (``reserved``: dockerd's "runtime name
'runc' is reserved"). A container's
``HostConfig.Runtime`` is one of these names (the default runtime's when not given) and is kept
with the container: its task records the runtime's path, so stop, kill, exec, pause, update and
delete use that runtime whatever the engine of a later process is configured with; a later
start needs the name configured again.

A runtime with ``runtimeArgs`` runs through a script EXEC_ROOT/runtimes/NAME that executes the
runtime with those arguments before its own (dockerd does the same); the script of a runtime no
longer configured stays, for the tasks that were created with it. Every configured runtime
keeps its containers' state under the task manager's EXEC_ROOT/runtime/NAME (its ``--root``).
"""
from __future__ import annotations

import os
import re
import shlex

from pyrunc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

STOCK = {"pyrunc": "pyrunc", "runc": "runc"}
SCRIPTS_DIR = "runtimes"
# The name becomes a file name (the script, the runtime's state root): no separators, no dots
# alone, and what dockerd's users write (io.containerd.runsc.v1, crun, kata-runtime).
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}", re.ASCII)
KNOWN_KEYS = ("path", "runtimeArgs")


class Runtime:
    """One configured runtime: what the user gave (``path``, ``args``) and what the task
    manager runs (``command``: the path, or the script adding the arguments)."""

    __slots__ = ("name", "path", "args", "command")

    def __init__(self, name: str, path: str, args: list[str], command: str) -> None:
        self.name = name
        self.path = path
        self.args = args
        self.command = command

    def to_dict(self) -> dict[str, Any]:
        """The runtime as /info shows it (dockerd's ``{"path": ..., "runtimeArgs": [...]}``)."""
        out: dict[str, Any] = {"path": self.path}
        if self.args:
            out["runtimeArgs"] = list(self.args)
        return out


def parse(name: Any, spec: Any) -> tuple[str, list[str]]:
    """(path, runtimeArgs) of one runtime given as a path or as daemon.json's object;
    InvalidArgument naming the runtime and what is wrong."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InvalidArgument("invalid runtime name %r: must be letters, digits and _.+- "
                              "(at most 128, not starting with a symbol)" % (name,))
    if isinstance(spec, str):
        spec = {"path": spec}
    if not isinstance(spec, dict):
        raise InvalidArgument("runtime %s: must be a path or an object with a path" % name)
    unknown = sorted(str(k) for k in spec if k not in KNOWN_KEYS)
    if unknown:
        raise InvalidArgument("runtime %s: unknown key %s (known: %s)"
                              % (name, ", ".join(unknown), ", ".join(KNOWN_KEYS)))
    path, args = spec.get("path"), spec.get("runtimeArgs") or []
    if not isinstance(path, str) or not path.strip() or "\0" in path:
        raise InvalidArgument("runtime %s: path must be a non-empty string" % name)
    if not isinstance(args, list) or not all(isinstance(a, str) and "\0" not in a
                                             for a in args):
        raise InvalidArgument("runtime %s: runtimeArgs must be a list of strings" % name)
    return path.strip(), list(args)


def reserved(names: Any) -> None:
    """InvalidArgument for the first stock name among ``names`` (a daemon's configured
    runtimes may not redefine them, as dockerd's may not)."""
    for name in names:
        if name in STOCK:
            raise InvalidArgument("runtime name '%s' is reserved" % name)


def configure(runtimes: Mapping[str, Any] | None, default: str,
              exec_root: str) -> dict[str, Runtime]:
    """Every runtime by name: the stock ones, then ``runtimes`` (name -> path, or
    ``{"path": ..., "runtimeArgs": [...]}``), once all of them and the ``default`` name are
    found valid; the scripts of those with arguments are then written under ``exec_root``."""
    parsed = {name: parse(name, spec) for name, spec in (runtimes or {}).items()}
    if default not in STOCK and default not in parsed:
        raise InvalidArgument("specified default runtime '%s' does not exist" % (default,))
    table = {name: Runtime(name, path, [], path) for name, path in STOCK.items()}
    for name, (path, args) in parsed.items():
        command = _write_script(exec_root, name, path, args) if args else path
        table[name] = Runtime(name, path, args, command)
    return table


def _write_script(exec_root: str, name: str, path: str, args: list[str]) -> str:
    """EXEC_ROOT/runtimes/NAME: ``exec PATH ARGS... "$@"`` (rewritten only when it changes)."""
    directory = os.path.join(exec_root, SCRIPTS_DIR)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    script = os.path.join(directory, name)
    text = "#!/bin/sh\nexec %s \"$@\"\n" % " ".join(shlex.quote(w) for w in [path] + args)
    try:
        with open(script) as f:
            if f.read() == text:
                return script
    except FileNotFoundError:
        pass
    tmp = script + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o700)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o700)
    os.rename(tmp, script)
    return script
