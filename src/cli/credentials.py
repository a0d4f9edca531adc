"""Registry credentials as docker keeps them: config.json's ``auths`` (base64 user:password),
or a credential helper (``credsStore`` for every registry, ``credHelpers`` per registry)
spoken to with the docker-credential-helpers protocol: ``docker-credential-NAME get|store|
erase`` with the server's key or a JSON document on stdin, JSON on stdout, "credentials not
found in native keychain" for a registry it knows nothing of.

A registry's key is ``https://index.docker.io/v1/`` for Docker Hub, else its host[:port]; a
helper is only ever asked about, and its answer only ever sent for, the registry of the key.
"""
from __future__ import annotations

from .flags import CommandError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

INDEX_SERVER = "https://index.docker.io/v1/"
TOKEN_USERNAME = "<token>"             # the helpers' user name for an identity token
NOT_FOUND = "credentials not found in native keychain"


def registry_key(server: str) -> str:
    """The config key of a registry named as on the command line (``https://host:5000/``,
    ``host:5000``, ``docker.io``)."""
    if server in ("", "docker.io", "index.docker.io", "registry-1.docker.io") or \
            "index.docker.io" in server and "://" in server:
        return INDEX_SERVER
    for prefix in ("https://", "http://"):
        if server.startswith(prefix):
            server = server[len(prefix):]
    return server.split("/", 1)[0]


def helper_for(conf: dict[str, Any], key: str) -> str:
    """The helper that keeps ``key``'s credentials ("" for config.json itself)."""
    helpers = conf.get("credHelpers")
    if isinstance(helpers, dict) and isinstance(helpers.get(key), str) and key:
        return str(helpers[key])
    store = conf.get("credsStore")
    return store if isinstance(store, str) else ""


class HelperError(CommandError):
    """A helper that failed (not "not found"): docker's "error getting credentials - err:
    ..., out: `...`"."""


def _call(helper: str, action: str, data: bytes) -> tuple[int, bytes]:
    import subprocess
    program = "docker-credential-" + helper
    try:
        p = subprocess.run([program, action], input=data, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
    except FileNotFoundError:
        raise HelperError('error %s credentials - err: exec: "%s": executable file not '
                          'found in $PATH, out: ``' % (_ING[action], program)) from None
    except PermissionError:
        raise HelperError('error %s credentials - err: fork/exec %s: permission denied, '
                          'out: ``' % (_ING[action], program)) from None
    except subprocess.TimeoutExpired:
        raise HelperError("error %s credentials - err: %s did not answer in 60s, out: ``"
                          % (_ING[action], program)) from None
    return p.returncode, p.stdout


_ING = {"get": "getting", "store": "storing", "erase": "erasing", "list": "listing"}


def _failed(action: str, code: int, out: bytes) -> HelperError:
    return HelperError("error %s credentials - err: exit status %d, out: `%s`"
                       % (_ING[action], code, out.decode(errors="replace").strip()))


def get(conf: dict[str, Any], key: str) -> dict[str, str]:
    """The auth config for registry ``key`` (``username``/``password`` or ``identitytoken``,
    and ``serveraddress``); {} when nothing is kept for it."""
    helper = helper_for(conf, key)
    if not helper:
        return _from_file((conf.get("auths") or {}).get(key), key)
    return _ask(helper, key)


def _from_file(entry: Any, key: str) -> dict[str, str]:
    """config.json's entry of ``key`` decoded; {} when it keeps nothing."""
    out: dict[str, str] = {}
    if isinstance(entry, dict) and entry.get("auth"):
        import base64
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except ValueError:
            raise CommandError("invalid auth configuration file") from None
        out = {"username": user, "serveraddress": key}
        if password:                        # empty beside an identity token: docker omits it
            out["password"] = password
    if isinstance(entry, dict) and entry.get("identitytoken"):
        out.update(identitytoken=str(entry["identitytoken"]), serveraddress=key)
    return out


def _ask(helper: str, key: str) -> dict[str, str]:
    """``helper``'s credentials of ``key``; {} when it has none."""
    code, data = _call(helper, "get", key.encode())
    if code != 0:
        if data.decode(errors="replace").strip() == NOT_FOUND:
            return {}
        raise _failed("get", code, data)
    from .jsonio import loads
    try:
        doc = loads(data)
    except ValueError as e:
        raise HelperError("error getting credentials - err: %s, out: `%s`"
                          % (e, data.decode(errors="replace").strip())) from None
    if not isinstance(doc, dict):
        return {}
    user, secret = str(doc.get("Username") or ""), str(doc.get("Secret") or "")
    if user == TOKEN_USERNAME:
        return {"identitytoken": secret, "serveraddress": key}
    return {"username": user, "password": secret, "serveraddress": key}


def get_all(conf: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Every credential the config can give, as docker's build sends them: the credsStore's
    registries (its ``list``, each then asked for), else config.json's auths; then each
    ``credHelpers`` registry from its own helper (one that fails is left out)."""
    out: dict[str, dict[str, str]] = {}
    store_helper = conf.get("credsStore")
    if isinstance(store_helper, str) and store_helper:
        code, data = _call(store_helper, "list", b"")
        if code != 0:
            raise _failed("list", code, data)
        from .jsonio import loads
        try:
            listed = loads(data)
        except ValueError as e:
            raise HelperError("error listing credentials - err: %s, out: `%s`"
                              % (e, data.decode(errors="replace").strip())) from None
        for key in listed if isinstance(listed, dict) else ():
            out[key] = _ask(store_helper, key)
    else:
        auths = conf.get("auths")
        for key, entry in auths.items() if isinstance(auths, dict) else ():
            out[key] = _from_file(entry, key) or {"serveraddress": key}
    helpers = conf.get("credHelpers")
    for key, helper in helpers.items() if isinstance(helpers, dict) else ():
        if isinstance(helper, str) and helper:
            try:
                out[key] = _ask(helper, key)
            except HelperError:
                continue
    return out


def store(conf: dict[str, Any], key: str, user: str, password: str, token: str = "") -> bool:
    """Keep the credentials of ``key``: in its helper (config.json's auths keeps an empty
    entry, as docker's) or in config.json; an identity token goes to config.json's
    ``identitytoken`` (beside ``auth`` of "user:") or to the helper as the ``<token>`` user's
    secret. True if a helper took them. The caller saves ``conf``."""
    helper = helper_for(conf, key)
    auths = conf.setdefault("auths", {})
    if not helper:
        import base64
        entry = {"auth": base64.b64encode(("%s:%s" % (user, password)).encode()).decode()}
        if token:
            entry["identitytoken"] = token
        auths[key] = entry
        return False
    from .jsonio import dumps
    code, data = _call(helper, "store", dumps({
        "ServerURL": key, "Username": TOKEN_USERNAME if token else user,
        "Secret": token or password}).encode())
    if code != 0:
        raise _failed("store", code, data)
    auths[key] = {}
    return True


def erase(conf: dict[str, Any], key: str) -> str | None:
    """Forget ``key``'s credentials (in its helper too); the helper's failure as a message,
    None if none. The caller saves ``conf``."""
    helper = helper_for(conf, key)
    message = None
    if helper:
        code, data = _call(helper, "erase", key.encode())
        if code != 0:
            message = str(_failed("erase", code, data))
    (conf.get("auths") or {}).pop(key, None)
    return message

