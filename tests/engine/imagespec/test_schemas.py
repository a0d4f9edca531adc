"""The OCI schemas: real documents from peers pass, a hostile corpus fails with one line naming
the path, and the size and depth limits hold before any parsing.

Oracles: documents skopeo, umoci and docker-registry produce or accept (independent
implementations of the image spec), the spec's prose rules restated here (required fields,
int64 sizes, registered digest encodings, RFC 6838 media types), and json's own parse for
nesting depth.
"""
import copy
import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings, strategies as st

from pyrunc.engine import imagespec
from pyrunc.errors import InvalidArgument

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64

MANIFEST = {
    "schemaVersion": 2, "mediaType": OCI_MANIFEST,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D1,
               "size": 100},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D2,
                "size": 200, "annotations": {"k": "v"}}],
    "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
}
CONFIG = {
    "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00.123456789Z",
    "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "Entrypoint": None, "Labels": None,
               "ExposedPorts": {"80/tcp": {}}, "Volumes": None, "User": "1:1"},
    "rootfs": {"type": "layers", "diff_ids": [D1]},
    "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "x", "empty_layer": True}],
}


def one_line_refusal(kind, doc):
    with pytest.raises(InvalidArgument) as err:
        imagespec.load(kind, json.dumps(doc).encode())
    message = str(err.value)
    assert "\n" not in message and len(message) < 500, message
    assert message.startswith({"config": "image config: ", "docker-manifest": "manifest: ",
                               "docker-manifest-list": "manifest list: "}.get(kind, kind + ": "))
    return message


def test_valid_documents_pass():
    assert imagespec.load("manifest", json.dumps(MANIFEST).encode()) == MANIFEST
    imagespec.validate("config", CONFIG)
    imagespec.validate("index", {"schemaVersion": 2, "manifests": [
        dict(MANIFEST["config"], mediaType=OCI_MANIFEST,
             platform={"architecture": "arm64", "os": "linux", "variant": "v8"})]})
    imagespec.validate("descriptor", MANIFEST["config"])
    imagespec.validate("manifest", dict(MANIFEST, layers=[
        dict(MANIFEST["layers"][0], digest="sha512:" + "a" * 128)]))


def test_the_error_names_the_schema_path():
    doc = copy.deepcopy(MANIFEST)
    doc["layers"][0]["digest"] = "xyz"
    message = one_line_refusal("manifest", doc)
    assert message.startswith("manifest: layers/0/digest: 'xyz' does not match ")
    doc["layers"][0]["digest"] = "sha256:" + "A" * 64
    assert one_line_refusal("manifest", doc).startswith(
        "manifest: layers/0/digest: 'sha256:AAAA")
    assert one_line_refusal("config", dict(CONFIG, rootfs={"type": "layers"})) == (
        "image config: rootfs: 'diff_ids' is a required property")


# -- the hostile corpus ------------------------------------------------------------------------

# where a manifest may be mutated, and the types the spec allows there
FIELDS = {
    ("schemaVersion",): (int,), ("config",): (dict,), ("config", "size"): (int,),
    ("config", "digest"): (str,), ("config", "mediaType"): (str,), ("layers",): (list,),
    ("layers", 0): (dict,), ("layers", 0, "size"): (int,), ("layers", 0, "digest"): (str,),
    ("layers", 0, "mediaType"): (str,), ("annotations",): (dict,),
    ("layers", 0, "annotations", "k"): (str,), ("layers", 0, "urls"): (list,),
}
REQUIRED = [("schemaVersion",), ("config",), ("layers",), ("config", "digest"),
            ("config", "size"), ("config", "mediaType"), ("layers", 0, "digest"),
            ("layers", 0, "size"), ("layers", 0, "mediaType")]
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10, 10), st.floats(allow_nan=False),
                   st.text(max_size=5), st.lists(st.integers(), max_size=2),
                   st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
BAD_DIGESTS = st.one_of(
    st.sampled_from(["", "sha256", "sha256:", ":" + "a" * 64, "SHA256:" + "a" * 64,
                     "sha256:" + "a" * 63, "sha256:" + "a" * 65, "sha256:" + "A" * 64,
                     "sha256:" + "g" * 64, "sha512:" + "a" * 64, "sha256:" + "a" * 64 + " ",
                     "sha256::" + "a" * 64, "-sha:abc", "sha256:" + "a" * 32 + "/" + "a" * 31]),
    st.text(alphabet="abcdef0123456789", min_size=1, max_size=80).map(lambda t: "sha256:" + t)
    .filter(lambda d: len(d) != 71))
