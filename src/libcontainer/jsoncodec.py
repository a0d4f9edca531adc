"""JSON for the runtime's hot path: ``json.loads``/``json.dumps`` results without the json package.

``import json`` costs the ``pyrunc`` command about 3 ms (json -> re -> enum, functools,
collections, ...), more than the work of ``pyrunc state``. This module builds on json's C
accelerator ``_json`` alone: its scanner decodes, its encoder writes compact output, and a small
writer here lays out indented output (``state``'s ``indent=2``, ``spec``'s tab), which the C
encoder does not do.

Results equal the stdlib's for the same arguments (tests/libcontainer/test_jsoncodec.py proves
it against ``json``): the same values, the same text, NaN and Infinity read and written as json
does, and the same ``json.JSONDecodeError`` (a ValueError with ``msg``, ``lineno``, ``colno``)
for invalid input. Only that error path imports ``json.decoder``: the C scanner raises its
exception class, and finds it only once ``json.decoder`` is loaded.
"""
from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_WHITESPACE = " \t\n\r"
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}
_INF = float("inf")


class _ScanContext:
    """What ``_json.make_scanner`` reads from a ``json.JSONDecoder``."""

    def __init__(self, parse_constant=None):
        self.strict = True
        self.object_hook = None
        self.object_pairs_hook = None
        self.parse_float = float
        self.parse_int = int
        self.parse_constant = parse_constant or _CONSTANTS.__getitem__


_scan = _json.make_scanner(_ScanContext())  # type: ignore[arg-type]


def loads(data: Any, parse_constant: Any = None) -> Any:
    """``json.loads(data, parse_constant=parse_constant)``: ``data`` is str, bytes or bytearray."""
    if isinstance(data, str):
        if data.startswith("\ufeff"):
            _fail("Unexpected UTF-8 BOM (decode using utf-8-sig)", data, 0)
    elif isinstance(data, (bytes, bytearray)):
        data = data.decode(_detect_encoding(data), "surrogatepass")
    else:
        raise TypeError("the JSON object must be str, bytes or bytearray, not %s"
                        % type(data).__name__)
    scan = _scan if parse_constant is None else _json.make_scanner(_ScanContext(parse_constant))  # type: ignore[arg-type]
    start = _skip_whitespace(data, 0)
    try:
        value, end = scan(data, start)
    except StopIteration as e:
        _fail("Expecting value", data, e.value)
    except SystemError:
        end = None
    if end is None:
        # The scanner met an error but could not raise it: it looks its class, json.decoder's
        # JSONDecodeError, up among the loaded modules only. Load it; the second scan raises.
        import json.decoder  # noqa: F401
        value, end = scan(data, start)
    end = _skip_whitespace(data, end)
    if end != len(data):
        _fail("Extra data", data, end)
    return value


def load(f: Any, parse_constant: Any = None) -> Any:
    """``json.load(f)``: the document read from the file object ``f``."""
    return loads(f.read(), parse_constant)


def _skip_whitespace(text, pos):
    rest = text[pos:]
    return pos + len(rest) - len(rest.lstrip(_WHITESPACE))


def _fail(msg, text, pos):
    from json.decoder import JSONDecodeError
    raise JSONDecodeError(msg, text, pos) from None


def _detect_encoding(b):
    """json's guess of a byte string's encoding, from its BOM or its zero bytes."""
    if b.startswith((b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")):
        return "utf-32"
    if b.startswith((b"\xfe\xff", b"\xff\xfe")):
        return "utf-16"
    if b.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if len(b) >= 4:
        if not b[0]:
            return "utf-16-be" if b[1] else "utf-32-be"
        if not b[1]:
            return "utf-16-le" if b[2] or b[3] else "utf-32-le"
    elif len(b) == 2:
        if not b[0]:
            return "utf-16-be"
        if not b[1]:
            return "utf-16-le"
    return "utf-8"


def _unserializable(value):
    raise TypeError("Object of type %s is not JSON serializable" % type(value).__name__)


def _floatstr(value):
    if value != value:
        return "NaN"
    if value == _INF:
        return "Infinity"
    if value == -_INF:
        return "-Infinity"
    return float.__repr__(value)


def dumps(value: Any, indent: Any = None, separators: Any = None) -> str:
    """``json.dumps(value, indent=indent, separators=separators)``."""
    if indent is None:
        item_sep, key_sep = separators or (", ", ": ")
        encode = _json.make_encoder({}, _unserializable, _json.encode_basestring_ascii, None,
                                    key_sep, item_sep, False, False, True)
        return "".join(encode(value, 0))
    item_sep, key_sep = separators or (",", ": ")
    out: list[Any] = []
    _write(value, out, "\n", indent if isinstance(indent, str) else " " * indent,
           item_sep, key_sep, {})
    return "".join(out)


def _write(value, out, newline, indent, item_sep, key_sep, seen):
    """Append ``value`` as indented JSON to ``out``; ``newline`` starts a line at its depth."""
    if isinstance(value, str):
        out.append(_json.encode_basestring_ascii(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(_floatstr(value))
    elif isinstance(value, (list, tuple, dict)):
        if not value:
            out.append("{}" if isinstance(value, dict) else "[]")
            return
        if id(value) in seen:
            raise ValueError("Circular reference detected")
        seen[id(value)] = value
        inner = newline + indent
        if isinstance(value, dict):
            out.append("{")
            for i, (key, item) in enumerate(value.items()):
                out.append(inner if i == 0 else item_sep + inner)
                out.append(_json.encode_basestring_ascii(_key(key)))
                out.append(key_sep)
                _write(item, out, inner, indent, item_sep, key_sep, seen)
            out.append(newline + "}")
        else:
            out.append("[")
            for i, item in enumerate(value):
                out.append(inner if i == 0 else item_sep + inner)
                _write(item, out, inner, indent, item_sep, key_sep, seen)
            out.append(newline + "]")
        del seen[id(value)]
    else:
        _unserializable(value)


def _key(key):
    """A dict key as json writes it: str, float, bool, None and int keys become strings."""
    if isinstance(key, str):
        return key
    if isinstance(key, float):
        return _floatstr(key)
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return int.__repr__(key)
    raise TypeError("keys must be str, int, float, bool or None, not %s" % type(key).__name__)
