"""pull and push against a real docker-registry, with docker's progress events."""
import json
import os
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pyrunc.engine.content import ContentStore
from pyrunc.engine.distribution import fetch, parse_platform, pull, push, render_plain
from pyrunc.engine.distribution.progress import human_size, progress_bar
from pyrunc.engine.images import ImageService, chain_ids
from pyrunc.engine.registry import (AuthFile, Credentials, RegistryOptions, RegistryService,
                                    Unauthorized)
from pyrunc.engine.registry import mediatypes
from pyrunc.errors import InvalidArgument, NotFound, Unavailable


@pytest.fixture
def registries(tmp_path):
    service = RegistryService(RegistryOptions(certs_dir=str(tmp_path / "certs.d")),
                              AuthFile(str(tmp_path / "config.json")))
    yield service
    service.close()


def collect():
    seen = []
    return seen, seen.append


def layer_lines(lines, sid):
    return [line.split(": ", 1)[1] for line in lines if line.startswith(sid + ": ")]


def sid(desc):
    return desc["digest"].split(":")[1][:12]


def test_progress_formatting():
    assert human_size(36410) == "36.41kB"
    assert human_size(1088526) == "1.089MB"
    assert human_size(212) == "212B"
    assert progress_bar(212, 212) == "[" + "=" * 50 + ">] " + "    212B/212B"
    assert progress_bar(0, 1000).startswith("[>" + " " * 50 + "]")


def test_push_then_pull_with_docker_events(plain_registry, registries, store, images, tmp_path):
    digest, data, layers = images.build(store, [{"bin/a": b"a" * 5000},
                                                {"etc/b": os.urandom(200_000)}])
    name = "%s/test/app:v1" % plain_registry.domain
    pushed, callback = collect()
    result = push(name, store, registries, digest, progress=callback)
    lines = render_plain(pushed)
    assert lines[0] == "The push refers to repository [%s/test/app]" % plain_registry.domain
    assert lines[-1] == "v1: digest: %s size: %d" % (digest, len(data))
    for layer in layers:
        assert layer_lines(lines, sid(layer)) == ["Preparing", "Pushed"]
    config_digest = json.loads(data)["config"]["digest"]
    assert sorted(result.pushed) == sorted([layer["digest"] for layer in layers] + [config_digest])
    assert any(e.get("status") == "Pushing" and e["progressDetail"]["total"] for e in pushed)

    engine = ImageService(str(tmp_path / "engine"))
    got, callback = collect()
    result = pull(name, engine, registries, progress=callback)
    lines = render_plain(got)
    assert lines[0] == "v1: Pulling from test/app"
    for layer in layers:
        assert layer_lines(lines, sid(layer)) == ["Pulling fs layer", "Verifying Checksum",
                                                  "Download complete", "Pull complete"]
    assert lines[-2:] == ["Digest: " + digest,
                          "Status: Downloaded newer image for " + name]
    assert any(e["status"] == "Downloading" and e["progressDetail"]["current"] > 0 for e in got)
    assert [e["progressDetail"]["current"] for e in got if e["status"] == "Extracting"
            and e["id"] == sid(layers[1])] == [0, layers[1]["size"]]
    assert result.digest == digest and result.image_id == config_digest
    image = engine.inspect(name)
    assert image["Id"] == config_digest
    assert image["RepoTags"] == [name]
    assert image["RepoDigests"] == ["%s/test/app@%s" % (plain_registry.domain, digest)]
    assert engine.content.read(digest) == data
    assert list(engine.content.ingests()) == []

    again, callback = collect()
    result = pull(name, engine, registries, progress=callback)
    assert render_plain(again) == ["v1: Pulling from test/app", "Digest: " + digest,
                                   "Status: Image is up to date for " + name]
    assert result.up_to_date and result.downloaded == []

    # a second image sharing the first layer
    digest2, _, layers2 = images.build(store, [{"bin/a": b"a" * 5000}, {"c": b"new"}])
    name2 = "%s/test/app:v2" % plain_registry.domain
    pushed, callback = collect()
    push(name2, store, registries, digest2, progress=callback)
    assert layer_lines(render_plain(pushed), sid(layers2[0])) == ["Preparing",
                                                                  "Layer already exists"]
    got, callback = collect()
    pull(name2, engine, registries, progress=callback)
    lines = render_plain(got)
    assert layer_lines(lines, sid(layers2[0])) == ["Already exists"]
    assert layer_lines(lines, sid(layers2[1]))[-1] == "Pull complete"
    assert lines.index(sid(layers2[0]) + ": Already exists") < lines.index(
        sid(layers2[1]) + ": Pulling fs layer")

    # the pulled image pushes back under a new name, found by name in the image service
    engine.tag(name2, "%s/test/copy:v2" % plain_registry.domain)
    pushed, callback = collect()
    push("%s/test/copy:v2" % plain_registry.domain, engine.content, registries,
         images=engine, progress=callback, mount_from=["test/app"])
    assert render_plain(pushed)[-1].startswith("v2: digest: " + digest2)
    for layer in layers2:
        assert layer_lines(render_plain(pushed), sid(layer)) == ["Preparing",
                                                                 "Mounted from test/app"]


