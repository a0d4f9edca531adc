"""A malicious registry: oversized and endless bodies, redirect loops, a token endpoint on
another host, wrong digests, Content-Length lies. Each pull must end in one error line, in
bounded time and memory, with nothing left in the content store's ingest area.

The registry is FakeRegistry (conftest.py) on loopback; what it sent (``fake.sent``) bounds
what the client read, and hashlib gives the digests.
"""
import hashlib
import json
import os
import socket
import time
import tracemalloc

import pytest

from pyrunc.engine.content import ContentStore
from pyrunc.engine.distribution import fetch
from pyrunc.engine.platforms import Platform
from pyrunc.engine.registry import AuthFile, Credentials, RegistryOptions, RegistryService
from pyrunc.engine.registry import client as registry_client
from pyrunc.engine.registry import mediatypes, transport
from pyrunc.errors import InvalidArgument, PyruncError, Unauthorized, Unavailable

from engine.registry.conftest import endless, reply  # noqa: E402  (tests/ is on sys.path)

LAYER = os.urandom(4096)
LAYER_DIGEST = "sha256:" + hashlib.sha256(LAYER).hexdigest()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


CONFIG = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": [sha256(b"diff")]}}).encode()
CONFIG_DIGEST = sha256(CONFIG)
MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST,
    "config": {"mediaType": mediatypes.OCI_CONFIG, "digest": CONFIG_DIGEST,
               "size": len(CONFIG)},
    "layers": [{"mediaType": mediatypes.OCI_LAYER_GZIP, "digest": LAYER_DIGEST,
                "size": len(LAYER)}]}).encode()


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    """Short timeouts and backoff, so that the bounds are tested in seconds."""
    monkeypatch.setattr(transport, "READ_TIMEOUT", 1)
    monkeypatch.setattr(transport, "BODY_DEADLINE", 3.0)
    monkeypatch.setattr(registry_client, "RETRY_BACKOFF", 0.01)
    monkeypatch.setattr(registry_client, "RETRY_BACKOFF_MAX", 0.05)


@pytest.fixture
def registries(tmp_path):
    service = RegistryService(RegistryOptions(certs_dir=str(tmp_path / "certs.d")),
                              AuthFile(str(tmp_path / "config.json")))
    yield service
    service.close()


@pytest.fixture
def content(tmp_path):
    return ContentStore(str(tmp_path / "content"))


def image(fake, manifest=MANIFEST, config=CONFIG, layer=LAYER):
    """Routes serving a one-layer image as test/app:v1 (later routes win)."""
    fake.route("GET", "/v2/test/app/manifests/", lambda r: reply(
        r, 200, manifest, {"Content-Type": mediatypes.OCI_MANIFEST}))
    fake.route("GET", "/v2/test/app/blobs/" + CONFIG_DIGEST, lambda r: reply(r, 200, config))
    fake.route("GET", "/v2/test/app/blobs/" + LAYER_DIGEST, lambda r: reply(r, 200, layer))
    return fake


def refused(fake, content, registries, category=PyruncError, seconds=20):
    """Pull test/app:v1 from ``fake``: the one-line error, after checking the bounds."""
    start = time.monotonic()
    with pytest.raises(category) as err:
        fetch("%s/test/app:v1" % fake.domain, content, registries)
    elapsed = time.monotonic() - start
    message = str(err.value)
    assert "\n" not in message and len(message) < 600, message
    assert elapsed < seconds, (elapsed, message)
    assert list(content.ingests()) == []
    assert os.listdir(os.path.join(content.root, "ingest")) == []
    assert not content.exists(LAYER_DIGEST)
    return message


def test_the_fake_image_pulls(fake_registry, content, registries):
    fake = image(fake_registry())
    result = fetch("%s/test/app:v1" % fake.domain, content, registries)
    assert content.read(LAYER_DIGEST) == LAYER and result.config_digest == CONFIG_DIGEST


# -- oversized and endless bodies --------------------------------------------------------------

