"""The OCI image spec's documents, checked before the engine uses them.

Every manifest, index and image config the engine pulls, loads or imports goes through
:func:`load` (bytes) or :func:`validate` (parsed): first cheap limits on the raw bytes (size,
then nesting depth, both before any JSON parsing, so a 100 MB or 100000-deep document costs
next to nothing), then the JSON Schema of its kind (``schema/*.json``, written from the spec's
prose). A document that fails is refused with ``InvalidArgument`` naming the schema path:
``manifest: layers/0/digest: 'xyz' does not match '^[a-z0-9]+...'``.

Kinds: ``manifest`` (OCI image manifest), ``index`` (OCI image index, also an OCI layout's
``index.json``), ``config`` (image config, OCI and docker), ``descriptor``,
``docker-manifest`` (docker's image manifest v2 schema 2) and ``docker-manifest-list``.

jsonschema is imported on the first validation, never when this module is imported.
"""
from __future__ import annotations

import json
import os
import threading

from pyrunc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_DOCUMENT_SIZE = 4 * 1024 * 1024     # docker's limit on a manifest; configs share it
MAX_DEPTH = 64                          # arrays and objects inside each other

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema")
_FILES = {
    "manifest": "image-manifest.json",
    "index": "image-index.json",
    "config": "image-config.json",
    "descriptor": "descriptor.json",
    "docker-manifest": "docker-manifest.json",
    "docker-manifest-list": "docker-manifest-list.json",
}
KINDS = tuple(_FILES)

_MEDIA_TYPES = {
    "application/vnd.oci.image.manifest.v1+json": "manifest",
    "application/vnd.oci.image.index.v1+json": "index",
    "application/vnd.oci.image.config.v1+json": "config",
    "application/vnd.oci.descriptor.v1+json": "descriptor",
    "application/vnd.docker.distribution.manifest.v2+json": "docker-manifest",
    "application/vnd.docker.distribution.manifest.list.v2+json": "docker-manifest-list",
    "application/vnd.docker.container.image.v1+json": "config",
}

_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_ONE_KIND = bytes.maketrans(b"{}", b"[]")

_validators: dict = {}
_lock = threading.Lock()


def kind_for_media_type(media_type: str, default: str | None = None) -> str:
    """The kind of a document with this media type (``default`` when it has none known)."""
    kind = _MEDIA_TYPES.get(media_type, default)
    if kind is None:
        raise InvalidArgument("unsupported media type %s" % _short(media_type))
    return kind


def check_limits(data: bytes, what: str, max_size: int = MAX_DOCUMENT_SIZE,
                 max_depth: int = MAX_DEPTH) -> None:
    """Refuse a document larger than ``max_size`` bytes or nested deeper than ``max_depth``,
    without parsing it: strings are dropped, then the brackets left (objects counted as
    arrays) are peeled, one level of innermost pairs per pass; a mismatched pair is left
    for the parser to refuse."""
    if len(data) > max_size:
        raise InvalidArgument("%s: %d bytes, more than the %d allowed"
                              % (what, len(data), max_size))
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    # escapes only occur inside strings: with them gone, the quotes pair up
    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(unescaped.split(b'"')[::2])
    brackets = outside.translate(_ONE_KIND, _NOT_BRACKETS)
    if b"[" * (max_depth + 1) in brackets:
        raise InvalidArgument("%s: nested deeper than %d levels" % (what, max_depth))
    for _ in range(max_depth):
        if not brackets:
            return
        peeled = brackets.replace(b"[]", b"")
        if len(peeled) == len(brackets):
            raise InvalidArgument("%s: invalid JSON: unbalanced brackets" % what)
        brackets = peeled
    if brackets:
        raise InvalidArgument("%s: nested deeper than %d levels" % (what, max_depth))


def load(kind: str, data: bytes, what: str | None = None,
         max_size: int = MAX_DOCUMENT_SIZE) -> dict[str, Any]:
    """Check the limits, parse, and validate ``data`` as ``kind``; the parsed document."""
    what = what or _label(kind)
    check_limits(data, what, max_size)
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as err:
        raise InvalidArgument("%s: invalid JSON: %s" % (what, _short(str(err)))) from None
    validate(kind, doc, what)
    return doc


def validate(kind: str, doc: object, what: str | None = None) -> None:
    """Validate a parsed document against the schema of ``kind``; InvalidArgument naming the
    failing path and the reason, in one line."""
    what = what or _label(kind)
    validator = _validator(kind)
    from jsonschema.exceptions import best_match
    error = best_match(validator.iter_errors(doc))
    if error is None:
        return
    path = "/".join(str(p) for p in error.absolute_path)
    raise InvalidArgument("%s: %s%s" % (what, path + ": " if path else "", _message(error)))


def _label(kind):
    return {"config": "image config", "docker-manifest": "manifest",
            "docker-manifest-list": "manifest list"}.get(kind, kind)


def _message(error):
    message = error.message
    text = repr(error.instance)
    if len(text) > 80 and text in message:
        message = message.replace(text, _short(text, 60))
    return _short(" ".join(message.split()), 300)


def _short(text, limit=200):
    text = str(text)
    return text if len(text) <= limit else text[:limit] + "..."


def _validator(kind):
    with _lock:
        if not _validators:
            _build()
        try:
            return _validators[kind]
        except KeyError:
            raise InvalidArgument("unknown document kind %r (one of %s)"
                                  % (kind, ", ".join(KINDS))) from None


def _build():
    import jsonschema
    from referencing import Registry, Resource
    schemas = {}
    for name in sorted(os.listdir(SCHEMA_DIR)):
        if name.endswith(".json"):
            with open(os.path.join(SCHEMA_DIR, name)) as f:
                schemas[name] = json.load(f)
    registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas.values())
    for kind, name in _FILES.items():
        cls = jsonschema.validators.validator_for(schemas[name])
        cls.check_schema(schemas[name])
        # an integer is an integer literal (Go's int64 refuses 1.0), and never a boolean
        strict = jsonschema.validators.extend(cls, type_checker=cls.TYPE_CHECKER.redefine(
            "integer", lambda checker, value: isinstance(value, int)
            and not isinstance(value, bool)))
        _validators[kind] = strict(schemas[name], registry=registry)
