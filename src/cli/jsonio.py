"""JSON for the command's hot paths, on ``_json`` (the C core of the ``json`` module).

``import json`` imports ``re`` and what it pulls in, a few milliseconds of every short command;
these functions give what ``json.loads``, ``json.dumps`` (default arguments) and
``json.JSONDecoder().raw_decode`` give, with the same errors (``json.JSONDecodeError``: the
``json`` module is imported only to raise one).
"""
from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_CONSTANTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
_SPACE = " \t\n\r"


class _Context:
    """What ``_json.make_scanner`` reads from its argument (json.JSONDecoder's defaults)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__
    memo: dict[str, str] = {}


_scan = _json.make_scanner(_Context())  # type: ignore[arg-type]


def _error(message: str, doc: str, pos: int) -> ValueError:
    from json import JSONDecodeError
    return JSONDecodeError(message, doc, pos)


def raw_decode(doc: str, idx: int = 0) -> tuple[Any, int]:
    """One JSON value at ``doc[idx:]`` (no leading space): the value and where it ends."""
    try:
        result: tuple[Any, int] = _scan(doc, idx)
    except StopIteration as e:
        raise _error("Expecting value", doc, e.value) from None
    except SystemError:
        # the scanner found an error but looks its class (json.decoder.JSONDecodeError) up
        # among the loaded modules only: with json.decoder loaded, the same scan raises it
        import json.decoder  # noqa: F401
        result = _scan(doc, idx)
    return result


def loads(data: str | bytes) -> Any:
    """``json.loads`` for UTF-8 (the Engine API's and config files' encoding); bytes that
    ``json.loads`` reads as UTF-16 or UTF-32 are handed to it."""
    if isinstance(data, bytes):
        if b"\x00" in data[:4] or data.startswith((b"\xff\xfe", b"\xfe\xff")):        # UTF-16 or UTF-32 by json's detection: its own path
            import json
            return json.loads(data)
        doc = data.decode("utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8",
                          "surrogatepass")
    elif data.startswith("\ufeff"):
        raise _error("Unexpected UTF-8 BOM (decode using utf-8-sig)", data, 0)
    else:
        doc = data
    obj, end = raw_decode(doc, len(doc) - len(doc.lstrip(_SPACE)))
    end = len(doc) - len(doc[end:].lstrip(_SPACE))
    if end != len(doc):
        raise _error("Extra data", doc, end)
    return obj


def _unencodable(o: Any) -> Any:
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


_encode = _json.make_encoder(None, _unencodable, _json.encode_basestring_ascii, None, ": ",
                             ", ", False, False, True)


def dumps(obj: Any) -> str:
    """``json.dumps(obj)`` with its default arguments."""
    if isinstance(obj, str):
        return str(_json.encode_basestring_ascii(obj))
    return "".join(_encode(obj, 0))


def quote(s: str) -> str:
    """``json.dumps(s, ensure_ascii=False)`` for a string."""
    return str(_json.encode_basestring(s))