def test_pull_by_digest_and_docker_schema2(plain_registry, registries, store, images, tmp_path):
    digest, data, _ = images.build(store, [{"f": b"v2s2"}], oci=False)
    push("%s/test/v2s2:latest" % plain_registry.domain, store, registries, digest)
    other = ContentStore(str(tmp_path / "other"))
    ref = "%s/test/v2s2@%s" % (plain_registry.domain, digest)
    got, callback = collect()
    result = fetch(ref, other, registries, progress=callback)
    assert render_plain(got)[0] == "%s: Pulling from test/v2s2" % ref
    assert render_plain(got)[-1] == "Status: Downloaded newer image for " + ref
    assert result.manifest.media_type == mediatypes.DOCKER_MANIFEST
    assert other.read(digest) == data


def test_manifest_not_found(plain_registry, registries, store):
    name = "%s/library/busybox:nosuchtag" % plain_registry.domain
    with pytest.raises(NotFound) as err:
        fetch(name, store, registries)
    assert str(err.value) == ("manifest for %s not found: manifest unknown: manifest unknown"
                              % name)
    with pytest.raises(InvalidArgument, match="must be lowercase"):
        fetch("%s/library/BusyBox" % plain_registry.domain, store, registries)


def push_index(registries, store, domain, repo, tag, entries, docker=False):
    """Push each (image digest, platform dict) then an index of them under ``tag``."""
    manifests = []
    for digest, plat in entries:
        push("%s/%s@%s" % (domain, repo, digest), store, registries, digest)
        manifests.append({"mediaType": mediatypes.DOCKER_MANIFEST if docker else
                          mediatypes.OCI_MANIFEST, "digest": digest,
                          "size": store.info(digest).size, "platform": plat})
    index = json.dumps({"schemaVersion": 2, "mediaType": mediatypes.DOCKER_MANIFEST_LIST
                        if docker else mediatypes.OCI_INDEX, "manifests": manifests}).encode()
    index_digest = store.put(index)
    push("%s/%s:%s" % (domain, repo, tag), store, registries, index_digest)
    return index_digest


@pytest.mark.parametrize("docker", [False, True], ids=["oci-index", "manifest-list"])
def test_platform_selection(plain_registry, registries, store, images, tmp_path, docker):
    domain = plain_registry.domain
    amd64, _, _ = images.build(store, [{"arch": b"amd64"}], oci=not docker)
    arm64, _, _ = images.build(store, [{"arch": b"arm64"}], arch="arm64", oci=not docker)
    fake, _, _ = images.build(store, [{"arch": b"fake"}], oci=not docker)  # config says amd64
    repo = "test/multi-%s" % ("docker" if docker else "oci")
    index = push_index(registries, store, domain, repo, "multi", [
        (amd64, {"os": "linux", "architecture": "amd64"}),
        (arm64, {"os": "linux", "architecture": "arm64", "variant": "v8"})], docker=docker)
    push_index(registries, store, domain, repo, "fake", [
        (amd64, {"os": "linux", "architecture": "amd64"}),
        (fake, {"os": "linux", "architecture": "arm64", "variant": "v8"})], docker=docker)

    other = ContentStore(str(tmp_path / "other"))
    name = "%s/%s:multi" % (domain, repo)
    result = fetch(name, other, registries, platform=parse_platform("linux/amd64"))
    assert (result.digest, result.manifest.digest) == (index, amd64)
    assert other.exists(index)
    result = fetch(name, other, registries, platform=parse_platform("linux/arm64"))
    assert result.manifest.digest == arm64 and result.warning is None
    with pytest.raises(NotFound) as err:
        fetch(name, other, registries, platform=parse_platform("linux/s390x"))
    assert str(err.value) == "no matching manifest for linux/s390x in the manifest list entries"

    got, callback = collect()
    result = fetch("%s/%s:fake" % (domain, repo), other, registries,
                  platform=parse_platform("linux/arm64"), progress=callback)
    assert result.manifest.digest == fake
    warning = ("WARNING: image with reference %s/%s was found but does not match the specified "
               "platform: wanted linux/arm64/v8, actual: linux/amd64" % (domain, repo))
    assert result.warning == warning and render_plain(got)[-1] == warning


