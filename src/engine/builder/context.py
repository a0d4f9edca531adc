"""The build context: the body of ``/build`` unpacked into a private directory, and the sources
of COPY/ADD resolved in it.

The body is a tar (plain, gzip, bzip2, xz or zstd: detected by magic) or, when it is not an
archive, a Dockerfile alone (as docker accepts). A tar is extracted with the container copy's
checks (``ContainerFS.extract``): names that climb out, absolute names, writes through symlinks
the archive made, device nodes and whiteout names are refused and the size is bounded, before
anything is written. ``.dockerignore`` is applied after extraction (docker's daemon removes at
least the Dockerfile and .dockerignore it names; the client removes the rest; here every
excluded entry goes, so an API client that ignores the file gets the same build).

Paths of COPY sources are resolved inside a root (the context, or a stage's or an image's root
filesystem) as docker's FollowSymlinkInScope does: ``..`` stops at the root and a symlink's
target, absolute or relative, is taken inside the root, so nothing outside is ever read.
"""
from __future__ import annotations

import re
import os
import shutil
import stat
import tempfile

from pyrunc.engine.container.archive_fs import ContainerFS
from pyrunc.engine.layers.compression import decompressed
from pyrunc.errors import InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

MAX_CONTEXT = 8 << 30          # bytes of file data a context may hold
MAX_DOCKERFILE = 16 << 20      # bytes of a Dockerfile
MAX_LINKS = 255                # symlinks followed while resolving one path (Linux's MAXSYMLINKS)
_TAR_MAGIC_OFFSET = 257


