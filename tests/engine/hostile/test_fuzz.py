"""Generated hostile layers (hypothesis): mutated archives with their header checksums
repaired (so the mutation reaches past the checksum), arbitrary numbers in every numeric
field, arbitrary bytes under every compression. Whatever comes in, apply_layer either
applies it inside the root or raises one line of InvalidArgument; nothing else escapes."""
import gzip
import io
import os
import shutil
import tarfile

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from engine.hostile import corpus
from pyrunc.engine.layers import apply_layer
from pyrunc.engine.layers.tarstream import MAX_NAME, TarReader
from pyrunc.errors import InvalidArgument

pytestmark = pytest.mark.usefixtures("private_mount_ns")

SEED = (corpus.pax({"path": "dir/long-" + "n" * 150, "mtime": "1600000000.5",
                    "SCHILY.xattr.user.k": "v"}) + corpus.member("x", b"data")
        + corpus.member("dir", kind=b"5") + corpus.member("dir/f", b"hello" * 100)
        + corpus.member("dir/s", kind=b"2", linkname=b"../x")
        + corpus.member("dir/h", kind=b"1", linkname=b"dir/f")
        + corpus.gnu_long("g/" * 60 + "leaf") + corpus.member("y", b"yy")
        + corpus.member("dir/.wh.f") + corpus._END)


def repair_checksums(data):
    out = bytearray(data)
    for off in range(0, len(out) - 511, 512):
        block = out[off:off + 512]
        if block[257:262] == b"ustar":
            block[148:156] = b" " * 8
            block[148:156] = b"%06o\0 " % sum(block)
            out[off:off + 512] = block
    return bytes(out)


def run(data, base):
    root = base / "root"
    outside = base / "outside"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    outside.mkdir(exist_ok=True)
    (outside / "secret").write_text("keep")
    try:
        apply_layer(io.BytesIO(data), str(root), max_size=16 << 20)
    except InvalidArgument as e:
        assert "\n" not in str(e)
    assert sorted(os.listdir(outside)) == ["secret"]
    assert (outside / "secret").read_text() == "keep"
    assert sorted(os.listdir(base)) == ["outside", "root"]


_settings = settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow])


@_settings
@given(st.lists(st.tuples(st.integers(0, len(SEED) - 1), st.integers(0, 255)), max_size=12),
       st.booleans(), st.sampled_from(["none", "gzip"]))
def test_mutated_archives(tmp_path_factory, edits, repair, compression):
    data = bytearray(SEED)
    for pos, value in edits:
        data[pos] = value
    data = repair_checksums(bytes(data)) if repair else bytes(data)
    if compression == "gzip":
        data = gzip.compress(data, mtime=0)
    run(data, tmp_path_factory.mktemp("fuzz"))


_numbers = st.integers(-(1 << 70), 1 << 70) | st.integers(-5, 5) | st.sampled_from(
    [0, 1 << 32, (1 << 32) - 1, 1 << 63, -(1 << 63)])


@_settings
@given(size=_numbers, uid=_numbers, gid=_numbers, mtime=_numbers, major=_numbers,
       minor=_numbers, kind=st.sampled_from([b"0", b"3", b"4", b"5", b"6"]))
def test_numeric_fields(tmp_path_factory, size, uid, gid, mtime, major, minor, kind):
    def fits(v, width):
        return -(256 ** (width - 1)) < v < 256 ** (width - 1)
    if not (fits(size, 12) and fits(mtime, 12) and all(fits(v, 8) for v in (uid, gid, major,
                                                                                minor))):
        return
    data = corpus.header(b"n", size=size, kind=kind, uid=uid, gid=gid, mtime=mtime,
                         dev=(major, minor)) + b"z" * 1024 + corpus._END
    reader = TarReader(io.BytesIO(data))
    try:
        m = next(reader)
    except InvalidArgument:
        pass
    else:
        assert m.size >= 0 and 0 <= m.uid < 1 << 32 and 0 <= m.gid < 1 << 32
        assert 0 <= m.devmajor < 1 << 32 and 0 <= m.devminor < 1 << 32
        assert abs(m.mtime) < 1 << 34 or abs(m.mtime * 1e9) < 1 << 63
    run(data, tmp_path_factory.mktemp("num"))


_pax_values = st.text(max_size=40) | st.sampled_from(
    ["inf", "nan", "-1", "1e400", "9" * 30, "", " ", "0x1", "1_0", "\0"])


@_settings
@given(st.dictionaries(st.sampled_from(["path", "linkpath", "size", "uid", "gid", "mtime",
                                        "SCHILY.xattr.user.a", "SCHILY.xattr.",
                                        "GNU.sparse.size", "uname"]), _pax_values,
                       max_size=5),
       st.sampled_from([b"0", b"1", b"2", b"5"]))
def test_pax_records(tmp_path_factory, records, kind):
    data = corpus.pax(records) + corpus.member("p", b"body", kind=kind, linkname=b"x") \
        + corpus._END
    run(data, tmp_path_factory.mktemp("pax"))


@_settings
@given(st.binary(max_size=2048), st.sampled_from([b"", b"\x1f\x8b", b"\x28\xb5\x2f\xfd",
                                                  b"BZh", b"\xfd7zXZ\x00"]))
def test_arbitrary_bytes_under_every_magic(tmp_path_factory, tail, magic):
    run(magic + tail, tmp_path_factory.mktemp("raw"))


def test_long_names_up_to_the_limit_apply(tmp_path):
    """The limits refuse what they must and no more: a name of exactly MAX_NAME bytes
    within the depth and component limits applies."""
    name = ("d" * 200 + "/") * 20
    name = name + "f" * (MAX_NAME - len(name))
    assert len(name) == MAX_NAME
    data = corpus.pax({"path": name}) + corpus.member("x", b"ok") + corpus._END
    root = tmp_path / "root"
    root.mkdir()
    apply_layer(io.BytesIO(data), str(root))
    fd = os.open(root, os.O_RDONLY)
    try:
        for comp in name.split("/")[:-1]:
            nfd = os.open(comp, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        with open(os.open(name.split("/")[-1], os.O_RDONLY, dir_fd=fd), "rb") as f:
            assert f.read() == b"ok"
    finally:
        os.close(fd)
    assert tarfile  # (tarfile writes names this long only in PAX; the corpus writes its own)
