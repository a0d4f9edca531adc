"""Hostile inputs to load and import: symlinks out of a loaded directory or archive, deep
nesting of directories, indexes and JSON, oversized documents and headers, bombs. Each is
refused with one line of InvalidArgument and leaves nothing behind (no image, blob, ingest,
snapshot), and garbage collection is not blocked afterwards."""
import hashlib
import io
import json
import os
import signal
import tarfile

import pytest

from engine.hostile import corpus
from engine.layers.tarbuild import entry, make_tar
from pyrunc.engine.images import ImageService, import_image, load, save
from pyrunc.engine.images.unpack import LayerLimits
from pyrunc.errors import InvalidArgument, NotFound


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(autouse=True)
def deadline():
    """An input that makes the engine loop (a negative size once did, holding the collection
    lock) fails its test instead of hanging the suite."""
    def fail(signum, frame):
        raise TimeoutError("still running after 240 s: the engine loops on this input")
    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(240)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def svc(tmp_path, private_mount_ns):
    return ImageService(str(tmp_path / "engine"), snapshotter="native")


def assert_nothing_left(svc, name="evil:1"):
    with pytest.raises(NotFound):
        svc.get(name)
    assert list(svc.snapshotter.walk()) == []
    assert os.listdir(os.path.join(svc.snapshotter.root, "snapshots")) == []
    assert list(svc.content.walk()) == [] and list(svc.content.ingests()) == []
    with svc.content.gc_lock(exclusive=True):       # nobody holds the collection lock
        pass


def one_line(err):
    message = str(err.value)
    assert "\n" not in message and len(message) < 400, message
    return message


def docker_dir(path, layer, link_layer_to=None, link_config_to=None):
    """A docker-archive directory of one image ``evil:1`` with one layer."""
    path.mkdir()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [sha(layer)]}}).encode()
    (path / "manifest.json").write_text(json.dumps([
        {"Config": "config.json", "RepoTags": ["evil:1"], "Layers": ["layer.tar"]}]))
    if link_config_to:
        os.symlink(link_config_to, path / "config.json")
    else:
        (path / "config.json").write_bytes(config)
    if link_layer_to:
        os.symlink(link_layer_to, path / "layer.tar")
    else:
        (path / "layer.tar").write_bytes(layer)
    return str(path)


@pytest.fixture
def host_secret(tmp_path):
    """A host file outside any archive that happens to be a valid layer (the worst case: it
    would load, unpack and be exported again by save)."""
    secret = make_tar([entry("secret.txt", data=b"host secret")])
    p = tmp_path / "host" / "secret.tar"
    p.parent.mkdir()
    p.write_bytes(secret)
    return p, secret


def test_a_directory_with_a_symlink_out_is_refused(svc, tmp_path, host_secret):
    path, secret = host_secret
    src = docker_dir(tmp_path / "arch", secret, link_layer_to=str(path))
    with pytest.raises(InvalidArgument, match=r"^load: layer.tar: symlink to .* leaves the "
                                              r"directory$") as err:
        load(svc, src)
    one_line(err)
    assert_nothing_left(svc)
    # a relative one climbing out too
    src = docker_dir(tmp_path / "arch2", secret, link_layer_to="../host/secret.tar")
    with pytest.raises(InvalidArgument, match="symlink to ../host/secret.tar leaves"):
        load(svc, src)
    assert_nothing_left(svc)


def test_a_config_symlinked_out_is_refused(svc, tmp_path):
    hostfile = tmp_path / "host.json"
    hostfile.write_text(json.dumps({"architecture": "amd64", "os": "linux",
                                    "rootfs": {"type": "layers", "diff_ids": []}}))
    src = docker_dir(tmp_path / "arch", make_tar([]), link_config_to=str(hostfile))
    with pytest.raises(InvalidArgument, match="config.json: symlink .* leaves"):
        load(svc, src)
    assert_nothing_left(svc)


def test_symlinks_inside_the_directory_still_load(svc, tmp_path):
    layer = make_tar([entry("f", data=b"ok")])
    src = tmp_path / "arch"
    docker_dir(src, layer, link_layer_to="blobs/real.tar")
    (src / "blobs").mkdir()
    (src / "blobs" / "real.tar").write_bytes(layer)
    assert load(svc, str(src)) == ["Loaded image: evil:1"]
    out = io.BytesIO()
    save(svc, ["evil:1"], out)
    assert b"ok" in out.getvalue()


