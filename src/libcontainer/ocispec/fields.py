"""Field kinds and the ``Model`` base: how one JSON value is checked and decoded.

A model class lists its JSON keys and their kinds; the attribute of each key is its snake_case
form (``additionalGids`` -> ``additional_gids``, ``containerID`` -> ``container_id``). Decoding a
document walks the classes, so every check names the JSON path of the value it rejects. The same
declarations also describe the JSON Schema (``ocispec.schema`` renders them), which keeps the
loader and ``validate_schema`` in step.

Absent values: objects -> None, arrays -> [], maps -> {}, booleans -> False, other scalars -> None.

This module is on the hot path of ``pyrunc create`` and imports neither ``re`` nor ``json``: a
string pattern is checked by a plain predicate declared with it (``Str``), and messages quote
values with ``jsoncodec``.
"""
from __future__ import annotations

from pyrunc.errors import InvalidArgument
from pyrunc.libcontainer import jsoncodec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

KEYWORDS = frozenset((
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class",
    "continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global",
    "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return",
    "try", "while", "with", "yield"))
"""Python's keywords (``keyword.kwlist``, a test checks), which attribute names avoid."""


def snake_case(key: Any) -> Any:
    """``additionalGids`` -> ``additional_gids``; ``execCPUAffinity`` -> ``exec_cpu_affinity``.

    An underscore goes before an upper-case letter that follows a lower-case letter or a digit,
    and before the last capital of a run that a lower-case letter follows (``CPUAffinity``).
    A Python keyword gets a trailing underscore (``ioPriority.class`` -> ``class_``).
    """
    if key.islower():    # most keys: nothing to split (the models' classes are made at import)
        return key + "_" if key in KEYWORDS else key
    out = []
    n = len(key)
    for i, c in enumerate(key):
        if c.isupper() and i > 0:
            prev = key[i - 1]
            if not prev.isupper() or (i + 1 < n and key[i + 1].islower()):
                out.append("_")
        out.append(c.lower())
    name = "".join(out)
    return name + "_" if name in KEYWORDS else name


def join(path: Any, key: Any) -> Any:
    """The JSON path of ``key`` inside ``path``: ``a.b``, ``a[3]``, ``a["x.y"]``."""
    if isinstance(key, int):
        return "%s[%d]" % (path, key)
    if key.isascii() and key.isidentifier():
        return "%s.%s" % (path, key) if path else key
    return "%s[%s]" % (path, jsoncodec.dumps(key))


class ConfigError(InvalidArgument):
    """A config value is wrong: carries the JSON path and the reason separately."""

    def __init__(self, source: str, path: str, reason: str) -> None:
        where = ": ".join(p for p in (source, path) if p)
        super().__init__("%s: %s" % (where, reason) if where else reason)
        self.source = source
        self.path = path
        self.reason = reason


