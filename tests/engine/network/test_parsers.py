"""The pure parts: docker's -p grammar, DNS messages, address management, the files docker
writes. Expected values are docker's (go-connections/nat's grammar and messages, the files of a
docker 28 container) or the kernel's/the RFC's wire format; hostile input gets one clear error."""
import ipaddress
import socket
import struct

import pytest
from hypothesis import given, settings, strategies as st

from pyrunc.engine.network import dns, files, ipam, ports
from pyrunc.errors import Conflict, InvalidArgument, Unavailable


# --- -p ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, expected", [
    ("80", {"80/tcp": [{"HostIp": "", "HostPort": ""}]}),
    ("8080:80", {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}),
    ("127.0.0.1:8080:80/udp", {"80/udp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}),
    ("127.0.0.1::80", {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}),
    ("0:53/SCTP", {"53/sctp": [{"HostIp": "", "HostPort": "0"}]}),
    ("8000-8001:80-81", {"80/tcp": [{"HostIp": "", "HostPort": "8000"}],
                         "81/tcp": [{"HostIp": "", "HostPort": "8001"}]}),
    ("8000-8010:80", {"80/tcp": [{"HostIp": "", "HostPort": "8000-8010"}]}),
    ("[::1]:80:80", {"80/tcp": [{"HostIp": "::1", "HostPort": "80"}]}),
])
def test_port_specs_as_docker_parses_them(spec, expected):
    exposed, bindings = ports.parse_port_specs([spec])
    assert bindings == expected and exposed == {k: {} for k in expected}


@pytest.mark.parametrize("spec, message", [
    ("80/xyz", "invalid proto: xyz"),
    ("abc", "invalid containerPort: abc"),
    ("70000", "invalid containerPort: 70000"),
    ("0", "invalid containerPort: 0"),
    ("x:80", "invalid hostPort: x"),
    ("1.2.3:80:80", "invalid IP address: 1.2.3"),
    ("8000-8001:80-82", "invalid ranges specified for container and host Ports: 80-82 and "
                        "8000-8001"),
    ("90-80", "invalid containerPort: 90-80"),
    ("127.0.0.1:80:", "no port specified: 127.0.0.1:80:<empty>"),
    ("80\n", "invalid port specification: '80\\n'"),
])
def test_bad_port_specs_get_dockers_message(spec, message):
    with pytest.raises(InvalidArgument) as e:
        ports.parse_port_specs([spec])
    assert str(e.value) == message


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=40) | st.from_regex(r"[0-9a-f:.\[\]/-]{0,30}", fullmatch=True))
def test_any_port_spec_parses_or_gets_one_clear_error(text):
    try:
        exposed, bindings = ports.parse_port_specs([text])
    except InvalidArgument as e:
        assert "\n" not in str(e) and str(e)
        return
    for key, binds in bindings.items():
        port, proto = key.split("/")
        assert 1 <= int(port) <= 65535 and proto in ports.PROTOS
        for b in binds:
            assert b["HostIp"] == "" or ipaddress.ip_address(b["HostIp"])


@given(st.sampled_from(["", "127.0.0.1", "10.1.2.3"]), st.integers(0, 65535),
       st.integers(1, 65535), st.sampled_from(ports.PROTOS))
def test_generated_port_specs_round_trip(ip, host, container, proto):
    text = "%s%d:%d/%s" % (ip + ":" if ip else "", host, container, proto)
    assert ports.parse_port_specs([text])[1] == {
        "%d/%s" % (container, proto): [{"HostIp": ip, "HostPort": str(host)}]}


@pytest.mark.parametrize("bindings", [
    [], {"80/tcp": "x"}, {"80/tcp": ["x"]}, {"80/icmp": [{}]}, {"0/tcp": [{}]},
    {"80-81/tcp": [{}]}, {"80/tcp": [{"HostIp": "::g"}]}, {"80/tcp": [{"HostPort": "99999"}]},
])
def test_hostile_port_bindings_are_refused(bindings):
    with pytest.raises(InvalidArgument):
        ports.bindings_of(bindings)


# --- DNS ----------------------------------------------------------------------------------------

def query(name, qtype=1, id_=0x1234):
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!6H", id_, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", qtype, 1)


