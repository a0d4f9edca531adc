"""A JSON document kept beside a lock file: read under a shared or exclusive flock, written back
atomically (temp file, fsync, rename) so a crash never leaves half a document.

    with locked_document(root, "images.json", lambda: {"images": {}}) as doc:
        doc["images"][...] = ...          # written back when the block ends (write=True)
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Iterator
    from collections.abc import Callable


@contextlib.contextmanager
def locked_document(root: str, name: str, empty: Callable, write: bool = True) -> Iterator[Any]:
    """Yield the document ``root/name`` (``empty()`` when there is none yet) under the flock of
    ``root/lock``; with ``write``, save it back when the block ends without an exception."""
    path = os.path.join(root, name)
    fd = os.open(os.path.join(root, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
        try:
            with open(path) as f:
                document = json.load(f)
        except FileNotFoundError:
            document = empty()
        yield document
        if write:
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(document, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, path)
    finally:
        os.close(fd)
