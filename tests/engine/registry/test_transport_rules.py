"""Where the registry client sends credentials, which redirects it follows, which digests it
verifies: against scripted registries on loopback (FakeRegistry in conftest.py).

Oracles: the credentials a server received (an outside observation), the OCI image spec's
registered digest algorithms (sha256, sha512), and the hashes hashlib computes.
"""
import base64
import hashlib
import io
import json
import shutil

import pytest

from pyrunc.engine.registry import Credentials, Registry, RegistryOptions
from pyrunc.engine.registry import mediatypes
from pyrunc.errors import InvalidArgument, Unavailable

from engine.registry.conftest import reply  # noqa: E402  (tests/ is on sys.path)

USER = Credentials("alice", "s3cret")
BASIC = "Basic " + base64.b64encode(b"alice:s3cret").decode()


def client(fake, tmp_path, credentials=None, **options):
    options.setdefault("certs_dir", str(tmp_path / "certs.d"))
    return Registry(fake.domain, RegistryOptions(**options), credentials=credentials)


def basic_registry(fake):
    """Routes for a registry wanting Basic credentials on every /v2/ request."""
    def ping(request):
        if request.headers.get("Authorization") == BASIC:
            reply(request, 200, b"{}")
        else:
            reply(request, 401, b"{}", {"WWW-Authenticate": 'Basic realm="fake"'})
    fake.route("GET", "/v2/", lambda r: ping(r) if r.path == "/v2/" else reply(r, 404))
    return fake


def bearer_registry(fake):
    """Routes for a registry whose token server (on itself) gives ``tok-123`` to alice."""
    def ping(request):
        if request.headers.get("Authorization") == "Bearer tok-123":
            reply(request, 200, b"{}")
        else:
            reply(request, 401, b"{}", {"WWW-Authenticate": 'Bearer realm="%s/token",'
                                        'service="fake"' % fake.url})

    def token(request):
        if request.headers.get("Authorization") != BASIC:
            reply(request, 401, b'{"details":"no"}')
        else:
            reply(request, 200, json.dumps({"token": "tok-123"}).encode())
    fake.route("GET", "/v2/", lambda r: ping(r) if r.path == "/v2/" else reply(r, 404))
    fake.route("GET", "/token", token)
    return fake


def upload_elsewhere(fake, other):
    """The upload session lives on ``other``: POST answers with a Location there."""
    fake.route("POST", "/v2/test/app/blobs/uploads/",
               lambda r: reply(r, 202, headers={"Location": other.url + "/upload/1"}))
    other.route("PATCH", "/upload/", lambda r: reply(
        r, 202, headers={"Location": other.url + "/upload/1"}))
    other.route("PUT", "/upload/", lambda r: reply(r, 201))


@pytest.mark.parametrize("scheme", ["basic", "bearer"])
@pytest.mark.parametrize("chunk_size", [None, 4])
def test_upload_location_on_another_host_gets_no_credentials(fake_registry, tmp_path, scheme,
                                                             chunk_size):
    fake = fake_registry()
    (basic_registry if scheme == "basic" else bearer_registry)(fake)
    other = fake_registry(host="127.0.0.2")
    upload_elsewhere(fake, other)
    data = b"0123456789"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with client(fake, tmp_path, USER) as registry:
        repo = registry.repository("test/app", for_push=True)
        repo.upload_blob(digest, len(data), lambda: io.BytesIO(data), chunk_size=chunk_size)
    expected = BASIC if scheme == "basic" else "Bearer tok-123"
    [post] = fake.headers_of("POST", "/v2/test/app/blobs/uploads/")
    assert post.get("Authorization") == expected
    sent = other.headers_of("PUT", "/upload/") + other.headers_of("PATCH", "/upload/")
    assert len(sent) == (1 if chunk_size is None else 4)
    assert [h.get("Authorization") for h in sent] == [None] * len(sent)


