"""A container's Config from its image's config and the request, by docker's rules.

* ``Entrypoint``: the request's when it gives one (even ``[]``, ``--entrypoint ""``), else the
  image's. A non-empty requested Entrypoint drops the image's ``Cmd``: the Cmd is then only
  the request's.
* ``Cmd``: the request's when non-empty, else the image's (unless a non-empty Entrypoint was
  requested).
* ``Env``: the request's entries first, then the image's whose names the request does not set.
* ``Labels``: the image's, overridden by the request's. ``ExposedPorts`` and ``Volumes``: the
  union of both.
* ``User``, ``WorkingDir``, ``StopSignal``, ``StopTimeout``: the request's when set, else the
  image's. ``Healthcheck``: the request's, its unset fields (``Test`` empty, durations and
  ``Retries`` zero) taken from the image's.
* Everything else (Hostname, Tty, OpenStdin, ...) is the request's alone.

Both documents come from outside (an image author, an API client): a field of the wrong type
is InvalidArgument naming it, never a traceback.
"""
from __future__ import annotations

from pyrunc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

HEALTHCHECK_FIELDS = ("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries")


def _strings(doc: dict[str, Any], key: str, where: str, *, allow_string: bool = False
             ) -> list[str] | None:
    """``doc[key]`` as a list of strings, None when absent or null. ``allow_string``: a single
    string is a one-element list, as docker's StrSlice reads Cmd and Entrypoint."""
    value = doc.get(key)
    if value is None:
        return None
    if allow_string and type(value) is str:
        return [value]
    if type(value) is not list or any(type(v) is not str for v in value):
        raise InvalidArgument("%s.%s: must be an array of strings" % (where, key))
    return list(value)


def _map(doc: dict[str, Any], key: str, where: str, *, values: type | None = None
         ) -> dict[str, Any] | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidArgument("%s.%s: must be an object" % (where, key))
    if values is not None and any(type(v) is not values for v in value.values()):
        raise InvalidArgument("%s.%s: every value must be a %s" % (
            where, key, "string" if values is str else values.__name__))
    return dict(value)


def _env_name(entry: str) -> str:
    return entry.split("=", 1)[0]


def merge_image_config(image_config: dict[str, Any] | None, request: dict[str, Any] | None
                       ) -> dict[str, Any]:
    """The merged Config (a new dict; neither argument is changed)."""
    image = {} if image_config is None else image_config
    req = {} if request is None else request
    if not isinstance(image, dict):
        raise InvalidArgument("image config: must be an object")
    if not isinstance(req, dict):
        raise InvalidArgument("Config: must be an object")
    out = dict(req)
    for key in ("User", "WorkingDir", "StopSignal"):
        for doc, where in ((req, "Config"), (image, "image config")):
            if doc.get(key) is not None and type(doc[key]) is not str:
                raise InvalidArgument("%s.%s: must be a string" % (where, key))
        if not req.get(key) and image.get(key):
            out[key] = image[key]
    for doc, where in ((req, "Config"), (image, "image config")):
        timeout = doc.get("StopTimeout")
        if timeout is not None and type(timeout) is not int:
            raise InvalidArgument("%s.StopTimeout: must be an integer" % where)
    if req.get("StopTimeout") is None and image.get("StopTimeout") is not None:
        out["StopTimeout"] = image["StopTimeout"]

    req_entry = _strings(req, "Entrypoint", "Config", allow_string=True)
    req_cmd = _strings(req, "Cmd", "Config", allow_string=True)
    img_entry = _strings(image, "Entrypoint", "image config", allow_string=True)
    img_cmd = _strings(image, "Cmd", "image config", allow_string=True)
    entrypoint, cmd = req_entry, req_cmd
    if not req_entry:
        if not req_cmd:
            cmd = img_cmd
            if "ArgsEscaped" in image:
                out["ArgsEscaped"] = image["ArgsEscaped"]
        if req_entry is None:
            entrypoint = img_entry
    out["Entrypoint"] = entrypoint
    out["Cmd"] = cmd

    req_env = _strings(req, "Env", "Config") or []
    img_env = _strings(image, "Env", "image config") or []
    names = {_env_name(e) for e in req_env}
    out["Env"] = req_env + [e for e in img_env if _env_name(e) not in names]

    labels = _map(image, "Labels", "image config", values=str) or {}
    labels.update(_map(req, "Labels", "Config", values=str) or {})
    out["Labels"] = labels
    for key in ("ExposedPorts", "Volumes"):
        merged = _map(image, key, "image config") or {}
        merged.update(_map(req, key, "Config") or {})
        out[key] = {k: {} for k in merged} if merged else None
        if out[key] is None:
            out.pop(key)

    img_health = _map(image, "Healthcheck", "image config")
    req_health = _map(req, "Healthcheck", "Config")
    if req_health is None:
        health = img_health
    else:
        health = dict(req_health)
        if img_health:
            if not health.get("Test"):
                if img_health.get("Test") is not None:
                    health["Test"] = img_health["Test"]
            for key in HEALTHCHECK_FIELDS:
                if not health.get(key) and img_health.get(key):
                    health[key] = img_health[key]
    if health is not None:
        out["Healthcheck"] = health
    return out
