"""The content store: blobs addressed by their digest, written through ingests.

Layout under the store's root (containerd's local content store is the model)::

    blobs/<algorithm>/<hex>        committed, verified content (never partial)
    ingest/<hash of ref>/data      bytes written so far for an in-flight write
    ingest/<hash of ref>/ref       the writer's ref, for listing and resuming
    ingest/<hash of ref>/lock      flock'ed by the live writer
    gc.lock                        collection holds it exclusively, adding to a lease shared
    leases/<id>                    what a client holds until it records it elsewhere, flock'ed
                                   by the client for as long as it holds the lease

A writer appends to its ingest file; ``commit`` checks the size and the digest, fsyncs and
renames the file into ``blobs/`` in one step, so a crash never leaves a corrupt blob visible.
``writer(ref)`` reopens an ingest left by a writer that closed it (or died), and ``offset``
says where to resume, until the next garbage collection removes it: liveness is the writer's
lock, never a guess from the file's age (``collect_ingests``, ``live_leases``).
"""
from __future__ import annotations

import collections
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import uuid

from pyrunc.engine.content.private import private_dir
from pyrunc.errors import InvalidArgument, NotFound, SystemFailure, Unavailable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Iterator
    from io import BufferedReader

Info = collections.namedtuple("Info", "digest size")

_ALGORITHMS = {"sha256": 64, "sha512": 128}
_DIGEST = re.compile(r"^([a-z0-9]+):([a-f0-9]+)$")
_CHUNK = 1 << 20
MAX_READ = 16 << 20         # the most read() returns: documents, never layers


def parse_digest(digest: str | None) -> tuple[Any, ...]:
    """Split ``algorithm:hex``; raise InvalidArgument naming the digest when malformed."""
    m = _DIGEST.match(digest) if isinstance(digest, str) else None
    if not m:
        raise InvalidArgument("invalid digest %r: must be algorithm:hex" % (digest,))
    algorithm, hexpart = m.groups()
    if algorithm not in _ALGORITHMS:
        raise InvalidArgument("invalid digest %r: unsupported algorithm %s" % (digest, algorithm))
    if len(hexpart) != _ALGORITHMS[algorithm]:
        raise InvalidArgument("invalid digest %r: %s needs %d hex digits"
                              % (digest, algorithm, _ALGORITHMS[algorithm]))
    return algorithm, hexpart


