"""The D-Bus client against a real bus: a private dbus-daemon on a socket in a temp dir.

The daemon is the oracle: it parses and validates every message the client writes (a message
that breaks the wire format closes the connection), and it answers the org.freedesktop.DBus
methods from its own state; dbus-send, a second client, reads the same state. Messages the client
sends to its own unique name come back through the daemon, so their bodies must read back as
written.
"""
import os
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc.errors import SystemFailure
from pyrunc.libcontainer.cgroups import dbus

pytestmark = pytest.mark.peer       # dbus-daemon, dbus-send

BUS = "org.freedesktop.DBus"
BUS_PATH = "/org/freedesktop/DBus"

CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


@pytest.fixture(scope="module")
def dbus_daemon(tmp_path_factory):
    """The socket path of a private dbus-daemon, stopped after the module."""
    from support import need
    binary = need("dbus-daemon")
    base = tmp_path_factory.mktemp("dbus")
    sock = str(base / "bus")
    (base / "bus.conf").write_text(CONFIG % sock)
    proc = subprocess.Popen([binary, "--config-file", str(base / "bus.conf"), "--nofork",
                             "--print-address"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        address = proc.stdout.readline().decode().strip()
        assert address.startswith("unix:path=%s" % sock), (
            "dbus-daemon did not start: %s" % proc.stderr.read().decode()[-2000:])
        yield sock
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


@pytest.fixture
def conn(dbus_daemon):
    """A connection that said Hello (the bus serves nothing else first); its .name is the
    unique name the bus gave it."""
    c = dbus.Connection(dbus_daemon)
    (c.name,) = c.call("/org/freedesktop/DBus", BUS, "Hello", destination=BUS)
    yield c
    c.close()


def bus_call(c, member, signature="", *args):
    return c.call(BUS_PATH, BUS, member, signature, *args, destination=BUS)


def dbus_send(sock, member, *args):
    """The reply's values as dbus-send prints them (a second, independent client)."""
    from support import need
    r = subprocess.run([need("dbus-send"), "--bus=unix:path=" + sock, "--print-reply=literal",
                        "--dest=" + BUS, BUS_PATH, BUS + "." + member, *args],
                       capture_output=True, text=True, timeout=30, check=True)
    return r.stdout.split()


def test_hello_gives_a_unique_name(conn):
    # the specification: unique names start with ':' and contain a '.'
    assert conn.name.startswith(":") and "." in conn.name
    assert bus_call(conn, "GetNameOwner", "s", conn.name) == [conn.name]


def test_get_id_is_the_bus_id_dbus_send_reads(conn, dbus_daemon):
    (bus_id,) = bus_call(conn, "GetId")
    assert len(bus_id) == 32 and int(bus_id, 16) >= 0
    assert dbus_send(dbus_daemon, "GetId") == [bus_id]


def test_list_names_holds_the_bus_and_us(conn):
    (names,) = bus_call(conn, "ListNames")
    assert BUS in names and conn.name in names


def test_request_name_then_the_bus_and_dbus_send_see_its_owner(conn, dbus_daemon):
    name = "org.pyrunc.Test%d" % os.getpid()
    assert bus_call(conn, "NameHasOwner", "s", name) == [False]
    assert dbus_send(dbus_daemon, "NameHasOwner", "string:" + name) == ["boolean", "false"]
    assert bus_call(conn, "RequestName", "su", name, 0) == [1]       # PRIMARY_OWNER
    assert bus_call(conn, "RequestName", "su", name, 0) == [4]       # ALREADY_OWNER
    assert bus_call(conn, "NameHasOwner", "s", name) == [True]
    assert bus_call(conn, "GetNameOwner", "s", name) == [conn.name]
    assert dbus_send(dbus_daemon, "NameHasOwner", "string:" + name) == ["boolean", "true"]
    assert bus_call(conn, "ReleaseName", "s", name) == [1]           # RELEASED
    assert bus_call(conn, "NameHasOwner", "s", name) == [False]


def test_credentials_are_the_kernel_s(conn):
    assert bus_call(conn, "GetConnectionUnixProcessID", "s", conn.name) == [os.getpid()]
    assert bus_call(conn, "GetConnectionUnixUser", "s", conn.name) == [os.geteuid()]


def test_a_variant_property_reads_back(conn):
    (interfaces,) = conn.call(BUS_PATH, "org.freedesktop.DBus.Properties", "Get", "ss", BUS,
                              "Interfaces", destination=BUS)
    assert isinstance(interfaces, list) and all(isinstance(i, str) for i in interfaces)
    (everything,) = conn.call(BUS_PATH, "org.freedesktop.DBus.Properties", "GetAll", "s", BUS,
                              destination=BUS)
    assert everything["Interfaces"] == interfaces


def test_errors_come_back_with_their_name(conn):
    with pytest.raises(dbus.DBusError) as e:
        bus_call(conn, "NoSuchMethod")
    assert e.value.name == "org.freedesktop.DBus.Error.UnknownMethod"
    with pytest.raises(dbus.DBusError) as e:
        bus_call(conn, "GetNameOwner", "s", "org.pyrunc.nobody")
    assert e.value.name == "org.freedesktop.DBus.Error.NameHasNoOwner"


def test_systemd_s_signatures_pass_the_bus_s_validation(conn):
    """StartTransientUnit's arguments as the driver writes them: the bus validates the body
    against the signature before it answers that it has no such interface."""
    props = [("Description", ("s", "x")), ("PIDs", ("au", [1, 2])), ("Delegate", ("b", True)),
             ("MemoryMax", ("t", 1 << 40)), ("CPUQuotaPerSecUSec", ("t", 250000))]
    with pytest.raises(dbus.DBusError) as e:
        conn.call("/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
                  "StartTransientUnit", "ssa(sv)a(sa(sv))", "x.scope", "replace", props, [],
                  destination=BUS)
    assert e.value.name == "org.freedesktop.DBus.Error.UnknownInterface"
    assert bus_call(conn, "GetNameOwner", "s", conn.name) == [conn.name]      # still connected


def test_a_malformed_message_is_refused_by_the_bus(dbus_daemon):
    """The oracle can fail: a body that does not match its signature closes the connection."""
    c = dbus.Connection(dbus_daemon)
    try:
        c.call(BUS_PATH, BUS, "Hello", destination=BUS)
        data = bytearray(dbus.encode_message(99, BUS_PATH, BUS, "NameHasOwner", BUS, "s", ["x"]))
        data[-2:-1] = b"\xff"           # the string's last byte: invalid UTF-8
        c.sock.sendall(bytes(data))
        with pytest.raises(SystemFailure, match="the connection was closed"):
            while True:
                c._message()
    finally:
        c.close()


def _text():
    return st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
                   max_size=12)


_variant = st.one_of(st.tuples(st.just("s"), _text()), st.tuples(st.just("b"), st.booleans()),
                     st.tuples(st.just("t"), st.integers(0, 2 ** 64 - 1)),
                     st.tuples(st.just("i"), st.integers(-2 ** 31, 2 ** 31 - 1)),
                     st.tuples(st.just("au"), st.lists(st.integers(0, 2 ** 32 - 1), max_size=3)))
_props = st.lists(st.tuples(_text(), _variant), max_size=4)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=_text(), mode=_text(), props=_props,
       aux=st.lists(st.tuples(_text(), _props), max_size=2))
def test_bodies_sent_to_ourselves_come_back_through_the_bus(conn, name, mode, props, aux):
    """The bus routes a call to our own unique name back to us, after validating it; the body
    reads back as written (a variant reads back as its value)."""
    conn._serial += 1
    sig = "ssa(sv)a(sa(sv))"
    conn.sock.sendall(dbus.encode_message(conn._serial, "/a", "org.pyrunc.Echo", "Echo",
                                          conn.name, sig, [name, mode, props, aux]))
    while True:
        kind, fields, body = conn._message()
        if kind == dbus.METHOD_CALL:
            break
    assert fields[7] == conn.name and fields[3] == "Echo" and fields[8] == sig
    plain = lambda ps: [(k, v) for k, (_t, v) in ps]        # noqa: E731
    assert body == [name, mode, [tuple(p) for p in plain(props)],
                    [(n, plain(ps)) for n, ps in aux]]
