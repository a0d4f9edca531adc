"""Per-container locks: one flock'd file per id, so different containers never wait on each other.

A lock file is removed by the holder that deletes the container; a waiter that then gets the
lock on the unlinked file notices (the path no longer names its inode) and locks the new file.
"""
from __future__ import annotations

import fcntl
import os

from pyrunc.errors import Conflict

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class IdLock:
    def __init__(self, lock_dir: str, container_id: str, blocking: bool = True) -> None:
        self.path = os.path.join(lock_dir, container_id)
        self.blocking = blocking
        self.fd = -1

    def __enter__(self):
        flags = fcntl.LOCK_EX | (0 if self.blocking else fcntl.LOCK_NB)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, flags)
            except BlockingIOError:
                os.close(fd)
                raise Conflict("container %s: another operation holds it"
                               % os.path.basename(self.path)) from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                return self
            os.close(fd)

    def remove(self) -> None:
        """Drop the lock file (call while holding it, when the container is gone)."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __exit__(self, *exc):
        os.close(self.fd)
        self.fd = -1
