"""The client's files: ``config.json`` (auths, psFormat, imagesFormat, currentContext) and
contexts (``contexts/meta/<sha256 of the name>/meta.json``), in DOCKER_CONFIG or ~/.docker."""
from __future__ import annotations

import os

from .jsonio import loads

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def config_dir() -> str:
    return os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def load(directory: str | None = None) -> dict[str, Any]:
    path = os.path.join(directory or config_dir(), "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            doc = loads(f.read())
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise ValueError("loading config file: %s: %s" % (path, e)) from None
    return doc if isinstance(doc, dict) else {}


def save(doc: dict[str, Any], directory: str | None = None) -> str:
    d = directory or config_dir()
    os.makedirs(d, mode=0o700, exist_ok=True)
    path = os.path.join(d, "config.json")
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    import json
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent="\t")
    os.replace(tmp, path)
    return path


def context_endpoint(name: str, directory: str | None = None
                     ) -> tuple[str | None, dict[str, str], bool] | None:
    """The docker endpoint of context ``name`` ("" means config.json's currentContext):
    (its host, its TLS material {"ca"|"cert"|"key": path} under ``contexts/tls/<sha256>/docker``,
    whether it skips verifying the daemon's certificate); None for the default context."""
    d = directory or config_dir()
    if not name:
        name = load(d).get("currentContext", "") or ""
    if name in ("", "default"):
        return None
    import hashlib
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = os.path.join(d, "contexts", "meta", digest, "meta.json")
    try:
        with open(meta, encoding="utf-8") as f:
            doc = loads(f.read())
    except (OSError, ValueError):
        from .flags import CommandError
        raise CommandError("context \"%s\" does not exist" % name) from None
    endpoint = (doc.get("Endpoints") or {}).get("docker") or {}
    host = endpoint.get("Host")
    tls_dir = os.path.join(d, "contexts", "tls", digest, "docker")
    material = {kind: os.path.join(tls_dir, kind + ".pem") for kind in ("ca", "cert", "key")
                if os.path.exists(os.path.join(tls_dir, kind + ".pem"))}
    return (str(host) if host else None), material, bool(endpoint.get("SkipTLSVerify"))
