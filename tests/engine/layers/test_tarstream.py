"""The layer tar reader agrees with Python's tarfile on what tarfile writes (PAX and GNU)."""
import hashlib
import io
import os
import tarfile

from hypothesis import given, settings, strategies as st

from pyrunc.engine.layers.tarstream import TarReader, LayerError

import pytest

_name_part = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x2FF,
                                   blacklist_characters="/\\"), min_size=1, max_size=60)
_names = st.lists(_name_part, min_size=1, max_size=4).map("/".join)

_members = st.lists(st.fixed_dictionaries({
    "name": _names,
    "type": st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE,
                             tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE]),
    "data": st.binary(max_size=3000),
    "linkname": _names,
    "uid": st.integers(0, 2 ** 21 - 1) | st.integers(2 ** 21, 2 ** 32 - 1),
    "mode": st.integers(0, 0o7777),
    "mtime": st.integers(0, 2 ** 33),
    "xattr": st.none() | st.binary(min_size=1, max_size=40),
}), min_size=1, max_size=6)


def build(members, fmt):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for m in members:
            ti = tarfile.TarInfo(m["name"])
            ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = (m["type"], m["mode"], m["uid"],
                                                           m["uid"], m["mtime"])
            if m["type"] in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                ti.linkname = m["linkname"]
            if m["type"] == tarfile.CHRTYPE:
                ti.devmajor, ti.devminor = 1, 3
            if m["xattr"] is not None and fmt == tarfile.PAX_FORMAT:
                ti.pax_headers = {"SCHILY.xattr.user.x": m["xattr"].decode("utf-8",
                                                                           "surrogateescape")}
            data = m["data"] if m["type"] == tarfile.REGTYPE else b""
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data) if data else None)
    return buf.getvalue()


def summary(ti, data):
    return (ti.name.rstrip("/"), ti.type, ti.size, ti.linkname, ti.uid, ti.gid, ti.mode,
            int(ti.mtime), ti.devmajor, ti.devminor,
            ti.pax_headers.get("SCHILY.xattr.user.x"), hashlib.sha256(data).hexdigest())


@settings(max_examples=150, deadline=None)
@given(_members, st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT]))
def test_reader_agrees_with_tarfile(members, fmt):
    try:
        raw = build(members, fmt)
    except (ValueError, UnicodeError):
        return                          # tarfile cannot write it in this format
    expected = []
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        for ti in tf:
            data = tf.extractfile(ti).read() if ti.isreg() else b""
            expected.append(summary(ti, data))
    reader = TarReader(io.BytesIO(raw))
    got = []
    r, w = os.pipe()
    try:
        for ti in reader:
            data = b""
            if ti.isreg() and ti.size:
                reader.copy_to(w, ti)
                data = os.read(r, ti.size + 1)
            got.append(summary(ti, data))
        reader.drain()
    finally:
        os.close(r)
        os.close(w)
    assert got == expected
    assert reader.hexdigest() == hashlib.sha256(raw).hexdigest()


@pytest.mark.parametrize("cut", [1, 100, 511, 513, 1000])
def test_truncated_headers_and_data(cut):
    ti = tarfile.TarInfo("a")
    ti.size = 2000
    raw = ti.tobuf(tarfile.PAX_FORMAT) + b"x" * 2000 + b"\0" * 48
    reader = TarReader(io.BytesIO(raw[:cut] if cut < 512 else raw[:512 + cut]))
    with pytest.raises(LayerError, match="truncated|corrupt"):
        for m in reader:
            r, w = os.pipe()
            try:
                reader.copy_to(w, m)
            finally:
                os.close(r)
                os.close(w)
