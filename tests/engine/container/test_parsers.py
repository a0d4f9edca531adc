"""The container service's parsers against arbitrary input (hypothesis): filters, signals,
resolv.conf and hosts content, stored Config."""
import ipaddress
import signal

import pytest
from hypothesis import given, settings, strategies as st

from pyrunc import errors
from pyrunc.engine.container import files, view
from pyrunc.engine.container.service import parse_signal

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3), max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_filters_accept_or_refuse_cleanly(filters):
    try:
        parsed = view.parse_filters(filters)
    except errors.InvalidArgument:
        return
    assert all(k in view.LIST_FILTERS and all(isinstance(v, str) for v in vs)
               for k, vs in parsed.items())


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=12), st.integers(), st.none(), st.floats()))
def test_signal_parser(value):
    try:
        number = parse_signal(value)
    except errors.InvalidArgument:
        return
    assert 1 <= number <= 64


@pytest.mark.parametrize("text, number", [("KILL", 9), ("SIGKILL", 9), ("kill", 9), ("9", 9),
                                          (15, 15), ("SIGRTMIN", int(signal.SIGRTMIN)),
                                          ("usr1", int(signal.SIGUSR1))])
def test_signal_names(text, number):
    assert parse_signal(text) == number


@pytest.mark.parametrize("text", ["0", "65", "-1", "SIGNOPE", "", " ", True])
def test_bad_signals(text):
    with pytest.raises(errors.InvalidArgument, match="Invalid signal"):
        parse_signal(text)


addresses = st.ip_addresses().map(str)
resolv_lines = st.one_of(addresses.map(lambda a: "nameserver " + a),
                         st.just("search example.com"), st.just("options ndots:2"),
                         st.text(alphabet="abc #;\t", max_size=10))


@settings(max_examples=300, deadline=None)
@given(st.lists(resolv_lines, max_size=8))
def test_resolv_conf_drops_loopback_nameservers(lines):
    out = files.resolv_conf_text("\n".join(lines))
    servers = [line.split()[1] for line in out.splitlines()
               if line.split()[:1] == ["nameserver"]]
    assert servers
    assert not any(ipaddress.ip_address(s).is_loopback for s in servers)
    kept = [line.split()[1] for line in lines if line.startswith("nameserver ")
            and not ipaddress.ip_address(line.split()[1]).is_loopback]
    assert servers == (kept or ["8.8.8.8", "8.8.4.4"])


def test_resolv_conf_overrides():
    out = files.resolv_conf_text("nameserver 1.1.1.1\nsearch a.b\noptions x\n",
                                 dns=["9.9.9.9"], dns_search=["c.d"], dns_options=["ndots:1"])
    assert out == "nameserver 9.9.9.9\nsearch c.d\noptions ndots:1\n"


def test_hosts_file():
    text = files.hosts_text("box", "example.org", extra_hosts=["db:10.0.0.2"])
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert "10.0.0.2\tdb" in lines
    assert lines[-1] == "127.0.0.1\tbox.example.org box"
    for bad in ("nohost", ":1.2.3.4", "h:"):
        with pytest.raises(errors.InvalidArgument, match="invalid extra host"):
            files.hosts_text("box", extra_hosts=[bad])


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=12), json_values, max_size=6))
def test_stored_config_has_only_dockers_fields(config):
    out = view.normalise_config(config)
    assert set(view.CONFIG_DEFAULTS) <= set(out)
    assert set(out) <= set(view.CONFIG_DEFAULTS) | set(view.CONFIG_OMIT_EMPTY)


def test_extra_host_forms():
    assert files.hosts_text("b", extra_hosts=["db=10.0.0.3", "v6:::1"]).splitlines()[6:8] == [
        "10.0.0.3\tdb", "::1\tv6"]
    assert files.host_network_hosts_text("127.0.0.1 localhost", ["db:1.2.3.4"]) == (
        "127.0.0.1 localhost\n1.2.3.4\tdb\n")
