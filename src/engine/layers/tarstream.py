"""A streaming tar reader for layers: headers (ustar, GNU long names, PAX) and member data,
with the sha256 of every byte read (the diffID) computed on the way.

tarfile's stream mode re-buffers every block in Python; this reader copies member data
straight from the source into the destination descriptor through one reusable buffer.
"""
from __future__ import annotations

import hashlib
import os
import tarfile

from pyrunc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from tarfile import TarInfo

BLOCK = 512
_CHUNK = 1 << 20

# Bounds on what one layer may ask of the reader's memory (docs/engine.md, "Bounded memory").
MAX_HEADER = 1 << 20          # the data of one PAX header or GNU long name/link (Go's limit)
MAX_HEADERS = 1 << 20         # the extended header data before one member, and the globals
MAX_SPECIAL = 16              # extended headers before one member
MAX_NAME = 4095               # bytes of a name or link target (PATH_MAX less the NUL)
MAX_MEMBERS = 1 << 20         # members of one archive
_MAX_ID = (1 << 32) - 1       # uid/gid: what uid_t holds
_MAX_DEV = (1 << 32) - 1
_MAX_MTIME = float(((1 << 63) - 1) // 1_000_000_000)    # seconds that fit in ns as int64
_PAX_FIELDS = {"path": "name", "linkpath": "linkname", "uname": "uname", "gname": "gname"}
_PAX_NUMBERS = {"size": int, "uid": int, "gid": int, "mtime": float}
_HEADER_ONLY = (tarfile.LNKTYPE, tarfile.SYMTYPE, tarfile.DIRTYPE, tarfile.CHRTYPE,
                tarfile.BLKTYPE, tarfile.FIFOTYPE)


_SPECIAL = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
            tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)


def _shown(name):
    """A member name as an error message shows it: one line, at most 200 characters."""
    text = repr(name)[1:-1] if not name.isprintable() else name
    return text if len(text) <= 200 else text[:200] + "..."


class LayerError(InvalidArgument):
    """A layer that cannot be read or applied: names the member and the reason."""


class LayerTooLarge(LayerError):
    """A layer whose uncompressed stream or file data goes past the limit it was given."""


