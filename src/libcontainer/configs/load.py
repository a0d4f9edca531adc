"""Reading ``config.json``: JSON decoding and the model's own checks, with one-line errors.

This is the hot path of ``pyrunc create``: it imports neither jsonschema nor anything heavy.
The checks are the JSON Schema's (``configs.schema`` renders both from one set of declarations).
"""
from __future__ import annotations

import os

from pyrunc.errors import NotFound, SystemFailure
from pyrunc.libcontainer import jsoncodec
from pyrunc.libcontainer.configs.fields import ConfigError, Invalid
from pyrunc.libcontainer.configs.spec import Spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CONFIG_FILE = "config.json"


def load(bundle: str) -> Any:
    """The ``Spec`` of ``bundle/config.json``."""
    path = os.path.join(bundle, CONFIG_FILE)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise NotFound("%s: not found in bundle %s" % (CONFIG_FILE, bundle)) from None
    except OSError as e:
        raise SystemFailure("read %s" % path, e.errno) from None
    return from_json(data, source=CONFIG_FILE)


def _reject_constant(name):
    raise ValueError("%s is not a JSON number" % name)


def from_json(data: Any, source: Any = CONFIG_FILE) -> Any:
    """The ``Spec`` of a JSON text (str or bytes)."""
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
    return from_dict(doc, source=source)


def from_dict(doc: Any, source: Any = CONFIG_FILE) -> Any:
    """The ``Spec`` of a decoded JSON document; ``spec.raw`` is ``doc`` itself."""
    try:
        spec = Spec.decode(doc, "")
    except Invalid as e:
        raise ConfigError(source, e.path, e.reason) from None
    spec.raw = doc
    return spec
