"""The hostile corpus (corpus.py) against apply_layer: every case is refused with one line
of LayerError (an InvalidArgument) naming the reason, or applies inside its root; nothing
outside the root changes, and no case takes long (a negative size used to loop forever)."""
import io
import os
import signal
import stat

import pytest

from engine.hostile import corpus
from pyrunc.engine.layers import LayerError, apply_layer
from pyrunc.errors import InvalidArgument

pytestmark = pytest.mark.usefixtures("private_mount_ns")

CAP = 64 << 20          # the configurable cap, as ImageService passes it
OUTSIDE = "/nonexistent-outside"      # a stable name for ids; each test makes its own


def tree(path):
    out = {}
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            body = open(p, "rb").read() if stat.S_ISREG(st.st_mode) else None
            out[os.path.relpath(p, path)] = (st.st_mode, body)
    return out


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


@pytest.fixture
def place(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("keep")
    return tmp_path, root, outside


def _cases():
    return [pytest.param(cls, ident, expect, id="%s/%s" % (cls, ident))
            for cls, ident, _, expect in corpus.all_cases(OUTSIDE)]


def _data(cls, ident, outside):
    for c, i, data, _ in corpus.all_cases(str(outside)):
        if (c, i) == (cls, ident):
            return data
    raise KeyError(ident)


@pytest.mark.parametrize("source", ["stream", "file"])
@pytest.mark.parametrize("cls,ident,expect", _cases())
def test_hostile_layer(place, source, cls, ident, expect):
    base, root, outside = place
    data = _data(cls, ident, outside)
    before = tree(outside)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(60)
    try:
        if source == "stream":
            f = io.BufferedReader(io.BytesIO(data))
        else:
            (base / "layer").write_bytes(data)
            f = open(base / "layer", "rb")
        with f:
            if expect is None:
                apply_layer(f, str(root), max_size=CAP)
            else:
                with pytest.raises(InvalidArgument) as info:
                    apply_layer(f, str(root), max_size=CAP)
                assert isinstance(info.value, LayerError)
                message = str(info.value)
                assert "\n" not in message and len(message) < 600, message
                assert __import__("re").search(expect, message), message
    except _Timeout:
        pytest.fail("%s/%s: apply_layer still running after 60 s" % (cls, ident))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert tree(outside) == before
    assert sorted(os.listdir(base)) in (["outside", "root"], ["layer", "outside", "root"])
    if expect is None:
        # what applied stays inside the root: the outside tree is unchanged (above) and so is
        # its file's content (a symlink in the root may point anywhere; it is never followed)
        assert (outside / "secret").read_text() == "keep"


def test_counts_per_class_are_reported(capsys):
    counts = corpus.counts()
    with capsys.disabled():
        print("\nhostile layer corpus, cases per class: " + ", ".join(
            "%s %d" % kv for kv in sorted(counts.items())) + " (total %d, each run as a stream "
            "and as a file)" % sum(counts.values()))
    assert sum(counts.values()) >= 100


_OVERLAY_CLASSES = ("names", "links", "whiteouts", "duplicates", "devices", "xattrs")


@pytest.mark.parametrize("cls,ident,expect", [p for p in _cases()
                                               if p.values[0] in _OVERLAY_CLASSES])
def test_hostile_layer_in_an_overlay_upper(place, cls, ident, expect):
    """The same cases in overlay form, over a lower layer holding a symlink out, a
    directory and a file: refused or applied, never outside the upper, the lower unchanged."""
    base, root, outside = place
    lower = base / "lower"
    lower.mkdir()
    os.symlink(str(outside), lower / "evil")
    (lower / "d").mkdir()
    (lower / "d" / "f").write_text("lower")
    (lower / "x").write_text("lower x")
    before, lower_before = tree(outside), tree(lower)
    data = _data(cls, ident, outside)
    try:
        apply_layer(io.BytesIO(data), str(root), whiteouts="overlay", lowers=[str(lower)],
                    max_size=CAP)
    except InvalidArgument as e:
        assert isinstance(e, LayerError) and "\n" not in str(e)
        if expect is not None:
            assert __import__("re").search(expect, str(e)), str(e)
    else:
        assert expect is None, "%s/%s applied in overlay form" % (cls, ident)
    assert tree(outside) == before and tree(lower) == lower_before
    for ident_ in ("evil/x", "evil/.wh.secret", "evil/h"):
        payload = corpus.member(ident_, b"x") + corpus._END
        with pytest.raises(LayerError, match="write through symlink evil"):
            apply_layer(io.BytesIO(payload), str(root), whiteouts="overlay",
                        lowers=[str(lower)])
    assert tree(outside) == before and tree(lower) == lower_before
