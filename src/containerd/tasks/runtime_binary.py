"""An OCI runtime binary with runc's command line (pyrunc, runc, crun): containerd's BinaryName.

The shim runs the runtime for create/start/kill/pause/resume/exec/delete (so that processes
reparent to it); the manager runs it directly only for requests that start no process: ps,
update, state, and the forced delete of a task whose shim is gone (collected or dead). When
the runtime is this installation's own pyrunc, that delete and the start (which releases an
init the shim already holds) are the library calls its command would make, made in process
without starting an interpreter for them.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

from pyrunc import errors
from pyrunc.containerd.shim.client import runtime_message

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from subprocess import CompletedProcess


def resolve(name: Any) -> Any:
    """Absolute path of a runtime given by name or path (the venv's own bin dir first)."""
    if os.sep in name:
        path = os.path.abspath(name)
    else:
        local = os.path.join(os.path.dirname(sys.executable), name)
        path = local if os.access(local, os.X_OK) else shutil.which(name)
    if not path or not os.access(path, os.X_OK):
        raise errors.Unavailable("runtime %s: not found" % name)
    return path


class RuntimeBinary:
    def __init__(self, path: str, root: str | None = None) -> None:
        self.path = path
        self.root = root

    @property
    def name(self) -> Any:
        return os.path.basename(self.path)

    def run(self, *args: Any, input: Any = None, check: bool = True) -> CompletedProcess:
        argv = [self.path] + (["--root", self.root] if self.root else []) + list(args)
        proc = subprocess.run(argv, input=input, capture_output=True)
        if check and proc.returncode:
            text = runtime_message(proc.stderr.decode(errors="replace"))
            if "does not exist" in text or "not found" in text.lower():
                raise errors.NotFound("%s %s: %s" % (self.name, args[0], text))
            raise errors.PyruncError("%s %s: %s" % (self.name, args[0], text))
        return proc

    def state(self, container_id: str) -> Any:
        return json.loads(self.run("state", container_id).stdout)

    def ps(self, container_id: str) -> list[int]:
        return json.loads(self.run("ps", "--format", "json", container_id).stdout or b"[]")

    def update(self, container_id: str, resources: dict[str, dict[str, int]]) -> None:
        # a file rather than "-": crun opens /dev/stdin, absent on some minimal systems
        with tempfile.NamedTemporaryFile("w", prefix="resources-", suffix=".json") as f:
            json.dump(resources, f)
            f.flush()
            self.run("update", "--resources", f.name, container_id)

    def is_own_pyrunc(self) -> bool:
        """Whether this is the pyrunc command of this very installation (its library is ours)."""
        own = os.path.join(os.path.dirname(sys.executable), "pyrunc")
        return os.path.realpath(self.path) == os.path.realpath(own)

    def _factory(self) -> Any:
        """The library's view of this pyrunc's containers (its --root, or pyrunc's default)."""
        from pyrunc.libcontainer.container import Factory
        return Factory(root=self.root) if self.root else Factory()

    def start_in_process(self, container_id: str) -> None:
        """What ``pyrunc start`` does (release the created container's init, run its poststart
        hooks), as a library call; only for this installation's own pyrunc."""
        try:
            self._factory().load(container_id).start()
        except errors.PyruncError as e:
            raise errors.PyruncError("runtime start failed: %s: %s" % (self.name, e)) from None

    def force_delete(self, container_id: str) -> None:
        """Kill and delete whatever is left of the container; absent is fine."""
        if self.is_own_pyrunc():
            factory = self._factory()
            try:
                container = factory.load(container_id)
            except errors.NotFound:         # as "pyrunc delete --force": absent is no error
                factory.remove_unwritten(container_id)
                return
            container.destroy(force=True)
            return
        proc = self.run("delete", "--force", container_id, check=False)
        if proc.returncode:
            text = runtime_message(proc.stderr.decode(errors="replace"))
            if "does not exist" not in text and "not found" not in text.lower():
                raise errors.PyruncError("%s delete: %s" % (self.name, text))
