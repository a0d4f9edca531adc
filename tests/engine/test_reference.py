"""Image references: docker's grammar, normalisation and familiar names."""
import pytest
from hypothesis import given, strategies as st

from pyrunc.engine import reference
from pyrunc.errors import InvalidArgument

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, canonical, familiar", [
    ("nginx", "docker.io/library/nginx:latest", "nginx:latest"),
    ("nginx:1.25", "docker.io/library/nginx:1.25", "nginx:1.25"),
    ("user/app", "docker.io/user/app:latest", "user/app:latest"),
    ("docker.io/nginx", "docker.io/library/nginx:latest", "nginx:latest"),
    ("index.docker.io/library/nginx", "docker.io/library/nginx:latest", "nginx:latest"),
    ("docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("localhost:5000/app:v1", "localhost:5000/app:v1", "localhost:5000/app:v1"),
    ("127.0.0.1:5000/library/busybox", "127.0.0.1:5000/library/busybox:latest",
     "127.0.0.1:5000/library/busybox:latest"),
    ("quay.io/org/sub/img:tag", "quay.io/org/sub/img:tag", "quay.io/org/sub/img:tag"),
    ("[::1]:5000/app", "[::1]:5000/app:latest", "[::1]:5000/app:latest"),
    ("Example.com/app", "Example.com/app:latest", "Example.com/app:latest"),
    ("a__b/c-d.e_f", "docker.io/a__b/c-d.e_f:latest", "a__b/c-d.e_f:latest"),
    ("nginx@" + DIGEST, "docker.io/library/nginx@" + DIGEST, "nginx@" + DIGEST),
    ("nginx:1@" + DIGEST, "docker.io/library/nginx:1@" + DIGEST, "nginx:1@" + DIGEST),
])
def test_normalisation_and_familiar_form(text, canonical, familiar):
    ref = reference.parse_docker_ref(text)
    assert str(ref) == canonical
    assert ref.familiar == familiar
    assert reference.parse_docker_ref(familiar) == ref


def test_parts():
    ref = reference.parse_normalized("localhost:5000/a/b:t@" + DIGEST)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("localhost:5000", "a/b", "t", DIGEST)
    assert ref.name == "localhost:5000/a/b"
    assert ref.object == DIGEST
    assert reference.parse_normalized("nginx").tag is None
    assert reference.parse_normalized("nginx").object == "latest"


@pytest.mark.parametrize("text, message", [
    ("", "invalid reference format"),
    ("Nginx", "invalid reference format: repository name (library/Nginx) must be lowercase"),
    ("user/App:1", "invalid reference format: repository name (user/App) must be lowercase"),
    ("nginx:", "invalid reference format"),
    ("nginx:-x", "invalid reference format"),
    ("/nginx", "invalid reference format"),
    ("nginx/", "invalid reference format"),
    ("a//b", "invalid reference format"),
    ("a_-b", "invalid reference format"),
    ("host:port/x", "invalid reference format"),
    ("nginx:" + "t" * 129, "invalid reference format"),
    ("a" * 250 + "/bcdefgh", "invalid reference format: repository name must not be more "
                            "than 255 characters"),
    ("nginx@sha256:abc", "invalid reference format"),
    ("nginx@sha256:" + "a" * 63 + "aa", "invalid checksum digest length: sha256:" + "a" * 65),
    ("nginx@md5:" + "a" * 32, "unsupported digest algorithm: md5:" + "a" * 32),
    ("a" * 64, "invalid repository name (%s), cannot specify 64-byte hexadecimal strings"
     % ("a" * 64)),
])
def test_invalid_references(text, message):
    with pytest.raises(InvalidArgument) as err:
        reference.parse_normalized(text)
    assert str(err.value) == message


def test_plain_parse_keeps_what_was_written():
    ref = reference.parse("library/nginx:1")
    # docker's Parse takes a first component as the domain: normalisation is separate
    assert (ref.domain, ref.path, ref.tag) == ("library", "nginx", "1")
    assert reference.parse("nginx").domain == ""
    with pytest.raises(InvalidArgument, match="must be lowercase"):
        reference.parse("NGINX")
    with pytest.raises(InvalidArgument, match="must have at least one component"):
        reference.parse("")


def test_with_tag_and_digest():
    ref = reference.parse_normalized("nginx")
    assert str(ref.with_tag("v1")) == "docker.io/library/nginx:v1"
    assert str(ref.with_digest(DIGEST)) == "docker.io/library/nginx@" + DIGEST
    with pytest.raises(InvalidArgument, match="invalid tag format"):
        ref.with_tag(".bad")
    with pytest.raises(InvalidArgument, match="invalid digest format"):
        ref.with_digest("sha256")


# -- property tests ---------------------------------------------------------------------------

