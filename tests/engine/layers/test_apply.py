"""Layer application: every member type, whiteouts, compression, diffIDs, hostile layers."""
import hashlib
import io
import os
import stat

import pytest

from engine.layers.tarbuild import entry, make_tar
from pyrunc.engine.layers import (LayerError, LayerTooLarge, apply_layer, write_overlay_diff,
                                  write_tree)

pytestmark = pytest.mark.usefixtures("private_mount_ns")


_SOURCE = {"kind": "stream", "dir": None}


@pytest.fixture(autouse=True, params=["stream", "file"])
def source_kind(request, tmp_path_factory):
    """Every test runs twice: the layer as a stream, and as a regular file (mapped reader)."""
    _SOURCE.update(kind=request.param, dir=tmp_path_factory.mktemp("layers"))
    yield request.param
    _SOURCE.update(kind="stream", dir=None)


def apply(data, root, **kw):
    if _SOURCE["kind"] == "stream":
        return apply_layer(io.BytesIO(data), str(root), **kw)
    path = _SOURCE["dir"] / "layer"
    path.write_bytes(data)
    with open(path, "rb") as f:
        return apply_layer(f, str(root), **kw)


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    r.mkdir()
    return r


@pytest.fixture
def outside(tmp_path):
    """A directory next to the root that no layer may touch."""
    o = tmp_path / "outside"
    o.mkdir()
    (o / "secret").write_text("keep")
    return o


def snapshot_of(path):
    out = {}
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            body = open(p, "rb").read() if stat.S_ISREG(st.st_mode) else None
            out[os.path.relpath(p, path)] = (st.st_mode, body)
    return out


VFS_CAP = b"\x01\x00\x00\x02\x00\x04" + b"\x00" * 14      # cap_net_bind_service, v2


def test_member_types_and_metadata(root):
    layer = make_tar([
        entry("etc", "dir", mode=0o750, uid=12, gid=34, mtime=1_500_000_000),
        entry("etc/file", data=b"data", mode=0o4711, uid=1000, gid=1001, mtime=1_400_000_000),
        entry("etc/link", "symlink", linkname="/etc/file", uid=5, gid=6),
        entry("etc/hard", "link", linkname="etc/file"),
        entry("dev/null", "char", mode=0o666, dev=(1, 3)),
        entry("dev/loop9", "block", mode=0o660, dev=(7, 9)),
        entry("run/fifo", "fifo", mode=0o620),
        entry("x", data=b"attr", xattrs={"user.note": b"hello",
                                         "security.capability": VFS_CAP}),
    ])
    result = apply(layer, root)
    assert result.diff_id == "sha256:" + hashlib.sha256(layer).hexdigest()
    assert result.size == 8
    st = os.lstat(root / "etc")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)) == \
        (0o750, 12, 34, 1_500_000_000)
    st = os.lstat(root / "etc/file")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)) == \
        (0o4711, 1000, 1001, 1_400_000_000)
    assert (root / "etc/file").read_bytes() == b"data"
    assert os.readlink(root / "etc/link") == "/etc/file"
    assert (os.lstat(root / "etc/link").st_uid, os.lstat(root / "etc/link").st_gid) == (5, 6)
    assert os.lstat(root / "etc/hard").st_ino == st.st_ino and st.st_nlink == 2
    st = os.lstat(root / "dev/null")
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    st = os.lstat(root / "dev/loop9")
    assert stat.S_ISBLK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660
    assert stat.S_ISFIFO(os.lstat(root / "run/fifo").st_mode)
    assert os.getxattr(root / "x", "user.note") == b"hello"
    assert os.getxattr(root / "x", "security.capability")[:4] == b"\x01\x00\x00\x02"


@pytest.mark.parametrize("compression", [None, "gzip", "zstd"])
def test_compression_and_diff_id(root, compression):
    plain = make_tar([entry("a", data=b"x" * 5000), entry("d", "dir")])
    data = make_tar([entry("a", data=b"x" * 5000), entry("d", "dir")], compression)
    diff_id = "sha256:" + hashlib.sha256(plain).hexdigest()
    assert apply(data, root, expected_diff_id=diff_id).diff_id == diff_id
    assert (root / "a").read_bytes() == b"x" * 5000


def test_diff_id_mismatch(root):
    with pytest.raises(LayerError, match="diffID mismatch: got sha256:.*expected sha256:0+"):
        apply(make_tar([entry("a")]), root, expected_diff_id="sha256:" + "0" * 64)


def lower_tree(root):
    apply(make_tar([
        entry("keep", data=b"k"), entry("gone", data=b"g"),
        entry("dir", "dir"), entry("dir/a", data=b"a"), entry("dir/sub", "dir"),
        entry("dir/sub/b", data=b"b"),
        entry("opq", "dir", mode=0o700), entry("opq/old", data=b"o"),
    ]), root)


