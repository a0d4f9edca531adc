"""docker's progress messages for pull and push.

Events are the Engine API's JSON messages: ``{"status": ..., "id": ..., "progressDetail":
{"current": n, "total": t}, "progress": "[===>   ]  1.2MB/3.4MB"}``. :func:`render_plain` turns
a stream of them into what ``docker pull`` prints when its output is not a terminal.
"""
from __future__ import annotations

import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Callable

PULLING_FS_LAYER = "Pulling fs layer"
WAITING = "Waiting"
DOWNLOADING = "Downloading"
VERIFYING = "Verifying Checksum"
DOWNLOAD_COMPLETE = "Download complete"
EXTRACTING = "Extracting"
PULL_COMPLETE = "Pull complete"
ALREADY_EXISTS = "Already exists"
PREPARING = "Preparing"
PUSHING = "Pushing"
PUSHED = "Pushed"
LAYER_EXISTS = "Layer already exists"

BAR_WIDTH = 50
_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")


def human_size(size: Any) -> str:
    """docker's ``units.HumanSize``: decimal units, four significant digits (``1.089MB``)."""
    size = float(size)
    unit = 0
    while size >= 1000.0 and unit < len(_UNITS) - 1:
        size /= 1000.0
        unit += 1
    return "%.4g%s" % (size, _UNITS[unit])


def progress_bar(current: int, total: int) -> str:
    """The ``progress`` string: ``[=====>     ]  1.2MB/3.4MB`` (a 50-column bar)."""
    if total and total > 0:
        filled = min(int(current * 100 / total) // 2, BAR_WIDTH)
        bar = "[%s>%s] " % ("=" * filled, " " * (BAR_WIDTH - filled))
        return bar + "%8s/%s" % (human_size(current), human_size(total))
    return "%8s" % human_size(current)


def short_id(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


class Progress:
    """Sends events to a callback from several threads; throttles byte progress per layer."""

    def __init__(self, callback: Callable | None = None, interval: float = 0.1) -> None:
        self.callback = callback
        self.interval = interval
        self._lock = threading.Lock()
        self._last: dict[Any, Any] = {}

    def emit(self, status: Any, id: Any = None, **extra: Any) -> Any:
        if self.callback is None:
            return
        event = {"status": status}
        if id is not None:
            event["id"] = id
            event.setdefault("progressDetail", {})
        event.update(extra)
        with self._lock:
            self.callback(event)

    def layer(self, id: str, status: str) -> None:
        self.emit(status, id, progressDetail={})

    def bytes(self, id: str, status: str, current: int, total: int, force: bool = False) -> None:
        """A Downloading/Extracting/Pushing update, at most every ``interval`` per layer."""
        if self.callback is None:
            return
        now = time.monotonic()
        key = (id, status)
        if not force and current < total and now - self._last.get(key, 0.0) < self.interval:
            return
        self._last[key] = now
        self.emit(status, id, progressDetail={"current": current, "total": total},
                  progress=progress_bar(current, total))


def render_plain(events: Any) -> list[str]:
    """docker's non-terminal output: one line per event, byte progress left out."""
    lines = []
    for event in events:
        if "error" in event:
            lines.append(event["error"])
            continue
        if event.get("progressDetail", {}).get("current") is not None:
            continue
        if event.get("id"):
            lines.append("%s: %s" % (event["id"], event["status"]))
        else:
            lines.append(event["status"])
    return lines
