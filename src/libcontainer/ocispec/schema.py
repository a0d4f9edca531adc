"""The JSON Schema of ``config.json`` and validation against it with jsonschema.

The schema file (``libcontainer/schema/config-schema.json``, draft 2020-12) is rendered from the
model's declarations in ``ocispec.spec``, which follow the runtime spec's text; regenerate it after
changing them with

    python -m pyrunc.libcontainer.ocispec.schema --write

jsonschema is imported only when ``validate`` runs.
"""
from __future__ import annotations

import functools
import json
import os
import sys

from pyrunc.libcontainer.ocispec.spec import Spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SCHEMA_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "schema", "config-schema.json")
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def render() -> dict[str, Any]:
    """The schema as a dict, from the model's declarations."""
    defs: dict[Any, Any] = {}
    ref = Spec.schema_ref(defs)
    return {"$schema": DIALECT,
            "$id": "https://pyrunc.invalid/schema/config-schema.json",
            "title": "OCI runtime configuration (runtime-spec 1.0-1.2, Linux), as pyrunc reads it",
            "$ref": ref["$ref"],
            "$defs": dict(sorted(defs.items()))}


def dumps(schema: Any) -> str:
    return json.dumps(schema, indent=2) + "\n"


@functools.lru_cache(maxsize=1)
def _validator():
    import jsonschema
    with open(SCHEMA_FILE) as f:
        schema = json.load(f)
    return jsonschema.Draft202012Validator(schema)


def _path(parts):
    out = ""
    for p in parts:
        out = "%s[%d]" % (out, p) if isinstance(p, int) else (out + "." + p if out else p)
    return out or "(root)"


def validate(doc: Any) -> list[Any]:
    """``["process.args: [] should be non-empty", ...]``; empty when ``doc`` is valid."""
    errors = sorted(_validator().iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    return ["%s: %s" % (_path(e.absolute_path), e.message) for e in errors]


def main(argv: Any = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    text = dumps(render())
    if argv == ["--write"]:
        with open(SCHEMA_FILE, "w") as f:
            f.write(text)
    elif argv == ["--check"]:
        with open(SCHEMA_FILE) as f:
            if f.read() != text:
                sys.exit("%s is out of date: run with --write" % SCHEMA_FILE)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
