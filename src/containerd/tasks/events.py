"""The task event log: json lines appended by shims and managers, read by anyone.

Every event is one ``write`` with O_APPEND, so concurrent writers (one shim per container, any
number of managers) never interleave. An event is ``{"time", "id", "type", ...}`` with type one of
create, start, pause, resume, exec-start, exec-exit, oom, exit, delete. Readers resume from a
byte offset, so a restarted process continues where it stopped.
"""
from __future__ import annotations

import json
import os
import time

from pyrunc.libcontainer import timestamps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Iterator


class EventLog:
    def __init__(self, path: str) -> None:
        self.path = path

    def append(self, container_id: str, kind: Any, **fields: Any) -> None:
        record = {"time": timestamps.now(), "id": container_id, "type": kind}
        record.update(fields)
        data = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def read(self, since: int = 0, follow: bool = False, timeout: float | None = None,
             poll_interval: float = 0.05) -> Iterator[Any]:
        """Yield ``(offset_after, event)`` from byte offset ``since``.

        With ``follow`` keep waiting for new events until ``timeout`` seconds pass without one.
        """
        offset = since
        pending = b""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                with open(self.path, "rb") as f:
                    f.seek(offset)
                    data = f.read()
            except FileNotFoundError:
                data = b""
            offset += len(data)
            pending += data
            lines = pending.split(b"\n")
            pending = lines.pop()
            position = offset - len(pending)
            consumed = position - sum(len(line) + 1 for line in lines)
            for line in lines:
                consumed += len(line) + 1
                if line:
                    yield consumed, json.loads(line)
            if lines and timeout is not None:
                deadline = time.monotonic() + timeout
            if not follow or (deadline is not None and time.monotonic() >= deadline):
                return
            time.sleep(poll_interval)
