"""Hand-built layer tars for the tests."""
import io
import tarfile


def entry(name, kind="file", data=b"", mode=None, uid=0, gid=0, mtime=1_600_000_000,
          linkname="", dev=(0, 0), xattrs=None, size=None):
    ti = tarfile.TarInfo(name)
    ti.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
               "link": tarfile.LNKTYPE, "char": tarfile.CHRTYPE, "block": tarfile.BLKTYPE,
               "fifo": tarfile.FIFOTYPE}[kind]
    ti.mode = mode if mode is not None else (0o755 if kind == "dir" else 0o644)
    ti.uid, ti.gid, ti.mtime = uid, gid, mtime
    ti.linkname = linkname
    ti.devmajor, ti.devminor = dev
    ti.size = len(data) if size is None else size
    if xattrs:
        ti.pax_headers = {"SCHILY.xattr." + k: v.decode("utf-8", "surrogateescape")
                          for k, v in xattrs.items()}
    return ti, data


def make_tar(entries, compression=None):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in entries:
            tf.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
    raw = buf.getvalue()
    if compression == "gzip":
        import gzip
        return gzip.compress(raw)
    if compression == "zstd":
        import zstandard
        return zstandard.ZstdCompressor().compress(raw)
    return raw