class _TarStream:
    """The uncompressed context tar: ``head`` (already read) then the rest of ``f``, completed
    as Go's tar reader (so docker's daemon) reads an archive that stops early: after the last
    member's data, the missing padding and end-of-archive blocks are taken as there (docker's
    CLI sends such an archive when it adds a Dockerfile from outside the context). A stream
    that stops inside a header or inside a member's data stays truncated. The member headers
    are followed as they pass (sizes only: the extraction checks everything else)."""

    def __init__(self, head: bytes, f: Any) -> None:
        self._head = head
        self._f = f
        self._pos = 0           # bytes given out
        self._next = 0          # offset of the next header
        self._data_end = 0      # end of the current member's data, without its padding
        self._header = b""      # the part of a header read so far
        self._ended = False     # an end-of-archive block passed
        self._tail: bytes | None = None

    def read(self, n: int = -1) -> bytes:
        if self._head:
            data = self._head if n < 0 else self._head[:n]
            self._head = self._head[len(data):]
        elif self._tail is not None:
            data = self._tail if n < 0 else self._tail[:n]
            self._tail = self._tail[len(data):]
            return data
        else:
            data = self._f.read(n)
            if not data and n != 0:
                self._tail = self._completion()
                return self.read(n)
        self._follow(data)
        self._pos += len(data)
        return data

    def _follow(self, data: bytes) -> None:
        i = 0
        while i < len(data) and not self._ended:
            at = self._pos + i
            if at < self._next:
                i += min(len(data) - i, self._next - at)
                continue
            piece = data[i:i + 512 - len(self._header)]
            self._header += piece
            i += len(piece)
            if len(self._header) < 512:
                break
            block, self._header = self._header, b""
            if not block.strip(b"\0"):
                self._ended = True
                break
            size = _member_size(block[124:136])
            start = self._pos + i - 512
            self._data_end = start + 512 + size
            self._next = start + 512 + -(-size // 512) * 512

    def _completion(self) -> bytes:
        if self._ended or self._header or self._pos < self._data_end:
            return b""
        return b"\0" * (self._next - self._pos + 1024)

    def readable(self) -> bool:
        return True


def _member_size(field: bytes) -> int:
    """A tar header's size field: octal, or base-256 when its first bit is set; 0 when
    unreadable (the extraction then refuses the header itself)."""
    if field and field[0] & 0x80:
        return int.from_bytes(bytes([field[0] & 0x7f]) + field[1:], "big")
    try:
        return int(field.strip(b"\0 ") or b"0", 8)
    except ValueError:
        return 0


def _read_full(f: Any, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = f.read(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


class Context:
    """An unpacked build context in the private directory ``root`` (removed by ``close``)."""

    def __init__(self, root: str) -> None:
        self.root = root

    @classmethod
    def open(cls, body: BinaryIO, parent: str, max_size: int = MAX_CONTEXT) -> Context:
        """Unpack ``body`` (a tar, possibly compressed, or a bare Dockerfile) into a fresh
        directory under ``parent``."""
        os.makedirs(parent, mode=0o700, exist_ok=True)
        root = tempfile.mkdtemp(prefix="context-", dir=parent)
        ctx = cls(root)
        try:
            plain = decompressed(body)
            first = _read_full(plain, 512)
            stream = _TarStream(first, plain)
            if len(first) == 512 and first[_TAR_MAGIC_OFFSET:_TAR_MAGIC_OFFSET + 5] == b"ustar":
                with ContainerFS(root, name="build context") as fs:
                    try:
                        fs.extract("/", stream, max_size=max_size, spool_dir=parent)
                    except InvalidArgument as e:
                        raise InvalidArgument(str(e).replace(
                            "copy to container build context", "build context")) from None
            elif first.strip(b"\0"):
                data = _read_full(stream, MAX_DOCKERFILE + 1)
                if len(data) > MAX_DOCKERFILE:
                    raise InvalidArgument("build context: a Dockerfile alone must be at most "
                                          "%d bytes" % MAX_DOCKERFILE)
                with open(os.path.join(root, "Dockerfile"), "wb") as f:
                    f.write(data)
            # an empty body: an empty context (the Dockerfile is then missing)
        except BaseException:
            ctx.close()
            raise
        return ctx

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def read_dockerfile(self, name: str) -> bytes:
        """The Dockerfile ``name`` (a path in the context, resolved inside it)."""
        shown = name or "Dockerfile"
        try:
            path = resolve_in_root(self.root, shown)
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except (NotFound, FileNotFoundError, NotADirectoryError):
            if shown == "Dockerfile":
                # docker's fallback: a lower-case dockerfile
                try:
                    return self.read_dockerfile("dockerfile")
                except InvalidArgument:
                    pass
            raise InvalidArgument("Cannot locate specified Dockerfile: %s" % shown) from None
        except OSError as e:
            raise InvalidArgument("Cannot locate specified Dockerfile: %s: %s"
                                  % (shown, os.strerror(e.errno or 0))) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise InvalidArgument("Cannot locate specified Dockerfile: %s: not a regular "
                                      "file" % shown)
            with os.fdopen(os.dup(fd), "rb") as f:
                data = f.read(MAX_DOCKERFILE + 1)
        finally:
            os.close(fd)
        if len(data) > MAX_DOCKERFILE:
            raise InvalidArgument("Dockerfile %s: larger than %d bytes" % (shown, MAX_DOCKERFILE))
        return data

    def apply_dockerignore(self) -> None:
        """Remove what ``.dockerignore`` excludes (docker's pattern rules)."""
        path = os.path.join(self.root, ".dockerignore")
        if not os.path.isfile(path) or os.path.islink(path):
            return
        from pyrunc.patternmatcher import Matcher, read_patterns
        with open(path, encoding="utf-8", errors="replace") as f:
            patterns = read_patterns(f.read())
        if not patterns:
            return
        matcher = Matcher(patterns)
        for dirpath, dirnames, filenames in os.walk(self.root, topdown=False):
            rel_dir = os.path.relpath(dirpath, self.root)
            for name in filenames + [d for d in dirnames
                                     if os.path.islink(os.path.join(dirpath, d))]:
                rel = name if rel_dir == "." else rel_dir + "/" + name
                if matcher.excluded(rel):
                    os.unlink(os.path.join(dirpath, name))
            for name in dirnames:
                full = os.path.join(dirpath, name)
                rel = name if rel_dir == "." else rel_dir + "/" + name
                if not os.path.islink(full) and matcher.excluded(rel) and not os.listdir(full):
                    os.rmdir(full)


def resolve_in_root(root: str, path: str, follow_last: bool = True) -> str:
    """The host path of ``path`` taken inside ``root``: ``..`` stops at the root, symlinks are
    followed inside it (the last one too unless ``follow_last`` is false). NotFound when a
    component is missing; the result may name a missing last component."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    links = 0
    while parts:
        comp = parts.pop(0)
        if comp == "..":
            if done:
                done.pop()
            continue
        full = os.path.join(root, *done, comp)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            if parts:
                raise NotFound("%s: no such file or directory" % path) from None
            done.append(comp)
            break
        if stat.S_ISLNK(st.st_mode) and (parts or follow_last):
            links += 1
            if links > MAX_LINKS:
                raise InvalidArgument("%s: too many levels of symbolic links" % path)
            target = os.readlink(full)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        if parts and not stat.S_ISDIR(st.st_mode):
            raise NotFound("%s: not a directory" % path)
        done.append(comp)
    return os.path.join(root, *done)


def go_match(pattern: str, name: str) -> bool:
    """Go's filepath.Match for one path component: ``*``, ``?``, ``[...]`` (``^`` negates,
    ``lo-hi`` ranges) and ``\\`` escaping the next character. A malformed pattern (Go's
    ErrBadPattern) matches nothing."""
    out, i, n = [], 0, len(pattern)

    def escaped(j: int) -> tuple[str, int]:
        if j >= n or pattern[j] in "-]":
            raise ValueError(pattern)
        if pattern[j] == "\\":
            j += 1
            if j >= n:
                raise ValueError(pattern)
        return pattern[j], j + 1

    try:
        while i < n:
            ch = pattern[i]
            if ch == "*":
                out.append("[^/]*")
            elif ch == "?":
                out.append("[^/]")
            elif ch == "[":
                i += 1
                negate = i < n and pattern[i] == "^"
                i += negate
                ranges: list[str] = []
                while True:
                    if i < n and pattern[i] == "]" and ranges:
                        break
                    lo, i = escaped(i)
                    hi = lo
                    if i < n and pattern[i] == "-":
                        hi, i = escaped(i + 1)
                    ranges.append(re.escape(lo) if lo == hi else
                                  "%s-%s" % (re.escape(lo), re.escape(hi)))
                out.append("[%s%s]" % ("^" if negate else "", "".join(ranges)))
            elif ch == "\\":
                i += 1
                if i >= n:
                    return False
                out.append(re.escape(pattern[i]))
            else:
                out.append(re.escape(ch))
            i += 1
        return re.fullmatch("".join(out), name, re.S) is not None
    except (ValueError, re.error):
        return False


def has_glob(path: str) -> bool:
    return any(c in path for c in "*?[")


def find_sources(root: str, source: str) -> list[str]:
    """The paths relative to ``root`` that the COPY source ``source`` names: one path, or
    every match of a glob (docker's filepath.Match per component), sorted. NotFound when
    nothing matches."""
    clean = os.path.normpath("/" + source).lstrip("/")
    if not has_glob(clean):
        host = resolve_in_root(root, clean)
        if not os.path.lexists(host):
            raise NotFound("%s: no such file or directory" % source)
        return [os.path.relpath(host, root) if host != root else "."]
    found: list[str] = []
    parts = clean.split("/")

    def walk(rel: str, i: int) -> None:
        if i == len(parts):
            found.append(rel or ".")
            return
        pattern = parts[i]
        base = resolve_in_root(root, rel) if rel else root
        if not has_glob(pattern):
            nxt = (rel + "/" if rel else "") + pattern
            if os.path.lexists(os.path.join(base, pattern)) and (
                    i + 1 == len(parts) or os.path.isdir(resolve_in_root(root, nxt))):
                walk(nxt, i + 1)
            return
        try:
            names = sorted(os.listdir(base))
        except (NotADirectoryError, FileNotFoundError):
            return
        for name in names:
            if go_match(pattern, name):
                nxt = (rel + "/" if rel else "") + name
                if i + 1 == len(parts):
                    walk(nxt, i + 1)
                elif os.path.isdir(resolve_in_root(root, nxt)):
                    walk(nxt, i + 1)

    walk("", 0)
    if not found:
        raise NotFound("no source files were specified" if not clean else
                       "%s: no source files were specified" % source)
    return [os.path.relpath(resolve_in_root(root, f, follow_last=True), root)
            if f != "." else "." for f in found]


def is_archive(path: str) -> bool:
    """Whether the file at ``path`` is a tar archive (plain or compressed), as ADD decides
    whether to extract it."""
    with open(path, "rb") as f:
        try:
            block = _read_full(decompressed(f), 512)
        except Exception:       # whatever a decoder raises: not an archive, copied as it is
            return False
    return len(block) == 512 and block[_TAR_MAGIC_OFFSET:_TAR_MAGIC_OFFSET + 5] == b"ustar"