def test_oversized_manifest_is_refused_from_its_content_length(fake_registry, content,
                                                               registries):
    fake = image(fake_registry())
    big = b" " * (mediatypes.MANIFEST_SIZE_LIMIT + 1) + b"{}"
    fake.route("GET", "/v2/test/app/manifests/", lambda r: reply(r, 200, big, {
        "Content-Type": mediatypes.OCI_MANIFEST}))
    message = refused(fake, content, registries, InvalidArgument)
    assert message == ("manifest for %s/test/app:v1: larger than the %d bytes allowed "
                       "(Content-Length %d)" % (fake.domain, mediatypes.MANIFEST_SIZE_LIMIT,
                                                len(big)))


@pytest.mark.parametrize("what", ["manifest", "config", "layer"])
def test_endless_chunked_bodies_end_in_one_error(fake_registry, content, registries, what):
    fake = image(fake_registry())
    path = {"manifest": "/v2/test/app/manifests/", "config": "/v2/test/app/blobs/" +
            CONFIG_DIGEST, "layer": "/v2/test/app/blobs/" + LAYER_DIGEST}[what]
    fake.route("GET", path, lambda r: endless(fake, r, headers={
        "Content-Type": mediatypes.OCI_MANIFEST}, chunk=b" " * 65536))
    tracemalloc.start()
    try:
        message = refused(fake, content, registries, InvalidArgument)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert {"manifest": "larger than the 4194304 bytes allowed",
            "config": "larger than the 4194304 bytes allowed",
            "layer": "registry sent more than the 4096 bytes"}[what] in message
    assert peak < 32 << 20, peak
    # the client stopped reading: what the server got out is the limit plus socket buffers
    assert fake.sent < 64 << 20, fake.sent


def test_trickling_manifest_hits_the_deadline(fake_registry, content, registries):
    fake = image(fake_registry())
    fake.route("GET", "/v2/test/app/manifests/", lambda r: endless(
        fake, r, chunk=b" ", delay=0.2))
    message = refused(fake, content, registries, Unavailable, seconds=10)
    assert message.endswith("the body did not arrive within 3 s")


# -- redirects ---------------------------------------------------------------------------------

def test_blob_redirect_loop_is_not_retried(fake_registry, content, registries):
    fake = image(fake_registry())
    fake.route("GET", "/v2/test/app/blobs/" + LAYER_DIGEST, lambda r: reply(
        r, 302, headers={"Location": "/v2/test/app/blobs/%s?again" % LAYER_DIGEST}))
    message = refused(fake, content, registries, Unavailable)
    assert message.endswith("stopped after 10 redirects")
    assert len(fake.headers_of("GET", "/v2/test/app/blobs/" + LAYER_DIGEST)) == 11


def test_redirect_ping_pong_between_two_hosts(fake_registry, content, registries):
    fake = image(fake_registry())
    other = fake_registry(host="127.0.0.2")
    fake.route("GET", "/v2/test/app/manifests/", lambda r: reply(
        r, 307, headers={"Location": other.url + "/bounce"}))
    other.route("GET", "/bounce", lambda r: reply(
        r, 307, headers={"Location": fake.url + "/v2/test/app/manifests/v1"}))
    assert refused(fake, content, registries, Unavailable).endswith("stopped after 10 redirects")


# -- a token endpoint on another host ----------------------------------------------------------

def bearer(fake, realm):
    def ping(request):
        if request.headers.get("Authorization", "").startswith("Bearer "):
            reply(request, 200, b"{}")
        else:
            reply(request, 401, b"{}", {"WWW-Authenticate": 'Bearer realm="%s",service="s"'
                                        % realm})
    fake.route("GET", "/v2/", lambda r: ping(r) if r.path == "/v2/" else reply(r, 404))


