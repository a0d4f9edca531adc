"""Layer compression: detect gzip, zstd or plain tar from the first bytes and decompress.

bzip2 and xz are read too (``docker import`` accepts them). zstd uses the ``zstandard``
package from PyPI (imported only when a zstd layer shows up).
"""
from __future__ import annotations

import gzip
import io

from pyrunc.engine.layers.tarstream import LayerError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

ZSTD_MAX_WINDOW = 1 << 27       # the most memory a zstd frame may ask for (libzstd's default)
XZ_MEMLIMIT = 1 << 27           # the same for xz (``xz -9`` needs 65 MiB)
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"

def detect(head: bytes) -> str:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(BZIP2_MAGIC):
        return "bzip2"
    if head.startswith(XZ_MAGIC):
        return "xz"
    return "none"


def decompressed(stream: Any) -> Any:
    """A readable of the uncompressed tar behind ``stream`` (any readable binary file)."""
    if not hasattr(stream, "peek"):
        stream = io.BufferedReader(stream, 1 << 20) if isinstance(stream, io.RawIOBase) \
            else _Peekable(stream)
    kind = detect(stream.peek(6)[:6])
    if kind == "gzip":
        return gzip.GzipFile(fileobj=stream, mode="rb")
    if kind == "zstd":
        return io.BufferedReader(_ZstdReader(stream), 1 << 20)
    if kind == "bzip2":
        import bz2
        return bz2.BZ2File(stream, "rb")
    if kind == "xz":
        import _compression
        import lzma
        # LZMAFile's reader, with a bound on the dictionary a stream may ask for
        return io.BufferedReader(_compression.DecompressReader(
            stream, lzma.LZMADecompressor, trailing_error=lzma.LZMAError,
            memlimit=XZ_MEMLIMIT), 1 << 20)
    return stream


class _ZstdReader(io.RawIOBase):
    """zstd frames one after another, decompressed at most ``len(b)`` bytes at a time (a
    bomb never expands in memory); input that ends inside a frame is an error, which the
    library's reader does not report, so ``_ZstdFrames`` follows the frame structure of the
    compressed bytes as they are read."""

    def __init__(self, source):
        import zstandard
        self._frames = _ZstdFrames()
        self._reader = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).stream_reader(
            _Tee(source, self._frames.feed), read_size=1 << 17, read_across_frames=True,  # type: ignore[arg-type]
            closefd=False)

    def readable(self):
        return True

    def readinto(self, b):
        n = self._reader.readinto(b)
        if not n and not self._frames.at_boundary():
            raise LayerError("layer: truncated zstd stream")
        return n


class _Tee:
    def __init__(self, source, sink):
        self._source = source
        self._sink = sink

    def read(self, n=-1):
        data = self._source.read(n)
        self._sink(data)
        return data


_ZSTD_FRAME = 0xFD2FB528
_ZSTD_SKIPPABLE = 0x184D2A50        # up to 0x184D2A5F


class _ZstdFrames:
    """Follows the frames and blocks of a zstd stream (RFC 8878) from their headers alone,
    so that the end of the input can be told to fall between frames or inside one."""

    def __init__(self):
        self._buf = b""
        self._skip = 0
        self._checksum = False
        self._go("magic", 4)

    def _go(self, state, need, skip=0):
        self._state, self._need, self._skip = state, need, skip

    def at_boundary(self):
        return self._state == "magic" and not self._buf and not self._skip

    def feed(self, data):
        pos, end = 0, len(data)
        while pos < end:
            if self._skip:
                k = min(self._skip, end - pos)
                self._skip -= k
                pos += k
                continue
            k = min(self._need - len(self._buf), end - pos)
            self._buf += data[pos:pos + k]
            pos += k
            if len(self._buf) == self._need:
                field, self._buf = int.from_bytes(self._buf, "little"), b""
                self._field(field)

    def _field(self, value):
        state = self._state
        if state == "magic":
            if value == _ZSTD_FRAME:
                self._go("descriptor", 1)
            elif value & 0xFFFFFFF0 == _ZSTD_SKIPPABLE:
                self._go("skippable", 4)
            else:
                raise LayerError("layer: corrupt zstd stream: no frame where one should begin")
        elif state == "skippable":
            self._go("magic", 4, skip=value)
        elif state == "descriptor":
            single = value >> 5 & 1
            self._checksum = bool(value >> 2 & 1)
            header = (0 if single else 1) + (0, 1, 2, 4)[value & 3] + \
                ((1 if single else 0), 2, 4, 8)[value >> 6]
            self._go("block", 3, skip=header)
        elif state == "block":
            last, kind, size = value & 1, value >> 1 & 3, value >> 3
            if kind == 3:
                raise LayerError("layer: corrupt zstd stream: reserved block type")
            payload = 1 if kind == 1 else size
            if not last:
                self._go("block", 3, skip=payload)
            else:
                self._go("magic", 4, skip=payload + (4 if self._checksum else 0))


class _Peekable:
    def __init__(self, f):
        self._f = f
        self._head = b""

    def peek(self, n):
        if len(self._head) < n:
            self._head += self._f.read(n - len(self._head))
        return self._head

    def read(self, n=-1):
        if self._head:
            head, self._head = self._head, b""
            if n is None or n < 0:
                return head + self._f.read()
            if n <= len(head):
                self._head = head[n:]
                return head[:n]
            return head + self._f.read(n - len(head))
        return self._f.read(n)

    def readable(self):
        return True
