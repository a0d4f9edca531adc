"""A streaming tar reader for layers: headers (ustar, GNU long names, PAX) and member data,
with the sha256 of every byte read (the diffID) computed on the way.

tarfile's stream mode re-buffers every block in Python; this reader copies member data
straight from the source into the destination descriptor through one reusable buffer.
"""
import hashlib
import os
import tarfile

from pyrunc.errors import InvalidArgument

BLOCK = 512
_CHUNK = 1 << 20
_PAX_FIELDS = {"path": "name", "linkpath": "linkname", "uname": "uname", "gname": "gname"}
_PAX_NUMBERS = {"size": int, "uid": int, "gid": int, "mtime": float}
_HEADER_ONLY = (tarfile.LNKTYPE, tarfile.SYMTYPE, tarfile.DIRTYPE, tarfile.CHRTYPE,
                tarfile.BLKTYPE, tarfile.FIFOTYPE)


class TarError(InvalidArgument):
    pass


class TarReader:
    """Members of the tar read from ``f``. The sha256 of the stream runs in a helper thread
    (hashlib releases the GIL), overlapping with the writes; data goes through two buffers
    used in turn, so a buffer is refilled only after its bytes were hashed."""

    def __init__(self, f):
        from concurrent.futures import ThreadPoolExecutor
        self._f = f
        self._hash = hashlib.sha256()
        self._hasher = ThreadPoolExecutor(1, thread_name_prefix="diffid")
        self.count = 0
        self._bufs = [memoryview(bytearray(_CHUNK)), memoryview(bytearray(_CHUNK))]
        self._busy = [None, None]
        self._turn = 0
        self._pending = 0        # data + padding of the current member not consumed yet
        self._globals = {}

    def hexdigest(self):
        """The sha256 of everything read; call once, after drain()."""
        self._hasher.shutdown(wait=True)
        return self._hash.hexdigest()

    def close(self):
        self._hasher.shutdown(wait=True)

    # raw reading ----------------------------------------------------------------------------
    def _fill(self, n):
        """A view of ``n`` bytes read into the next buffer (hashed in the background), or
        None at a clean end of input."""
        i = self._turn
        self._turn ^= 1
        if self._busy[i] is not None:
            self._busy[i].result()
        view = self._bufs[i][:n]
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
                raise TarError("layer: truncated archive: unexpected end of data")
            got += r
        self._busy[i] = self._hasher.submit(self._hash.update, view)
        self.count += n
        return view

    def _read(self, n, what):
        out = bytearray()
        while len(out) < n:
            view = self._fill(min(_CHUNK, n - len(out)))
            if view is None:
                raise TarError("layer: truncated archive: %s ends early" % what)
            out += view
        return bytes(out)

    def _skip(self, n):
        while n:
            k = min(n, _CHUNK)
            if self._fill(k) is None:
                raise TarError("layer: truncated archive: unexpected end of data")
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
        while True:
            header = self._fill(BLOCK)
            if header is None:
                raise StopIteration
            header = bytes(header)
            if not any(header):
                raise StopIteration          # end-of-archive marker; drain() reads the rest
            try:
                ti = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
            except tarfile.HeaderError as e:
                raise TarError("layer: corrupt archive: bad header: %s" % e) from None
            if ti.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE):
                records = self._pax(self._read(ti.size, "a PAX header"))
                self._skip(self._padded(ti.size) - ti.size)
                if ti.type == tarfile.XGLTYPE:
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
            raise TarError("layer: %s: sparse files are not supported" % ti.name)
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
                except ValueError:
                    raise TarError("layer: %s: bad PAX %s %r" % (ti.name, key, value)) from None
        ti.pax_headers = pax
        if ti.type == tarfile.AREGTYPE and ti.name.endswith("/"):
            ti.type = tarfile.DIRTYPE
        ti.name = ti.name.rstrip("/") if ti.name not in ("/", "") else ti.name
        if ti.type in _HEADER_ONLY:
            ti.size = 0                      # whatever the header says, no data follows
        self._pending = self._padded(ti.size)
        return ti

    @staticmethod
    def _pax(data):
        out = {}
        pos = 0
        while pos < len(data):
            sp = data.find(b" ", pos)
            if sp < 0 or not data[pos:sp].isdigit():
                if not data[pos:].strip(b"\0"):
                    break
                raise TarError("layer: corrupt archive: bad PAX record")
            length = int(data[pos:sp])
            record = data[sp + 1:pos + length]
            if length <= 0 or not record.endswith(b"\n") or b"=" not in record:
                raise TarError("layer: corrupt archive: bad PAX record")
            key, value = record[:-1].split(b"=", 1)
            # binary values (xattrs, hdrcharset=BINARY names) survive as surrogate escapes
            out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
            pos += length
        return out

    def copy_to(self, fd, member):
        """Write the current member's data to ``fd``."""
        size = member.size
        remaining = size
        while remaining:
            k = min(remaining, _CHUNK)
            chunk = self._fill(k)
            if chunk is None:
                raise TarError("layer: %s: truncated archive" % member.name)
            while chunk:
                n = os.write(fd, chunk)
                chunk = chunk[n:]
            remaining -= k
        self._skip(self._padded(size) - size)
        self._pending = 0

    def drain(self):
        """Read (and hash) whatever follows the end-of-archive marker."""
        if self._pending:
            self._skip(self._pending)
            self._pending = 0
        while True:
            r = self._f.read(_CHUNK)
            if not r:
                return
            self._hasher.submit(self._hash.update, r)
            self.count += len(r)
