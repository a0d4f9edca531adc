"""The loader and the JSON Schema agree: hypothesis documents, valid and mutated.

Valid documents are drawn from the model's declarations; mutations replace or delete one value
anywhere in them. For every document the loader accepts exactly when jsonschema finds no error,
and when both reject, the schema's error lies on the path the loader names. Random input never
raises anything but a ``pyrunc.errors`` error.
"""
import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc import errors
from pyrunc.libcontainer import ocispec
from pyrunc.libcontainer.ocispec import fields, schema
from pyrunc.libcontainer.ocispec.spec import Spec

SETTINGS = settings(max_examples=int(os.environ.get("PYRUNC_HYPOTHESIS_EXAMPLES", 150)),
                    deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def valid(kind):
    """A strategy for values the declaration ``kind`` accepts."""
    if isinstance(kind, fields.Bool):
        return st.booleans()
    if isinstance(kind, fields.Int):
        return st.one_of(st.integers(kind.low, kind.high), st.sampled_from([kind.low, kind.high]))
    if isinstance(kind, fields.Str):
        if kind.choices:
            return st.sampled_from(kind.choices)
        text = st.from_regex(kind.pattern, fullmatch=True) if kind.pattern else st.text(max_size=6)
        return text.filter(lambda s: "\0" not in s) if kind.c_string else text   # NUL: C's end
    if isinstance(kind, fields.Array):
        return st.lists(valid(kind.item), min_size=1 if kind.non_empty else 0, max_size=2)
    if isinstance(kind, fields.Map):
        return st.dictionaries(valid(kind.key).filter(lambda k: len(k) <= 4), valid(kind.value),
                               max_size=2)
    if isinstance(kind, fields.Object):
        return model(kind.model)
    raise AssertionError(kind)


def model(cls):
    required = {k: valid(kind) for k, _a, kind in cls._table if k in cls.required}
    optional = {k: valid(kind) for k, _a, kind in cls._table if k not in cls.required}
    return st.fixed_dictionaries(required, optional=optional)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 65, 2 ** 65) | st.text(max_size=5)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([-1, 0, 1001, 2 ** 16, 2 ** 32, 2 ** 63, 2 ** 64, 1.0, 1.5, "", "pidx",
                       "tmp", "SCMP_ACT_NOPE", "RLIMIT_nofile", "2MiB", "x"]),
    lambda inner: (st.lists(inner, max_size=3)
                   | st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=6)


def locations(doc, path=()):
    """Every (path) inside a JSON document, as tuples of keys and indexes."""
    yield path
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from locations(v, path + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from locations(v, path + (i,))


def mutate(doc, path, action, value):
    if not path:
        return value
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    if action == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    elif action == "nudge":
        # Step a scalar just past a bound or out of its enum or pattern.
        old = parent[path[-1]]
        if type(old) is int:
            parent[path[-1]] = old + (1 if value is True else -1)
        elif type(old) is str:
            parent[path[-1]] = old + "x" if value is True else "x" + old
        else:
            parent[path[-1]] = value
    else:
        parent[path[-1]] = value
    return doc


@st.composite
def documents(draw):
    doc = draw(model(Spec))
    for _ in range(draw(st.integers(0, 2))):
        where = draw(st.sampled_from(list(locations(doc))))
        action = draw(st.sampled_from(["delete", "replace", "nudge"]))
        value = draw(st.booleans() if action == "nudge" else json_values)
        doc = mutate(doc, where, action, value)
    return doc


def loader_error(doc):
    try:
        ocispec.from_dict(doc)
    except errors.InvalidArgument as e:
        assert e.source == "config.json"
        return e
    return None


def schema_paths(doc):
    """The instance paths of the schema's errors, spelled as the loader spells paths."""
    out = []
    for e in schema._validator().iter_errors(doc):
        path = ""
        for part in e.absolute_path:
            path = fields.join(path, part)
        out.append(path)
    return out


def within(inner, outer):
    return outer == "" or inner == outer or inner.startswith((outer + ".", outer + "["))


@SETTINGS
@given(documents())
def test_loader_accepts_exactly_what_the_schema_accepts(doc):
    error = loader_error(doc)
    problems = ocispec.validate_schema(doc)
    if error is None:
        assert problems == [], problems
    else:
        assert problems, "loader: %s; schema accepts" % error
        # The loader reports the first problem it meets; the schema lists them all.
        assert any(within(error.path, p) for p in schema_paths(doc)), (str(error), problems)


@SETTINGS
@given(model(Spec))
def test_valid_documents_load_and_round_trip(doc):
    spec = ocispec.from_dict(doc)
    assert spec.raw is doc
    assert ocispec.validate_schema(doc) == []
    assert ocispec.from_dict(json.loads(json.dumps(doc))) == spec


@SETTINGS
@given(json_values)
def test_random_documents_fail_cleanly(doc):
    # The OCI runtime spec: the configuration is an object and ociVersion is REQUIRED; the
    # random objects here have keys of at most 4 characters, so every document is refused.
    with pytest.raises(errors.InvalidArgument) as e:
        ocispec.from_dict(doc)
    if not isinstance(doc, dict):
        assert str(e.value) == "config.json: must be an object"
    elif not doc:
        assert str(e.value) == "config.json: ociVersion: is required"
    assert "\n" not in str(e.value)


def _not_json(name):
    raise ValueError("%s is not JSON (RFC 8259)" % name)


def _stdlib_json(data):
    """What the standard library makes of the bytes as UTF-8 JSON text (RFC 8259), or the
    reason it cannot."""
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_not_json), None
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except ValueError:
        return None, "invalid JSON"


@SETTINGS
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode)
       | json_values.map(lambda v: json.dumps(v).encode()))
def test_random_bytes_fail_cleanly(data):
    doc, reason = _stdlib_json(data)
    with pytest.raises(errors.InvalidArgument) as e:
        ocispec.from_json(data)
    message = str(e.value)
    assert "\n" not in message and message.startswith("config.json: ")
    if reason is not None:      # either reason may come first (b"\0\x80": both hold)
        assert "invalid JSON" in message or "not UTF-8 text" in message, (data, message)
    elif not isinstance(doc, dict):
        assert message == "config.json: must be an object"
    else:
        assert "ociVersion" not in doc


def test_schema_file_is_rendered_from_the_model():
    with open(schema.SCHEMA_FILE) as f:
        assert f.read() == schema.dumps(schema.render())


def test_schema_is_a_valid_draft_2020_12_schema():
    import jsonschema
    with open(schema.SCHEMA_FILE) as f:
        jsonschema.Draft202012Validator.check_schema(json.load(f))


def test_schema_check_command():
    subprocess.run([sys.executable, "-m", "pyrunc.libcontainer.ocispec.schema", "--check"],
                   check=True)


@SETTINGS
@given(documents())
def test_errors_are_one_line(doc):
    error = loader_error(doc)
    if error is not None:
        assert "\n" not in str(error) and "\r" not in str(error)
