"""The systemd driver's pure parts: runc's "slice:prefix:name" rule, slice nesting, the unit
properties, and the D-Bus wire encoding (round trip through the reader). The driver itself runs
the shared suite under systemd in tests/vm."""
import pytest
from hypothesis import given, strategies as st

from pyrunc.errors import InvalidArgument
from pyrunc.libcontainer.cgroups import dbus, systemd


@pytest.mark.parametrize("path, expected", [
    ("", ("system.slice", "pyrunc-c1.scope")),
    ("system.slice:docker:abc", ("system.slice", "docker-abc.scope")),
    (":crio:abc", ("system.slice", "crio-abc.scope")),
    ("machine.slice::abc", ("machine.slice", "abc.scope")),
    ("user.slice:x:my.slice", ("user.slice", "my.slice")),
])
def test_cgroups_path_names_a_unit_in_a_slice(path, expected):
    assert systemd.parse_cgroups_path(path, "c1") == expected


@pytest.mark.parametrize("path", ["/abs/path", "a:b", "a:b:c:d", "notaslice:p:n", "s.slice:p:a/b"])
def test_other_cgroups_paths_are_refused(path):
    with pytest.raises(InvalidArgument, match="^linux.cgroupsPath: "):
        systemd.parse_cgroups_path(path, "c1")


def test_slices_nest_by_their_dashes():
    assert systemd.slice_path("system.slice") == "/system.slice"
    assert systemd.slice_path("a-b-c.slice") == "/a.slice/a-b.slice/a-b-c.slice"
    assert systemd.slice_path("-.slice") == "/"
    with pytest.raises(InvalidArgument):
        systemd.slice_path("a--b.slice")


def test_unit_properties_carry_the_limits_systemd_manages():
    props = dict(systemd.unit_properties({"memory": {"limit": 1 << 26, "swap": -1},
                                          "pids": {"limit": 10},
                                          "cpu": {"shares": 1024, "quota": 25000,
                                                  "period": 100000}}))
    assert props["MemoryMax"] == ("t", 1 << 26)
    assert props["MemorySwapMax"] == ("t", (1 << 64) - 1)
    assert props["TasksMax"] == ("t", 10)
    assert props["CPUWeight"] == ("t", 39)
    assert props["CPUQuotaPerSecUSec"] == ("t", 250000)
    assert props["CPUQuotaPeriodUSec"] == ("t", 100000)


basic = st.one_of(
    st.tuples(st.just("y"), st.integers(0, 255)), st.tuples(st.just("b"), st.booleans()),
    st.tuples(st.just("u"), st.integers(0, (1 << 32) - 1)),
    st.tuples(st.just("i"), st.integers(-(1 << 31), (1 << 31) - 1)),
    st.tuples(st.just("t"), st.integers(0, (1 << 64) - 1)),
    st.tuples(st.just("x"), st.integers(-(1 << 63), (1 << 63) - 1)),
    st.tuples(st.just("s"), st.text(max_size=8).filter(lambda s: "\0" not in s)),
    st.tuples(st.just("o"), st.sampled_from(["/", "/org/freedesktop/systemd1"])))


def _typed(draw_basic):
    """(signature, value, expected read-back) for nested arrays, structs, dicts and variants."""
    def array(t):
        sig, value = t
        return st.lists(st.just(value), max_size=3).map(lambda v: ("a" + sig, v))

    def struct(ts):
        return ("(" + "".join(t[0] for t in ts) + ")", tuple(t[1] for t in ts))

    return st.recursive(draw_basic, lambda inner: st.one_of(
        inner.flatmap(array),
        st.lists(inner, min_size=1, max_size=3).map(struct),
        inner.map(lambda t: ("v", t))), max_leaves=6)


def _expected(sig, value):
    if sig == "v":
        return _expected(*value)
    if sig.startswith("a"):
        return [_expected(sig[1:], v) for v in value]
    if sig.startswith("("):
        return tuple(_expected(t, v) for t, v in zip(dbus.split_signature(sig[1:-1]), value))
    return value


@given(st.lists(_typed(basic), max_size=4), st.integers(0, 7))
def test_wire_encoding_round_trips(values, offset):
    w = dbus.Writer()
    w.buf.extend(b"\0" * offset)
    for sig, value in values:
        w.write(sig, value)
    r = dbus.Reader(bytes(w.buf), offset)
    for sig, value in values:
        assert r.read(sig) == _expected(sig, value)
    assert r.pos == len(w.buf)


def test_messages_parse_back_with_their_header_fields():
    data = dbus.encode_message(7, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
                               "StopUnit", "org.freedesktop.systemd1", "ss", ["x.scope", "replace"])
    # the D-Bus specification's fixed header: little-endian, METHOD_CALL, no flags, version 1,
    # then the body's length, the serial and the header fields' array (padded to 8)
    assert data[:4] == b"l\x01\x00\x01"
    assert int.from_bytes(data[8:12], "little") == 7
    fields_len = int.from_bytes(data[12:16], "little")
    body_start = 16 + fields_len + (-fields_len % 8)
    assert len(data) == body_start + int.from_bytes(data[4:8], "little")
    fields = dict(dbus.Reader(data, 12).read("a(yv)"))
    assert fields[3] == "StopUnit" and fields[8] == "ss"
    header = 16 + len(data[16:]) - int.from_bytes(data[4:8], "little")
    r = dbus.Reader(data[header:])
    assert [r.read("s"), r.read("s")] == ["x.scope", "replace"]