@pytest.mark.parametrize("behaviour, category, expected", [
    ("endless", InvalidArgument, "larger than the 1048576 bytes allowed"),
    ("trickle", Unavailable, "the body did not arrive within 3 s"),
    ("junk", Unavailable, "token server answered with invalid JSON"),
    ("list", Unavailable, "token server answered without a token"),
    ("newline", Unavailable, "token server answered with a malformed token"),
    ("denied", Unauthorized, "unauthorized: " + "x" * 200 + "..."),
    ("loop", Unavailable, "stopped after 10 redirects"),
])
def test_hostile_token_server_on_another_host(fake_registry, content, registries, behaviour,
                                              category, expected):
    fake = fake_registry()
    tokens = fake_registry(host="127.0.0.2")
    bearer(fake, tokens.url + "/token")
    image(fake)                          # after bearer's /v2/ prefix: its routes win
    answers = {
        "endless": lambda r: endless(tokens, r),
        "trickle": lambda r: endless(tokens, r, chunk=b" ", delay=0.2),
        "junk": lambda r: reply(r, 200, b"<html>"),
        "list": lambda r: reply(r, 200, b"[1, 2]"),
        "newline": lambda r: reply(r, 200, b'{"token": "a\\r\\nX-Evil: 1"}'),
        "denied": lambda r: reply(r, 401, b"x" * 5000 + b"\n" + b"y" * 100),
        "loop": lambda r: reply(r, 302, headers={"Location": "/token?again"}),
    }
    tokens.route("GET", "/token", answers[behaviour])
    message = refused(fake, content, registries, category)
    assert expected in message
    assert tokens.sent < 64 << 20


def test_credentials_do_not_follow_the_token_server_elsewhere(fake_registry, content, tmp_path):
    fake = fake_registry()
    tokens = fake_registry(host="127.0.0.2")
    elsewhere = fake_registry(host="127.0.0.3")
    bearer(fake, tokens.url + "/token")
    image(fake)                          # after bearer's /v2/ prefix: its routes win
    tokens.route("GET", "/token", lambda r: reply(r, 307, headers={
        "Location": elsewhere.url + "/token" + r.path[len("/token"):]}))
    elsewhere.route("GET", "/token", lambda r: reply(r, 200, b'{"token": "t"}'))
    auth_file = AuthFile(str(tmp_path / "docker.json"))
    auth_file.store(fake.domain, Credentials("alice", "s3cret"))
    with RegistryService(RegistryOptions(certs_dir=str(tmp_path / "certs.d")),
                         auth_file) as registries:
        fetch("%s/test/app:v1" % fake.domain, content, registries)
    assert tokens.headers_of("GET", "/token")[0]["Authorization"].startswith("Basic ")
    assert [h.get("Authorization") for h in elsewhere.headers_of("GET", "/token")] == [None]


def test_plain_http_realm_of_a_secure_host_is_refused(fake_registry, content, tmp_path):
    """The registry is insecure by name; its realm's host is not: no password in clear."""
    fake = fake_registry()
    tokens = fake_registry()
    bearer(fake, tokens.url + "/token")
    image(fake)                          # after bearer's /v2/ prefix: its routes win
    tokens.route("GET", "/token", lambda r: reply(r, 200, b'{"token": "t"}'))
    options = RegistryOptions(certs_dir=str(tmp_path / "certs.d"), insecure_cidrs=(),
                              insecure_registries=[fake.domain])
    auth_file = AuthFile(str(tmp_path / "docker.json"))
    auth_file.store(fake.domain, Credentials("alice", "s3cret"))
    with RegistryService(options, auth_file) as registries:
        message = refused(fake, content, registries, Unavailable)
    assert "plain HTTP is allowed only to insecure registries" in message
    assert tokens.requests == []


# -- wrong digests -----------------------------------------------------------------------------

def test_layer_with_wrong_bytes(fake_registry, content, registries):
    fake = image(fake_registry(), layer=os.urandom(len(LAYER)))
    assert refused(fake, content, registries, InvalidArgument) == (
        "filesystem layer verification failed for digest " + LAYER_DIGEST)


def test_config_with_wrong_bytes(fake_registry, content, registries):
    fake = image(fake_registry(), config=CONFIG.replace(b"amd64", b"arm64"))
    message = refused(fake, content, registries, InvalidArgument)
    assert message.startswith("blob %s: digest mismatch: expected %s, got sha256:"
                              % (CONFIG_DIGEST, CONFIG_DIGEST))
    assert not content.exists(CONFIG_DIGEST)


def test_manifest_failing_its_schema(fake_registry, content, registries):
    bad = json.loads(MANIFEST)
    bad["layers"][0]["size"] = -5
    fake = image(fake_registry(), manifest=json.dumps(bad).encode())
    assert refused(fake, content, registries, InvalidArgument) == (
        "manifest for %s/test/app:v1: layers/0/size: -5 is less than the minimum of 0"
        % fake.domain)