BAD_MEDIA_TYPES = st.one_of(
    st.sampled_from(["", "application", "application/", "/json", "a/b/c", "a b/c", "a/b c",
                     "application/vnd.oci.image.layer.v1.tar+gzip ", "\u00e9/x", "a/" + "b" * 128]),
    st.text(max_size=10).filter(lambda t: "/" not in t))


def at(doc, path):
    for key in path[:-1]:
        doc = doc[key]
    return doc, path[-1]


def path_text(path):
    return "/".join(str(p) for p in path)


@given(st.sampled_from(sorted(FIELDS, key=str)), VALUES)
def test_wrong_types_are_refused_at_their_path(path, value):
    if isinstance(value, FIELDS[path]) and not isinstance(value, bool) or (
            bool in FIELDS[path] and isinstance(value, bool)):
        return
    if path == ("schemaVersion",) and value == 2:
        return
    doc = copy.deepcopy(MANIFEST)
    parent, key = at(doc, path)
    parent[key] = value
    message = one_line_refusal("manifest", doc)
    assert message.startswith("manifest: " + path_text(path)) or (
        # a wrong type inside an array item can be reported at the item
        message.startswith("manifest: " + path_text(path[:-1]))), message


@given(st.sampled_from(REQUIRED))
def test_missing_required_fields_are_refused(path):
    doc = copy.deepcopy(MANIFEST)
    parent, key = at(doc, path)
    del parent[key]
    message = one_line_refusal("manifest", doc)
    assert "'%s' is a required property" % key in message
    if len(path) > 1:
        assert message.startswith("manifest: %s: " % path_text(path[:-1]))


@given(st.sampled_from([("config", "size"), ("layers", 0, "size")]),
       st.one_of(st.integers(max_value=-1), st.integers(min_value=2 ** 63)))
def test_negative_and_huge_sizes_are_refused(path, size):
    doc = copy.deepcopy(MANIFEST)
    parent, key = at(doc, path)
    parent[key] = size
    assert one_line_refusal("manifest", doc).startswith("manifest: %s: " % path_text(path))


@given(st.sampled_from([("config", "digest"), ("layers", 0, "digest")]), BAD_DIGESTS)
def test_bad_digests_are_refused(path, digest):
    doc = copy.deepcopy(MANIFEST)
    parent, key = at(doc, path)
    parent[key] = digest
    assert one_line_refusal("manifest", doc).startswith("manifest: %s: " % path_text(path))


@given(st.sampled_from([("config", "mediaType"), ("layers", 0, "mediaType")]), BAD_MEDIA_TYPES)
def test_bad_media_types_are_refused(path, media_type):
    doc = copy.deepcopy(MANIFEST)
    parent, key = at(doc, path)
    parent[key] = media_type
    assert one_line_refusal("manifest", doc).startswith("manifest: %s: " % path_text(path))


@pytest.mark.parametrize("kind, doc", [
    ("manifest", dict(MANIFEST, schemaVersion=1)),
    ("manifest", dict(MANIFEST, mediaType="application/vnd.oci.image.index.v1+json")),
    ("index", {"schemaVersion": 2, "manifests": [{"digest": D1, "size": 1}]}),
    ("index", {"schemaVersion": 2, "manifests": [dict(MANIFEST["config"], platform={})]}),
    ("docker-manifest", dict(MANIFEST, mediaType=None)),
    ("docker-manifest-list", {"schemaVersion": 2, "mediaType":
                              "application/vnd.docker.distribution.manifest.list.v2+json",
                              "manifests": [MANIFEST["config"]]}),
    ("config", dict(CONFIG, os=None)),
    ("config", dict(CONFIG, rootfs={"type": "tar", "diff_ids": []})),
    ("config", dict(CONFIG, rootfs={"type": "layers", "diff_ids": ["xyz"]})),
    ("config", dict(CONFIG, created="yesterday")),
    ("config", dict(CONFIG, config={"Env": "PATH=/bin"})),
    ("config", dict(CONFIG, config={"Labels": {"a": 1}})),
    ("config", dict(CONFIG, history=[{"empty_layer": "yes"}])),
    ("config", []),
])
def test_other_kinds_refuse_what_the_spec_forbids(kind, doc):
    one_line_refusal(kind, doc)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                               max_size=3),
    max_leaves=20)


@settings(max_examples=300)
@given(st.sampled_from(imagespec.KINDS), json_values)
def test_arbitrary_json_is_accepted_or_refused_in_one_line(kind, doc):
    try:
        imagespec.load(kind, json.dumps(doc).encode())
    except InvalidArgument as err:
        assert "\n" not in str(err)


# -- limits before parsing ---------------------------------------------------------------------

def depth(value):
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


