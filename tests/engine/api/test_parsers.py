"""The API's parsers over generated input: filters, booleans, versions, chunked bodies, routes,
-H addresses. Every input gives a result or a one-line InvalidArgument, never anything else."""
import io
import json
import re
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc.engine.api import httputils, server
from pyrunc.engine.dockerd import parse_host
from pyrunc.errors import InvalidArgument

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) |
                           st.dictionaries(st.text(max_size=6), inner, max_size=4),
                           max_leaves=12)


@given(st.text(max_size=200) | json_values.map(json.dumps))
@settings(max_examples=400, deadline=None)
def test_filters_parse_or_refuse(text):
    try:
        out = httputils.parse_filters(text)
    except InvalidArgument as e:
        assert "\n" not in str(e) and str(e).startswith("invalid filter")
        return
    assert isinstance(out, dict)
    assert all(isinstance(k, str) and all(isinstance(v, str) for v in vs)
               for k, vs in out.items())


@given(st.dictionaries(st.text(min_size=1, max_size=8),
                       st.lists(st.text(max_size=8), max_size=4, unique=True), max_size=4))
def test_filters_both_forms_agree(doc):
    legacy = httputils.parse_filters(json.dumps(doc))
    modern = httputils.parse_filters(json.dumps({k: {v: True for v in vs}
                                                 for k, vs in doc.items()}))
    assert {k: sorted(v) for k, v in legacy.items()} == {k: sorted(v)
                                                         for k, v in modern.items()}
    assert {k: sorted(v) for k, v in legacy.items()} == {k: sorted(v) for k, v in doc.items()}


def test_filter_values_must_be_true():
    with pytest.raises(InvalidArgument):
        httputils.parse_filters('{"label": {"a": false}}')
    with pytest.raises(InvalidArgument):
        httputils.parse_filters('{"label": "a"}')


@given(st.text(max_size=10))
def test_bool_as_docker(value):
    # docker's BoolValue: false only for "", "0", "no", "false", "none" (trimmed, any case)
    expected = value.strip().lower() not in ("", "0", "no", "false", "none")
    assert httputils.bool_value(value) is expected


@given(st.text(max_size=12) | st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){0,3}", fullmatch=True))
def test_version_parse_or_refuse(text):
    try:
        v = httputils.version_tuple(text)
    except InvalidArgument as e:
        assert str(e).startswith("invalid API version")
        return
    assert re.fullmatch(r"[0-9]+(\.[0-9]+){0,2}", text, re.ASCII)
    assert v == tuple(int(p) for p in text.split("."))


@given(st.integers(1, 2), st.integers(0, 99))
def test_version_window(major, minor):
    version = "%d.%d" % (major, minor)
    inside = (1, 24) <= (major, minor) <= (1, 43)
    try:
        server.check_version(version)
        assert inside
    except InvalidArgument as e:
        assert not inside
        assert ("too new" in str(e)) == ((major, minor) > (1, 43))


@given(st.lists(st.binary(min_size=1, max_size=300), max_size=8), st.integers(1, 4096))
def test_chunked_body_roundtrip(chunks, read_size):
    wire = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in chunks) + \
        b"0\r\nTrailer: x\r\n\r\nNEXT"
    rfile = io.BufferedReader(io.BytesIO(wire))
    body = server._Body(rfile, None, True)
    out = b""
    while True:
        piece = body.read(read_size)
        if not piece:
            break
        out += piece
    assert out == b"".join(chunks)
    assert rfile.read() == b"NEXT"     # the next request on the connection is intact


@given(st.binary(max_size=200))
def test_chunked_garbage_refused(wire):
    body = server._Body(io.BufferedReader(io.BytesIO(wire)), None, True)
    try:
        body.read()
    except InvalidArgument as e:
        assert "chunked" in str(e) or "ended early" in str(e)


def test_length_body_stops_at_length():
    rfile = io.BufferedReader(io.BytesIO(b"helloGET /next"))
    body = server._Body(rfile, 5, False)
    assert body.read() == b"hello" and body.read() == b""
    assert rfile.read() == b"GET /next"
    short = server._Body(io.BufferedReader(io.BytesIO(b"abc")), 10, False)
    with pytest.raises(InvalidArgument, match="ended early"):
        short.read()


ROUTES = [server.Route("GET", "/containers/{id}/json", lambda r: None),
          server.Route("GET", "/images/{name:.*}/json", lambda r: None),
          server.Route("DELETE", "/images/{name:.*}", lambda r: None)]


@given(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30))
def test_route_params_decoded(name):
    api = server.APIServer(ROUTES)
    quoted = urllib.parse.quote(name, safe="")
    route, params = api.match("GET", "/containers/%s/json" % quoted)
    assert route is ROUTES[0] and params == {"id": name}
    route, params = api.match("DELETE", "/images/%s" % quoted)
    assert params == {"name": name}


def test_route_segments():
    api = server.APIServer(ROUTES)
    assert api.match("GET", "/images/library/busybox:1/json")[1] == {
        "name": "library/busybox:1"}
    with pytest.raises(Exception, match="page not found"):
        api.match("GET", "/containers/a/b/json")
    with pytest.raises(Exception, match="page not found"):
        api.match("POST", "/containers/a/json")


@pytest.mark.parametrize("host,expected", [
    ("unix:///run/x.sock", ("unix", "/run/x.sock", 0)),
    ("/run/y.sock", ("unix", "/run/y.sock", 0)),
    ("tcp://127.0.0.1:2376", ("tcp", "127.0.0.1", 2376)),
    ("tcp://[::1]:2376", ("tcp", "::1", 2376)),
    ("127.0.0.1:2375", ("tcp", "127.0.0.1", 2375)),
])
def test_parse_host(host, expected):
    assert parse_host(host) == expected


@given(st.text(max_size=40))
def test_parse_host_never_crashes(text):
    try:
        scheme, address, port = parse_host(text)
    except InvalidArgument as e:
        assert str(e).startswith("invalid bind address")
        return
    assert scheme in ("unix", "tcp")
    assert address.startswith("/") if scheme == "unix" else 0 <= port < 65536
