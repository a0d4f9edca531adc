"""A corpus of hostile layers, generated (never stored): each case is (class, id, bytes,
expect), where ``expect`` is a regular expression the one-line LayerError must match, or None
for a layer that applies but must stay inside its root.

Headers are written by hand (``header``) because tarfile refuses to write most of these.
Bombs are built from repeated compressed members or hand-made zstd RLE blocks, so making
them costs nothing.
"""
import gzip
import io
import tarfile

BLOCK = 512
_END = b"\0" * 1024


def number(value, width):
    """A tar number field: octal when it fits, else base-256 (negative ones too)."""
    if 0 <= value < 8 ** (width - 1):
        return b"%0*o\0" % (width - 1, value)
    if value < 0:
        return b"\xff" + (256 ** (width - 1) + value).to_bytes(width - 1, "big")
    return b"\x80" + value.to_bytes(width - 1, "big")


def header(name=b"f", size=0, kind=b"0", mode=0o644, uid=0, gid=0, mtime=1_600_000_000,
           linkname=b"", dev=(0, 0), magic=b"ustar\x0000", checksum=None):
    """One raw 512-byte ustar header; every field as given, however wrong."""
    name = name.encode() if isinstance(name, str) else name
    linkname = linkname.encode() if isinstance(linkname, str) else linkname
    h = bytearray(BLOCK)
    h[0:100] = name[:100].ljust(100, b"\0")
    h[100:108] = number(mode, 8)
    h[108:116] = number(uid, 8)
    h[116:124] = number(gid, 8)
    h[124:136] = number(size, 12)
    h[136:148] = number(mtime, 12)
    h[156:157] = kind
    h[157:257] = linkname[:100].ljust(100, b"\0")
    h[257:265] = magic
    h[329:337] = number(dev[0], 8)
    h[337:345] = number(dev[1], 8)
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % (sum(h) if checksum is None else checksum)
    return bytes(h)


def pad(data):
    return data + b"\0" * (-len(data) % BLOCK)


def member(name="f", data=b"", **kw):
    kw.setdefault("size", len(data))
    return header(name, **kw) + pad(data)


def pax_records(records):
    out = b""
    for key, value in records.items():
        key = key.encode() if isinstance(key, str) else key
        value = value.encode() if isinstance(value, str) else value
        body = b" " + key + b"=" + value + b"\n"
        n = len(body) + 1
        while len(b"%d" % n) + len(body) != n:
            n += 1
        out += b"%d" % n + body
    return out


def pax(records, kind=b"x"):
    data = pax_records(records)
    return header(b"PaxHeader", size=len(data), kind=kind) + pad(data)


def gnu_long(name, kind=b"L"):
    name = name.encode() if isinstance(name, str) else name
    return header(b"././@LongLink", size=len(name) + 1, kind=kind) + pad(name + b"\0")


def gz(data):
    return gzip.compress(data, mtime=0)


def zst(data):
    import zstandard
    return zstandard.ZstdCompressor().compress(data)


