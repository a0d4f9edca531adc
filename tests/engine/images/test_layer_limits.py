"""Layer size limits on the load and import paths (pull shares them: ImageService.unpack)."""
import gzip
import hashlib
import io
import json
import os

import pytest

from engine.layers.tarbuild import entry, make_tar
from pyrunc.engine.images import ImageService, import_image, load
from pyrunc.engine.images.unpack import LayerLimits
from pyrunc.engine.layers import LayerTooLarge
from pyrunc.errors import InvalidArgument, NotFound

SMALL = LayerLimits(ratio=1100, floor=1 << 20, cap=None)


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def oci_layout(path, layer, diff_id, declared=None, name="crafted:1"):
    """An OCI image layout directory holding one image of one gzip layer; the manifest
    declares the layer's size as ``declared`` (default: the true size)."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data):
        (blobs / sha(data).split(":")[1]).write_bytes(data)
        return {"digest": sha(data), "size": len(data)}

    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    layer_desc = dict(put(layer), mediaType="application/vnd.oci.image.layer.v1.tar+gzip")
    if declared is not None:
        layer_desc["size"] = declared
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": dict(put(config), mediaType="application/vnd.oci.image.config.v1+json"),
        "layers": [layer_desc]}).encode()
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [dict(
        put(manifest), mediaType="application/vnd.oci.image.manifest.v1+json",
        annotations={"io.containerd.image.name": "docker.io/library/" + name})]}))
    return str(path)


def assert_nothing_left(svc):
    with pytest.raises(NotFound):
        svc.get("crafted:1")
    assert list(svc.snapshotter.walk()) == []
    assert os.listdir(os.path.join(svc.snapshotter.root, "snapshots")) == []
    extracting = os.path.join(svc.snapshotter.root, "extracting")
    assert not os.path.exists(extracting) or os.listdir(extracting) == []
    assert list(svc.content.walk()) == [] and list(svc.content.ingests()) == []


def zeros_layer(size):
    plain = make_tar([entry("zeros", data=b"\0" * size)])
    return gzip.compress(plain, mtime=0), sha(plain)


def test_load_refuses_a_layer_that_expands_past_its_declared_size(tmp_path, private_mount_ns):
    # an honest descriptor of a few kB whose blob expands to 4 MiB, past max(2 x its size,
    # 1 MiB): refused at the member's header, before any of its bytes is written
    svc = ImageService(str(tmp_path / "engine"),
                       layer_limits=LayerLimits(ratio=2, floor=1 << 20, cap=None))
    layer, diff_id = zeros_layer(4 << 20)
    with pytest.raises(LayerTooLarge, match=r"^layer sha256:[0-9a-f]{64}: refused: it expands "
                                            r"past 1048576 bytes, the limit for a \d+-byte "
                                            r"blob \(layer: zeros: 4194304 bytes exceed"):
        load(svc, oci_layout(tmp_path / "oci", layer, diff_id))
    assert_nothing_left(svc)


def test_load_refuses_a_descriptor_that_understates_its_blob(tmp_path, private_mount_ns):
    svc = ImageService(str(tmp_path / "engine"), layer_limits=SMALL)
    layer, diff_id = zeros_layer(64 << 10)
    with pytest.raises(InvalidArgument, match=r"^layer sha256:[0-9a-f]{64}: the blob has %d "
                                              r"bytes but its descriptor declares 10$"
                       % len(layer)):
        load(svc, oci_layout(tmp_path / "oci", layer, diff_id, declared=10))
    assert_nothing_left(svc)


def test_the_cap_bounds_every_layer(tmp_path, private_mount_ns):
    svc = ImageService(str(tmp_path / "engine"),
                       layer_limits=LayerLimits(ratio=1100, floor=1 << 20, cap=100_000))
    data = make_tar([entry("f%d" % i, data=os.urandom(30_000)) for i in range(5)], "gzip")
    with pytest.raises(LayerTooLarge, match="expands past 100000 bytes"):
        import_image(svc, io.BytesIO(data), "crafted:1")
    assert_nothing_left(svc)
    # within the cap the same path works
    roomy = ImageService(str(tmp_path / "roomy"), layer_limits=SMALL)
    assert import_image(roomy, io.BytesIO(data), "crafted:1") == roomy.get("crafted:1").id


def test_default_limits_unpack_an_ordinary_image(tmp_path, private_mount_ns):
    svc = ImageService(str(tmp_path / "engine"))
    layer, diff_id = zeros_layer(4 << 20)
    assert load(svc, oci_layout(tmp_path / "oci", layer, diff_id)) == [
        "Loaded image: crafted:1"]
    assert svc.history("crafted:1")[0]["Size"] == 4 << 20