alnum = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
separator = st.sampled_from([".", "_", "__", "-", "--"])
component = st.builds(lambda first, rest: first + "".join(s + a for s, a in rest),
                      alnum, st.lists(st.tuples(separator, alnum), max_size=2))
path = st.lists(component, min_size=1, max_size=3).map("/".join)
domain_label = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,4}[a-z0-9])?\Z")
domain = st.one_of(
    st.lists(domain_label, min_size=2, max_size=3).map(".".join),
    st.just("localhost"),
    st.builds(lambda h, p: "%s:%d" % (h, p), st.just("127.0.0.1"), st.integers(1, 65535)),
)
tag = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}\Z")
digest = st.from_regex(r"\A[0-9a-f]{64}\Z").map(lambda h: "sha256:" + h)


@given(domain, path, st.one_of(st.none(), tag), st.one_of(st.none(), digest))
def test_canonical_round_trip(dom, p, t, d):
    ref = reference.Reference(dom, p, t, d)
    parsed = reference.parse_normalized(str(ref))
    assert parsed == ref
    assert (parsed.domain, parsed.path, parsed.tag, parsed.digest) == (dom, p, t, d)


@given(domain, path, st.one_of(st.none(), tag), st.one_of(st.none(), digest))
def test_familiar_round_trip(dom, p, t, d):
    ref = reference.Reference(dom, p, t, d)
    assert reference.parse_normalized(ref.familiar) == ref


# a first component without "." or ":" is not a domain (unless it is "localhost")
hub_path = st.builds(lambda first, rest: "/".join([first] + rest),
                     alnum.filter(lambda a: a != "localhost"), st.lists(component, max_size=2))


@given(hub_path, st.one_of(st.none(), tag))
def test_docker_hub_names(p, t):
    ref = reference.parse_normalized(p + (":" + t if t else ""))
    assert ref.domain == "docker.io"
    expected = p if "/" in p else "library/" + p
    assert ref.path == expected
    assert ref.familiar_name == (p[len("library/"):] if p.startswith("library/")
                                 and p.count("/") == 1 else p)


@given(st.text(max_size=40))
def test_parser_never_crashes(text):
    try:
        ref = reference.parse_normalized(text)
    except InvalidArgument as err:
        assert str(err)
    else:
        assert reference.parse_normalized(str(ref)) == ref


# -- digests: the OCI image spec registers sha256 and sha512 (descriptor.md) -------------------

REGISTERED = {"sha256": 64, "sha512": 128}
algorithm = st.one_of(st.sampled_from(["sha256", "sha512", "sha384", "sha1", "md5", "blake3",
                                       "sha256+b64u", "multihash+base58", "SHA256"]),
                      st.from_regex(r"\A[a-z][a-z0-9]{0,8}\Z"))
encoded = st.one_of(st.integers(1, 140).map(lambda n: "a1" * (n // 2) + "f" * (n % 2)),
                    st.text("0123456789abcdefABCDEF", min_size=1, max_size=140))


@given(algorithm, encoded)
def test_digest_in_a_reference_is_accepted_only_when_verifiable(alg, hex_):
    digest = "%s:%s" % (alg, hex_)
    verifiable = (alg in REGISTERED and len(hex_) == REGISTERED[alg]
                  and all(c in "0123456789abcdef" for c in hex_))
    try:
        ref = reference.parse_normalized("app@" + digest)
    except InvalidArgument as err:
        assert not verifiable, digest
        assert "\n" not in str(err)
    else:
        assert verifiable, digest
        assert ref.digest == digest
    try:
        assert reference.validate_digest(digest) == digest
        assert verifiable
    except InvalidArgument:
        assert not verifiable


@given(st.sampled_from(sorted(REGISTERED)), st.binary(max_size=200), st.binary(max_size=200))
def test_verify_digest_against_hashlib(alg, data, other):
    import hashlib
    digest = "%s:%s" % (alg, hashlib.new(alg, data).hexdigest())
    assert reference.compute_digest(data, alg) == digest
    assert reference.verify_digest(digest, data, "blob") == digest
    if other != data:
        with pytest.raises(InvalidArgument, match="^blob: digest mismatch: expected "):
            reference.verify_digest(digest, other, "blob")


@pytest.mark.parametrize("digest", ["sha384:" + "a" * 96, "blake3:" + "a" * 64])
def test_algorithms_this_engine_cannot_verify_are_refused(digest):
    with pytest.raises(InvalidArgument) as err:
        reference.parse_docker_ref("nginx@" + digest)
    assert str(err.value) == "unsupported digest algorithm: " + digest


def test_a_name_with_control_characters_is_shown_on_one_line():
    from pyrunc.engine.reference import parse_normalized
    with pytest.raises(InvalidArgument) as e:
        parse_normalized("A\n")
    assert str(e.value) == "invalid reference format: repository name (library/A\\n) must be lowercase"
