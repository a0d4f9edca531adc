"""The registry client against a real docker-registry: endpoints, TLS, auth, manifests, blobs."""
import base64
import json
import os
import shutil
import socket
import time

import pytest

from pyrunc.engine.registry import (AuthFile, Credentials, Registry, RegistryOptions,
                                    Unauthorized)
from pyrunc.engine.registry import mediatypes
from pyrunc.errors import InvalidArgument, NotFound, Unavailable


def registry_for(server, tmp_path, certs_dir=None, credentials=None, **options):
    return Registry(server.domain, RegistryOptions(certs_dir=certs_dir or str(tmp_path / "certs.d"),
                                                   **options),
                    auth_file=AuthFile(str(tmp_path / "docker" / "config.json")),
                    credentials=credentials)


def push_image(repo, store, manifest_digest, tag, chunk_size=None):
    """Upload an image's blobs and manifest with the raw client."""
    manifest = json.loads(store.read(manifest_digest))
    for desc in [manifest["config"]] + manifest["layers"]:
        if repo.blob_size(desc["digest"]) is None:
            repo.upload_blob(desc["digest"], desc["size"],
                             lambda d=desc["digest"]: store.open(d), chunk_size=chunk_size)
    return repo.put_manifest(tag, manifest["mediaType"], store.read(manifest_digest))


def test_loopback_registry_is_reached_over_plain_http(plain_registry, tmp_path):
    with registry_for(plain_registry, tmp_path) as registry:
        connection = registry.ping()
        assert connection.url == "http://" + plain_registry.domain
        assert connection.auth.challenge is None


def test_secure_registry_is_never_tried_over_plain_http(plain_registry, tmp_path):
    with registry_for(plain_registry, tmp_path, insecure_cidrs=()) as registry:
        with pytest.raises(Unavailable) as err:
            registry.ping()
    assert str(err.value).startswith('Get "https://%s/v2/"' % plain_registry.domain)


def test_insecure_registry_by_name(plain_registry, tmp_path):
    options = dict(insecure_cidrs=(), insecure_registries=[plain_registry.domain])
    with registry_for(plain_registry, tmp_path, **options) as registry:
        assert registry.ping().url.startswith("http://")