def test_platform_parsing():
    assert str(parse_platform("linux/arm64")) == "linux/arm64/v8"
    assert str(parse_platform("arm")) == "linux/arm/v7"
    assert str(parse_platform("linux/amd64")) == "linux/amd64"
    for bad in ("", "linux//x", "plan10/amd64", "a/b/c/d"):
        with pytest.raises(InvalidArgument, match="invalid platform"):
            parse_platform(bad)


def test_cross_repository_mount_and_chunked_push(plain_registry, registries, store, images):
    digest, _, layers = images.build(store, [{"m": os.urandom(150_000)}])
    domain = plain_registry.domain
    push("%s/test/mount-src:v1" % domain, store, registries, digest, chunk_size=64 * 1024)
    pushed, callback = collect()
    result = push("%s/test/mount-dst:v1" % domain, store, registries, digest,
                  mount_from=["test/mount-src"], progress=callback)
    assert layer_lines(render_plain(pushed), sid(layers[0])) == [
        "Preparing", "Mounted from test/mount-src"]
    assert result.mounted == [layers[0]["digest"]]


def test_push_errors(plain_registry, registries, store, tmp_path):
    with pytest.raises(NotFound, match="An image does not exist locally with the tag: "):
        push("%s/test/none:v1" % plain_registry.domain, store, registries,
             images=ImageService(str(tmp_path / "engine")))
    missing = store.put(json.dumps({"schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST,
                                    "config": {"mediaType": mediatypes.OCI_CONFIG,
                                               "digest": "sha256:" + "1" * 64, "size": 1},
                                    "layers": [{"mediaType": mediatypes.OCI_LAYER_GZIP,
                                                "digest": "sha256:" + "2" * 64, "size": 1}]
                                    }).encode())
    with pytest.raises(NotFound, match="layer sha256:2222.* is not in the local store"):
        push("%s/test/none:v1" % plain_registry.domain, store, registries, missing)


# -- faults ------------------------------------------------------------------------------------

def pushed_big_image(server, registries, store, images, size=3_000_000):
    digest, _, layers = images.build(store, [{"big": os.urandom(size)}])
    push("%s/test/fault:v1" % server.domain, store, registries, digest)
    return digest, layers[0]


def test_dropped_connection_resumes_with_range(start_registry, fault_proxy, registries, store,
                                               images, tmp_path):
    server = start_registry()
    digest, layer = pushed_big_image(server, registries, store, images)
    proxy = fault_proxy(server)
    proxy.faults[layer["digest"]] = [("drop", 1_000_000), ("drop", 500_000)]
    other = ContentStore(str(tmp_path / "other"))
    result = fetch("%s/test/fault:v1" % proxy.domain, other, registries)
    assert other.read(layer["digest"]) == store.read(layer["digest"])
    assert result.digest == digest
    ranges = [r for (m, p, r) in proxy.requests if layer["digest"] in p and m == "GET"]
    assert ranges == [None, "bytes=1000000-", "bytes=1500000-"]
    assert list(other.ingests()) == []