def gzip_bomb(total, unit=16 << 20):
    """About ``total`` bytes of zeros as a multi-member gzip (one member, repeated)."""
    one = gzip.compress(b"\0" * unit, compresslevel=9, mtime=0)
    return one * max(1, total // unit)


def pax_bomb(size, unit=16 << 20):
    """A gzip layer whose first member is a PAX header of ``size`` bytes of valid records,
    then an end of archive (multi-member gzip: one member of records, repeated)."""
    records = gzip.compress(b"9 a=bbb\n" * (unit // 8), compresslevel=9, mtime=0)
    return gz(header(b"PaxHeader", size=size, kind=b"x")) + records * (size // unit) + \
        gz(member("x") + _END)


def zstd_rle_bomb(blocks, prefix=b""):
    """A zstd frame of ``prefix`` (one raw block) then ``blocks`` RLE blocks of 128 KiB of
    zeros each: 4 bytes of input per 128 KiB of output."""
    out = bytearray(b"\x28\xb5\x2f\xfd")
    out += b"\x00"                  # no content size, no checksum, no dictionary
    out += bytes([(17 - 10) << 3])  # a 128 KiB window
    if prefix:
        out += (0 | (0 << 1) | (len(prefix) << 3)).to_bytes(3, "little") + prefix
    rle = (1 << 1) | ((128 << 10) << 3)
    block = rle.to_bytes(3, "little") + b"\0"
    out += block * (blocks - 1)
    out += (rle | 1).to_bytes(3, "little") + b"\0"
    return bytes(out)


def tar(entries):
    """A tarfile-written archive of (TarInfo, data) pairs."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in entries:
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data) if data else None)
    return buf.getvalue()


def ti(name, kind=tarfile.REGTYPE, linkname="", pax_headers=None, dev=(0, 0), mode=0o644):
    t = tarfile.TarInfo(name)
    t.type, t.linkname, t.mode, t.mtime = kind, linkname, mode, 1_600_000_000
    t.devmajor, t.devminor = dev
    t.pax_headers = dict(pax_headers or {})
    return t


# the cases ------------------------------------------------------------------------------------

def memory_cases():
    """The inputs that drove the unpacker to gigabytes before its limits."""
    million = "a/" * 1_000_000
    yield ("memory", "gnu-long-name-1M-components-gzip",
           gz(gnu_long(million) + member("x") + _END), "extended headers of")
    yield ("memory", "gnu-long-link-1M-components",
           gnu_long(million, b"K") + member("x", kind=b"2") + _END, "extended headers of")
    # a 1 GiB PAX header, all of it there: 1 MB of gzip
    yield ("memory", "pax-header-1GiB-gzip", pax_bomb(1 << 30), "extended headers of")
    yield ("memory", "pax-global-header-1GiB",
           header(b"PaxHeader", size=1 << 30, kind=b"g") + b"\0" * 4096,
           "extended headers of")
    yield ("memory", "zstd-rle-bomb-400KB-12GiB",
           zstd_rle_bomb(100_000, header(b"zeros", size=12 << 30)),
           "exceed|do not fit|limit")
    yield ("memory", "gzip-bomb-1GiB-of-zeros", gzip_bomb(1 << 30), "limit")
    yield ("memory", "xz-3GiB-dictionary", xz_dictionary(39), "corrupt.*[Mm]emory")
    yield ("memory", "zstd-128MiB-window-filled", zstd_window_bomb(1024), "limit")
    yield ("memory", "many-pax-headers-before-one-member",
           b"".join(pax({"comment": "x" * 100}) for _ in range(64)) + member("x") + _END,
           "extended headers")
    yield ("memory", "global-pax-headers-accumulate",
           b"".join(pax({"k%d" % i: "v" * 200_000}, kind=b"g") + member("f%d" % i)
                    for i in range(8)) + _END, "global PAX headers exceed")


def xz_dictionary(byte):
    """An xz stream whose one block asks for the LZMA2 dictionary coded by ``byte`` (39 is
    3 GiB): a small valid stream with that field and its header's CRC rewritten."""
    import lzma
    import zlib
    data = lzma.compress(b"\0" * (1 << 20), preset=1)
    size = (data[12] + 1) * 4
    block = bytearray(data[12:12 + size])
    block[4] = byte
    block[-4:] = zlib.crc32(bytes(block[:-4])).to_bytes(4, "little")
    return data[:12] + bytes(block) + data[12 + size:]


def zstd_window_bomb(blocks):
    """A zstd frame asking for a 128 MiB window (the most allowed) and filling it with RLE
    blocks of zeros (an empty archive, then zeros the reader drains): the decompressor's own
    worst case, with nothing written to disk."""
    data = bytearray(zstd_rle_bomb(blocks))
    data[5] = (27 - 10) << 3
    return bytes(data)


def size_cases():
    for comp, wrap in (("none", bytes), ("gzip", gz), ("zstd", zst)):
        yield ("negative-size", "ustar-base256-minus-1-" + comp,
               wrap(header(b"neg", size=-1) + b"x" * 4096 + _END), "negative size")
        # (-512 sends the old mapped reader back to this same header: a loop for ever)
        yield ("negative-size", "ustar-base256-minus-512-" + comp,
               wrap(header(b"neg", size=-512) + _END), "negative size")
        yield ("negative-size", "ustar-base256-minus-2**60-" + comp,
               wrap(header(b"neg", size=-(1 << 60)) + _END), "negative size")
        yield ("negative-size", "pax-size-minus-512-" + comp,
               wrap(pax({"size": "-512"}) + member("neg", b"") + _END), "negative size")
        yield ("negative-size", "negative-size-pax-header-" + comp,
               wrap(header(b"PaxHeader", size=-1, kind=b"x") + _END), "negative size")
    yield ("huge-size", "one-PiB-member-no-data", header(b"big", size=1 << 50) + _END,
           "do not fit|exceed the layer limit")
    yield ("huge-size", "pax-size-1e30", pax({"size": "1" + "0" * 30}) + member("big") + _END,
           "do not fit|limit")
    yield ("huge-size", "pax-size-5000-digits", pax({"size": "9" * 5000}) + member("x") + _END,
           "bad PAX size")


def number_cases():
    for value in ("inf", "-inf", "nan", "1e20", "-1e20", "1e400", "0x10", "1_0e5x"):
        yield ("numbers", "pax-mtime-" + value,
               pax({"mtime": value}) + member("f", b"x") + _END,
               "modification time|bad PAX mtime")
    yield ("numbers", "pax-dir-mtime-inf", pax({"mtime": "inf"}) + member("d", kind=b"5") + _END,
           "modification time")
    for field in ("uid", "gid"):
        for value in ("4294967296", "-1", "1" + "0" * 40, "nan"):
            yield ("numbers", "pax-%s-%s" % (field, value[:12]),
                   pax({field: value}) + member("f", b"x") + _END,
                   "out of range|bad PAX")
    yield ("numbers", "base256-uid-2**50", header(b"f", uid=1 << 50) + _END, "uid .* range")
    yield ("numbers", "base256-gid-negative", header(b"f", gid=-5) + _END, "gid .* range")
    yield ("numbers", "base256-mtime-2**80", header(b"f", mtime=1 << 80) + _END,
           "modification time")
    yield ("numbers", "device-major-2**40",
           header(b"dev", kind=b"3", dev=(1 << 40, 0)) + _END, "device major")
    yield ("numbers", "device-minor-negative",
           header(b"dev", kind=b"4", dev=(1, -1)) + _END, "device minor")


def name_cases():
    yield ("names", "pax-path-with-nul", pax({"path": b"a\0b"}) + member("x") + _END,
           "NUL byte")
    yield ("names", "pax-linkpath-with-nul",
           pax({"linkpath": b"/etc\0x"}) + member("x", kind=b"2") + _END, "NUL byte")
    yield ("names", "gnu-long-name-with-nul-in-the-middle",
           header(b"././@LongLink", size=9, kind=b"L") + pad(b"abc\0defg\0") + member("x")
           + _END, None)
    yield ("names", "pax-xattr-name-with-nul",
           pax({b"SCHILY.xattr.user.a\0b": "v"}) + member("x") + _END, "NUL")
    yield ("names", "name-4096-bytes", pax({"path": "a" * 4096}) + member("x") + _END,
           "longer than 4095 bytes")
    yield ("names", "link-target-5000-bytes",
           pax({"linkpath": "b/" * 2500}) + member("x", kind=b"2") + _END,
           "longer than 4095 bytes")
    yield ("names", "component-256-bytes", member("a" * 100 + "/" + "b" * 99)
           + pax({"path": "c" * 256}) + member("x") + _END, "component is longer than 255")
    yield ("names", "depth-300", pax({"path": "d/" * 300 + "f"}) + member("x") + _END,
           "deeper than 256")
    nest = tar([(ti("d/" * i, tarfile.DIRTYPE, mode=0o755), b"") for i in range(1, 1500)])
    yield ("names", "directories-nested-1500-deep", nest, "deeper than 256")
    yield ("names", "dotdot", member("../evil") + _END, "escapes the root")
    yield ("names", "dotdot-deep", member("a/b/../../../evil") + _END, "escapes the root")
    yield ("names", "pax-path-dotdot", pax({"path": "../../evil"}) + member("x") + _END,
           "escapes the root")
    yield ("names", "absolute-path-stays-inside", member("/etc/evil") + _END, None)
    yield ("names", "not-utf8", member(b"caf\xe9\xff") + _END, None)
    yield ("names", "empty-name-file", member("") + _END, "not a valid name")
    yield ("names", "dot-name-file", member(".") + _END, "not a valid name")


def link_cases(outside):
    yield ("links", "symlink-then-write-through",
           tar([(ti("evil", tarfile.SYMTYPE, outside), b""), (ti("evil/secret"), b"pwned")]),
           "write through symlink evil")
    yield ("links", "relative-symlink-then-write-through",
           tar([(ti("a/evil", tarfile.SYMTYPE, "../../outside"), b""),
                (ti("a/evil/new"), b"pwned")]), "write through symlink a/evil")
    yield ("links", "symlink-then-hardlink-through",
           tar([(ti("evil", tarfile.SYMTYPE, outside), b""),
                (ti("h", tarfile.LNKTYPE, "evil/secret"), b"")]), "write through symlink")
    yield ("links", "hardlink-dotdot", tar([(ti("h", tarfile.LNKTYPE, "../outside/secret"),
                                             b"")]), "escapes the root")
    yield ("links", "hardlink-absolute-outside",
           tar([(ti("h", tarfile.LNKTYPE, outside + "/secret"), b"")]), "not found")
    yield ("links", "hardlink-to-directory",
           tar([(ti("d", tarfile.DIRTYPE), b""), (ti("h", tarfile.LNKTYPE, "d"), b"")]),
           "hard link to directory")
    yield ("links", "hardlink-to-root", tar([(ti("h", tarfile.LNKTYPE, "/"), b"")]),
           "hard link to the root")
    yield ("links", "hardlink-to-itself", tar([(ti("h", tarfile.LNKTYPE, "h"), b"")]),
           "not found")
    yield ("links", "symlink-empty-target", member("s", kind=b"2") + _END,
           "symlink with an empty target")
    yield ("links", "symlink-replaced-not-followed",
           tar([(ti("s", tarfile.SYMTYPE, outside + "/secret"), b""), (ti("s"), b"new")]),
           None)
    yield ("links", "symlink-to-outside-is-only-a-name",
           tar([(ti("s", tarfile.SYMTYPE, outside + "/secret"), b"")]), None)


def whiteout_cases(outside):
    yield ("whiteouts", "whiteout-dotdot", member("../.wh.outside") + _END, "escapes the root")
    yield ("whiteouts", "whiteout-of-dotdot", member(".wh..") + _END, "invalid whiteout")
    yield ("whiteouts", "whiteout-of-dot", member("a/.wh..") + _END, "invalid whiteout")
    yield ("whiteouts", "whiteout-empty", member(".wh.") + _END, "invalid whiteout")
    yield ("whiteouts", "whiteout-through-symlink",
           tar([(ti("evil", tarfile.SYMTYPE, outside), b""), (ti("evil/.wh.secret"), b"")]),
           "write through symlink")
    yield ("whiteouts", "opaque-through-symlink",
           tar([(ti("evil", tarfile.SYMTYPE, outside), b""),
                (ti("evil/.wh..wh..opq"), b"")]), "write through symlink")
    yield ("whiteouts", "whiteout-of-the-root", member(".wh..wh..opq") + _END, None)


def device_cases():
    yield ("devices", "char-device-mem", member("dev/mem", kind=b"3", dev=(1, 1), mode=0o666)
           + _END, None)
    yield ("devices", "block-device-sda", member("dev/sda", kind=b"4", dev=(8, 0),
                                                 mode=0o666) + _END, None)
    yield ("devices", "setuid-root-shell", member("bin/sh", b"#!/bin/sh\n", mode=0o4755)
           + _END, None)
    yield ("devices", "fifo", member("run/fifo", kind=b"6") + _END, None)
    yield ("devices", "unknown-type", member("x", kind=b"Z") + _END, "unsupported member type")
    yield ("devices", "socket-type-in-ustar", member("x", kind=b"7") + _END, None)


def duplicate_cases():
    yield ("duplicates", "file-twice", member("f", b"one") + member("f", b"two") + _END, None)
    yield ("duplicates", "file-then-dir", member("f", b"x") + member("f", kind=b"5")
           + member("f/g", b"y") + _END, None)
    yield ("duplicates", "dir-then-file", member("d", kind=b"5") + member("d/x", b"x")
           + member("d", b"file") + _END, None)
    yield ("duplicates", "hardlink-then-target-replaced",
           member("a", b"a") + member("b", kind=b"1", linkname=b"a") + member("a", b"new")
           + _END, None)
    yield ("duplicates", "symlink-then-dir-same-name",
           tar([(ti("d", tarfile.SYMTYPE, "/"), b""), (ti("d", tarfile.DIRTYPE), b""),
                (ti("d/x"), b"x")]), None)


def truncation_cases():
    body = member("a", b"z" * 100_000) + member("b", b"b") + _END
    for comp, wrap in (("none", bytes), ("gzip", gz), ("zstd", zst)):
        data = wrap(body)
        # (an uncompressed archive cut inside its end-of-archive blocks is whole: not here)
        cuts = (100, 511, len(data) // 2, len(data) - 1500) if comp == "none" else \
            (1, 7, 100, len(data) // 2, len(data) - 3)
        for cut in sorted({c for c in cuts if 0 < c < len(data)}):
            yield ("truncated", "%s-cut-at-%d" % (comp, cut), data[:cut],
                   "truncated|corrupt|unexpected end")
    yield ("truncated", "header-only-then-eof", header(b"a", size=1000), "truncated")
    yield ("truncated", "pax-header-without-member", pax({"path": "x"}), "truncated|corrupt")
    yield ("truncated", "long-name-without-member", gnu_long("x" * 200), "truncated|corrupt")


def magic_cases():
    yield ("magic", "gzip-magic-garbage", b"\x1f\x8b" + b"garbage" * 100, "corrupt|truncated")
    yield ("magic", "gzip-bad-crc", gz(member("a", b"x") + _END)[:-8] + b"\0" * 8,
           "corrupt|CRC")
    yield ("magic", "zstd-magic-garbage", b"\x28\xb5\x2f\xfd" + b"garbage" * 100,
           "corrupt")
    yield ("magic", "zstd-reserved-block", b"\x28\xb5\x2f\xfd\x00\x38" + b"\x07\x00\x00",
           "corrupt")
    yield ("magic", "zstd-then-garbage", zst(member("a", b"x") + _END) + b"junk" * 10,
           "corrupt")
    yield ("magic", "bzip2-magic-garbage", b"BZh9" + b"garbage" * 100, "corrupt|truncated")
    yield ("magic", "xz-magic-garbage", b"\xfd7zXZ\x00" + b"garbage" * 100, "corrupt")
    yield ("magic", "bad-checksum", header(b"a", checksum=1) + _END, "bad header|corrupt")
    yield ("magic", "random-block", bytes(range(256)) * 2 + _END, "bad header|corrupt")
    yield ("magic", "bad-pax-record", header(b"P", size=12, kind=b"x") + pad(b"99 a=b\nxxxx\n")
           + member("x") + _END, "bad PAX record")
    yield ("magic", "pax-record-length-zero", header(b"P", size=6, kind=b"x") + pad(b"0 a=b\n")
           + member("x") + _END, "bad PAX record")


def sparse_cases():
    yield ("sparse", "gnu-sparse-type", header(b"s", size=512, kind=b"S") + b"\0" * 512 + _END,
           "sparse files are not supported")
    yield ("sparse", "pax-sparse-1.0", pax({"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                                            "GNU.sparse.realsize": str(1 << 50)})
           + member("s", b"") + _END, "sparse")
    yield ("sparse", "pax-sparse-0.0", pax({"GNU.sparse.size": str(1 << 50)})
           + member("s") + _END, "sparse")


def xattr_cases():
    yield ("xattrs", "value-128KiB", pax({"SCHILY.xattr.user.big": "v" * (128 << 10)})
           + member("x") + _END, "xattrs of more than 65536 bytes")
    yield ("xattrs", "value-70000-bytes", pax({"SCHILY.xattr.user.big": "v" * 70_000})
           + member("x") + _END, "xattrs of more than 65536 bytes")
    yield ("xattrs", "unknown-namespace", pax({"SCHILY.xattr.bogus.name": "v"})
           + member("x") + _END, "xattr bogus.name refused")
    yield ("xattrs", "empty-name", pax({"SCHILY.xattr.": "v"}) + member("x") + _END,
           "invalid xattr name")
    yield ("xattrs", "name-300-bytes", pax({"SCHILY.xattr.user." + "n" * 300: "v"})
           + member("x") + _END, "invalid xattr name")
    yield ("xattrs", "overlay-opaque-is-dropped",
           pax({"SCHILY.xattr.trusted.overlay.opaque": "y"}) + member("d", kind=b"5") + _END,
           None)
    yield ("xattrs", "bad-capability", pax({"SCHILY.xattr.security.capability": "junk"})
           + member("x") + _END, "xattr security.capability refused")
    yield ("xattrs", "posix-acl-garbage", pax({"SCHILY.xattr.system.posix_acl_access": "junk"})
           + member("x") + _END, "xattr system.posix_acl_access refused")
    yield ("xattrs", "ten-thousand-xattrs",
           pax({"SCHILY.xattr.user.a%d" % i: "v" for i in range(10_000)}) + member("x")
           + _END, "xattrs of more than 65536 bytes")


def all_cases(outside):
    """Every case, in a fixed order."""
    for gen in (memory_cases(), size_cases(), number_cases(), name_cases(),
                link_cases(outside), whiteout_cases(outside), device_cases(),
                duplicate_cases(), truncation_cases(), magic_cases(), sparse_cases(),
                xattr_cases()):
        yield from gen


def counts(outside="/nonexistent"):
    out = {}
    for cls, *_ in all_cases(outside):
        out[cls] = out.get(cls, 0) + 1
    return out
