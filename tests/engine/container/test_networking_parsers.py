"""The network options of a new container over generated input, with networking off (so
nothing of the host is touched): each request is accepted or refused with one PyruncError whose
message is one line; nothing else escapes."""
from hypothesis import given, settings, strategies as st

from pyrunc.engine.container.network import ContainerNetworking, summary_ports
from pyrunc.errors import InvalidArgument, NotFound, PyruncError

text = st.one_of(st.text(max_size=20), st.sampled_from(
    ["bridge", "none", "host", "default", "container:", "container:x", "mynet", "../x"]))
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), text)
json_value = st.recursive(json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)), max_leaves=8)
endpoint = st.fixed_dictionaries({}, optional={
    "IPAMConfig": st.one_of(json_value, st.fixed_dictionaries(
        {"IPv4Address": st.one_of(text, st.just("10.1.2.3"))})),
    "Aliases": st.one_of(json_value, st.lists(text, max_size=3)),
    "MacAddress": st.one_of(json_value, st.just("02:42:ac:11:00:02"))})
host_config = st.fixed_dictionaries({}, optional={
    "NetworkMode": text, "PortBindings": st.one_of(json_value, st.dictionaries(
        st.sampled_from(["80/tcp", "53/udp", "0/tcp", "x", "80/ip"]),
        st.lists(st.fixed_dictionaries({}, optional={"HostIp": text, "HostPort": text}),
                 max_size=2), max_size=2)),
    "PublishAllPorts": st.booleans(), "ExtraHosts": st.lists(text, max_size=2),
    "Dns": st.lists(text, max_size=2), "DnsSearch": st.lists(text, max_size=2),
    "DnsOptions": st.lists(text, max_size=2)})


def _lookup(ref):
    raise NotFound("No such container: %s" % ref)


@settings(max_examples=300, deadline=None)
@given(hc=host_config, mac=st.one_of(st.just(""), text), hostname=st.one_of(st.just(""), text),
       endpoints=st.one_of(st.none(), st.dictionaries(text, endpoint, max_size=2)))
def test_prepare_accepts_or_refuses_with_one_line(tmp_path_factory, hc, mac, hostname,
                                                  endpoints):
    net = ContainerNetworking(str(tmp_path_factory.getbasetemp() / "net-off"))
    try:
        record = net.prepare(hc, {"MacAddress": mac, "Hostname": hostname},
                             {"EndpointsConfig": endpoints}, _lookup)
    except PyruncError as e:
        assert str(e) and "\n" not in str(e)
        return
    mode = hc.get("NetworkMode") or "bridge"
    assert mode in ("bridge", "default", "none", "host")     # no user network exists
    assert set(record["Networks"]) <= {"bridge", "none", "host"}


def test_unknown_network_and_conflicts_have_dockers_words(tmp_path):
    net = ContainerNetworking(str(tmp_path / "n"))
    for hc, config, words in (
            ({"NetworkMode": "mynet"}, {}, "network mynet not found"),
            ({"NetworkMode": "container:a"}, {"Hostname": "h"},
             "conflicting options: hostname and the network mode"),
            ({"NetworkMode": "container:a", "PortBindings": {"80/tcp": [{}]}}, {},
             "conflicting options: port publishing and the container type network mode"),
            ({"NetworkMode": "container:a", "Dns": ["1.1.1.1"]}, {},
             "conflicting options: dns and the network mode"),
            ({"NetworkMode": "container:a", "ExtraHosts": ["a:1.2.3.4"]}, {},
             "conflicting options: custom host-to-IP mapping and the network mode"),
            ({"NetworkMode": "host"}, {"MacAddress": "02:42:ac:11:00:02"},
             "conflicting options: mac-address and the network mode")):
        try:
            net.prepare(hc, config, None, _lookup)
        except InvalidArgument as e:
            assert str(e) == words
        else:
            raise AssertionError("accepted %r" % (hc,))


def test_summary_ports_as_docker_ps_lists_them():
    assert summary_ports({"Ports": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                                    "53/udp": None}}) == [
        {"PrivatePort": 53, "Type": "udp"},
        {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}]