def test_a_query_is_answered_in_rfc1035_wire_format():
    q = dns.parse_query(query("Web.Example"))
    assert (q.id, q.name, q.qtype, q.qclass) == (0x1234, "web.example", 1, 1)
    r = dns.answer(q, ["10.0.0.7", "10.0.0.8"])
    id_, flags, qd, an, ns, ar = struct.unpack("!6H", r[:12])
    assert (id_, qd, an, ns, ar) == (0x1234, 1, 2, 0, 0)
    assert flags & 0x8000 and flags & 0x0100 and flags & 0x000F == 0    # QR, RD kept, NOERROR
    rest = r[12 + len(q.question):]
    for i, addr in enumerate(("10.0.0.7", "10.0.0.8")):
        ptr, typ, cls, ttl, rdlen = struct.unpack("!HHHIH", rest[:12])
        assert (ptr, typ, cls, rdlen) == (0xC00C, 1, 1, 4) and ttl > 0
        assert socket.inet_ntoa(rest[12:16]) == addr
        rest = rest[16:]
    assert rest == b""


@pytest.mark.parametrize("data", [
    b"", b"\x00" * 11, query("a")[:-1],                     # short
    struct.pack("!6H", 1, 0x8100, 1, 0, 0, 0) + query("a")[12:],   # a response
    struct.pack("!6H", 1, 0x2900, 1, 0, 0, 0) + query("a")[12:],   # opcode UPDATE
    struct.pack("!6H", 1, 0x0100, 2, 0, 0, 0) + query("a")[12:],   # two questions
    struct.pack("!6H", 1, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01",  # a pointer
    struct.pack("!6H", 1, 0x0100, 1, 0, 0, 0) + b"\x05ab",          # label past the end
    struct.pack("!6H", 1, 0x0100, 1, 0, 0, 0) + b"\x3f" + b"a" * 63 * 5,   # name too long
])
def test_malformed_queries_are_not_parsed(data):
    assert dns.parse_query(data) is None


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_are_dropped_never_an_exception(data):
    q = dns.parse_query(data)
    if q is not None:
        dns.answer(q, ["1.2.3.4"])
    dns.error(data, dns.RCODE_FORMERR)


# --- IPAM ---------------------------------------------------------------------------------------

def test_the_pool_avoids_the_hosts_routes_and_other_networks():
    assert ipam.pool([], []) == "172.17.0.0/16"
    assert ipam.pool(["172.17.0.0/16"], ["172.18.5.0/24"]) == "172.19.0.0/16"
    taken = ["172.%d.0.0/16" % i for i in range(17, 32)]
    assert ipam.pool(taken, ["192.168.0.0/24"]) == "192.168.16.0/20"
    with pytest.raises(Unavailable):
        ipam.pool(taken, ["192.168.0.0/16"])


@pytest.mark.parametrize("entry, error", [
    ({"Subnet": "10.0.0.0/33"}, InvalidArgument), ({"Subnet": "fd00::/64"}, InvalidArgument),
    ({"Subnet": "nonsense"}, InvalidArgument), ({}, InvalidArgument),
    ({"Subnet": "10.0.0.0/24", "Gateway": "10.0.1.1"}, InvalidArgument),
    ({"Subnet": "10.0.0.0/24", "Gateway": "10.0.0.255"}, InvalidArgument),
    ({"Subnet": "10.0.0.0/24", "IPRange": "10.0.1.0/28"}, InvalidArgument),
    ({"Subnet": "10.5.0.0/16"}, Conflict), ({"Subnet": "10.0.0.0/31"}, InvalidArgument),
    ({"Subnet": "10.0.0.0/24", "Bogus": 1}, InvalidArgument), ("10.0.0.0/8", InvalidArgument),
])
def test_bad_ipam_configs_are_refused(entry, error):
    with pytest.raises(error):
        ipam.config(entry, ["10.5.1.0/24"])


def _record(subnet, iprange=None):
    cfg = ipam.config({"Subnet": subnet, **({"IPRange": iprange} if iprange else {})}, [])
    return {"Name": "n", "IPAM": {"Config": [cfg]}}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["alloc", "want", "free"]), st.integers(0, 15)),
                max_size=60))
