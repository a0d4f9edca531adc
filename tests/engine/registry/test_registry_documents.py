"""The schemas against what docker-registry serves: images skopeo pushed (OCI and docker schema
2), and a docker manifest list and an OCI index the registry accepted (it checks that every
manifest they name is there). get_manifest validates what it fetches, so a schema that refused
a real document fails these tests."""
import json
import shutil
import subprocess

import pytest

from pyrunc.engine import imagespec
from pyrunc.engine.registry import Registry, RegistryOptions
from pyrunc.engine.registry import mediatypes


def run(*args):
    return subprocess.run(args, check=True, capture_output=True, timeout=120)


@pytest.mark.peer
def test_documents_the_registry_serves_pass(plain_registry, tmp_path):
    for tool in ("skopeo", "umoci"):
        if not shutil.which(tool):
            pytest.skip("%s is not installed" % tool)
    layout = tmp_path / "layout"
    run("umoci", "init", "--layout", str(layout))
    run("umoci", "new", "--image", "%s:t" % layout)
    run("umoci", "config", "--image", "%s:t" % layout, "--config.cmd", "sh",
        "--config.label", "a=b", "--os", "linux", "--architecture", "amd64")
    base = "%s/test/documents" % plain_registry.domain
    run("skopeo", "copy", "--dest-tls-verify=false", "oci:%s:t" % layout,
        "docker://%s:oci" % base)
    run("skopeo", "copy", "--dest-tls-verify=false", "--format", "v2s2", "oci:%s:t" % layout,
        "docker://%s:v2s2" % base)
    options = RegistryOptions(certs_dir=str(tmp_path / "certs.d"))
    with Registry(plain_registry.domain, options) as registry:
        repo = registry.repository("test/documents", for_push=True)
        oci = repo.get_manifest("oci")
        v2s2 = repo.get_manifest("v2s2")
        assert (oci.media_type, v2s2.media_type) == (mediatypes.OCI_MANIFEST,
                                                     mediatypes.DOCKER_MANIFEST)
        for manifest in (oci, v2s2):
            desc = manifest.json["config"]
            imagespec.load("config", repo.get_blob(desc["digest"], desc["size"]))
        platform = {"architecture": "amd64", "os": "linux"}
        lists = {
            mediatypes.DOCKER_MANIFEST_LIST: {
                "schemaVersion": 2, "mediaType": mediatypes.DOCKER_MANIFEST_LIST,
                "manifests": [{"mediaType": v2s2.media_type, "digest": v2s2.digest,
                               "size": v2s2.size, "platform": platform}]},
            mediatypes.OCI_INDEX: {
                "schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX,
                "manifests": [{"mediaType": oci.media_type, "digest": oci.digest,
                               "size": oci.size, "platform": platform}],
                "annotations": {"org.opencontainers.image.ref.name": "idx"}},
        }
        for media_type, body in lists.items():
            data = json.dumps(body).encode()
            tag = "list" if media_type == mediatypes.DOCKER_MANIFEST_LIST else "index"
            repo.put_manifest(tag, media_type, data)
            got = repo.get_manifest(tag)
            assert (got.media_type, got.data, got.json) == (media_type, data, body)