def test_config_failing_its_schema_is_not_stored(fake_registry, content, registries):
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": "sha256:x"}}).encode()
    manifest = MANIFEST.replace(CONFIG_DIGEST.encode(), sha256(config).encode()).replace(
        b'"size": %d' % len(CONFIG), b'"size": %d' % len(config))
    fake = image(fake_registry(), manifest=manifest)
    fake.route("GET", "/v2/test/app/blobs/" + sha256(config), lambda r: reply(r, 200, config))
    message = refused(fake, content, registries, InvalidArgument)
    assert message == ("image config %s: rootfs/diff_ids: 'sha256:x' is not of type 'array'"
                       % sha256(config))
    assert not content.exists(sha256(config))


# -- Content-Length lies -----------------------------------------------------------------------

def short_then_close(data, claimed):
    def answer(request):
        request.send_response(200)
        request.send_header("Content-Length", str(claimed))
        request.send_header("Content-Type", mediatypes.OCI_MANIFEST)
        request.end_headers()
        request.wfile.write(data)
        request.wfile.flush()
        request.close_connection = True
        request.connection.shutdown(socket.SHUT_RDWR)
    return answer


def short_then_stall(fake, data, claimed):
    def answer(request):
        request.send_response(200)
        request.send_header("Content-Length", str(claimed))
        request.end_headers()
        request.wfile.write(data)
        request.wfile.flush()
        fake.stopping.wait(30)          # keep the connection open, send nothing more
        request.close_connection = True
    return answer


def test_manifest_shorter_than_its_content_length(fake_registry, content, registries):
    fake = image(fake_registry())
    fake.route("GET", "/v2/test/app/manifests/", short_then_close(MANIFEST[:50], len(MANIFEST)))
    message = refused(fake, content, registries, Unavailable)
    assert message.startswith("manifest for %s/test/app:v1: reading the body: " % fake.domain)


def test_layer_shorter_than_its_content_length_is_resumed_then_given_up(fake_registry, content,
                                                                        registries):
    fake = image(fake_registry())
    fake.route("GET", "/v2/test/app/blobs/" + LAYER_DIGEST, short_then_close(LAYER[:100],
                                                                             len(LAYER)))
    message = refused(fake, content, registries, Unavailable)
    assert "download failed after 6 attempts" in message
    gets = fake.headers_of("GET", "/v2/test/app/blobs/" + LAYER_DIGEST)
    assert len(gets) == 6 and gets[1].get("Range") == "bytes=100-"


def test_layer_stalling_under_a_lying_content_length(fake_registry, content, registries):
    fake = image(fake_registry())
    fake.route("GET", "/v2/test/app/blobs/" + LAYER_DIGEST, short_then_stall(
        fake, LAYER[:100], len(LAYER)))
    message = refused(fake, content, registries, Unavailable, seconds=30)
    assert "download failed after 6 attempts" in message


def test_layer_longer_than_its_descriptor(fake_registry, content, registries):
    fake = image(fake_registry(), layer=LAYER + b"more")
    message = refused(fake, content, registries, InvalidArgument)
    assert message == ("blob %s: size mismatch: registry sent more than the %d bytes the "
                       "manifest declares" % (LAYER_DIGEST, len(LAYER)))


def test_index_entry_with_a_lying_size(fake_registry, content, registries):
    index = json.dumps({"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": [
        {"mediaType": mediatypes.OCI_MANIFEST, "digest": sha256(MANIFEST),
         "size": len(MANIFEST) - 1, "platform": {"architecture": "amd64", "os": "linux"}}]})
    fake = image(fake_registry())
    fake.route("GET", "/v2/test/app/manifests/v1", lambda r: reply(
        r, 200, index.encode(), {"Content-Type": mediatypes.OCI_INDEX}))
    with pytest.raises(InvalidArgument) as err:
        fetch("%s/test/app:v1" % fake.domain, content, registries,
              platform=Platform("linux", "amd64"))
    assert str(err.value) == ("manifest for %s/test/app:v1: %s has %d bytes, the index says %d"
                              % (fake.domain, sha256(MANIFEST), len(MANIFEST),
                                 len(MANIFEST) - 1))
    assert list(content.ingests()) == []