def test_whiteouts_delete_format(root):
    lower_tree(root)
    apply(make_tar([
        entry(".wh.gone"), entry("dir/.wh.sub"),
        entry("opq/new", data=b"n"), entry("opq/.wh..wh..opq"),
        entry("fresh", data=b"f"), entry(".wh.fresh"),    # same layer: whiteout ignored
        entry(".wh..wh.plnk", "dir"),
        entry(".wh.absent"),
    ]), root)
    assert sorted(os.listdir(root)) == ["dir", "fresh", "keep", "opq"]
    assert os.listdir(root / "dir") == ["a"]
    assert os.listdir(root / "opq") == ["new"]


def test_whiteouts_overlay_format(root, tmp_path):
    lower = tmp_path / "lower"
    lower.mkdir()
    lower_tree(lower)
    apply(make_tar([
        entry(".wh.gone"), entry("dir/.wh.sub"),
        entry("opq", "dir", mode=0o711), entry("opq/.wh..wh..opq"), entry("opq/new", data=b"n"),
    ]), root, whiteouts="overlay", lowers=[str(lower)])
    st = os.lstat(root / "gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    st = os.lstat(root / "dir/sub")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(root / "opq", "trusted.overlay.opaque") == b"y"
    assert os.listdir(root / "opq") == ["new"]
    # the copied-up parent keeps the lower directory's metadata
    assert stat.S_IMODE(os.lstat(root / "dir").st_mode) == 0o755
    out = io.BytesIO()
    write_overlay_diff(str(root), out)
    again = tmp_path / "again"
    again.mkdir()
    lower_tree(again)
    apply(out.getvalue(), again)
    assert sorted(os.listdir(again)) == ["dir", "keep", "opq"]
    assert os.listdir(again / "dir") == ["a"] and os.listdir(again / "opq") == ["new"]


def test_overlay_hardlink_to_lower_is_copied_up(root, tmp_path):
    lower = tmp_path / "lower"
    lower.mkdir()
    lower_tree(lower)
    apply(make_tar([entry("dir/alias", "link", linkname="dir/a")]), root, whiteouts="overlay",
          lowers=[str(lower)])
    assert (root / "dir/alias").read_bytes() == b"a"
    assert os.lstat(root / "dir/a").st_ino == os.lstat(root / "dir/alias").st_ino


def test_replace_changes_kind(root):
    lower_tree(root)
    apply(make_tar([entry("dir", data=b"now a file"), entry("keep", "dir")]), root)
    assert (root / "dir").read_bytes() == b"now a file"
    assert (root / "keep").is_dir()


def test_write_tree_round_trip(root, tmp_path):
    lower_tree(root)
    os.link(root / "keep", root / "keep2")
    os.symlink("dir/a", root / "sym")
    out = io.BytesIO()
    write_tree(str(root), out)
    copy = tmp_path / "copy"
    copy.mkdir()
    apply(out.getvalue(), copy)
    assert snapshot_of(copy) == snapshot_of(root)
    assert os.lstat(copy / "keep").st_ino == os.lstat(copy / "keep2").st_ino
    out2 = io.BytesIO()
    write_tree(str(copy), out2)
    assert out.getvalue() == out2.getvalue()


# hostile layers ------------------------------------------------------------------------------

def hostile(root, outside, entries, match, compression=None):
    before = snapshot_of(outside)
    with pytest.raises(LayerError, match=match):
        apply(make_tar(entries, compression) if isinstance(entries, list) else entries, root)
    assert snapshot_of(outside) == before


def test_dotdot_path(root, outside):
    hostile(root, outside, [entry("../outside/evil", data=b"x")], "path escapes the root")
    hostile(root, outside, [entry("a/../../outside/evil", data=b"x")], "path escapes the root")


def test_absolute_symlink_escape(root, outside):
    hostile(root, outside, [entry("evil", "symlink", linkname=str(outside)),
                            entry("evil/secret", data=b"pwned")],
            "refusing to write through symlink evil")


def test_relative_symlink_escape(root, outside):
    hostile(root, outside, [entry("a", "dir"), entry("a/evil", "symlink", linkname="../../outside"),
                            entry("a/evil/new", data=b"pwned")],
            "refusing to write through symlink a/evil")


def test_symlink_then_write_through_it_in_a_later_layer(root, outside):
    apply(make_tar([entry("evil", "symlink", linkname=str(outside))]), root)
    hostile(root, outside, [entry("evil/secret", data=b"pwned")], "write through symlink evil")
    hostile(root, outside, [entry("evil/.wh.secret")], "write through symlink evil")
    hostile(root, outside, [entry("evil/.wh..wh..opq")], "write through symlink evil")


def test_symlink_as_last_component_is_replaced_not_followed(root, outside):
    apply(make_tar([entry("evil", "symlink", linkname=str(outside / "secret"))]), root)
    apply(make_tar([entry("evil", data=b"replaced")]), root)
    assert (outside / "secret").read_text() == "keep"
    assert (root / "evil").read_bytes() == b"replaced"


def test_hardlink_to_outside(root, outside):
    hostile(root, outside, [entry("h", "link", linkname="../outside/secret")],
            "path escapes the root")
    hostile(root, outside, [entry("h", "link", linkname=str(outside / "secret"))],
            "hard link target .* not found")
    hostile(root, outside, [entry("evil", "symlink", linkname=str(outside)),
                            entry("h", "link", linkname="evil/secret")],
            "write through symlink evil")


def test_huge_member(root, outside):
    # a header claiming 1 PiB with no data behind it
    import tarfile
    ti = tarfile.TarInfo("big")
    ti.size = 1 << 50
    header = ti.tobuf(tarfile.PAX_FORMAT)
    hostile(root, outside, header + b"\0" * 1024, "do not fit in the .* bytes free")
    assert os.listdir(root) == []       # refused before anything was written


@pytest.mark.parametrize("compression", [None, "gzip", "zstd"])
def test_layer_size_limit(root, compression):
    # a member bigger than the limit is refused before any of its bytes is written
    with pytest.raises(LayerTooLarge, match="^layer: a: 8000 bytes exceed the layer limit of "
                                            "5000 bytes$"):
        apply(make_tar([entry("a", data=b"x" * 8000)], compression), root, max_size=5000)
    assert not os.path.exists(root / "a")
    # so is a stream that goes on past the limit without any big member (here: after the end
    # of the archive), whatever its compression
    padded = make_tar([entry("b", data=b"y" * 100)]) + b"\0" * (1 << 20)
    data = _compress(padded, compression)
    with pytest.raises(LayerTooLarge, match="^layer: the uncompressed layer exceeds the limit "
                                            "of 65536 bytes$"):
        apply(data, root, max_size=65536)
    # within the limit the same layer applies
    assert apply(data, root, max_size=2 << 20).size == 100


def _compress(data, compression):
    if compression == "gzip":
        import gzip
        return gzip.compress(data, mtime=0)
    if compression == "zstd":
        import zstandard
        return zstandard.ZstdCompressor().compress(data)
    return data


@pytest.mark.parametrize("compression", [None, "gzip", "zstd"])
def test_truncated_archive(root, outside, compression):
    data = make_tar([entry("a", data=os.urandom(100_000)), entry("b", data=b"b")], compression)
    hostile(root, outside, data[:len(data) // 2], "truncated|corrupt|not a valid tar")


def test_garbage(root, outside):
    hostile(root, outside, b"\x1f\x8b" + b"garbage" * 100, "corrupt|not a valid tar|truncated")


def test_nested_replacements_keep_parents_usable(root):
    apply(make_tar([entry("a", "dir"), entry("a/b", "dir"), entry("a/b/c", data=b"c"),
                    entry("a/b", data=b"file now"), entry("a/d", data=b"d"),
                    entry("a/b", "dir"), entry("a/b/e", data=b"e")]), root)
    assert sorted(os.listdir(root / "a")) == ["b", "d"]
    assert os.listdir(root / "a/b") == ["e"]


def test_many_directories(root):
    entries = [entry("d%04d/f" % i, data=b"x") for i in range(1200)]
    apply(make_tar(entries), root)
    assert len(os.listdir(root)) == 1200


# properties ----------------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from pyrunc.engine.layers.apply import clean  # noqa: E402

_component = st.sampled_from(["a", "b", "..", ".", "", "evil", ".wh.a", ".wh..wh..opq",
                              "/tmp", "c d"])
_names = st.lists(_component, min_size=1, max_size=5).map("/".join)


@given(_names)
def test_clean_never_climbs(name):
    try:
        parts = clean(name)
    except LayerError:
        return
    assert ".." not in parts and "." not in parts and "" not in parts


_members = st.lists(st.tuples(
    st.sampled_from(["file", "dir", "symlink", "link"]), _names,
    st.sampled_from(["a", "../outside", "/outside", "evil/x", "a/b", "..", "/"])),
    min_size=1, max_size=8)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_members)
def test_random_layers_never_write_outside(tmp_path_factory, members):
    base = tmp_path_factory.mktemp("prop")
    root, outside = base / "root", base / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("keep")
    os.symlink(str(outside), root / "evil")
    entries = [entry(name, kind, data=b"x", linkname=target) for kind, name, target in members]
    try:
        apply(make_tar(entries), root)
    except LayerError:
        pass
    assert sorted(os.listdir(outside)) == ["secret"]
    assert (outside / "secret").read_text() == "keep"
    assert sorted(os.listdir(base)) == ["outside", "root"]
