"""The build cache: which image a build step made from a parent image.

A step's key is the SHA-256 of its parent image ID, the configuration the step produces
(instruction, its expanded arguments and the build args that reach it: docker compares the
step's container config) and, for COPY/ADD, a hash of the sources' content and metadata. The
index (ROOT/cache.json, a locked document) maps keys to image IDs; an entry whose image is
gone is a miss. It lives under the engine root, so it survives the process.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os

LOCK_STRIPES = 64

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Iterator


def step_key(parent: str, config: dict[str, Any], created_by: str, content: str = "") -> str:
    doc = json.dumps([parent, config, created_by, content], sort_keys=True,
                     separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()


class BuildCache:
    """The key -> image ID index under ``root``."""

    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, mode=0o700, exist_ok=True)
        self.path = os.path.join(root, "cache.json")

    @contextlib.contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        fd = os.open(os.path.join(self.root, "cache.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def _read(self) -> dict[str, str]:
        try:
            with open(self.path) as f:
                doc = json.load(f)
        except (FileNotFoundError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def _write(self, doc: dict[str, str]) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, separators=(",", ":"))
        os.replace(tmp, self.path)

    @contextlib.contextmanager
    def claim(self, key: str) -> Iterator[None]:
        """Hold ``key`` (one of LOCK_STRIPES locks, by the key's hash) while its step's image
        is looked up again and made: another build making the same step waits, then finds it."""
        path = os.path.join(self.root, "step-%02d.lock" % (int(key[:8], 16) % LOCK_STRIPES))
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def get(self, key: str) -> str | None:
        with self._locked(False):
            return self._read().get(key)

    def put(self, key: str, image_id: str) -> None:
        with self._locked(True):
            doc = self._read()
            doc[key] = image_id
            self._write(doc)

    def entries(self) -> dict[str, str]:
        with self._locked(False):
            return self._read()

    def drop(self, keys: set[str]) -> None:
        with self._locked(True):
            doc = self._read()
            for k in keys:
                doc.pop(k, None)
            self._write(doc)