def digest_bytes(data: bytes, algorithm: str = "sha256") -> str:
    return "%s:%s" % (algorithm, hashlib.new(algorithm, data).hexdigest())


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ContentStore:
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        private_dir(self.root)
        for d in ("blobs", "blobs/sha256", "ingest", "leases"):
            private_dir(os.path.join(self.root, d))

    # reading -------------------------------------------------------------------------------
    def path(self, digest: str | None) -> str:
        algorithm, hexpart = parse_digest(digest)
        return os.path.join(self.root, "blobs", algorithm, hexpart)

    def exists(self, digest: str | None) -> bool:
        return os.path.exists(self.path(digest))

    def info(self, digest: str) -> Any:
        try:
            return Info(digest, os.stat(self.path(digest)).st_size)
        except FileNotFoundError:
            raise NotFound("content %s: not found" % digest) from None

    def open(self, digest: str) -> BufferedReader:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound("content %s: not found" % digest) from None

    def read(self, digest: str, limit: int = MAX_READ) -> bytes:
        """The whole blob, which must be at most ``limit`` bytes: ``read`` is for documents
        (manifests, indexes, configs), so a hostile blob named as one cannot fill memory;
        layers are streamed with ``open``."""
        with self.open(digest) as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise InvalidArgument("content %s: %d bytes, more than the %d bytes a document "
                                      "may have" % (digest, size, limit))
            return f.read(limit + 1)

    def delete(self, digest: str) -> None:
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            raise NotFound("content %s: not found" % digest) from None

    def walk(self) -> Iterator[Any]:
        """Yield Info(digest, size) for every committed blob."""
        blobs = os.path.join(self.root, "blobs")
        for algorithm in sorted(os.listdir(blobs)):
            if algorithm not in _ALGORITHMS:
                continue
            with os.scandir(os.path.join(blobs, algorithm)) as it:
                for entry in it:
                    if len(entry.name) == _ALGORITHMS[algorithm] and entry.is_file():
                        yield Info("%s:%s" % (algorithm, entry.name), entry.stat().st_size)

    # writing -------------------------------------------------------------------------------
    def writer(self, ref: str, expected_digest: str | None = None, expected_size: int | None = None,
               wait: bool = False) -> Writer:
        """Open (or resume) the ingest named ``ref``; see ``Writer``. Another writer of the
        same ref makes this Unavailable, or with ``wait`` is waited for."""
        return Writer(self, ref, expected_digest, expected_size, wait)

    def ingests(self) -> Iterator[Any]:
        """Yield (ref, offset) for every in-flight ingest."""
        base = os.path.join(self.root, "ingest")
        for name in sorted(os.listdir(base)):
            d = os.path.join(base, name)
            try:
                with open(os.path.join(d, "ref")) as f:
                    ref = f.read()
                offset = os.stat(os.path.join(d, "data")).st_size
            except FileNotFoundError:
                continue
            yield ref, offset

    def collect_ingests(self) -> Any:
        """Remove every ingest no live writer holds (its lock is free: the writer closed it,
        or died); returns [(ref, bytes)] of what was removed."""
        base = os.path.join(self.root, "ingest")
        removed = []
        for name in sorted(os.listdir(base)):
            d = os.path.join(base, name)
            # (a writer killed before it made its lock file left none: make it, so that a
            # writer starting now waits for this collection, then starts afresh)
            fd = try_lock(os.path.join(d, "lock"), create=True)
            if fd is None:
                continue
            try:
                try:
                    with open(os.path.join(d, "ref")) as f:
                        ref = f.read()
                except FileNotFoundError:
                    ref = name
                try:
                    size = os.stat(os.path.join(d, "data")).st_size
                except FileNotFoundError:
                    size = 0
                # unlinking the lock first makes a writer that waited on it start afresh
                shutil.rmtree(d, ignore_errors=True)
                removed.append((ref, size))
            finally:
                os.close(fd)
        return removed

    def put(self, data: bytes, expected_digest: str | None = None, media_ref: Any = None) -> str:
        """Store ``data`` (bytes) and return its digest."""
        digest = expected_digest or digest_bytes(data)
        if self.exists(digest):
            return digest
        w = self.writer(media_ref or "put-" + digest, digest, len(data), wait=True)
        try:
            if self.exists(digest):      # written by the writer we waited for
                w.abort()
                return digest
            w.truncate(0)
            w.write(data)
            return w.commit(digest, len(data))
        except BaseException:
            w.abort()
            raise

    def ingest_file(self, fileobj: Any, ref: str | None = None, expected_digest: str | None = None,
                    expected_size: int | None = None) -> Any:
        """Copy a whole stream into the store; returns Info(digest, size)."""
        w = self.writer(ref or "stream-" + uuid.uuid4().hex, expected_digest, expected_size)
        try:
            w.truncate(0)
            while True:
                chunk = fileobj.read(_CHUNK)
                if not chunk:
                    break
                w.write(chunk)
            digest = w.commit(expected_digest, expected_size)
            return Info(digest, w.offset)
        except BaseException:
            w.abort()
            raise

    @contextlib.contextmanager
    def gc_lock(self, exclusive: bool = False) -> Iterator[Any]:
        """The collection lock: a collection (mark and sweep) holds it exclusively; adding to
        a lease holds it shared, so an addition never falls between a mark and its sweep."""
        fd = os.open(os.path.join(self.root, "gc.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def lease(self) -> Lease:
        """A lease: what is added to it survives garbage collection until it is released
        (or its holder dies)."""
        return Lease(self)

    def live_leases(self) -> tuple[Any, ...]:
        """The (content digests, snapshot keys) of every lease whose holder is alive; lease
        files whose holder died are removed."""
        digests, snapshots = set(), set()
        base = os.path.join(self.root, "leases")
        for name in sorted(os.listdir(base)):
            path = os.path.join(base, name)
            fd = try_lock(path)
            if fd is not None:           # nobody holds it: its holder died without releasing
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
                os.close(fd)
                continue
            try:
                with open(path) as f:
                    lines = f.read().splitlines()
            except FileNotFoundError:
                continue                 # released meanwhile
            for line in lines:
                kind, _, value = line.partition(" ")
                if kind == "content":
                    digests.add(value)
                elif kind == "snapshot":
                    snapshots.add(value)
        return digests, snapshots


class Writer:
    """One in-flight write. ``offset`` is how many bytes the ingest holds (the resume point)."""

    def __init__(self, store: Any, ref: str, expected_digest: str | None = None,
                 expected_size: int | None = None, wait: bool = False) -> None:
        if not ref or not isinstance(ref, str):
            raise InvalidArgument("content writer: ref must be a non-empty string")
        self.store = store
        self.ref = ref
        self.expected_digest = expected_digest
        self.expected_size = expected_size
        if expected_digest is not None:
            parse_digest(expected_digest)
        self.algorithm = parse_digest(expected_digest)[0] if expected_digest else "sha256"
        name = hashlib.sha256(ref.encode()).hexdigest()
        self.dir = os.path.join(store.root, "ingest", name)
        self._lock = self._acquire(wait)
        ref_path = os.path.join(self.dir, "ref")
        if not os.path.exists(ref_path):
            with open(ref_path + ".tmp", "w") as f:
                f.write(ref)
            os.rename(ref_path + ".tmp", ref_path)
        self.data_path = os.path.join(self.dir, "data")
        self._fd: Any = os.open(self.data_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._hash = hashlib.new(self.algorithm)
        self.offset = 0
        self._rehash()

    def _acquire(self, wait):
        """Lock the ingest (waiting for another writer of the same ref if ``wait``)."""
        while True:
            try:
                os.makedirs(self.dir, 0o700, exist_ok=True)
            except FileExistsError:
                continue                 # a finishing writer was removing it: make it again
            try:
                fd = os.open(os.path.join(self.dir, "lock"),
                             os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:
                continue                 # the previous writer just finished and removed it
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                raise Unavailable("content ingest %r: locked by another writer"
                                  % self.ref) from None
            if os.fstat(fd).st_nlink == 0:
                os.close(fd)             # we waited on a finished ingest: start a fresh one
                continue
            return fd

    def _rehash(self):
        """Feed the bytes already in the ingest (after a crash) to the running digest."""
        os.lseek(self._fd, 0, os.SEEK_SET)
        self._hash = hashlib.new(self.algorithm)
        self.offset = 0
        while True:
            chunk = os.read(self._fd, _CHUNK)
            if not chunk:
                break
            self._hash.update(chunk)
            self.offset += len(chunk)

    def truncate(self, size: int) -> None:
        """Drop everything after ``size`` bytes (e.g. when a resumed download restarts)."""
        self._check_open()
        os.ftruncate(self._fd, size)
        self._rehash()

    def write(self, data: Any) -> int:
        self._check_open()
        if self.expected_size is not None and self.offset + len(data) > self.expected_size:
            raise InvalidArgument("content %s: more than the expected %d bytes"
                                  % (self.expected_digest or self.ref, self.expected_size))
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as e:
            raise SystemFailure("content ingest %r: write" % self.ref, e.errno) from None
        self._hash.update(data)
        self.offset += len(data)
        return len(data)

    def digest(self) -> str:
        return "%s:%s" % (self.algorithm, self._hash.hexdigest())

    def commit(self, expected_digest: str | None = None, expected_size: int | None = None) -> str:
        """Verify, fsync and rename into place; returns the digest. A mismatch raises
        InvalidArgument and discards the ingest."""
        self._check_open()
        expected_digest = expected_digest or self.expected_digest
        expected_size = self.expected_size if expected_size is None else expected_size
        if expected_digest and parse_digest(expected_digest)[0] != self.algorithm:
            self.algorithm = parse_digest(expected_digest)[0]
            self._rehash()
        actual = self.digest()
        try:
            if expected_size is not None and self.offset != expected_size:
                raise InvalidArgument("content %s: size mismatch: got %d bytes, expected %d"
                                      % (expected_digest or actual, self.offset, expected_size))
            if expected_digest and actual != expected_digest:
                raise InvalidArgument("content %s: digest mismatch: got %s"
                                      % (expected_digest, actual))
        except InvalidArgument:
            self.abort()
            raise
        os.fsync(self._fd)
        target = self.store.path(actual)
        os.makedirs(os.path.dirname(target), 0o700, exist_ok=True)
        if os.path.exists(target):
            self.abort()
            return actual
        os.rename(self.data_path, target)
        _fsync_dir(os.path.dirname(target))
        self._finish()
        return actual

    def abort(self) -> None:
        if self._fd is None:
            return
        self._finish()

    def _finish(self):
        os.close(self._fd)
        self._fd = None
        shutil.rmtree(self.dir, ignore_errors=True)
        os.close(self._lock)

    def close(self) -> None:
        """Stop writing but keep the ingest for a later resume (until a garbage collection
        removes it: nobody holds it any more)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            os.close(self._lock)

    def _check_open(self):
        if self._fd is None:
            raise InvalidArgument("content ingest %r: writer is closed" % self.ref)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()
        else:
            self.close()


def try_lock(path: str, create: bool = False) -> int | None:
    """An fd holding the exclusive flock of ``path`` when nobody else holds it (and the file
    exists, or ``create`` makes it, and is still linked), else None."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0), 0o600)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if os.fstat(fd).st_nlink == 0:
        os.close(fd)
        return None
    return fd


class Lease:
    """``leases/<id>``: content digests (``content <digest>`` lines) and snapshot keys
    (``snapshot <key>``) that garbage collection treats as roots. The holder keeps the file
    flock'ed, so a holder that dies releases it (``ContentStore.live_leases``)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.digests: list[Any] = []
        self.snapshots: list[Any] = []
        while True:
            self.id = uuid.uuid4().hex
            self.path = os.path.join(store.root, "leases", self.id)
            self._fd: Any = os.open(
                self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_APPEND, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            if os.fstat(self._fd).st_nlink:
                break
            os.close(self._fd)           # a collection saw it before we locked it: again

    def add(self, digest: str) -> None:
        """Hold the content ``digest``."""
        parse_digest(digest)
        self.digests.append(digest)
        self._write("content", digest)

    def add_snapshot(self, key: str) -> None:
        """Hold the snapshot ``key`` (and, through it, its parents)."""
        if not key or not isinstance(key, str) or "\n" in key:
            raise InvalidArgument("lease: snapshot key must be a one-line non-empty string")
        self.snapshots.append(key)
        self._write("snapshot", key)

    def _write(self, kind, value):
        if self._fd is None:
            raise InvalidArgument("lease %s: released" % self.id)
        with self.store.gc_lock():
            os.write(self._fd, ("%s %s\n" % (kind, value)).encode())

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


__all__ = ["ContentStore", "Writer", "Lease", "Info", "parse_digest", "digest_bytes", "try_lock"]