class TarReader:
    """Members of the tar read from ``f``; every byte read goes through one reusable buffer
    and into the sha256 (the diffID). (Hashing in a helper thread measured slower on a busy
    two-core machine: the GIL hand-offs cost more than the overlap gains.)"""

    def __init__(self, f: Any) -> None:
        self._f = f
        self._hash = hashlib.sha256()
        self.count = 0
        self._buf = memoryview(bytearray(_CHUNK))
        self._pending = 0        # data + padding of the current member not consumed yet
        self._globals: dict[Any, Any] = {}
        self._globals_size = 0
        self.members = 0
        self.limit = None        # most uncompressed bytes to read, None for no limit

    def _check_limit(self, n):
        if self.limit is not None and self.count + n > self.limit:
            raise LayerTooLarge("layer: the uncompressed layer exceeds the limit of %d bytes"
                                % self.limit)

    def hexdigest(self) -> str:
        """The sha256 of everything read so far."""
        return self._hash.hexdigest()

    def close(self) -> None:
        pass

    # raw reading ----------------------------------------------------------------------------
    def _fill(self, n):
        """A view of ``n`` bytes read into the buffer (and hashed), or None at a clean end of
        input. The view is valid until the next read."""
        self._check_limit(n)
        view = self._buf[:n]
        got = 0
        while got < n:
            r = self._f.readinto(view[got:]) if hasattr(self._f, "readinto") else None
            if r is None:
                data = self._f.read(n - got)
                r = len(data)
                view[got:got + r] = data
            if not r:
                if got == 0:
                    return None
                raise LayerError("layer: truncated archive: unexpected end of data")
            got += r
        self._hash.update(view)
        self.count += n
        return view

    def _read(self, n, what):
        out = bytearray()
        while len(out) < n:
            view = self._fill(min(_CHUNK, n - len(out)))
            if view is None:
                raise LayerError("layer: truncated archive: %s ends early" % what)
            out += view
        return bytes(out)

    def _skip(self, n):
        while n:
            k = min(n, _CHUNK)
            if self._fill(k) is None:
                raise LayerError("layer: truncated archive: unexpected end of data")
            n -= k

    @staticmethod
    def _padded(size):
        return (size + BLOCK - 1) // BLOCK * BLOCK

    # members --------------------------------------------------------------------------------
    def __iter__(self):
        return self

    def __next__(self):
        if self._pending:
            self._skip(self._pending)
            self._pending = 0
        pax = dict(self._globals)
        longname = longlink = None
        special = extended = 0
        while True:
            header = self._fill(BLOCK)
            if header is not None:
                header = bytes(header)
            if header is None or not any(header):
                if special:
                    raise LayerError("layer: truncated archive: an extended header without "
                                     "its member")
                raise StopIteration          # end-of-archive marker; drain() reads the rest
            try:
                ti = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
            except tarfile.HeaderError as e:
                raise LayerError("layer: corrupt archive: bad header: %s" % e) from None
            except (ValueError, OverflowError) as e:
                raise LayerError("layer: corrupt archive: bad header field: %s" % e) from None
            self._check_size(ti.name, ti.size)
            if ti.type in _SPECIAL:
                special += 1
                extended += ti.size
                if ti.size > MAX_HEADER or extended > MAX_HEADERS or special > MAX_SPECIAL:
                    raise LayerError("layer: corrupt archive: extended headers of %d bytes "
                                     "(%d headers) before one member, more than the %d bytes "
                                     "(%d headers) allowed" % (extended, special, MAX_HEADERS,
                                                               MAX_SPECIAL))
            if ti.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE):
                records = self._pax(self._read(ti.size, "a PAX header"))
                self._skip(self._padded(ti.size) - ti.size)
                if ti.type == tarfile.XGLTYPE:
                    self._globals_size += ti.size
                    if self._globals_size > MAX_HEADERS:
                        raise LayerError("layer: corrupt archive: global PAX headers exceed "
                                         "%d bytes" % MAX_HEADERS)
                    self._globals.update(records)
                pax.update(records)
                continue
            if ti.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
                value = self._read(ti.size, "a GNU long name").split(b"\0", 1)[0]
                self._skip(self._padded(ti.size) - ti.size)
                value = value.decode("utf-8", "surrogateescape")
                if ti.type == tarfile.GNUTYPE_LONGNAME:
                    longname = value
                else:
                    longlink = value
                continue
            break
        if ti.type == tarfile.GNUTYPE_SPARSE or "GNU.sparse.major" in pax or \
                "GNU.sparse.size" in pax:
            raise LayerError("layer: %s: sparse files are not supported" % _shown(ti.name))
        if longname is not None:
            ti.name = longname
        if longlink is not None:
            ti.linkname = longlink
        for key, value in pax.items():
            if key in _PAX_FIELDS:
                setattr(ti, _PAX_FIELDS[key], value)
            elif key in _PAX_NUMBERS:
                try:
                    setattr(ti, key, _PAX_NUMBERS[key](value))
                except (ValueError, OverflowError):
                    raise LayerError("layer: %s: bad PAX %s %s" % (_shown(ti.name), key,
                                                                   _shown(repr(value))))\
                        from None
        ti.pax_headers = pax
        if ti.type == tarfile.AREGTYPE and ti.name.endswith("/"):
            ti.type = tarfile.DIRTYPE
        ti.name = ti.name.rstrip("/") if ti.name not in ("/", "") else ti.name
        if ti.type in _HEADER_ONLY:
            ti.size = 0                      # whatever the header says, no data follows
        self._validate(ti)
        self.members += 1
        if self.members > MAX_MEMBERS:
            raise LayerError("layer: more than %d members" % MAX_MEMBERS)
        self._pending = self._padded(ti.size)
        return ti

    @staticmethod
    def _check_size(name, size):
        if not isinstance(size, int) or size < 0:
            raise LayerError("layer: %s: corrupt archive: negative size %r"
                             % (_shown(name), size))

    @staticmethod
    def _validate(ti):
        """Refuse what the filesystem calls could not take: NUL in names, over-long names,
        negative sizes, ids and device numbers out of range, times that are not finite."""
        name = _shown(ti.name)
        for what, value in (("name", ti.name), ("link target", ti.linkname)):
            if "\0" in value:
                raise LayerError("layer: %s: the %s holds a NUL byte" % (name, what))
            if len(value.encode("utf-8", "surrogateescape")) > MAX_NAME:
                raise LayerError("layer: %s: the %s is longer than %d bytes"
                                 % (name, what, MAX_NAME))
        TarReader._check_size(ti.name, ti.size)
        for what, value, top in (("uid", ti.uid, _MAX_ID), ("gid", ti.gid, _MAX_ID),
                                 ("device major", ti.devmajor, _MAX_DEV),
                                 ("device minor", ti.devminor, _MAX_DEV)):
            if not isinstance(value, int) or not 0 <= value <= top:
                raise LayerError("layer: %s: %s %r out of range" % (name, what, value))
        mtime = ti.mtime
        if not isinstance(mtime, (int, float)) or not -_MAX_MTIME <= mtime <= _MAX_MTIME:
            raise LayerError("layer: %s: modification time %r out of range" % (name, mtime))
        for key in ti.pax_headers:
            if "\0" in key:
                raise LayerError("layer: %s: a PAX record name holds a NUL byte" % name)

    @staticmethod
    def _pax(data):
        out = {}
        pos = 0
        while pos < len(data):
            sp = data.find(b" ", pos)
            if sp < 0 or not data[pos:sp].isdigit():
                if not data[pos:].strip(b"\0"):
                    break
                raise LayerError("layer: corrupt archive: bad PAX record")
            length = int(data[pos:sp])
            record = data[sp + 1:pos + length]
            if length <= 0 or pos + length > len(data) or not record.endswith(b"\n") \
                    or b"=" not in record:
                raise LayerError("layer: corrupt archive: bad PAX record")
            key, value = record[:-1].split(b"=", 1)
            # binary values (xattrs, hdrcharset=BINARY names) survive as surrogate escapes
            out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
            pos += length
        return out

    def copy_to(self, fd: int, member: TarInfo) -> None:
        """Write the current member's data to ``fd``."""
        size = member.size
        remaining = size
        while remaining:
            k = min(remaining, _CHUNK)
            chunk = self._fill(k)
            if chunk is None:
                raise LayerError("layer: %s: truncated archive" % member.name)
            while chunk:
                n = os.write(fd, chunk)
                chunk = chunk[n:]
            remaining -= k
        self._skip(self._padded(size) - size)
        self._pending = 0

    def data(self, member: Any) -> _MemberData:
        """A readable of the current member's data (``read(n)``), read through this reader."""
        return _MemberData(self, member.size)

    def drain(self) -> None:
        """Read (and hash) whatever follows the end-of-archive marker."""
        if self._pending:
            self._skip(self._pending)
            self._pending = 0
        while True:
            r = self._f.read(_CHUNK)
            if not r:
                return
            self._check_limit(len(r))
            self._hash.update(r)
            self.count += len(r)