class Invalid(Exception):
    """Raised while decoding; the loader turns it into a ``ConfigError`` with the file name."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason


class Kind:
    """How one JSON value is checked and decoded."""

    absent: Any = None

    def decode(self, value: Any, path: Any) -> Any:
        raise NotImplementedError

    def schema(self, defs: Any) -> Any:
        raise NotImplementedError


class Bool(Kind):
    absent = False

    def decode(self, value: Any, path: str) -> bool:
        if value is True or value is False:
            return value
        raise Invalid(path, "must be a boolean")

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        return {"type": "boolean"}


class Int(Kind):
    """An integer within [low, high]; an integral float (``2.0``) counts, as in JSON Schema."""

    def __init__(self, low: int, high: int) -> None:
        self.low = low
        self.high = high

    def decode(self, value: Any, path: str) -> int:
        if type(value) is float and value.is_integer():
            value = int(value)
        elif type(value) is not int:
            raise Invalid(path, "must be an integer")
        if not self.low <= value <= self.high:
            raise Invalid(path, "must be an integer from %d to %d" % (self.low, self.high))
        return value

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.low, "maximum": self.high}


INT32 = Int(-2 ** 31, 2 ** 31 - 1)
INT64 = Int(-2 ** 63, 2 ** 63 - 1)
UINT16 = Int(0, 2 ** 16 - 1)
UINT32 = Int(0, 2 ** 32 - 1)
UINT64 = Int(0, 2 ** 64 - 1)


class Str(Kind):
    """A string, maybe one of ``choices`` or matching ``pattern``.

    ``pattern`` is the regular expression of the JSON Schema (searched, as JSON Schema does);
    the loader checks ``matches(value)`` instead, a plain predicate that accepts the same
    strings (tests prove each equal to ``re.search(pattern, value)``), so that ``re`` stays
    off the hot path.
    """

    def __init__(self, choices: Any = None, pattern: Any = None, matches: Any = None,
                 c_string: bool = True) -> None:
        if (pattern is None) != (matches is None):
            raise TypeError("Str: a pattern and its predicate go together")
        self.choices = tuple(choices) if choices else None
        self.pattern = pattern
        self.matches = matches
        self.c_string = c_string

    def decode(self, value: Any, path: Any) -> Any:
        if type(value) is not str:
            raise Invalid(path, "must be a string")
        check_text(value, path, self.c_string)
        if self.choices is not None and value not in self.choices:
            raise Invalid(path, "%s is not one of %s" % (_show(value), ", ".join(self.choices)))
        if self.matches is not None and not self.matches(value):
            raise Invalid(path, "%s does not match %s" % (_show(value), self.pattern))
        return value

    def schema(self, defs: Any) -> Any:
        out: dict[str, Any] = {"type": "string"}
        if self.choices is not None:
            out["enum"] = list(self.choices)
        if self.pattern is not None:
            out["pattern"] = self.pattern
        if self.c_string and self.choices is None:
            out["not"] = {"pattern": "\u0000"}
        return out


def check_text(value: str, path: str, c_string: bool = True) -> None:
    """What every string must be: real Unicode (JSON's ``\\ud800`` escapes give lone
    surrogates, which no file name or C string can hold) and, when it reaches the kernel or a
    C library (``c_string``), free of NUL, which C would read as the string's end."""
    if c_string and "\0" in value:
        raise Invalid(path, "contains a NUL byte")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Invalid(path, "is not valid Unicode (a lone surrogate)") from None


STRING = Str()
TEXT = Str(c_string=False)
"""A string that never reaches C (``ociVersion``, annotations): NUL allowed."""
BOOL = Bool()


def _show(value):
    """A string value as JSON, shortened: one line whatever it holds."""
    return jsoncodec.dumps(value if len(value) <= 60 else value[:57] + "...")


def line_end(value: Any) -> Any:
    """``value`` up to where a pattern's ``$`` matches last: a final newline does not count."""
    return value[:-1] if value.endswith("\n") else value


def made_of(text: Any, chars: Any) -> bool:
    """Whether every character of ``text`` is one of ``chars`` (true for an empty text)."""
    return not text.strip(chars)


class Array(Kind):
    def __init__(self, item: Any, non_empty: bool = False) -> None:
        self.item = item
        self.non_empty = non_empty

    @property
    def absent(self) -> list[Any]:
        return []

    def decode(self, value: Any, path: str) -> list[Any]:
        if type(value) is not list or (self.non_empty and not value):
            raise Invalid(path, "must be a non-empty array" if self.non_empty
                          else "must be an array")
        item = self.item
        return [item.decode(v, "%s[%d]" % (path, i)) for i, v in enumerate(value)]

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        out = {"type": "array", "items": self.item.schema(defs)}
        if self.non_empty:
            out["minItems"] = 1
        return out


class Map(Kind):
    """A JSON object with free keys (strings of the ``key`` kind) and values of one kind."""

    def __init__(self, value: Any, key: "Str" = STRING) -> None:
        self.value = value
        self.key = key

    @property
    def absent(self) -> dict[Any, Any]:
        return {}

    def decode(self, value: Any, path: str) -> dict[Any, Any]:
        if type(value) is not dict:
            raise Invalid(path, "must be an object")
        kind, key = self.value, self.key
        out = {}
        for k, v in value.items():
            where = join(path, k)
            key.decode(k, where)
            out[k] = kind.decode(v, where)
        return out

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "propertyNames": self.key.schema(defs),
                "additionalProperties": self.value.schema(defs)}


