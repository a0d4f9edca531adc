"""Property tests for the registry side's parsers: challenges, config.json, platforms."""
import json

import pytest
from hypothesis import given, settings, strategies as st

from pyrunc.engine.distribution import parse_platform
from pyrunc.engine.platforms import Platform, select_manifest
from pyrunc.engine.registry import AuthFile, Credentials, RegistryOptions
from pyrunc.engine.registry.auth import parse_challenges
from pyrunc.errors import InvalidArgument, NotFound

token = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-",
                min_size=1, max_size=10)
value = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)


def quote(text):
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')


@given(st.sampled_from(["Bearer", "Basic", "bearer"]),
       st.dictionaries(token.map(str.lower), value, max_size=4))
def test_challenge_round_trip(scheme, params):
    header = scheme + " " + ",".join("%s=%s" % (k, quote(v)) for k, v in params.items())
    [challenge] = parse_challenges(header)
    assert challenge.scheme == scheme.lower()
    assert challenge.params == params


def test_real_challenges():
    [c] = parse_challenges('Bearer realm="https://auth.docker.io/token",'
                           'service="registry.docker.io",scope="repository:library/a:pull"')
    assert c.params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                        "scope": "repository:library/a:pull"}
    [c] = parse_challenges('Basic realm="basic-realm"')
    assert (c.scheme, c.params) == ("basic", {"realm": "basic-realm"})
    first, second = parse_challenges('Basic realm="x", Bearer realm="y",service=s')
    assert (first.scheme, second.scheme, second.params) == ("basic", "bearer",
                                                            {"realm": "y", "service": "s"})
    assert parse_challenges("") == []


@settings(max_examples=50)
@given(st.text(alphabet=st.characters(blacklist_characters=":", blacklist_categories=("Cs",)),
               min_size=1, max_size=20),
       st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20),
       st.sampled_from(["docker.io", "127.0.0.1:5000", "registry.example.com"]))
def test_config_file_round_trip(tmp_path_factory, username, password, domain):
    path = tmp_path_factory.mktemp("cfg") / "config.json"
    path.write_text(json.dumps({"credsStore": "", "psFormat": "table"}))
    auth_file = AuthFile(str(path))
    auth_file.store(domain, Credentials(username, password))
    got = auth_file.get(domain)
    assert (got.username, got.password) == (username, password)
    data = json.loads(path.read_text())
    assert data["psFormat"] == "table"
    key = "https://index.docker.io/v1/" if domain == "docker.io" else domain
    assert key in data["auths"]


def test_config_file_errors(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"auths": {"r.example.com": {"auth": "%%%"}}}')
    with pytest.raises(InvalidArgument, match="auths.r.example.com.auth: invalid base64"):
        AuthFile(str(path)).get("r.example.com")
    path.write_text("[1]")
    with pytest.raises(InvalidArgument, match="must hold a JSON object"):
        AuthFile(str(path)).get("r.example.com")
    assert not AuthFile(str(tmp_path / "none.json")).get("r.example.com")


def test_insecure_registry_rules(tmp_path):
    options = RegistryOptions(insecure_registries=["10.0.0.0/8", "myreg:5000"],
                              certs_dir=str(tmp_path))
    assert not options.is_secure("127.0.0.1:5000")
    assert not options.is_secure("localhost:5000")
    assert not options.is_secure("[::1]:5000")
    assert not options.is_secure("10.1.2.3")
    assert not options.is_secure("myreg:5000")
    assert options.is_secure("myreg:5001")
    assert options.is_secure("192.0.2.1:5000")
    urls = [e.url for e in options.endpoints("10.1.2.3:5000")]
    assert urls == ["https://10.1.2.3:5000", "http://10.1.2.3:5000"]
    assert [e.url for e in options.endpoints("192.0.2.1")] == ["https://192.0.2.1"]
    mirrors = RegistryOptions(mirrors=["https://mirror.example.com/"], certs_dir=str(tmp_path))
    assert [e.url for e in mirrors.endpoints("docker.io")] == [
        "https://mirror.example.com", "https://registry-1.docker.io"]
    assert [e.url for e in mirrors.endpoints("docker.io", for_push=True)] == [
        "https://registry-1.docker.io"]
    with pytest.raises(InvalidArgument, match="invalid mirror"):
        RegistryOptions(mirrors=["mirror.example.com"])
    with pytest.raises(InvalidArgument, match="not a valid CIDR"):
        RegistryOptions(insecure_registries=["10.0.0.0/99"])


OS = st.sampled_from(["linux", "windows"])
ARCH = st.sampled_from([("amd64", ""), ("arm64", "v8"), ("arm", "v7"), ("arm", "v6"),
                        ("386", ""), ("s390x", ""), ("ppc64le", "")])


@given(OS, ARCH)
def test_platform_round_trip(os_, arch_variant):
    arch, variant = arch_variant
    plat = Platform(os_, arch, variant)
    parsed = parse_platform(str(plat))
    assert parsed == plat.normalized()
    assert parsed.matches(plat)


@given(st.lists(st.tuples(OS, ARCH), min_size=1, max_size=5, unique=True), OS, ARCH)
def test_select_manifest_picks_a_match_or_says_none(entries, os_, wanted_arch):
    index = {"manifests": [{"digest": "sha256:%064x" % n,
                            "platform": {"os": o, "architecture": a, "variant": v}}
                           for n, (o, (a, v)) in enumerate(entries)]}
    wanted = Platform(os_, *wanted_arch)
    matches = [m for m in index["manifests"]
               if wanted.matches(Platform.from_json(m["platform"]))]
    if matches:
        assert select_manifest(index, wanted) == matches[0]
    else:
        with pytest.raises(NotFound, match="no matching manifest for %s" % wanted):
            select_manifest(index, wanted)


def test_daemon_config_and_login_servers(tmp_path):
    from pyrunc.engine.registry.config import server_domain
    options = RegistryOptions.from_daemon_config(
        {"insecure-registries": ["reg.example.com:5000"],
         "registry-mirrors": ["https://mirror.example.com"]}, certs_dir=str(tmp_path))
    assert not options.is_secure("reg.example.com:5000")
    assert options.mirrors == ["https://mirror.example.com"]
    with pytest.raises(InvalidArgument, match="insecure-registries: must be an array"):
        RegistryOptions.from_daemon_config({"insecure-registries": "x"})
    assert server_domain("") == "docker.io"
    assert server_domain("https://index.docker.io/v1/") == "docker.io"
    assert server_domain("http://127.0.0.1:5000") == "127.0.0.1:5000"
    assert server_domain("myreg:5000/") == "myreg:5000"
