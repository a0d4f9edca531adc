"""Compiled seccomp programs kept under the runtime's state root and reused.

Compiling docker's default profile with libseccomp takes about 20 ms, most of a ``create``'s
own work, and every container of an engine brings the same profile. As crun does, the program
compiled for a ``linux.seccomp`` section is stored, and the next create with the same section
loads it instead of compiling.

* Key: a SHA-256 over everything the program depends on: the section as canonical JSON (sorted
  keys, no spaces, ASCII), the JSON path it is reported under, libseccomp's version, this
  host's native architecture, the compiler's own source (``filter.py``, ``enosys.py``) and the
  identity (size, mtime) of the ``pyrunc._seccomp`` binding. Anything else (the kernel, the
  caller) does not enter the program. A program that notifies (``SCMP_ACT_NOTIFY``) is never
  stored: it is compiled every time, as before.
* Where: ``ROOT/@seccomp-cache`` (``@`` is in no container id, so the name can never be a
  container's state directory), made 0700 and owned by the runtime's user; one file per key,
  named by the key's hex digits, written 0600 to a temporary name and renamed into place, so a
  reader sees a whole entry or none.
* An entry is a 96-byte header (magic, key, load flags, lengths, a SHA-256 over header and
  body), the warnings the compile printed (the cache replays them), then the BPF program. It is
  read from the directory's descriptor without following symlinks, and used only when
  everything holds: a regular file of our user, mode without group or other bits, one link,
  at most ``MAX_FILE`` bytes; the magic, the key its name says, a program of whole 8-byte
  instructions, at most ``BPF_MAXINSNS`` of them, known flags, and the checksum. Anything else
  is a miss: the section is compiled, and the fresh entry replaces what was there. A cache
  directory that is a symlink or not a directory is replaced, one of another user is not used.
* Bound: at most ``MAX_ENTRIES`` files; a store beyond that removes the least recently used
  (a hit refreshes an entry's mtime).

Every failure of the cache itself (no space, a read-only root) only means compiling.
"""
from __future__ import annotations

import errno
import os
from _json import encode_basestring_ascii, make_encoder
from _struct import Struct

from pyrunc.libcontainer.seccomp.filter import BPF_MAXINSNS

try:
    from _sha2 import sha256  # type: ignore  # Python 3.12 and later
except ImportError:
    from _sha256 import sha256  # type: ignore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DIR_NAME = "@seccomp-cache"
MAX_ENTRIES = 64
INSN_SIZE = 8                     # struct sock_filter
MAX_WARNINGS = 1 << 16
MAGIC = b"pyrunc-seccomp\x00\x01"
HEADER = Struct("<16s32sIIII")     # magic, key, flags, warnings' and program's bytes, 0
SUM = 32                           # then a SHA-256 over the header and the body
START = HEADER.size + SUM          # where the body (warnings, program) starts
MAX_FILE = START + MAX_WARNINGS + BPF_MAXINSNS * INSN_SIZE
KEY_PREFIX = b"pyrunc seccomp cache key\x00"
SOURCES = ("filter.py", "enosys.py")


class Entry:
    """A program read from the cache: its BPF bytes, load flags and the compile's warnings."""

    __slots__ = ("bpf", "flags", "warnings")

    def __init__(self, bpf: bytes, flags: int, warnings: list[str]) -> None:
        self.bpf = bpf
        self.flags = flags
        self.warnings = warnings


def _unserializable(value):
    raise TypeError("not JSON: %s" % type(value).__name__)


def canonical(section: Any) -> str:
    """``section`` as canonical JSON text (what the key covers): sorted keys, no spaces,
    ASCII only. TypeError or ValueError for what JSON cannot hold (NaN included)."""
    encode = make_encoder({}, _unserializable, encode_basestring_ascii, None, ":", ",",
                          True, False, False)
    return "".join(encode(section, 0))


def key(section: Any, path: str, lib: Any) -> bytes | None:
    """The cache key of ``section`` (reported as ``path``) for libseccomp ``lib``; None when
    the section cannot be keyed (not JSON) or the compiler's sources cannot be read: such a
    section is compiled, not cached."""
    try:
        text = canonical(section).encode("ascii")
        code = _code_digest()
    except (TypeError, ValueError, RecursionError, OSError):
        return None
    v = lib.seccomp_version()
    h = sha256(KEY_PREFIX)
    h.update(code)
    h.update(b"%d.%d.%d\x00%d\x00" % (v.major, v.minor, v.micro, lib.seccomp_arch_native()))
    h.update(path.encode("utf-8", "surrogatepass") + b"\x00")
    h.update(text)
    return h.digest()


_code: list[bytes] = []


def _code_digest():
    """The compiler's sources and binding, digested once per process."""
    if not _code:
        here = os.path.dirname(os.path.abspath(__file__))
        h = sha256()
        for name in SOURCES:
            with open(os.path.join(here, name), "rb") as f:
                h.update(f.read())
        from pyrunc import _seccomp  # type: ignore[attr-defined]
        st = os.stat(_seccomp.__file__)
        h.update(b"%d:%d" % (st.st_size, st.st_mtime_ns))
        _code.append(h.digest())
    return _code[0]


def load(root: str, digest: bytes, flags_mask: int) -> Entry | None:
    """The valid entry for ``digest`` under ``root`` whose load flags are within
    ``flags_mask``, or None (a miss)."""
    dfd = _open_dir(root, create=False)
    if dfd is None:
        return None
    try:
        try:
            fd = os.open(digest.hex(), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                         | os.O_NOCTTY | os.O_CLOEXEC, dir_fd=dfd)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            # no other link (none: a store replaced it since it was opened)
            if not (_ours(st, 0o100000) and st.st_nlink <= 1
                    and START < st.st_size <= MAX_FILE):
                return None
            entry = parse(_read(fd, MAX_FILE), digest, flags_mask)
        except OSError:
            return None
        else:
            if entry is not None:
                try:
                    os.utime(fd)         # recently used: the last to be evicted
                except OSError:          # (a read-only root: still a hit)
                    pass
            return entry
        finally:
            os.close(fd)
    finally:
        os.close(dfd)


