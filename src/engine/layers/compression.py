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

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"

def detect(head: Any) -> str:
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
        import lzma
        return lzma.LZMAFile(stream, "rb")
    return stream


class _ZstdReader(io.RawIOBase):
    """zstd frames one after another; input that ends inside a frame is an error."""

    def __init__(self, source):
        import zstandard
        self._new = zstandard.ZstdDecompressor().decompressobj
        self._source = source
        self._d = self._new()
        self._out = b""
        self._started = False

    def readable(self):
        return True

    def readinto(self, b):
        while not self._out:
            chunk = self._source.read(1 << 20)
            if not chunk:
                if self._started and not self._d.eof:
                    raise LayerError("layer: truncated zstd stream")
                return 0
            while chunk:
                if self._d.eof:
                    self._d = self._new()
                self._started = True
                self._out += self._d.decompress(chunk)
                chunk = self._d.unused_data if self._d.eof else b""
        n = min(len(b), len(self._out))
        b[:n] = self._out[:n]
        self._out = self._out[n:]
        return n


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