class Object(Kind):
    """A JSON object described by a ``Model`` class; decodes to an instance of it."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def decode(self, value: Any, path: Any) -> str:
        return self.model.decode(value, path)

    def schema(self, defs: Any) -> Any:
        return self.model.schema_ref(defs)


class Raw(Object):
    """Checked against a ``Model`` like ``Object``, but kept as the JSON dict it was.

    Integral floats (``1.0``, which the checks accept as integers) become ints, so readers of
    the dict see what the model saw; the runtime spec has no float fields.
    """

    def decode(self, value: Any, path: Any) -> Any:
        self.model.decode(value, path)
        return _integral(value)


def _integral(value):
    """``value`` with every integral float made an int (the same object when there is none)."""
    if type(value) is float:
        return int(value) if value.is_integer() else value
    if type(value) is dict:
        out: Any = {k: _integral(v) for k, v in value.items()}
        return value if all(out[k] is v for k, v in value.items()) else out
    if type(value) is list:
        out = [_integral(v) for v in value]
        return value if all(a is b for a, b in zip(out, value)) else out
    return value


def _empty(value):
    return value is None or value is False or value == [] or value == {}


class ModelType(type):
    """Gives each model ``__slots__`` for its attributes and the key -> (attribute, kind) table."""

    if TYPE_CHECKING:
        _table: tuple[tuple[str, str, Kind], ...]
        _extra: tuple[str, ...]

    def __new__(mcs, name, bases, ns):
        table = tuple((key, snake_case(key), kind) for key, kind in ns.get("fields", {}).items())
        extra = tuple(ns.get("extra_slots", ()))
        ns["__slots__"] = tuple(attr for _k, attr, _kind in table) + extra
        cls = super().__new__(mcs, name, bases, ns)
        cls._table = table
        cls._extra = extra
        return cls


class Model(metaclass=ModelType):
    """A JSON object of the runtime spec. Subclasses set ``fields`` and ``required``."""

    fields: dict[str, Kind] = {}
    required: tuple[str, ...] = ()
    if TYPE_CHECKING:
        __slots__: tuple[str, ...]

        def __getattr__(self, name: str) -> Any: ...   # the fields' attributes

    def __init__(self, **attrs: Any) -> None:
        for _key, attr, kind in self._table:
            absent = kind.absent
            setattr(self, attr, attrs.pop(attr, absent))
        for attr in self._extra:
            setattr(self, attr, attrs.pop(attr, None))
        if attrs:
            raise TypeError("%s has no attribute %s" % (type(self).__name__, ", ".join(attrs)))

    @classmethod
    def decode(cls, value: Any, path: str) -> Any:
        if type(value) is not dict:
            raise Invalid(path, "must be an object")
        for key in cls.required:
            if key not in value:
                raise Invalid(join(path, key), "is required")
        self = cls.__new__(cls)
        for attr in cls._extra:
            setattr(self, attr, None)
        for key, attr, kind in cls._table:
            if key in value:
                setattr(self, attr, kind.decode(value[key], join(path, key)))
            else:
                setattr(self, attr, kind.absent)
        return self

    @classmethod
    def schema_ref(cls, defs: Any) -> dict[str, Any]:
        if cls.__name__ not in defs:
            defs[cls.__name__] = None  # reserve the name before recursing
            out = {"type": "object",
                   "properties": {k: kind.schema(defs) for k, _a, kind in cls._table}}
            if cls.required:
                out["required"] = list(cls.required)
            if cls.__doc__:
                out["description"] = " ".join(cls.__doc__.split())
            defs[cls.__name__] = out
        return {"$ref": "#/$defs/%s" % cls.__name__}

    def __eq__(self, other):
        return type(self) is type(other) and all(
            getattr(self, a) == getattr(other, a) for a in self.__slots__)

    def __repr__(self):
        shown = ("%s=%r" % (a, getattr(self, a)) for a in self.__slots__
                 if not _empty(getattr(self, a)))
        return "%s(%s)" % (type(self).__name__, ", ".join(shown))