class _MemberData:
    """The data of the member a TarReader stands at; reading past it is impossible."""

    def __init__(self, reader, size):
        self._reader = reader
        self._left = size

    def read(self, n=-1):
        if n is None or n < 0:
            n = self._left
        out = bytearray()
        while n and self._left:
            k = min(n, self._left, _CHUNK)
            view = self._reader._fill(k)
            if view is None:
                raise LayerError("layer: truncated archive: unexpected end of data")
            out += view
            self._left -= k
            self._reader._pending -= k
            n -= k
        return bytes(out)


class MappedTarReader(TarReader):
    """An uncompressed layer in a regular file (the content store's blobs, saved archives):
    headers are read and the diffID hashed straight from an mmap of the file, and member data
    is copied by the kernel (copy_file_range), so no byte passes through a Python buffer."""

    def __init__(self, fd: int, offset: int = 0) -> None:
        import mmap
        super().__init__(None)
        self._fd = fd
        self._pos = offset
        self._size = os.fstat(fd).st_size
        self._map = mmap.mmap(fd, 0, access=mmap.ACCESS_READ) if self._size else None
        self._mv = memoryview(self._map) if self._map is not None else memoryview(b"")
        self._kernel_copy = True

    def close(self) -> None:
        try:
            self._mv.release()
            if self._map is not None:
                self._map.close()
        except BufferError:
            pass                    # a view is still referenced: the collector unmaps later

    def _fill(self, n):
        if self._pos >= self._size:
            return None
        if self._pos + n > self._size:
            raise LayerError("layer: truncated archive: unexpected end of data")
        self._check_limit(n)
        view = self._mv[self._pos:self._pos + n]
        self._pos += n
        self._hash.update(view)
        self.count += n
        return view

    def copy_to(self, fd: int, member: TarInfo) -> None:
        remaining = member.size
        while remaining:
            k = min(remaining, 8 * _CHUNK)
            view = self._fill(k)
            if view is None:
                raise LayerError("layer: %s: truncated archive" % member.name)
            self._write(fd, view, self._pos - k)
            remaining -= k
        self._skip(self._padded(member.size) - member.size)
        self._pending = 0

    def _write(self, fd, view, offset):
        done = 0
        if self._kernel_copy:
            try:
                while done < len(view):
                    n = os.copy_file_range(self._fd, fd, len(view) - done, offset + done)
                    if n == 0:
                        break
                    done += n
            except OSError:
                self._kernel_copy = False    # e.g. EXDEV across filesystems: copy by hand
        rest = view[done:]
        while rest:
            n = os.write(fd, rest)
            rest = rest[n:]

    def drain(self) -> None:
        if self._pos < self._size:
            self._check_limit(self._size - self._pos)
            self._hash.update(self._mv[self._pos:self._size])
            self.count += self._size - self._pos
            self._pos = self._size
        self._pending = 0
