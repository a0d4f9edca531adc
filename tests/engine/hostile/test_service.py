"""The hostile corpus through the image service (``import``: ingest, then unpack into a
snapshot): a refused layer is one line of InvalidArgument and leaves nothing behind (no
image, blob, ingest, snapshot or snapshot directory, extraction lock), and the collection
lock is free afterwards; an accepted one becomes an image."""
import io
import os

import pytest

from engine.hostile import corpus
from pyrunc.engine.images import ImageService, import_image
from pyrunc.engine.images.unpack import LayerLimits
from pyrunc.errors import InvalidArgument, NotFound

OUTSIDE = "/nonexistent-outside"
LIMITS = LayerLimits(ratio=1100, floor=1 << 20, cap=64 << 20)


def _cases():
    return [pytest.param(cls, ident, expect, id="%s/%s" % (cls, ident))
            for cls, ident, _, expect in corpus.all_cases(OUTSIDE)]


@pytest.mark.parametrize("cls,ident,expect", _cases())
def test_hostile_import(tmp_path, private_mount_ns, cls, ident, expect):
    data = [d for c, i, d, _ in corpus.all_cases(str(tmp_path / "outside")) if i == ident][0]
    (tmp_path / "outside").mkdir()
    svc = ImageService(str(tmp_path / "engine"), snapshotter="native", layer_limits=LIMITS)
    if expect is None:
        image_id = import_image(svc, io.BytesIO(data), "hostile:1")
        assert svc.get("hostile:1").id == image_id
        assert os.listdir(tmp_path / "outside") == []
        return
    with pytest.raises(InvalidArgument) as err:
        import_image(svc, io.BytesIO(data), "hostile:1")
    message = str(err.value)
    assert "\n" not in message and len(message) < 600, message
    with pytest.raises(NotFound):
        svc.get("hostile:1")
    assert list(svc.snapshotter.walk()) == []
    assert os.listdir(os.path.join(svc.snapshotter.root, "snapshots")) == []
    extracting = os.path.join(svc.snapshotter.root, "extracting")
    assert not os.path.exists(extracting) or os.listdir(extracting) == []
    assert list(svc.content.walk()) == [] and list(svc.content.ingests()) == []
    with svc.content.gc_lock(exclusive=True):
        pass
    assert os.listdir(tmp_path / "outside") == []
