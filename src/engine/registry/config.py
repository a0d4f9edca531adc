"""Where registries are and how to reach them: endpoints, TLS, mirrors and stored credentials.

Two pieces of docker's configuration:

* :class:`RegistryOptions`, the daemon's side (``insecure-registries``, ``registry-mirrors``
  and the ``certs.d`` directory): which URLs to try for a registry and with which TLS settings.
* :class:`AuthFile`, the client's ``config.json`` with its ``auths`` section, where ``login``
  stores credentials as base64 ``user:password``.
"""
from __future__ import annotations

import base64
import ipaddress
import json
import os
import socket

from pyrunc.errors import InvalidArgument

from pyrunc.engine.reference import DEFAULT_DOMAIN

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from ssl import SSLContext

DEFAULT_CERTS_DIR = "/etc/docker/certs.d"
DEFAULT_INSECURE_CIDRS = ("127.0.0.0/8", "::1/128")
DOCKER_HUB_HOST = "registry-1.docker.io"
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"


class Endpoint:
    """One base URL to try for a registry, with the TLS settings to use on it."""

    __slots__ = ("url", "host", "verify_tls", "mirror", "ca_files", "client_certs")

    def __init__(self, url: str, host: str, verify_tls: bool = True, mirror: bool = False,
                 ca_files: Any = (), client_certs: Any = ()) -> None:
        self.url = url.rstrip("/")
        self.host = host
        self.verify_tls = verify_tls
        self.mirror = mirror
        self.ca_files = tuple(ca_files)
        self.client_certs = tuple(client_certs)

    @property
    def secure(self) -> bool:
        return self.url.startswith("https://")

    def ssl_context(self) -> SSLContext:
        """The TLS context for this endpoint: system roots plus certs.d CAs and client pair."""
        import ssl
        context = ssl.create_default_context()
        if not self.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        for ca_file in self.ca_files:
            context.load_verify_locations(cafile=ca_file)
        for cert, key in self.client_certs:
            context.load_cert_chain(cert, key)
        return context

    def __repr__(self):
        return "Endpoint(%r%s%s)" % (self.url, "" if self.verify_tls else ", insecure",
                                     ", mirror" if self.mirror else "")


def _strip_scheme(value):
    for prefix in ("https://", "http://"):
        if value.startswith(prefix):
            value = value[len(prefix):]
    return value.rstrip("/")


class RegistryOptions:
    """The daemon's registry settings.

    ``insecure_registries`` holds ``host[:port]`` names and CIDRs; a registry is insecure when
    its name is listed or one of its addresses is in a listed or default CIDR (loopback, as in
    docker). Insecure registries are tried over HTTPS without verification, then plain HTTP.
    ``mirrors`` are URLs tried before Docker Hub for ``docker.io`` pulls.
    """

    def __init__(self, insecure_registries: Any = (), mirrors: Any = (),
                 certs_dir: str = DEFAULT_CERTS_DIR,
                 insecure_cidrs: Any = DEFAULT_INSECURE_CIDRS) -> None:
        self.insecure_hosts = set()
        self.insecure_networks = []
        for entry in list(insecure_registries) + list(insecure_cidrs):
            entry = _strip_scheme(entry)
            if "/" in entry:
                try:
                    self.insecure_networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    raise InvalidArgument("insecure registry %s is not a valid CIDR" % entry)
            else:
                self.insecure_hosts.add(entry)
        self.mirrors = []
        for mirror in mirrors:
            if not mirror.startswith(("http://", "https://")):
                raise InvalidArgument("invalid mirror: unsupported scheme %r in %r"
                                      % (mirror.split("://")[0] if "://" in mirror else "",
                                         mirror))
            self.mirrors.append(mirror.rstrip("/"))
        self.certs_dir = certs_dir

    @classmethod
    def from_daemon_config(cls, config: Any, certs_dir: str = DEFAULT_CERTS_DIR) -> Any:
        """Options from a parsed ``daemon.json`` (``insecure-registries``, ``registry-mirrors``)."""
        for key in ("insecure-registries", "registry-mirrors"):
            value = config.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InvalidArgument("daemon config: %s: must be an array of strings" % key)
        return cls(insecure_registries=config.get("insecure-registries", []),
                   mirrors=config.get("registry-mirrors", []), certs_dir=certs_dir)

    def is_secure(self, host: str) -> bool:
        """Whether ``host[:port]`` must be reached over verified TLS."""
        if host in self.insecure_hosts:
            return False
        name = host
        if name.startswith("["):
            name = name[1:name.index("]")]
        elif name.count(":") == 1:
            name = name.split(":")[0]
        if name in self.insecure_hosts:
            return False
        for address in _addresses(name):
            if any(address in network for network in self.insecure_networks):
                return False
        return True

    def tls_files(self, host: str) -> tuple[Any, ...]:
        """CA files and (cert, key) pairs from ``certs_dir/host/``, in docker's layout."""
        directory = os.path.join(self.certs_dir, host) if self.certs_dir else None
        ca_files: list[Any]
        pairs: list[Any]
        ca_files, pairs = [], []
        if not directory or not os.path.isdir(directory):
            return ca_files, pairs
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            if name.endswith(".crt"):
                ca_files.append(path)
            elif name.endswith(".cert"):
                key = path[:-len(".cert")] + ".key"
                if not os.path.exists(key):
                    raise InvalidArgument("missing key %s for client certificate %s"
                                          % (os.path.basename(key), name))
                pairs.append((path, key))
            elif name.endswith(".key"):
                if not os.path.exists(path[:-len(".key")] + ".cert"):
                    raise InvalidArgument("missing client certificate %s.cert for key %s"
                                          % (name[:-len(".key")], name))
        return ca_files, pairs

    def endpoints(self, domain: str, for_push: bool = False) -> Any:
        """The endpoints to try for ``domain``, best first."""
        result = []
        if domain == DEFAULT_DOMAIN:
            if not for_push:
                for mirror in self.mirrors:
                    host = _strip_scheme(mirror)
                    secure = mirror.startswith("https://") and self.is_secure(host)
                    ca_files, pairs = self.tls_files(host)
                    result.append(Endpoint(mirror, host, verify_tls=secure, mirror=True,
                                           ca_files=ca_files, client_certs=pairs))
            host = DOCKER_HUB_HOST
        else:
            host = domain
        secure = self.is_secure(host)
        ca_files, pairs = self.tls_files(domain)
        result.append(Endpoint("https://" + host, host, verify_tls=secure,
                               ca_files=ca_files, client_certs=pairs))
        if not secure:
            result.append(Endpoint("http://" + host, host, verify_tls=False))
        return result