def _read(fd, limit):
    """At most ``limit`` + 1 bytes of ``fd`` (one more than an entry may have)."""
    chunks = []
    left = limit + 1
    while left > 0:
        chunk = os.read(fd, left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def parse(data: bytes, digest: bytes, flags_mask: int) -> Entry | None:
    """The entry in ``data`` if it is a whole, valid one for ``digest`` with load flags
    within ``flags_mask``; else None."""
    if not START < len(data) <= MAX_FILE:
        return None
    magic, key_, flags, n_warn, n_bpf, zero = HEADER.unpack_from(data)
    if (magic != MAGIC or key_ != digest or zero or flags & ~flags_mask
            or n_warn > MAX_WARNINGS or n_bpf % INSN_SIZE
            or not 0 < n_bpf // INSN_SIZE <= BPF_MAXINSNS
            or len(data) != START + n_warn + n_bpf):
        return None
    h = sha256(data[:HEADER.size])
    h.update(data[START:])
    if h.digest() != data[HEADER.size:START]:
        return None
    try:
        text = data[START:START + n_warn].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return Entry(data[START + n_warn:], flags, text.split("\n") if text else [])


def encode(digest: bytes, bpf: bytes, flags: int, warnings: list[str]) -> bytes | None:
    """The file of an entry; None when it cannot be one (too big, a warning that is empty or
    has a newline: the warnings are stored one a line)."""
    if any(not w or "\n" in w for w in warnings):
        return None
    try:
        text = "\n".join(warnings).encode()
    except UnicodeEncodeError:
        return None
    if (len(text) > MAX_WARNINGS or not bpf or len(bpf) % INSN_SIZE
            or len(bpf) // INSN_SIZE > BPF_MAXINSNS):
        return None
    head = HEADER.pack(MAGIC, digest, flags, len(text), len(bpf), 0)
    h = sha256(head)
    h.update(text)
    h.update(bpf)
    return head + h.digest() + text + bpf


def store(root: str, digest: bytes, bpf: bytes, flags: int, warnings: list[str]) -> bool:
    """Write the entry for ``digest`` (atomically), then keep the cache within bounds.
    False when it was not stored: the caller has its program either way."""
    data = encode(digest, bpf, flags, warnings)
    if data is None:
        return False
    dfd = _open_dir(root, create=True)
    if dfd is None:
        return False
    try:
        name = digest.hex()
        tmp = ".tmp-%d-%s" % (os.getpid(), os.urandom(6).hex())
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=dfd)
        except OSError:
            return False
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            _replace(dfd, tmp, name)
        except OSError:
            _unlink(dfd, tmp)
            return False
        _evict(dfd, MAX_ENTRIES)
        return True
    finally:
        os.close(dfd)


def _replace(dfd, tmp, name):
    try:
        os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except IsADirectoryError:   # a directory planted at the name: only an empty one goes
        os.rmdir(name, dir_fd=dfd)
        os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)


def _evict(dfd, keep):
    """Remove the least recently used files beyond ``keep``."""
    try:
        names = os.listdir(dfd)
    except OSError:
        return
    if len(names) <= keep:
        return
    aged = []
    for name in names:
        try:
            aged.append((os.stat(name, dir_fd=dfd, follow_symlinks=False).st_mtime_ns, name))
        except OSError:
            continue
    aged.sort()
    for _, name in aged[:len(aged) - keep]:
        _unlink(dfd, name)


def _unlink(dfd, name):
    try:
        os.unlink(name, dir_fd=dfd)
    except IsADirectoryError:
        try:
            os.rmdir(name, dir_fd=dfd)
        except OSError:
            pass
    except OSError:
        pass


def _ours(st, kind):
    """A file of type ``kind`` (S_IFREG, S_IFDIR) owned by us that only we may write."""
    return st.st_mode & 0o170000 == kind and st.st_uid == os.geteuid() and not st.st_mode & 0o077


def _open_dir(root, create):
    """A descriptor of the cache directory under ``root`` if it is ours; None otherwise.

    With ``create``, a missing directory is made, one of ours with a lax mode is set to 0700,
    and anything at the name that is not a directory (a symlink, a file) is replaced by one.
    A missing ``root`` is never made: the runtime makes it with its first container."""
    try:
        rfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        for attempt in range(2):
            if create:
                try:
                    os.mkdir(DIR_NAME, 0o700, dir_fd=rfd)
                except FileExistsError:
                    pass
                except OSError:
                    return None
            try:
                fd = os.open(DIR_NAME, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                             | os.O_CLOEXEC, dir_fd=rfd)
            except OSError as e:
                # ELOOP: a symlink; ENOTDIR: a file. Replaced when storing, else a miss.
                if not create or attempt or e.errno not in (errno.ELOOP, errno.ENOTDIR):
                    return None
                try:
                    os.unlink(DIR_NAME, dir_fd=rfd)
                except OSError:
                    return None
                continue
            st = os.fstat(fd)
            if st.st_uid == os.geteuid() and create and st.st_mode & 0o777 != 0o700:
                try:
                    os.fchmod(fd, 0o700)
                    st = os.fstat(fd)
                except OSError:
                    pass
            if _ours(st, 0o040000):
                return fd
            os.close(fd)
            return None
        return None
    finally:
        os.close(rfd)
