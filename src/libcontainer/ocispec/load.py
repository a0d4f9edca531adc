"""Reading ``config.json``: JSON decoding and the model's own checks, with one-line errors.

This is the hot path of ``pyrunc create``: it imports neither jsonschema nor anything heavy.
The checks are the JSON Schema's (``ocispec.schema`` renders both from one set of declarations).
"""
from __future__ import annotations

import os

from pyrunc.errors import NotFound, SystemFailure
from pyrunc.libcontainer import jsoncodec
from pyrunc.libcontainer.ocispec.fields import ConfigError, Invalid
from pyrunc.libcontainer.ocispec.spec import Spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CONFIG_FILE = "config.json"


def load(bundle: str) -> Any:
    """The ``Spec`` of ``bundle/config.json``."""
    path = os.path.join(bundle, CONFIG_FILE)
    try:
        data = read_limited(path, CONFIG_FILE)
    except FileNotFoundError:
        raise NotFound("%s: not found in bundle %s" % (CONFIG_FILE, bundle)) from None
    except OSError as e:
        raise SystemFailure("read %s" % path, e.errno) from None
    return from_json(data, source=CONFIG_FILE)


MAX_BYTES = 8 << 20
"""The largest config (or process.json) read: a real one is a few KiB (Docker's with its
seccomp profile about 40 KiB); a bigger one would only cost memory."""

MAX_DEPTH = 100
"""How deep a document's arrays and objects may nest: the spec's go 6 levels down. Deeper
ones are refused before anything walks them recursively (and meets Python's recursion
limit: the state file, the JSON encoder, the schema)."""


def read_limited(path: str, source: str = CONFIG_FILE) -> bytes:
    """The bytes of ``path``, refused (``ConfigError``) beyond ``MAX_BYTES``; OSError as is."""
    with open(path, "rb") as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ConfigError(source, "", "larger than %d MiB" % (MAX_BYTES >> 20))
    return data


def decode(data: bytes, source: str = CONFIG_FILE) -> Any:
    """The JSON document of ``data`` (str or bytes), with one-line errors naming ``source``:
    invalid JSON, text that is not UTF-8, NaN or Infinity, nesting deeper than MAX_DEPTH."""
    if len(data) > MAX_BYTES:
        raise ConfigError(source, "", "larger than %d MiB" % (MAX_BYTES >> 20))
    try:
        doc = jsoncodec.loads(data, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise ConfigError(source, "", "invalid JSON: not UTF-8 text") from None
    except ValueError as e:   # json.JSONDecodeError has the position; _reject_constant has not
        if hasattr(e, "lineno"):
            raise ConfigError(source, "", "invalid JSON at line %d column %d: %s"
                              % (e.lineno, e.colno, e.msg)) from None  # type: ignore[attr-defined]
        raise ConfigError(source, "", "invalid JSON: %s" % e) from None
    except RecursionError:
        raise ConfigError(source, "", "invalid JSON: nested too deeply") from None
    brackets = ("[", "{") if isinstance(data, str) else (b"[", b"{")
    if data.count(brackets[0]) + data.count(brackets[1]) > MAX_DEPTH:   # else it cannot be
        _check_depth(doc, source)
    return doc


def _check_depth(doc: Any, source: str) -> None:
    """Refuse a document nested deeper than MAX_DEPTH, walking it without recursion."""
    level = [doc]
    for _ in range(MAX_DEPTH):
        inner: list[Any] = []
        for node in level:
            if type(node) is dict:
                inner.extend(v for v in node.values() if type(v) is dict or type(v) is list)
            elif type(node) is list:
                inner.extend(v for v in node if type(v) is dict or type(v) is list)
        if not inner:
            return
        level = inner
    raise ConfigError(source, "", "nested deeper than %d levels" % MAX_DEPTH)


def _reject_constant(name):
    raise ValueError("%s is not a JSON number" % name)


def from_json(data: bytes, source: str = CONFIG_FILE) -> Spec:
    """The ``Spec`` of a JSON text (str or bytes)."""
    return from_dict(decode(data, source), source=source)


def from_dict(doc: Any, source: str = CONFIG_FILE) -> Spec:
    """The ``Spec`` of a decoded JSON document; ``spec.raw`` is ``doc`` itself."""
    try:
        spec = Spec.decode(doc, "")
    except Invalid as e:
        raise ConfigError(source, e.path, e.reason) from None
    spec.raw = doc
    return spec
