"""``pydocker context``: create, inspect, ls, rm, use; the same files as docker's
(``contexts/meta/<sha256 of the name>/meta.json``, config.json's ``currentContext``)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys

from ..config import config_dir, load, save
from ..flags import Command, CommandError, Flag, print_err
from ..template import render_list

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..flags import Options
    from ..main import Context

DEFAULT_DESCRIPTION = "Current DOCKER_HOST based configuration"


def _meta_dir(ctx: Context, name: str, store: str = "meta") -> str:
    return os.path.join(ctx.config_dir or config_dir(), "contexts", store,
                        hashlib.sha256(name.encode()).hexdigest())


TLS_FILES = {"ca": "ca.pem", "cert": "cert.pem", "key": "key.pem"}


def _all(ctx: Context) -> list[dict[str, Any]]:
    from ..client import DEFAULT_HOST
    out = [{"Name": "default", "Metadata": {"Description": DEFAULT_DESCRIPTION},
            "Endpoints": {"docker": {"Host": os.environ.get("DOCKER_HOST") or DEFAULT_HOST,
                                     "SkipTLSVerify": False}}}]
    base = os.path.join(ctx.config_dir or config_dir(), "contexts", "meta")
    for entry in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        try:
            with open(os.path.join(base, entry, "meta.json"), encoding="utf-8") as f:
                out.append(json.load(f))
        except (OSError, ValueError):
            continue
    return sorted(out, key=lambda d: str(d.get("Name", "")))


def _current(ctx: Context) -> str:
    return os.environ.get("DOCKER_CONTEXT") or load(ctx.config_dir).get("currentContext") \
        or "default"


def _check_name(name: str) -> None:
    import re
    if name == "default" or not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.+-]*", name):
        raise CommandError('context name "%s" is invalid, names are validated against regexp '
                           '"^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$"' % name if name != "default" else
                           '"default" is a reserved context name')


def create(ctx: Context, opts: Options, args: list[str]) -> int:
    name = args[0]
    _check_name(name)
    d = _meta_dir(ctx, name)
    if os.path.exists(d):
        raise CommandError('context "%s" already exists' % name)
    endpoint: dict[str, Any] = {"Host": "", "SkipTLSVerify": False}
    material: dict[str, bytes] = {}
    for field in (opts["docker"] or "").split(","):
        k, _, v = field.partition("=")
        if k in TLS_FILES:
            if v:
                try:
                    with open(os.path.expanduser(v), "rb") as f:
                        material[TLS_FILES[k]] = f.read()
                except OSError as e:
                    raise CommandError("unable to create docker endpoint config: open %s: %s"
                                       % (v, (e.strerror or str(e)).lower())) from None
        elif k == "host":
            from ..client import parse_host
            try:
                parsed = parse_host(v)
            except ValueError as e:
                raise CommandError(str(e)) from None
            endpoint["Host"] = v if "://" in v else parsed   # kept as given, as docker's
        elif k == "skip-tls-verify":
            endpoint["SkipTLSVerify"] = v.lower() in ("1", "true")
        elif k:
            raise CommandError("unrecognized config key: %s" % k)
    meta = {"Name": name, "Metadata": {"Description": opts["description"]} if
            opts["description"] else {}, "Endpoints": {"docker": endpoint}}
    os.makedirs(d, mode=0o755, exist_ok=True)
    with open(os.path.join(d, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, separators=(",", ":"))
    if material:                              # docker's TLS store: private files
        tls_dir = _meta_dir(ctx, name, "tls")
        for path in (tls_dir, os.path.join(tls_dir, "docker")):
            os.makedirs(path, mode=0o700, exist_ok=True)
        tls_dir = os.path.join(tls_dir, "docker")
        for filename, data in material.items():
            fd = os.open(os.path.join(tls_dir, filename),
                         os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
    print(name)
    print_err('Successfully created context "%s"' % name)
    return 0


def ls(ctx: Context, opts: Options, args: list[str]) -> int:
    current = _current(ctx)
    items = []
    for m in _all(ctx):
        name = str(m.get("Name", ""))
        items.append({"Name": name + (" *" if name == current else ""),
                      "Description": (m.get("Metadata") or {}).get("Description", ""),
                      "DockerEndpoint": (m.get("Endpoints") or {}).get("docker", {}).get(
                          "Host", ""), "Error": "", "Current": name == current})
    if opts["quiet"]:
        sys.stdout.write("".join(str(m.get("Name")) + "\n" for m in _all(ctx)))
        return 0
    fmt = opts["format"] or "table {{.Name}}\t{{.Description}}\t{{.DockerEndpoint}}\t{{.Error}}"
    sys.stdout.write(render_list(fmt, items, {"Name": "NAME", "Description": "DESCRIPTION",
                                              "DockerEndpoint": "DOCKER ENDPOINT",
                                              "Error": "ERROR", "Current": "CURRENT"}))
    return 0


def use(ctx: Context, opts: Options, args: list[str]) -> int:
    name = args[0]
    if name != "default" and not os.path.exists(_meta_dir(ctx, name)):
        raise CommandError('context "%s" does not exist' % name)
    conf = load(ctx.config_dir)
    if name == "default":
        conf.pop("currentContext", None)
    else:
        conf["currentContext"] = name
    conf.setdefault("auths", {})
    save(conf, ctx.config_dir)
    print(name)
    print_err('Current context is now "%s"' % name)
    return 0


def rm(ctx: Context, opts: Options, args: list[str]) -> int:
    failed = 0
    current = _current(ctx)
    for name in args:
        d = _meta_dir(ctx, name)
        if name == "default" or not os.path.exists(d):
            print_err('context "%s" does not exist' % name if name != "default" else
                      'default: context "default" cannot be removed')
            failed = 1
            continue
        if name == current and not opts["force"]:
            print_err('context "%s" is in use, set -f flag to force remove' % name)
            failed = 1
            continue
        shutil.rmtree(d)
        shutil.rmtree(_meta_dir(ctx, name, "tls"), ignore_errors=True)
        if name == current:
            conf = load(ctx.config_dir)
            conf.pop("currentContext", None)
            save(conf, ctx.config_dir)
        print(name)
    return failed


def inspect(ctx: Context, opts: Options, args: list[str]) -> int:
    names = args or [_current(ctx)]
    docs = {str(m.get("Name")): m for m in _all(ctx)}
    out = []
    for name in names:
        if name not in docs:
            raise CommandError('context "%s" does not exist' % name)
        doc = dict(docs[name])
        tls_dir = _meta_dir(ctx, name, "tls") if name != "default" else ""
        files = sorted(f for f in os.listdir(os.path.join(tls_dir, "docker"))
                       if f in TLS_FILES.values()) if tls_dir and os.path.isdir(
            os.path.join(tls_dir, "docker")) else []
        if name == "default":
            doc["Metadata"] = {}
        doc["TLSMaterial"] = {"docker": files} if files else {}
        doc["Storage"] = {"MetadataPath": _meta_dir(ctx, name) if name != "default"
                          else "<IN MEMORY>", "TLSPath": tls_dir or "<IN MEMORY>"}
        out.append(doc)
    if opts["format"]:
        from ..template import Template
        for d in out:
            print(Template(opts["format"]).render(d))
    else:
        print(json.dumps(out, indent=4).replace("<", "\\u003c").replace(">", "\\u003e")
              .replace("&", "\\u0026"))
    return 0


def group() -> Command:
    subs = [
        Command("create", "[OPTIONS] CONTEXT", "Create a context", create,
                [Flag("description", "", "string", "Description of the context"),
                 Flag("docker", "", "stringToString", "set the docker endpoint")],
                args="exact", nargs=1),
        Command("inspect", "[OPTIONS] [CONTEXT] [CONTEXT...]",
                "Display detailed information on one or more contexts", inspect,
                [Flag("format", "f", "string", "Format output using a custom template")]),
        Command("ls", "[OPTIONS]", "List contexts", ls,
                [Flag("format", "", "string", "Format output using a custom template"),
                 Flag("quiet", "q", "", "Only show context names")],
                ["pydocker context ls", "pydocker context list"], args="none"),
        Command("rm", "CONTEXT [CONTEXT...]", "Remove one or more contexts", rm,
                [Flag("force", "f", "", "Force the removal of a context in use")],
                ["pydocker context rm", "pydocker context remove"], args="min", nargs=1),
        Command("use", "CONTEXT", "Set the current docker context", use, args="exact",
                nargs=1),
    ]
    subs[2].alt_names = ("list",)  # type: ignore[attr-defined]
    subs[3].alt_names = ("remove",)  # type: ignore[attr-defined]
    return Command("context", "", "Manage contexts", subcommands=subs)