def test_a_tar_with_a_symlink_out_is_refused(svc, tmp_path, host_secret):
    path, secret = host_secret
    for target in (str(path), "../../host/secret.tar", "/etc/passwd"):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            m = json.dumps([{"Config": "c.json", "RepoTags": ["evil:1"],
                             "Layers": ["layer.tar"]}]).encode()
            ti = tarfile.TarInfo("manifest.json")
            ti.size = len(m)
            tf.addfile(ti, io.BytesIO(m))
            ti = tarfile.TarInfo("layer.tar")
            ti.type, ti.linkname = tarfile.SYMTYPE, target
            tf.addfile(ti)
        buf.seek(0)
        with pytest.raises(InvalidArgument, match="layer.tar: symlink to .* leaves") as err:
            load(svc, buf)
        one_line(err)
        assert_nothing_left(svc)


def test_a_tar_member_named_outside_is_refused(svc):
    for name in ("../manifest.json", "/abs/manifest.json"):
        buf = io.BytesIO(corpus.member(name, b"[]") + corpus._END)
        with pytest.raises(InvalidArgument, match="outside the archive"):
            load(svc, buf)
        assert_nothing_left(svc)


def test_directories_nested_past_the_recursion_limit(svc, tmp_path):
    src = tmp_path / "deep"
    made = [src]
    src.mkdir()
    fd = os.open(src, os.O_RDONLY)
    for _ in range(1500):                       # (paths this long need relative steps)
        os.mkdir("d", dir_fd=fd)
        nfd = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    os.close(fd)
    try:
        with pytest.raises(InvalidArgument, match="nested deeper than") as err:
            load(svc, str(src))
        one_line(err)
        assert_nothing_left(svc)
    finally:
        # shutil.rmtree would itself recurse too deep: empty the chain from the top down
        while made and os.path.isdir(src / "d"):
            os.rename(src / "d", tmp_path / "top")
            if os.path.isdir(tmp_path / "top" / "d"):
                os.rename(tmp_path / "top" / "d", src / "d")
            os.rmdir(tmp_path / "top")


def test_a_fifo_in_the_directory_does_not_hang_the_load(svc, tmp_path):
    layer = make_tar([entry("f", data=b"ok")])
    src = tmp_path / "arch"
    docker_dir(src, layer)
    os.mkfifo(src / "fifo")
    assert load(svc, str(src)) == ["Loaded image: evil:1"]


def test_a_load_archive_with_a_1gib_pax_header(svc):
    data = corpus.gz(corpus.header(b"PaxHeader", size=1 << 30, kind=b"x") + b"9 a=bbb\n" * 4096)
    with pytest.raises(InvalidArgument, match="^load: not a valid archive: .*extended headers"):
        load(svc, io.BytesIO(data))
    assert_nothing_left(svc)


@pytest.mark.parametrize("ident", ["ustar-base256-minus-1-none", "pax-size-minus-512-gzip",
                                   "negative-size-pax-header-zstd"])
def test_a_load_archive_with_a_negative_size(svc, ident):
    data = [d for c, i, d, _ in corpus.size_cases() if i == ident][0]
    with pytest.raises(InvalidArgument, match="negative size"):
        load(svc, io.BytesIO(data))
    assert_nothing_left(svc)


def test_deeply_nested_json(svc, tmp_path):
    src = tmp_path / "arch"
    src.mkdir()
    (src / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InvalidArgument, match="manifest.json") as err:
        load(svc, str(src))
    one_line(err)
    assert_nothing_left(svc)


def oci_dir(path, blobs, index):
    (path / "blobs" / "sha256").mkdir(parents=True)
    for data in blobs:
        (path / "blobs" / "sha256" / sha(data)[7:]).write_bytes(data)
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (path / "index.json").write_text(json.dumps(index))
    return str(path)


def test_indexes_nested_deeply(svc, tmp_path):
    layer = make_tar([entry("f", data=b"x")])
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [sha(layer)]}}).encode()
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": sha(config), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": sha(layer), "size": len(layer)}]}).encode()
    blobs = [layer, config, manifest]
    top = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest),
           "size": len(manifest)}
    for _ in range(40):
        idx = json.dumps({"schemaVersion": 2,
                          "mediaType": "application/vnd.oci.image.index.v1+json",
                          "manifests": [top]}).encode()
        blobs.append(idx)
        top = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(idx),
               "size": len(idx)}
    src = oci_dir(tmp_path / "oci", blobs, {"schemaVersion": 2, "manifests": [top]})
    with pytest.raises(InvalidArgument, match="nested deeper than") as err:
        load(svc, src)
    one_line(err)
    assert_nothing_left(svc)