def _addresses(name):
    try:
        return [ipaddress.ip_address(name)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []
    result = []
    for info in infos:
        try:
            result.append(ipaddress.ip_address(info[4][0].split("%")[0]))  # type: ignore[union-attr]
        except ValueError:
            continue
    return result


def server_domain(server: str) -> str:
    """The registry domain a ``docker login`` server argument names (default docker.io)."""
    if not server:
        return DEFAULT_DOMAIN
    host = _strip_scheme(server.strip()).split("/")[0]
    if host in ("index.docker.io", "registry-1.docker.io", "docker.io"):
        return DEFAULT_DOMAIN
    if not host:
        raise InvalidArgument("invalid registry server address %r" % server)
    return host


def auth_key(domain: str) -> str:
    """The ``auths`` key docker uses for a registry domain."""
    return DOCKER_HUB_AUTH_KEY if domain == DEFAULT_DOMAIN else domain


def default_auth_file_path() -> str:
    config_dir = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"),
                                                                 ".docker")
    return os.path.join(config_dir, "config.json")


class Credentials:
    """A user name and password, or an identity (refresh) token."""

    __slots__ = ("username", "password", "identity_token")

    def __init__(self, username: str = "", password: str = "", identity_token: str = "") -> None:
        self.username = username
        self.password = password
        self.identity_token = identity_token

    def __bool__(self):
        return bool(self.username or self.identity_token)

    def __repr__(self):
        return "Credentials(username=%r)" % self.username


class AuthFile:
    """docker's ``config.json``: credentials under ``auths``, other keys kept as they are."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path or default_auth_file_path()

    def _load(self):
        try:
            with open(self.path) as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            raise InvalidArgument("%s: cannot read config file: %s" % (self.path, err))
        if not isinstance(data, dict):
            raise InvalidArgument("%s: config file must hold a JSON object" % self.path)
        return data

    def _entry(self, auths, domain):
        key = auth_key(domain)
        if key in auths:
            return auths[key]
        for name, entry in auths.items():
            if _strip_scheme(name) == _strip_scheme(key) or (
                    domain == DEFAULT_DOMAIN and _strip_scheme(name).split("/")[0] in (
                        "index.docker.io", "docker.io", DOCKER_HUB_HOST)):
                return entry
        return None

    def get(self, domain: str) -> Credentials:
        """Credentials stored for ``domain`` (empty when there are none)."""
        entry = self._entry(self._load().get("auths") or {}, domain)
        if not entry:
            return Credentials()
        username, password = entry.get("username", ""), entry.get("password", "")
        if entry.get("auth"):
            try:
                decoded = base64.b64decode(entry["auth"], validate=True).decode()
                username, _, password = decoded.partition(":")
            except (ValueError, UnicodeDecodeError):
                raise InvalidArgument("%s: auths.%s.auth: invalid base64 user:password"
                                      % (self.path, auth_key(domain)))
        return Credentials(username, password, entry.get("identitytoken", ""))

    def store(self, domain: str, credentials: Any) -> None:
        data = self._load()
        auths = data.setdefault("auths", {})
        entry = {"auth": base64.b64encode(("%s:%s" % (credentials.username,
                                                       credentials.password)).encode()).decode()}
        if credentials.identity_token:
            entry = {"auth": base64.b64encode((credentials.username + ":").encode()).decode(),
                     "identitytoken": credentials.identity_token}
        auths[auth_key(domain)] = entry
        self._write(data)

    def erase(self, domain: str) -> bool:
        """Forget the credentials for ``domain``; False when there were none."""
        data = self._load()
        auths = data.get("auths") or {}
        if auth_key(domain) not in auths:
            return False
        del auths[auth_key(domain)]
        self._write(data)
        return True

    def _write(self, data):
        directory = os.path.dirname(self.path) or "."
        os.makedirs(directory, mode=0o700, exist_ok=True)
        temp = self.path + ".tmp%d" % os.getpid()
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent="\t")
            f.write("\n")
        os.replace(temp, self.path)