def test_an_address_is_never_handed_out_twice(ops):
    record = _record("10.1.0.0/28", "10.1.0.0/29")
    owners = {}
    for op, n in ops:
        if op == "alloc":
            try:
                addr = ipam.allocate(record, "e%d" % len(owners))
            except Unavailable:
                # the /29 range minus the network address and the gateway is all taken
                assert {"10.1.0.%d" % i for i in range(2, 8)} <= set(owners)
                continue
            assert ipaddress.ip_address(addr) in ipaddress.ip_network("10.1.0.0/29")
        elif op == "want":
            addr = "10.1.0.%d" % n
            try:
                ipam.allocate(record, "w", addr)
            except (Conflict, InvalidArgument):
                assert addr in owners or n in (0, 1, 15)
                continue
        else:
            if not owners:
                continue
            addr = sorted(owners)[n % len(owners)]
            ipam.release(record, addr)
            del owners[addr]
            continue
        assert addr not in owners and addr not in ("10.1.0.0", "10.1.0.1", "10.1.0.15")
        owners[addr] = True
        assert sorted(record["allocated"]) == sorted(owners)


# --- files --------------------------------------------------------------------------------------

DOCKER_HOSTS = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
                "ff02::2\tip6-allrouters\n10.99.0.2\td664a98a0f62\n")


def test_files_of_a_user_network_container_as_docker_28_writes_them(tmp_path, monkeypatch):
    host = tmp_path / "host-resolv.conf"
    host.write_text("nameserver 10.255.255.53\n")
    monkeypatch.setattr(files, "HOST_RESOLV_CONF", str(host))
    files.write_container_files(str(tmp_path), "d664a98a0f62", [{"IPAddress": "10.99.0.2"}],
                                network_mode="mynet")
    assert (tmp_path / "hosts").read_text() == DOCKER_HOSTS
    assert (tmp_path / "resolv.conf").read_text() == "nameserver 127.0.0.11\noptions ndots:0\n"
    assert (tmp_path / "hostname").read_text() == "d664a98a0f62\n"


def test_the_default_bridge_drops_loopback_servers_and_takes_dns_flags():
    host = "nameserver 127.0.0.53\nnameserver ::1\nsearch corp.example\noptions edns0\n"
    assert files.resolv_text(host, "bridge") == (
        "nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch corp.example\noptions edns0\n")
    assert files.resolv_text("nameserver 10.0.0.2\n" + host, "default") == (
        "nameserver 10.0.0.2\nsearch corp.example\noptions edns0\n")
    assert files.resolv_text(host, "bridge", ["1.1.1.1"], ["a.example"], ["ndots:2"]) == (
        "nameserver 1.1.1.1\nsearch a.example\noptions ndots:2\n")
    assert files.resolv_text(host, "host") == (
        "nameserver 127.0.0.53\nnameserver ::1\nsearch corp.example\noptions edns0\n")
    assert files.hosts_text("c1", "172.17.0.2", ["db:10.0.0.9", "api=10.0.0.8"]).endswith(
        "10.0.0.9\tdb\n10.0.0.8\tapi\n172.17.0.2\tc1\n")


@pytest.mark.parametrize("kw", [
    {"hostname": "a\n10.0.0.1 evil"}, {"hostname": ""}, {"extra_hosts": ["db"]},
    {"extra_hosts": ["db:not-an-ip"]}, {"extra_hosts": ["evil\nhost:10.0.0.1"]},
    {"dns": ["8.8.8.8\nnameserver 6.6.6.6"]}, {"dns_search": ["a b"]},
    {"dns_options": ["ndots:1\nnameserver 6.6.6.6"]},
])
def test_hostile_file_inputs_are_refused_and_nothing_is_written(tmp_path, kw):
    args = {"hostname": "c1", "extra_hosts": None, "dns": None, "dns_search": None,
            "dns_options": None}
    args.update(kw)
    with pytest.raises(InvalidArgument):
        files.write_container_files(str(tmp_path), args.pop("hostname"),
                                    [{"IPAddress": "10.0.0.2"}], **args)
    assert list(tmp_path.iterdir()) == []