def test_unreachable_registry(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Registry("127.0.0.1:%d" % port, RegistryOptions(certs_dir=str(tmp_path))) as registry:
        with pytest.raises(Unavailable) as err:
            registry.repository("x/y").get_manifest("latest")
    assert str(err.value) == 'Get "http://127.0.0.1:%d/v2/": connection refused' % port


def test_blobs_monolithic_and_chunked_upload_then_fetch(plain_registry, tmp_path, store, images):
    with registry_for(plain_registry, tmp_path) as registry:
        repo = registry.repository("test/blobs", for_push=True)
        small, _ = images.layer({"a": b"hello"})
        big = os.urandom(300_000)
        for data, chunk in ((small, None), (big, 64 * 1024)):
            digest = store.put(data)
            assert repo.blob_size(digest) is None
            seen = []
            repo.upload_blob(digest, len(data), lambda d=digest: store.open(d),
                             chunk_size=chunk, progress=seen.append)
            assert repo.blob_size(digest) == len(data)
            assert seen[-1] == len(data)
            if chunk:
                assert len(seen) == 5
        target = store.__class__(str(tmp_path / "other"))
        digest = store.put(big)
        seen = []
        writer = target.writer("fetch-" + digest, digest, len(big))
        repo.fetch_blob(digest, len(big), writer, progress=seen.append)
        assert target.read(digest) == big
        assert seen[-1] == len(big)
        assert repo.get_blob(store.put(small), len(small)) == small


def test_manifests_by_tag_and_digest_and_accept_negotiation(plain_registry, tmp_path, store,
                                                            images):
    with registry_for(plain_registry, tmp_path) as registry:
        repo = registry.repository("test/manifests", for_push=True)
        digest, data, _ = images.build(store, [{"etc/hostname": b"x\n"}])
        assert push_image(repo, store, digest, "v1") == digest
        assert repo.put_manifest(digest, mediatypes.OCI_MANIFEST, data) == digest
        manifest = repo.get_manifest("v1")
        assert (manifest.media_type, manifest.digest, manifest.data) == (
            mediatypes.OCI_MANIFEST, digest, data)
        assert repo.get_manifest(digest).digest == digest
        assert repo.head_manifest("v1") == (mediatypes.OCI_MANIFEST, digest, len(data))
        assert repo.head_manifest("nosuch") is None
        assert "v1" in repo.tags()
        with pytest.raises(NotFound) as err:
            repo.get_manifest("v1", accept=(mediatypes.DOCKER_MANIFEST,))
        assert str(err.value) == (
            "manifest for %s/test/manifests:v1 not found: manifest unknown: OCI manifest "
            "found, but accept header does not support OCI manifests" % plain_registry.domain)
        with pytest.raises(NotFound) as err:
            repo.get_manifest("nosuchtag")
        assert str(err.value) == ("manifest for %s/test/manifests:nosuchtag not found: "
                                  "manifest unknown: manifest unknown" % plain_registry.domain)
        with pytest.raises(InvalidArgument, match="content has digest"):
            repo.put_manifest("sha256:" + "0" * 64, mediatypes.OCI_MANIFEST, data)


def test_schema1_is_refused(plain_registry, tmp_path, store, images):
    with registry_for(plain_registry, tmp_path) as registry:
        repo = registry.repository("test/schema1", for_push=True)
        digest, _, _ = images.build(store, [{"f": b"1"}], oci=False)
        push_image(repo, store, digest, "v2s2")
        # asked without the schema 2 types, the registry converts to a signed schema 1
        with pytest.raises(InvalidArgument) as err:
            repo.get_manifest("v2s2", accept=(mediatypes.OCI_MANIFEST,))
    assert "schema 1 support has been removed" in str(err.value)
    assert ("Suggest the author of %s/test/schema1:v2s2 to upgrade" % plain_registry.domain
            in str(err.value))


def test_cross_repository_mount(plain_registry, tmp_path, store, images):
    with registry_for(plain_registry, tmp_path) as registry:
        source = registry.repository("test/source", for_push=True)
        blob = os.urandom(1000)
        digest = store.put(blob)
        source.upload_blob(digest, len(blob), lambda: store.open(digest))
        target = registry.repository("test/target", for_push=True,
                                     extra_pull_scopes=["test/source"])
        assert target.blob_size(digest) is None
        assert target.mount_blob(digest, "test/source") is True
        assert target.blob_size(digest) == len(blob)
        other = store.put(os.urandom(10))
        assert target.mount_blob(other, "test/source") is False


def test_tls_verified_with_certs_d_ca(start_registry, pki, tmp_path):
    server = start_registry(tls={"cert": pki["server.crt"], "key": pki["server.key"]})
    with registry_for(server, tmp_path, insecure_cidrs=()) as registry:
        with pytest.raises(Unavailable, match="certificate verify failed"):
            registry.ping()
    certs = tmp_path / "certs.d"
    (certs / server.domain).mkdir(parents=True)
    shutil.copy(pki["ca.crt"], certs / server.domain / "ca.crt")
    with registry_for(server, tmp_path, insecure_cidrs=()) as registry:
        assert registry.ping().url == "https://" + server.domain
    # loopback is insecure by default, as in docker: HTTPS without verification works
    with registry_for(server, tmp_path, certs_dir=str(tmp_path / "none")) as registry:
        assert registry.ping().url == "https://" + server.domain


def test_tls_client_certificate(start_registry, pki, tmp_path):
    server = start_registry(tls={"cert": pki["server.crt"], "key": pki["server.key"],
                                 "client_ca": pki["ca.crt"]})
    certs = tmp_path / "certs.d" / server.domain
    certs.mkdir(parents=True)
    shutil.copy(pki["ca.crt"], certs / "ca.crt")
    with registry_for(server, tmp_path, insecure_cidrs=()) as registry:
        with pytest.raises(Unavailable):
            registry.ping()
    shutil.copy(pki["client.crt"], certs / "client.cert")
    shutil.copy(pki["client.key"], certs / "client.key")
    with registry_for(server, tmp_path, insecure_cidrs=()) as registry:
        assert registry.ping().url == "https://" + server.domain
    os.unlink(certs / "client.key")
    with pytest.raises(InvalidArgument, match="missing key client.key for client certificate"):
        registry_for(server, tmp_path, insecure_cidrs=()).ping()


def test_basic_auth_and_login(start_registry, htpasswd_file, tmp_path, store, images):
    server = start_registry(htpasswd=htpasswd_file)
    with registry_for(server, tmp_path) as registry:
        with pytest.raises(Unauthorized, match="401 Unauthorized"):
            registry.login(Credentials("alice", "wrong"))
        assert not os.path.exists(registry.auth_file.path)
    with registry_for(server, tmp_path) as registry:
        repo = registry.repository("test/basic")
        with pytest.raises(Unauthorized):
            repo.get_manifest("latest")
        assert registry.login(Credentials("alice", "wonderland")) == "Login Succeeded"
    stored = json.load(open(tmp_path / "docker" / "config.json"))
    assert stored["auths"][server.domain]["auth"] == base64.b64encode(b"alice:wonderland").decode()
    assert os.stat(tmp_path / "docker" / "config.json").st_mode & 0o777 == 0o600
    # a new client reads the stored credentials
    with registry_for(server, tmp_path) as registry:
        repo = registry.repository("test/basic", for_push=True)
        digest, _, _ = images.build(store, [{"f": b"basic"}])
        assert push_image(repo, store, digest, "latest") == digest
        assert registry.repository("test/basic").get_manifest("latest").digest == digest
        assert registry.logout() is True
        assert registry.logout() is False


def test_bearer_token_auth(start_registry, token_server, tmp_path, store, images):
    server = start_registry(token=token_server)
    digest, _, _ = images.build(store, [{"f": b"token"}])
    with registry_for(server, tmp_path) as registry:
        assert registry.ping().auth.challenge.scheme == "bearer"
        with pytest.raises(Unauthorized) as err:
            push_image(registry.repository("test/token", for_push=True), store, digest, "v1")
    assert "denied" in str(err.value) or "unauthorized" in str(err.value)
    with registry_for(server, tmp_path, credentials=Credentials("alice", "wonderland")) as registry:
        token_server.requests.clear()
        push_image(registry.repository("test/token", for_push=True), store, digest, "v1")
        # one token for the whole push: cached per scope set
        assert token_server.requests == [("alice", ("repository:test/token:pull,push",))]
    with registry_for(server, tmp_path) as registry:
        # anonymous pull is allowed by this token server
        assert registry.repository("test/token").get_manifest("v1").digest == digest
    with registry_for(server, tmp_path, credentials=Credentials("alice", "bad")) as registry:
        with pytest.raises(Unauthorized, match="incorrect username or password"):
            registry.login(Credentials("alice", "bad"))
    with registry_for(server, tmp_path) as registry:
        assert registry.login(Credentials("alice", "wonderland")) == "Login Succeeded"


def test_identity_token_from_the_config_file(start_registry, private_token_server, tmp_path,
                                             store, images):
    server = start_registry(token=private_token_server)
    private_token_server.refresh_tokens["refresh-123"] = "alice"
    auth_file = AuthFile(str(tmp_path / "docker" / "config.json"))
    auth_file.store(server.domain, Credentials("<token>", identity_token="refresh-123"))
    stored = json.load(open(auth_file.path))["auths"][server.domain]
    assert stored["identitytoken"] == "refresh-123"
    digest, _, _ = images.build(store, [{"f": b"oauth"}])
    with registry_for(server, tmp_path) as registry:
        assert registry.credentials.identity_token == "refresh-123"
        push_image(registry.repository("test/oauth", for_push=True), store, digest, "v1")
        assert registry.repository("test/oauth").get_manifest("v1").digest == digest
    auth_file.store(server.domain, Credentials("<token>", identity_token="revoked"))
    with registry_for(server, tmp_path) as registry:
        with pytest.raises(Unauthorized, match="^Post http://127.0.0.1:%d/token: unauthorized"
                           % private_token_server.port):
            registry.repository("test/oauth").get_manifest("v1")


def test_token_cache_per_scope_and_expiry(start_registry, token_server, tmp_path, store, images):
    server = start_registry(token=token_server)
    digest, _, _ = images.build(store, [{"f": b"cache"}])
    credentials = Credentials("alice", "wonderland")
    with registry_for(server, tmp_path, credentials=credentials) as registry:
        for path in ("test/one", "test/two"):
            push_image(registry.repository(path, for_push=True), store, digest, "v1")
        token_server.requests.clear()
        registry.repository("test/one").get_manifest("v1")
        registry.repository("test/one").get_manifest("v1")
        registry.repository("test/two").get_manifest("v1")
        assert token_server.requests == [("alice", ("repository:test/one:pull",)),
                                         ("alice", ("repository:test/two:pull",))]
    token_server.lifetime = 6     # cached for lifetime - 5 s of margin: 1 s
    with registry_for(server, tmp_path, credentials=credentials) as registry:
        token_server.requests.clear()
        registry.repository("test/one").get_manifest("v1")
        registry.repository("test/one").get_manifest("v1")
        assert len(token_server.requests) == 1
        time.sleep(1.1)
        registry.repository("test/one").get_manifest("v1")
        assert len(token_server.requests) == 2