def test_a_huge_config_blob_is_not_read_into_memory(svc, tmp_path):
    big = b"{" + b" " * (20 << 20) + b"}"
    src = tmp_path / "arch"
    src.mkdir()
    (src / "manifest.json").write_text(json.dumps([{"Config": "c.json", "Layers": []}]))
    (src / "c.json").write_bytes(big)
    with pytest.raises(InvalidArgument, match="more than the|too large") as err:
        load(svc, str(src))
    one_line(err)
    assert_nothing_left(svc)


@pytest.mark.parametrize("ident", ["gzip-bomb-1GiB-of-zeros", "zstd-rle-bomb-400KB-12GiB"])
def test_import_of_a_bomb_stops_at_the_cap(tmp_path, private_mount_ns, ident):
    svc = ImageService(str(tmp_path / "engine"), snapshotter="native",
                       layer_limits=LayerLimits(ratio=1100, floor=1 << 20, cap=32 << 20))
    data = [d for c, i, d, _ in corpus.memory_cases() if i == ident][0]
    with pytest.raises(InvalidArgument, match="expands past|exceeds") as err:
        import_image(svc, io.BytesIO(data), "evil:1")
    one_line(err)
    assert_nothing_left(svc)


@pytest.mark.parametrize("ident", ["ustar-base256-minus-1-none", "pax-size-minus-512-gzip",
                                   "ustar-base256-minus-2**60-zstd"])
def test_import_of_negative_sizes(svc, ident):
    data = [d for c, i, d, _ in corpus.size_cases() if i == ident][0]
    with pytest.raises(InvalidArgument, match="negative size") as err:
        import_image(svc, io.BytesIO(data), "evil:1")
    one_line(err)
    assert_nothing_left(svc)


def test_the_engine_walkers_take_hostile_documents(svc):
    """The collector's walk and ImageService.add on documents a hostile archive or registry
    could have stored: nesting past the parser's depth, wrong types. No traceback: the
    collector skips them, add refuses them in one line."""
    deep = b'{"manifests":' * 100_000 + b"1" + b"}" * 100_000
    deep_digest = svc.content.put(deep)
    with svc.content.lease() as lease:
        lease.add(deep_digest)
        svc.gc()                                  # used to raise RecursionError
        assert svc.content.exists(deep_digest)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    config_digest = svc.content.put(config)
    bad = {
        "deep": deep,
        "list": b"[1, 2]",
        "layers-not-a-list": json.dumps({"config": {"digest": config_digest}, "layers": 5}),
        "layer-not-a-descriptor": json.dumps({"config": {"digest": config_digest},
                                              "layers": ["sha256:" + "0" * 64]}),
        "config-not-an-object": json.dumps({"config": "x", "layers": []}),
        "rootfs-a-list": json.dumps({"config": {"digest": svc.content.put(
            json.dumps({"rootfs": []}).encode())}, "layers": []}),
    }
    for name, doc in bad.items():
        digest = svc.content.put(doc.encode() if isinstance(doc, str) else doc)
        with pytest.raises(InvalidArgument) as err:
            svc.add(digest, ["evil:1"])
        one_line(err)
    svc.gc()
    assert_nothing_left(svc)


def test_symlinks_in_a_loop(svc):
    """Old docker archives name layers through symlinks; a loop of them is a missing file,
    not a hang or a RecursionError."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        m = json.dumps([{"Config": "a", "RepoTags": ["evil:1"], "Layers": []}]).encode()
        ti = tarfile.TarInfo("manifest.json")
        ti.size = len(m)
        tf.addfile(ti, io.BytesIO(m))
        for name, target in (("a", "b"), ("b", "c/../a")):
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname = tarfile.SYMTYPE, target
            tf.addfile(ti)
    buf.seek(0)
    with pytest.raises(InvalidArgument, match="^load: archive is missing [ab]$"):
        load(svc, buf)
    assert_nothing_left(svc)


def test_a_directory_swapped_for_a_symlink_during_the_walk(tmp_path):
    """The walk reopens each directory one component at a time without following symlinks:
    one swapped for a symlink out between listing and reading is refused, not followed."""
    from pyrunc.engine.images.archive import _open_subdir
    src = tmp_path / "arch"
    (src / "blobs").mkdir(parents=True)
    (tmp_path / "host").mkdir()
    top = os.open(src, os.O_RDONLY)
    try:
        os.close(_open_subdir(top, "blobs"))
        os.rmdir(src / "blobs")
        os.symlink(str(tmp_path / "host"), src / "blobs")
        with pytest.raises(InvalidArgument, match=r"^load: blobs: replaced \(by a symlink or a file\) while it was read$"):
            _open_subdir(top, "blobs")
    finally:
        os.close(top)
