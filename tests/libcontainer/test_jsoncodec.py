"""jsoncodec gives the stdlib json's results: the same values, text and errors.

Hypothesis draws JSON documents (and texts around them: whitespace, garbage, cut-offs, BOMs,
other encodings), and every answer is compared with ``json``'s for the same arguments.
"""
import json
import math
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc.libcontainer import jsoncodec

SETTINGS = settings(max_examples=int(os.environ.get("PYRUNC_HYPOTHESIS_EXAMPLES", 300)),
                    deadline=None, suppress_health_check=[HealthCheck.too_slow])

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                    st.text(), st.sampled_from(["", "\x00", "\u2028", "\ud800", "é", "\"\\/"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.tuples(inner, inner),
    st.dictionaries(st.text(max_size=5), inner, max_size=4)), max_leaves=20)
KEYS = st.one_of(st.text(max_size=4), st.integers(), st.floats(), st.booleans(), st.none())
WHITESPACE = st.text(alphabet=" \t\n\r\x0b\x0c\u00a0", max_size=3)


def same(a, b):
    """Equal as JSON values, NaN equal to NaN, and of the same types throughout."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


def outcome(fn, *args, **kwargs):
    """('ok', value) or (exception type, message, position attributes)."""
    try:
        return ("ok", fn(*args, **kwargs))
    except (ValueError, TypeError, RecursionError) as e:
        return (type(e), str(e), getattr(e, "pos", None), getattr(e, "lineno", None),
                getattr(e, "colno", None), getattr(e, "msg", None))


def assert_same_outcome(ours, theirs):
    if ours[0] == "ok" and theirs[0] == "ok":
        assert same(ours[1], theirs[1]), (ours, theirs)
    else:
        assert ours == theirs


@SETTINGS
@given(VALUES, WHITESPACE, WHITESPACE)
def test_loads_reads_what_json_wrote(value, before, after):
    text = before + json.dumps(value) + after
    assert_same_outcome(outcome(jsoncodec.loads, text), outcome(json.loads, text))


@SETTINGS
@given(VALUES, st.data())
def test_loads_fails_as_json_does_on_damaged_text(value, data):
    text = json.dumps(value)
    cut = data.draw(st.integers(0, len(text)))
    junk = data.draw(st.text(alphabet=' \t\n\r{}[]",:0123456789.eE+-truefalsnNI\\u', max_size=6))
    damaged = text[:cut] + junk + text[cut + data.draw(st.integers(0, 2)):]
    assert_same_outcome(outcome(jsoncodec.loads, damaged), outcome(json.loads, damaged))


@SETTINGS
@given(st.text(max_size=12))
def test_loads_any_text(text):
    assert_same_outcome(outcome(jsoncodec.loads, text), outcome(json.loads, text))


@SETTINGS
@given(VALUES, st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be",
                                "utf-32", "utf-32-le", "utf-32-be"]))
def test_loads_bytes_in_every_encoding_json_detects(value, encoding):
    data = json.dumps(value, ensure_ascii=False).encode(encoding, "surrogatepass")
    assert_same_outcome(outcome(jsoncodec.loads, data), outcome(json.loads, data))
    assert_same_outcome(outcome(jsoncodec.loads, bytearray(data)),
                        outcome(json.loads, bytearray(data)))


@SETTINGS
@given(st.binary(max_size=10))
def test_loads_any_bytes(data):
    assert_same_outcome(outcome(jsoncodec.loads, data), outcome(json.loads, data))


def reject(name):
    raise ValueError("%s is not a JSON number" % name)


@SETTINGS
@given(st.sampled_from(["NaN", "Infinity", "-Infinity", "[1, NaN]", '{"a": -Infinity}', "1"]))
def test_parse_constant(text):
    assert_same_outcome(outcome(jsoncodec.loads, text, parse_constant=reject),
                        outcome(json.loads, text, parse_constant=reject))
    assert_same_outcome(outcome(jsoncodec.loads, text, parse_constant=str),
                        outcome(json.loads, text, parse_constant=str))


def test_loads_refuses_other_types_and_a_bom_in_text():
    assert outcome(jsoncodec.loads, 1) == outcome(json.loads, 1)
    assert outcome(jsoncodec.loads, "\ufeff{}") == outcome(json.loads, "\ufeff{}")


def test_load_reads_a_file(tmp_path):
    path = tmp_path / "doc.json"
    path.write_text('{"process": {"terminal": true}}\n')
    with open(path, "rb") as f:
        assert jsoncodec.load(f) == {"process": {"terminal": True}}


@SETTINGS
@given(VALUES, st.sampled_from([None, (",", ":"), (", ", ": ")]))
def test_dumps_compact(value, separators):
    assert outcome(jsoncodec.dumps, value, separators=separators) == \
        outcome(json.dumps, value, separators=separators)


@SETTINGS
@given(VALUES, st.sampled_from([0, 2, 4, "\t", "    ", ""]),
       st.sampled_from([None, (",", ": "), (", ", ":")]))
def test_dumps_indented(value, indent, separators):
    assert outcome(jsoncodec.dumps, value, indent=indent, separators=separators) == \
        outcome(json.dumps, value, indent=indent, separators=separators)


@SETTINGS
@given(st.dictionaries(KEYS, SCALARS, max_size=4), st.sampled_from([None, 2]))
def test_dumps_non_string_keys(value, indent):
    assert outcome(jsoncodec.dumps, value, indent=indent) == \
        outcome(json.dumps, value, indent=indent)


@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("value", [object(), {(1, 2): 3}, [1, {1j: 2}], {"a": {1, 2}}])
def test_dumps_refuses_what_json_refuses(value, indent):
    ours = outcome(jsoncodec.dumps, value, indent=indent)
    assert ours[0] is TypeError and ours == outcome(json.dumps, value, indent=indent)


@pytest.mark.parametrize("indent", [None, 2])
def test_dumps_refuses_a_circular_value(indent):
    loop = []
    loop.append({"a": loop})
    assert outcome(jsoncodec.dumps, loop, indent=indent) == \
        outcome(json.dumps, loop, indent=indent)


BROKEN = ['{"a": "b', "[1,", "", "  ", "{} x", '{"a" 1}', '[1 2]', '{"a": tru}', '"\\x"',
          '{"a": 1,}', "[-]", '"\x01"', "\ufeff{}", b"\xff", "[" * 100000]


def test_codec_imports_no_json_package_nor_re():
    """Decoding and encoding, indented too, load neither ``json`` nor ``re``. A decoding error
    loads json.decoder for the scanner's exception class, and is json's error: checked here
    with json.decoder unloaded before each one."""
    code = """if True:
        import sys
        loaded = set(sys.modules)   # the site's own imports (an editable install loads re)
        from pyrunc.libcontainer import jsoncodec
        jsoncodec.dumps(jsoncodec.loads(b'{"a": [1, 2.5, "x"]}'), indent=2)
        jsoncodec.dumps({"a": None}, separators=(",", ":"))
        print(sorted({"json", "json.decoder", "re", "enum"} & (set(sys.modules) - loaded)))
        for text in %r:
            sys.modules.pop("json.decoder", None)
            try:
                jsoncodec.loads(text)
            except (ValueError, RecursionError) as e:
                print(type(e).__name__, e)
    """ % (BROKEN,)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    expected = []
    for text in BROKEN:
        with pytest.raises((ValueError, RecursionError)) as e:
            json.loads(text)
        expected.append("%s %s" % (type(e.value).__name__, e.value))
    assert out == ["[]"] + expected