def test_wrong_digest_fails_cleanly(start_registry, fault_proxy, registries, store, images,
                                    tmp_path):
    server = start_registry()
    _, layer = pushed_big_image(server, registries, store, images, size=100_000)
    proxy = fault_proxy(server)
    proxy.faults[layer["digest"]] = [("corrupt",)]
    other = ContentStore(str(tmp_path / "other"))
    with pytest.raises(InvalidArgument) as err:
        fetch("%s/test/fault:v1" % proxy.domain, other, registries)
    assert str(err.value) == "filesystem layer verification failed for digest " + layer["digest"]
    assert not other.exists(layer["digest"])
    assert list(other.ingests()) == []
    assert os.listdir(os.path.join(other.root, "leases")) == []


def test_registry_stopped_mid_pull(start_registry, fault_proxy, registries, store, images,
                                   tmp_path):
    server = start_registry()
    _, layer = pushed_big_image(server, registries, store, images)
    proxy = fault_proxy(server)
    proxy.faults[layer["digest"]] = [("drop", 700_000)]
    other = ContentStore(str(tmp_path / "other"))
    seen = []

    def progress(event):
        seen.append(event)
        # the first byte progress on the layer: the registry goes away for good
        if event.get("status") == "Downloading" and server.proc is not None:
            server.stop()

    with pytest.raises(Unavailable) as err:
        fetch("%s/test/fault:v1" % proxy.domain, other, registries, progress=progress,
             retries=2)
    assert layer["digest"] in str(err.value)
    assert not other.exists(layer["digest"])
    assert list(other.ingests()) == []


# -- skopeo as the independent client ---------------------------------------------------------

def need_skopeo():
    if not shutil.which("skopeo"):
        pytest.skip("skopeo is not installed")


