"""Where the ``pyrunc`` command reports: stderr, and the ``--log`` file in text or json.

containerd's runc shim passes ``--log FILE --log-format json`` and reads the last error from that
file, so the json lines follow runc's shape: ``{"level": "error", "msg": ..., "time": ...}``.
Each line is written with its own os.write: nothing is buffered, nothing waits for the exit.
"""
from __future__ import annotations

import os
import sys

from pyrunc.libcontainer import timestamps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Log:
    def __init__(self, path: str | None = None, fmt: str = "text", debug: bool = False) -> None:
        self.path = path
        self.fmt = fmt
        self.debug_enabled = debug

    def _write(self, level, msg):
        if not self.path:
            return
        now = timestamps.now(nano=False)   # runc's log lines: whole seconds (RFC 3339)
        if self.fmt == "json":
            from pyrunc.libcontainer import jsoncodec
            line = jsoncodec.dumps({"level": level, "msg": msg, "time": now})
        else:
            line = 'time="%s" level=%s msg=%s' % (now, level, _quote(msg))
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            return
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def error(self, msg: str) -> None:
        self._write("error", msg)
        sys.stderr.write("pyrunc: %s\n" % msg)
        sys.stderr.flush()

    def warning(self, msg: Any) -> None:
        """To the --log file only when there is one (runc's way): the runtime's stderr is often
        the container's own (a shim's create), where a warning would show in ``docker logs``."""
        if self.path:
            self._write("warning", msg)
        else:
            sys.stderr.write("pyrunc: warning: %s\n" % msg)

    def debug(self, msg: Any) -> None:
        if self.debug_enabled:
            self._write("debug", msg)
            if not self.path:
                sys.stderr.write("pyrunc: debug: %s\n" % msg)


def _quote(msg):
    return '"%s"' % msg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
