"""Reading the json-file logs a shim writes (Docker's json-file format).

Each line is ``{"log": TEXT, "stream": "stdout"|"stderr", "time": RFC3339Nano}``; ``log`` keeps
the line's newline, and a line longer than 16 KiB is split into pieces without one. Rotation
renames ``PATH`` to ``PATH.1``, ``PATH.1`` to ``PATH.2`` ... up to ``max-file - 1``.
"""
from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Iterator


@dataclass
class LogEntry:
    stream: str
    text: str
    time: str


def log_files(path: str) -> list[str]:
    """The log's files, oldest first (rotated ones, then the current one)."""
    rotated = []
    for name in glob.glob(glob.escape(path) + ".*"):
        suffix = name[len(path) + 1:]
        if suffix.isdigit():
            rotated.append((int(suffix), name))
    files = [name for _, name in sorted(rotated, reverse=True)]
    if os.path.exists(path):
        files.append(path)
    return files


def read_log(path: str) -> Iterator[Any]:
    """Every entry still on disk, oldest first."""
    for name in log_files(path):
        try:
            f = open(name, encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue
        with f:
            for line in f:
                if line.endswith("\n"):
                    record = json.loads(line)
                    yield LogEntry(record["stream"], record["log"], record["time"])