def skopeo(*args):
    return subprocess.run(["skopeo", *args], check=True, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.peer
def test_skopeo_pushed_oci_image_pulls(plain_registry, registries, store, images, tmp_path):
    need_skopeo()
    digest, data, layers = images.build(store, [{"s": b"from skopeo"}])
    layout = tmp_path / "layout"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    for info in store.walk():
        os.link(store.path(info.digest), layout / "blobs" / "sha256" / info.digest[7:])
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": mediatypes.OCI_MANIFEST, "digest": digest, "size": len(data),
        "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}))
    name = "%s/test/skopeo-in:v1" % plain_registry.domain
    skopeo("copy", "--dest-tls-verify=false", "oci:%s:v1" % layout, "docker://" + name)
    other = ContentStore(str(tmp_path / "other"))
    result = fetch(name, other, registries)
    assert result.manifest.media_type == mediatypes.OCI_MANIFEST
    assert other.read(layers[0]["digest"]) == store.read(layers[0]["digest"])


@pytest.mark.peer
def test_image_we_push_skopeo_inspects_and_copies(plain_registry, registries, store, images,
                                                  tmp_path):
    need_skopeo()
    digest, _, layers = images.build(store, [{"a": b"1"}, {"b": b"2"}], oci=False)
    name = "%s/test/skopeo-out:v1" % plain_registry.domain
    push(name, store, registries, digest, chunk_size=1024)
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", "docker://" + name).stdout)
    assert inspected["Digest"] == digest
    assert inspected["Layers"] == [layer["digest"] for layer in layers]
    assert inspected["Architecture"] == "amd64"
    skopeo("copy", "--src-tls-verify=false", "docker://" + name, "oci:%s:v1" % (tmp_path / "o"))
    index = json.loads((tmp_path / "o" / "index.json").read_text())
    copied = json.loads((tmp_path / "o" / "blobs" / "sha256" /
                         index["manifests"][0]["digest"][7:]).read_text())
    assert [layer["digest"] for layer in copied["layers"]] == [
        layer["digest"] for layer in layers]


# -- mirrors and auth through pull ------------------------------------------------------------

def test_docker_hub_pulls_go_to_the_mirror(start_registry, store, images, tmp_path):
    mirror = start_registry()
    down = start_registry()
    down.stop()
    options = RegistryOptions(certs_dir=str(tmp_path / "certs.d"),
                              mirrors=["http://" + down.domain, "http://" + mirror.domain])
    with RegistryService(options, AuthFile(str(tmp_path / "c.json"))) as registries:
        digest, _, _ = images.build(store, [{"m": b"mirrored"}])
        with RegistryService() as direct:
            push("%s/library/mirrored:v1" % mirror.domain, store, direct, digest)
        other = ContentStore(str(tmp_path / "other"))
        got, callback = collect()
        result = fetch("mirrored:v1", other, registries, progress=callback)
    assert result.digest == digest
    assert str(result.ref) == "docker.io/library/mirrored:v1"
    assert render_plain(got)[0] == "v1: Pulling from library/mirrored"
    assert render_plain(got)[-1] == "Status: Downloaded newer image for mirrored:v1"


def test_pull_needs_login_on_a_private_token_registry(start_registry, private_token_server,
                                                      tmp_path, store, images):
    server = start_registry(token=private_token_server)
    name = "%s/private/app:v1" % server.domain
    auth_file = AuthFile(str(tmp_path / "docker" / "config.json"))
    options = RegistryOptions(certs_dir=str(tmp_path / "certs.d"))
    digest, _, _ = images.build(store, [{"p": b"private"}])
    with RegistryService(options, auth_file) as registries:
        with pytest.raises(Unauthorized) as err:
            fetch(name, ContentStore(str(tmp_path / "a")), registries)
        assert str(err.value).startswith(
            "pull access denied for %s/private/app, repository does not exist or may require "
            "'docker login': " % server.domain)
        assert registries.login(server.domain, Credentials("alice", "wonderland")) == \
            "Login Succeeded"
        push(name, store, registries, digest)
    # a fresh service (a new daemon) uses the stored credentials
    with RegistryService(options, auth_file) as registries:
        assert fetch(name, ContentStore(str(tmp_path / "b")), registries).digest == digest
        assert registries.logout(server.domain) is True
    with RegistryService(options, auth_file) as registries:
        with pytest.raises(Unauthorized):
            fetch(name, ContentStore(str(tmp_path / "c")), registries)


def test_layers_beyond_the_concurrency_limit_wait(plain_registry, registries, store, images,
                                                  tmp_path):
    digest, _, layers = images.build(store, [{"l%d" % n: os.urandom(1000)} for n in range(5)])
    name = "%s/test/waiting:v1" % plain_registry.domain
    push(name, store, registries, digest)
    got, callback = collect()
    fetch(name, ContentStore(str(tmp_path / "other")), registries, progress=callback,
          max_concurrent_downloads=3)
    lines = render_plain(got)
    assert [layer_lines(lines, sid(layer))[:2] for layer in layers] == \
        [["Pulling fs layer", "Verifying Checksum"]] * 3 + [["Pulling fs layer", "Waiting"]] * 2
    assert lines.index(sid(layers[4]) + ": Pulling fs layer") < lines.index(
        sid(layers[3]) + ": Waiting")


def test_artifacts_that_are_not_images_are_refused(plain_registry, registries, store, tmp_path):
    config = store.put(b"{}")
    layer = store.put(b"chart")
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": config,
                   "size": 2},
        "layers": [{"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                    "digest": layer, "size": 5}]}).encode()
    name = "%s/test/chart:v1" % plain_registry.domain
    push(name, store, registries, store.put(manifest))
    other = ContentStore(str(tmp_path / "other"))
    with pytest.raises(InvalidArgument) as err:
        fetch(name, other, registries)
    assert str(err.value) == ("manifest for %s: config media type application/vnd.cncf.helm."
                              "config.v1+json: not a container image" % name)
    assert list(other.walk()) == []


def test_pull_unpacks_blobs_fetched_earlier(plain_registry, registries, store, images, tmp_path):
    digest, _, layers = images.build(store, [{"x": b"1"}, {"y": b"2"}])
    name = "%s/test/fetched:v1" % plain_registry.domain
    push(name, store, registries, digest)
    engine = ImageService(str(tmp_path / "engine"))
    fetch(name, engine.content, registries)
    got, callback = collect()
    result = pull(name, engine, registries, progress=callback)
    lines = render_plain(got)
    for layer in layers:
        assert layer_lines(lines, sid(layer)) == ["Pulling fs layer", "Download complete",
                                                  "Pull complete"]
    assert lines[-1] == "Status: Downloaded newer image for " + name
    assert result.downloaded == []
    assert engine.get(name).id == result.image_id


def test_concurrent_pulls_of_one_image_share_the_downloads(plain_registry, registries, store,
                                                           images, tmp_path):
    import threading
    digest, _, layers = images.build(store, [{"a": os.urandom(2_000_000)},
                                             {"b": os.urandom(2_000_000)}])
    name = "%s/test/concurrent:v1" % plain_registry.domain
    push(name, store, registries, digest)
    target = ContentStore(str(tmp_path / "shared"))
    results, errors = [], []

    def one():
        try:
            results.append(fetch(name, target, registries))
        except Exception as err:
            errors.append(err)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 3
    for layer in layers:
        assert target.read(layer["digest"]) == store.read(layer["digest"])
    assert list(target.ingests()) == []



@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drops=st.lists(st.integers(1, 300_000), min_size=1, max_size=3))
def test_resume_from_any_break_points(plain_registry, registries, store, images, fault_proxy,
                                      tmp_path_factory, drops):
    digest, _, layers = images.build(store, [{"r": bytes(range(256)) * 1000}])
    layer = layers[0]
    push("%s/test/resume:v1" % plain_registry.domain, store, registries, digest)
    proxy = fault_proxy(plain_registry)
    proxy.faults[layer["digest"]] = [("drop", n) for n in drops]
    target = ContentStore(str(tmp_path_factory.mktemp("resume")))
    fetch("%s/test/resume:v1" % proxy.domain, target, registries)
    assert target.read(layer["digest"]) == store.read(layer["digest"])
    expected, offset = [None], 0
    for n in drops:
        offset += min(n, layer["size"] - offset)
        if offset == layer["size"]:
            break
        expected.append("bytes=%d-" % offset)
    assert [r for (m, p, r) in proxy.requests if m == "GET" and layer["digest"] in p] == expected


def test_push_retries_an_upload_the_registry_failed(start_registry, fault_proxy, registries,
                                                    store, images):
    server = start_registry()
    proxy = fault_proxy(server)
    digest, _, layers = images.build(store, [{"u": os.urandom(10_000)}])
    proxy.failures.append(("PUT", "/blobs/uploads/", 503))
    pushed, callback = collect()
    push("%s/test/retry:v1" % proxy.domain, store, registries, digest, progress=callback)
    assert layer_lines(render_plain(pushed), sid(layers[0])) == ["Preparing", "Pushed"]
    uploads = [m for (m, p, r) in proxy.requests if "/blobs/uploads/" in p]
    assert uploads.count("POST") == 3        # layer twice (one failed PUT), config once
    assert proxy.failures == []
    with RegistryService() as direct:
        other = ContentStore(str(store.root) + "-copy")
        assert fetch("%s/test/retry:v1" % server.domain, other, direct).digest == digest


def test_pull_retries_a_blob_the_registry_failed(start_registry, fault_proxy, registries, store,
                                                 images, tmp_path):
    server = start_registry()
    digest, _, layers = images.build(store, [{"g": os.urandom(10_000)}])
    with RegistryService() as direct:
        push("%s/test/retry:v1" % server.domain, store, direct, digest)
    proxy = fault_proxy(server)
    proxy.failures += [("GET", layers[0]["digest"], 500), ("GET", layers[0]["digest"], 502)]
    other = ContentStore(str(tmp_path / "other"))
    fetch("%s/test/retry:v1" % proxy.domain, other, registries)
    assert other.read(layers[0]["digest"]) == store.read(layers[0]["digest"])
    proxy.failures.append(("GET", layers[0]["digest"], 404))
    with pytest.raises(NotFound, match="blob %s in " % layers[0]["digest"]):
        fetch("%s/test/retry:v1" % proxy.domain, ContentStore(str(tmp_path / "third")),
              registries)


# -- pull and garbage collection, pull and layer limits ---------------------------------------

def test_gc_during_a_pull_keeps_what_the_pull_will_reference(plain_registry, registries, store,
                                                             images, tmp_path):
    """A collection run (by another ImageService on the same root, so not deferred by any hold
    of the pulling one) at every layer's download and unpack removes nothing the pull needs,
    and is not blocked by the pull: it completes inside the progress callback."""
    digest, _, layers = images.build(store, [{"a": os.urandom(300_000)}, {"b": b"b" * 1000},
                                             {"c": os.urandom(100_000)}])
    name = "%s/test/gc:v1" % plain_registry.domain
    push(name, store, registries, digest)
    engine = ImageService(str(tmp_path / "engine"))
    other = ImageService(engine.root)
    collected, made = [], {}

    def progress(event):
        if event.get("status") in ("Download complete", "Pull complete"):
            if event["status"] == "Pull complete":
                # the snapshot as the pull made it, to check it is the one the image gets
                chain = chain_ids(diff_ids)[[sid(x) for x in layers].index(event["id"])]
                made[chain] = engine.snapshotter.stat(chain).created
            other.gc()
            collected.append(event["id"])

    diff_ids = json.loads(store.read(json.loads(store.read(digest))["config"]["digest"]))[
        "rootfs"]["diff_ids"]
    result = pull(name, engine, registries, progress=progress)
    assert len(collected) == 2 * len(layers)
    image = engine.get(name)
    assert image.id == result.image_id
    assert {chain: engine.snapshotter.stat(chain).created
            for chain in chain_ids(image.diff_ids)} == made
    for layer in layers:
        assert engine.content.exists(layer["digest"])
    assert os.listdir(os.path.join(engine.content.root, "leases")) == []
    engine.gc()
    assert len(list(engine.snapshotter.walk())) == len(layers)
    engine.remove(name)
    assert list(engine.snapshotter.walk()) == [] and list(engine.content.walk()) == []


def zstd_bomb(size):
    """A zstd layer whose one file of ``size`` zero bytes compresses to almost nothing; returns
    (blob, diffID) without ever holding the uncompressed tar in memory."""
    import hashlib
    import tarfile
    import zstandard
    info = tarfile.TarInfo("zeros")
    info.size = size
    header = info.tobuf(tarfile.PAX_FORMAT)
    tail = b"\0" * ((-size) % 512) + b"\0" * 1024
    h = hashlib.sha256()
    out = zstandard.ZstdCompressor().compressobj()
    parts = [out.compress(header)]
    h.update(header)
    chunk = b"\0" * (1 << 20)
    left = size
    while left:
        piece = chunk[:min(left, len(chunk))]
        parts.append(out.compress(piece))
        h.update(piece)
        left -= len(piece)
    parts += [out.compress(tail), out.flush()]
    h.update(tail)
    return b"".join(parts), "sha256:" + h.hexdigest()


def test_pull_refuses_a_layer_that_expands_past_its_limit(plain_registry, registries, store,
                                                          tmp_path):
    from pyrunc.engine.images.unpack import LayerLimits
    from pyrunc.engine.layers import LayerTooLarge
    blob, diff_id = zstd_bomb(64 << 20)
    assert len(blob) < 20_000
    layer = {"mediaType": mediatypes.OCI_LAYER_ZSTD, "digest": store.put(blob),
             "size": len(blob)}
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST,
                           "config": {"mediaType": mediatypes.OCI_CONFIG,
                                      "digest": store.put(config), "size": len(config)},
                           "layers": [layer]}).encode()
    name = "%s/test/bomb:v1" % plain_registry.domain
    push(name, store, registries, store.put(manifest))
    engine = ImageService(str(tmp_path / "engine"),
                          layer_limits=LayerLimits(ratio=1100, floor=1 << 20, cap=None))
    with pytest.raises(LayerTooLarge) as err:
        pull(name, engine, registries)
    limit = max(1 << 20, 1100 * len(blob))
    assert str(err.value) == (
        "layer %s: refused: it expands past %d bytes, the limit for a %d-byte blob (layer: "
        "zeros: %d bytes exceed the layer limit of %d bytes)"
        % (layer["digest"], limit, len(blob), 64 << 20, limit))
    with pytest.raises(NotFound):
        engine.get(name)
    assert list(engine.snapshotter.walk()) == []
    assert os.listdir(os.path.join(engine.snapshotter.root, "snapshots")) == []
    assert os.listdir(os.path.join(engine.content.root, "leases")) == []
    engine.gc()
    assert list(engine.content.walk()) == [] and list(engine.content.ingests()) == []
    # the same image under the default limits (256 MiB at least) pulls
    assert pull(name, ImageService(str(tmp_path / "roomy")), registries).image_id