def test_a_challenge_from_another_host_is_not_taken(fake_registry, tmp_path):
    """A 401 from the upload host must not make the client fetch tokens from its realm."""
    fake = basic_registry(fake_registry())
    other = fake_registry(host="127.0.0.2")
    fake.route("POST", "/v2/test/app/blobs/uploads/",
               lambda r: reply(r, 202, headers={"Location": other.url + "/upload/1"}))
    other.route("PUT", "/upload/", lambda r: reply(r, 401, headers={
        "WWW-Authenticate": 'Bearer realm="%s/steal"' % other.url}))
    data = b"x"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with client(fake, tmp_path, USER) as registry:
        repo = registry.repository("test/app", for_push=True)
        with pytest.raises(Exception):
            repo.upload_blob(digest, 1, lambda: io.BytesIO(data))
    assert other.headers_of("GET", "/steal") == []
    assert all("Authorization" not in h for _, _, h in other.requests)


def test_blob_redirect_to_another_host_carries_no_credentials(fake_registry, tmp_path):
    fake = bearer_registry(fake_registry())
    cdn = fake_registry(host="127.0.0.2")
    data = b"layer bytes"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    fake.route("GET", "/v2/test/app/blobs/", lambda r: reply(
        r, 307, headers={"Location": cdn.url + "/blob?sig=1"}))
    cdn.route("GET", "/blob", lambda r: reply(r, 200, data))
    with client(fake, tmp_path, USER) as registry:
        assert registry.repository("test/app").get_blob(digest, len(data)) == data
    assert fake.headers_of("GET", "/v2/test/app/blobs/")[0]["Authorization"] == "Bearer tok-123"
    [got] = cdn.headers_of("GET", "/blob")
    assert "Authorization" not in got


def test_redirect_loop_is_bounded(fake_registry, tmp_path):
    fake = fake_registry()
    fake.route("GET", "/v2/test/app/manifests/", lambda r: reply(
        r, 302, headers={"Location": r.path}))
    with client(fake, tmp_path) as registry:
        with pytest.raises(Unavailable) as err:
            registry.repository("test/app").get_manifest("latest")
    assert str(err.value).endswith("stopped after 10 redirects")
    assert "\n" not in str(err.value)
    assert len(fake.headers_of("GET", "/v2/test/app/manifests/")) == 11


def test_no_downgrade_from_https_to_http(fake_registry, pki, tmp_path):
    fake = fake_registry(tls=(pki["server.crt"], pki["server.key"]))
    plain = fake_registry()
    fake.route("GET", "/v2/test/app/manifests/", lambda r: reply(
        r, 302, headers={"Location": plain.url + "/manifest"}))
    certs = tmp_path / "certs.d" / fake.domain
    certs.mkdir(parents=True)
    shutil.copy(pki["ca.crt"], certs / "ca.crt")
    with client(fake, tmp_path, insecure_cidrs=()) as registry:
        repo = registry.repository("test/app")
        assert repo.connection.url == fake.url        # verified HTTPS
        with pytest.raises(Unavailable) as err:
            repo.get_manifest("latest")
    assert ("refused %s/manifest: plain HTTP is allowed only to insecure registries, and "
            "%s is not one" % (plain.url, plain.domain)) in str(err.value)
    assert plain.requests == []


def test_insecure_rules_apply_to_the_redirect_target(fake_registry, tmp_path):
    fake = fake_registry()
    other = fake_registry()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST,
                           "config": {"mediaType": mediatypes.OCI_CONFIG, "size": 2,
                                      "digest": "sha256:" + "a" * 64},
                           "layers": []}).encode()
    fake.route("GET", "/v2/test/app/manifests/", lambda r: reply(
        r, 302, headers={"Location": other.url + "/m"}))
    other.route("GET", "/m", lambda r: reply(r, 200, manifest,
                                             {"Content-Type": mediatypes.OCI_MANIFEST}))
    # the registry is insecure by name; the host it redirects to is not
    with client(fake, tmp_path, insecure_cidrs=(),
                insecure_registries=[fake.domain]) as registry:
        with pytest.raises(Unavailable, match="plain HTTP is allowed only to insecure"):
            registry.repository("test/app").get_manifest("latest")
    assert other.requests == []
    with client(fake, tmp_path, insecure_cidrs=(),
                insecure_registries=[fake.domain, other.domain]) as registry:
        got = registry.repository("test/app").get_manifest("latest")
    assert got.data == manifest