tricky_text = st.text(alphabet='[]{}"\\ab,:', max_size=6)
nested = st.recursive(
    st.one_of(st.integers(), tricky_text),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner,
                                                               max_size=3),
    max_leaves=40)


@settings(max_examples=500)
@given(nested, st.integers(1, 8))
def test_depth_limit_agrees_with_the_parser(doc, limit):
    data = json.dumps(doc, ensure_ascii=False).encode()
    try:
        imagespec.check_limits(data, "doc", max_depth=limit)
        refused = False
    except InvalidArgument as err:
        refused = True
        assert str(err) == "doc: nested deeper than %d levels" % limit
    assert refused == (depth(doc) > limit), (data, depth(doc))


@pytest.mark.parametrize("data, message", [
    (b" " * (100 << 20), "manifest: 104857600 bytes, more than the 4194304 allowed"),
    (b"[" * 100000 + b"]" * 100000, "manifest: nested deeper than 64 levels"),
    (b'{"a":' * 100000 + b"1" + b"}" * 100000, "manifest: nested deeper than 64 levels"),
    (b"[[]" * 100000 + b"]" * 100000, "manifest: nested deeper than 64 levels"),
    (b"[" * 100000, "manifest: nested deeper than 64 levels"),
])
def test_huge_and_deep_documents_are_refused_cheaply(data, message):
    start = time.monotonic()
    with pytest.raises(InvalidArgument) as err:
        imagespec.load("manifest", data)
    assert str(err.value) == message
    assert time.monotonic() - start < 1.0


def test_jsonschema_is_imported_only_when_validating():
    code = ("import sys, pyrunc.engine.imagespec, pyrunc.engine.distribution, "
            "pyrunc.engine.registry; print('jsonschema' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


# -- real documents from peers -----------------------------------------------------------------

def need(tool):
    if not shutil.which(tool):
        pytest.skip("%s is not installed" % tool)


def run(*args, **kwargs):
    return subprocess.run(args, check=True, capture_output=True, timeout=120, **kwargs)


def blob(layout, digest):
    return (layout / "blobs" / digest.split(":")[0] / digest.split(":")[1]).read_bytes()


def check_layout(layout):
    """Validate index.json, every manifest it names and their configs; the kinds seen."""
    seen = []
    index = imagespec.load("index", (layout / "index.json").read_bytes())
    seen.append("index")
    for desc in index["manifests"]:
        kind = imagespec.kind_for_media_type(desc["mediaType"])
        manifest = imagespec.load(kind, blob(layout, desc["digest"]))
        seen.append(kind)
        imagespec.load("config", blob(layout, manifest["config"]["digest"]))
        seen.append("config")
    return seen


@pytest.fixture
def umoci_layout(tmp_path):
    need("umoci")
    layout = tmp_path / "umoci"
    run("umoci", "init", "--layout", str(layout))
    run("umoci", "new", "--image", "%s:t" % layout)
    bundle = tmp_path / "bundle"
    run("umoci", "unpack", "--rootless", "--image", "%s:t" % layout, str(bundle))
    (bundle / "rootfs" / "hello").write_text("hi\n")
    run("umoci", "repack", "--image", "%s:t" % layout, str(bundle))
    run("umoci", "config", "--image", "%s:t" % layout, "--config.cmd", "sh",
        "--config.entrypoint", "/bin/env", "--config.env", "A=1", "--config.label", "k=v",
        "--config.exposedports", "80/tcp", "--config.volume", "/data", "--config.user", "1:1",
        "--config.workingdir", "/w", "--config.stopsignal", "SIGTERM", "--author", "me",
        "--history.comment", "configured", "--os", "linux", "--architecture", "amd64")
    return layout


@pytest.mark.peer
def test_umoci_documents_pass(umoci_layout):
    assert check_layout(umoci_layout) == ["index", "manifest", "config"]


@pytest.mark.peer
def test_skopeo_documents_pass(umoci_layout, tmp_path):
    need("skopeo")
    # skopeo rewrites umoci's image as an OCI layout and as docker's schema 2 (dir: keeps the
    # manifest and config it wrote)
    oci = tmp_path / "skopeo-oci"
    run("skopeo", "copy", "oci:%s:t" % umoci_layout, "oci:%s:t" % oci)
    assert check_layout(oci) == ["index", "manifest", "config"]
    v2s2 = tmp_path / "skopeo-v2s2"
    run("skopeo", "copy", "--format", "v2s2", "oci:%s:t" % umoci_layout, "dir:%s" % v2s2)
    manifest = imagespec.load("docker-manifest", (v2s2 / "manifest.json").read_bytes())
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    config = imagespec.load("config", (v2s2 / manifest["config"]["digest"][7:]).read_bytes())
    assert config["config"]["Labels"] == {"k": "v"}