@pytest.mark.parametrize("length", ["-1", "12abc", "9" * 40])
def test_junk_content_length_in_a_head(fake_registry, registries, length):
    fake = fake_registry()
    fake.route("HEAD", "/v2/test/app/blobs/", lambda r: reply(r, 200, length=length))
    with pytest.raises(InvalidArgument) as err:
        registries.get(fake.domain).repository("test/app").blob_size(LAYER_DIGEST)
    assert "the registry sent Content-Length" in str(err.value)
    assert "\n" not in str(err.value)


def test_tags_answer_of_the_wrong_shape(fake_registry, registries):
    fake = fake_registry()
    fake.route("GET", "/v2/test/app/tags/list", lambda r: reply(r, 200, b'{"tags": [1, {}]}'))
    with pytest.raises(InvalidArgument, match="not a list of tags"):
        registries.get(fake.domain).repository("test/app").tags()


def test_pull_by_sha512_digest(fake_registry, content, registries, tmp_path):
    fake = image(fake_registry())
    good = "sha512:" + hashlib.sha512(MANIFEST).hexdigest()
    result = fetch("%s/test/app@%s" % (fake.domain, good), content, registries)
    assert result.digest == good and content.read(good) == MANIFEST
    wrong = "sha512:" + hashlib.sha512(MANIFEST + b" ").hexdigest()
    with pytest.raises(InvalidArgument) as err:
        fetch("%s/test/app@%s" % (fake.domain, wrong), content, registries)
    assert str(err.value) == ("manifest for %s/test/app@%s: digest mismatch: expected %s, got %s"
                              % (fake.domain, wrong, wrong, good))
    with pytest.raises(InvalidArgument, match="^unsupported digest algorithm: sha384:"):
        fetch("%s/test/app@sha384:%s" % (fake.domain, "a" * 96), content, registries)


def test_image_pulled_by_sha512_digest_is_named_by_it(fake_registry, registries, tmp_path,
                                                      images):
    from pyrunc.engine.distribution import pull
    from pyrunc.engine.images import ImageService
    blob, diff_id = images.layer({"etc/hostname": b"sha512\n"})
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST,
        "config": {"mediaType": mediatypes.OCI_CONFIG, "digest": sha256(config),
                   "size": len(config)},
        "layers": [{"mediaType": mediatypes.OCI_LAYER_GZIP, "digest": sha256(blob),
                    "size": len(blob)}]}).encode()
    fake = fake_registry()
    fake.route("GET", "/v2/test/app/manifests/", lambda r: reply(
        r, 200, manifest, {"Content-Type": mediatypes.OCI_MANIFEST}))
    fake.route("GET", "/v2/test/app/blobs/" + sha256(config), lambda r: reply(r, 200, config))
    fake.route("GET", "/v2/test/app/blobs/" + sha256(blob), lambda r: reply(r, 200, blob))
    digest = "sha512:" + hashlib.sha512(manifest).hexdigest()
    engine = ImageService(str(tmp_path / "engine"))
    name = "%s/test/app@%s" % (fake.domain, digest)
    result = pull(name, engine, registries)
    assert result.image_id == sha256(config)
    assert engine.inspect(name)["Id"] == sha256(config)


def test_upload_location_over_plain_http_to_a_secure_host_is_refused_once(fake_registry,
                                                                          tmp_path):
    fake = fake_registry()
    other = fake_registry()
    fake.route("POST", "/v2/test/app/blobs/uploads/", lambda r: reply(
        r, 202, headers={"Location": other.url + "/upload/1"}))
    other.route("PUT", "/upload/", lambda r: reply(r, 201))
    options = RegistryOptions(certs_dir=str(tmp_path / "certs.d"), insecure_cidrs=(),
                              insecure_registries=[fake.domain])
    with RegistryService(options, AuthFile(str(tmp_path / "c.json"))) as registries:
        repo = registries.get(fake.domain).repository("test/app", for_push=True)
        with pytest.raises(Unavailable, match="plain HTTP is allowed only to insecure"):
            repo.upload_blob(LAYER_DIGEST, len(LAYER), lambda: __import__("io").BytesIO(LAYER))
    assert other.requests == []
    assert len(fake.headers_of("POST", "/v2/test/app/blobs/uploads/")) == 1