def test_tls_of_a_redirect_target_is_verified_by_its_own_rules(fake_registry, pki, tmp_path):
    """An insecure registry (TLS unverified) redirecting to a secure host: that host's
    certificate is verified, with that host's certs.d CA."""
    tls = (pki["server.crt"], pki["server.key"])
    fake = fake_registry(tls=tls)
    target = fake_registry(tls=tls)
    data = b"blob"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    fake.route("GET", "/v2/test/app/blobs/", lambda r: reply(
        r, 307, headers={"Location": target.url + "/b"}))
    target.route("GET", "/b", lambda r: reply(r, 200, data))
    options = dict(insecure_cidrs=(), insecure_registries=[fake.domain])
    with client(fake, tmp_path, **options) as registry:
        repo = registry.repository("test/app")
        assert repo.connection.url == fake.url and not repo.connection.endpoint.verify_tls
        with pytest.raises(Unavailable, match="certificate verify failed"):
            repo.get_blob(digest, len(data))
    certs = tmp_path / "certs.d" / target.domain
    certs.mkdir(parents=True)
    shutil.copy(pki["ca.crt"], certs / "ca.crt")
    with client(fake, tmp_path, **options) as registry:
        assert registry.repository("test/app").get_blob(digest, len(data)) == data


# -- digests -----------------------------------------------------------------------------------

MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST,
                       "config": {"mediaType": mediatypes.OCI_CONFIG, "size": 2,
                                  "digest": "sha256:" + "a" * 64},
                       "layers": []}).encode()


def serve_manifest(fake, body):
    fake.route("GET", "/v2/test/app/manifests/", lambda r: reply(
        r, 200, body, {"Content-Type": mediatypes.OCI_MANIFEST}))


def test_manifest_by_sha512_is_verified(fake_registry, tmp_path):
    fake = fake_registry()
    serve_manifest(fake, MANIFEST)
    good = "sha512:" + hashlib.sha512(MANIFEST).hexdigest()
    wrong = "sha512:" + hashlib.sha512(b"another").hexdigest()
    with client(fake, tmp_path) as registry:
        repo = registry.repository("test/app")
        got = repo.get_manifest(good)
        assert (got.digest, got.data) == (good, MANIFEST)
        with pytest.raises(InvalidArgument) as err:
            repo.get_manifest(wrong)
    assert str(err.value) == ("manifest for %s/test/app@%s: digest mismatch: expected %s, got %s"
                              % (fake.domain, wrong, wrong, good))


@pytest.mark.parametrize("digest", ["sha384:" + "a" * 96, "md5:" + "a" * 32,
                                    "blake2b:" + "a" * 128, "sha256:" + "A" * 64,
                                    "sha512:" + "a" * 64])
def test_unverifiable_digests_are_refused_before_any_request(fake_registry, tmp_path, digest):
    fake = fake_registry()
    serve_manifest(fake, MANIFEST)
    with client(fake, tmp_path) as registry:
        repo = registry.repository("test/app")
        for call in (lambda: repo.get_manifest(digest), lambda: repo.get_blob(digest, 2)):
            with pytest.raises(InvalidArgument):
                call()
    assert [p for _, p, _ in fake.requests if p != "/v2/"] == []


def test_blob_by_sha512_is_verified(fake_registry, tmp_path):
    fake = fake_registry()
    data = b"config bytes"
    fake.route("GET", "/v2/test/app/blobs/", lambda r: reply(r, 200, data))
    good = "sha512:" + hashlib.sha512(data).hexdigest()
    wrong = "sha512:" + hashlib.sha512(b"other").hexdigest()
    with client(fake, tmp_path) as registry:
        repo = registry.repository("test/app")
        assert repo.get_blob(good, len(data)) == data
        with pytest.raises(InvalidArgument, match="digest mismatch"):
            repo.get_blob(wrong, len(data))


def test_tag_pull_checks_the_docker_content_digest_header(fake_registry, tmp_path):
    fake = fake_registry()
    wrong = "sha512:" + hashlib.sha512(b"other").hexdigest()
    fake.route("GET", "/v2/test/app/manifests/", lambda r: reply(
        r, 200, MANIFEST, {"Content-Type": mediatypes.OCI_MANIFEST,
                           "Docker-Content-Digest": wrong}))
    with client(fake, tmp_path) as registry:
        with pytest.raises(InvalidArgument, match="digest mismatch: expected " + wrong):
            registry.repository("test/app").get_manifest("v1")
