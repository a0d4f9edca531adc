"""``pydockerd``: the Docker Engine API daemon over the engine (dockerd's command line).

    pydockerd [-H unix:///run/pyrunc/docker.sock] [--data-root /var/lib/pyrunc] ...

Flags are dockerd's where they apply; ``--config-file`` (default /etc/pyrunc/daemon.json when it
exists) takes daemon.json's keys, and a setting given both as a flag and in the file is refused
as dockerd refuses it. The daemon holds a lock on its data root (a second daemon there is
refused), serves every ``-H`` listener, runs the supervisor (restart policies, health checks),
and on SIGTERM/SIGINT stops serving and exits, leaving containers running under their shims.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import signal
import ssl
import sys
import threading
import urllib.parse

from pyrunc import errors
from pyrunc.engine import runtimes
from pyrunc.errors import Conflict, InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_HOST = "unix:///run/pyrunc/docker.sock"
DEFAULT_CONFIG_FILE = "/etc/pyrunc/daemon.json"
LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
              "error": logging.ERROR, "fatal": logging.CRITICAL}

# flag destination -> daemon.json key (the same names dockerd uses)
KEYS = {"hosts": "hosts", "data_root": "data-root", "exec_root": "exec-root",
        "pidfile": "pidfile", "registry_mirrors": "registry-mirrors",
        "insecure_registries": "insecure-registries", "default_runtime": "default-runtime",
        "runtimes": "runtimes", "userns_remap": "userns-remap", "bridge": "bridge",
        "iptables": "iptables", "log_level": "log-level", "debug": "debug", "tls": "tls",
        "tlsverify": "tlsverify", "tlscacert": "tlscacert", "tlscert": "tlscert",
        "tlskey": "tlskey", "group": "group", "snapshotter": "storage-driver",
        "labels": "labels", "dns": "dns"}
LIST_KEYS = {"hosts", "registry-mirrors", "insecure-registries", "labels", "dns"}
BOOL_KEYS = {"iptables", "debug", "tls", "tlsverify"}
STR_KEYS = {"data-root", "exec-root", "pidfile", "default-runtime", "userns-remap", "bridge",
            "log-level", "tlscacert", "tlscert", "tlskey", "group", "storage-driver"}
DEFAULTS: dict[str, Any] = {"hosts": [DEFAULT_HOST], "data-root": "/var/lib/pyrunc",
                            "exec-root": None, "pidfile": "/run/pyrunc/pydockerd.pid",
                            "registry-mirrors": [], "insecure-registries": [],
                            "default-runtime": "pyrunc", "runtimes": {}, "userns-remap": "",
                            "bridge": "", "iptables": True, "log-level": "info",
                            "debug": False, "tls": False, "tlsverify": False,
                            "tlscacert": "", "tlscert": "", "tlskey": "", "group": "docker",
                            "storage-driver": None, "labels": [], "dns": None}

log = logging.getLogger("pydockerd")


def _runtime(value: str) -> tuple[str, str]:
    """``--add-runtime NAME=PATH`` as dockerd reads it (spaces trimmed, the name lowercased)."""
    name, sep, path = value.partition("=")
    name, path = name.strip().lower(), path.strip()
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError("invalid runtime %r: want name=path" % value)
    return name, path


def _runtimes_flag(pairs: list[tuple[str, str]]) -> dict[str, dict[str, str]]:
    """The ``--add-runtime`` flags as daemon.json's ``runtimes``; a name given twice is
    refused as dockerd refuses it."""
    out: dict[str, dict[str, str]] = {}
    for name, path in pairs:
        if name in out:
            raise InvalidArgument("runtime '%s' was already defined" % name)
        out[name] = {"path": path}
    return out


def parser() -> argparse.ArgumentParser:
    """dockerd's flags that apply to pydockerd."""
    p = argparse.ArgumentParser(prog="pydockerd", description="A self-sufficient runtime for "
                                "containers: the Docker Engine API over pyrunc's engine.",
                                argument_default=argparse.SUPPRESS)
    add = p.add_argument
    add("-H", "--host", dest="hosts", action="append", metavar="HOST",
        help="daemon socket(s) to connect to (default %s)" % DEFAULT_HOST)
    add("--config-file", default=None, help="daemon configuration file (default %s)"
        % DEFAULT_CONFIG_FILE)
    add("--data-root", help="root directory of persistent state (default /var/lib/pyrunc)")
    add("--exec-root", help="root directory for execution state files (default DATA-ROOT/exec)")
    add("-p", "--pidfile", help="path to use for the daemon PID file")
    add("--registry-mirror", dest="registry_mirrors", action="append",
        help="preferred registry mirror")
    add("--insecure-registry", dest="insecure_registries", action="append",
        help="enable insecure registry communication")
    add("--default-runtime", help="default OCI runtime for containers (default pyrunc)")
    add("--add-runtime", dest="runtimes", action="append", type=_runtime, metavar="NAME=PATH",
        help="register an additional OCI compatible runtime")
    add("--userns-remap", help="user/group setting for user namespaces")
    add("-b", "--bridge", help="the default bridge network's device (default pyr0 for the "
        "default data root, pyrXXXXXX for another); 'none': no default bridge")
    add("--iptables", type=_bool_flag, nargs="?", const=True,
        help="enable addition of iptables rules (default true)")
    add("-l", "--log-level", choices=sorted(LOG_LEVELS), help="set the logging level")
    add("-D", "--debug", action="store_const", const=True, help="enable debug mode")
    add("--tls", action="store_const", const=True, help="use TLS; implied by --tlsverify")
    add("--tlsverify", action="store_const", const=True,
        help="use TLS and verify the remote")
    add("--tlscacert", help="trust certs signed only by this CA")
    add("--tlscert", help="path to TLS certificate file")
    add("--tlskey", help="path to TLS key file")
    add("-G", "--group", help="group for the unix socket (default docker)")
    add("-s", "--storage-driver", dest="snapshotter", help="storage driver to use")
    add("--label", dest="labels", action="append", help="set key=value labels to the daemon")
    add("--dns", dest="dns", action="append", help="DNS server for containers to use")
    add("-v", "--version", action="store_const", const=True, help="print version and quit")
    return p


def _bool_flag(value: str) -> bool:
    if value.lower() in ("1", "true", "t"):
        return True
    if value.lower() in ("0", "false", "f"):
        return False
    raise argparse.ArgumentTypeError("invalid boolean %r" % value)


def load_config(argv: list[str]) -> dict[str, Any]:
    """The daemon's settings: DEFAULTS, then the config file, then flags; a key given both as
    a flag and in the file is InvalidArgument, as dockerd has it."""
    args = vars(parser().parse_args(argv))
    if args.pop("version", False):
        return {"version": True}
    config_file = args.pop("config_file", None)
    flags: dict[str, Any] = {}
    for dest, value in args.items():
        if dest == "runtimes":
            value = _runtimes_flag(value)
        flags[KEYS[dest]] = value
    from_file = read_config_file(config_file or DEFAULT_CONFIG_FILE,
                                 required=config_file is not None)
    both = sorted(k for k in flags if k in from_file)
    if both:
        raise InvalidArgument(
            "unable to configure the Docker daemon with file %s: the following directives are "
            "specified both as a flag and in the configuration file: %s"
            % (config_file or DEFAULT_CONFIG_FILE,
               ", ".join("%s: (from flag: %s, from file: %s)" % (k, _go(flags[k]),
                                                                  _go(from_file[k]))
                         for k in both)))
    config = dict(DEFAULTS)
    config.update(from_file)
    config.update(flags)
    runtimes.reserved(config["runtimes"])
    if config.get("tlsverify"):
        config["tls"] = True
    return config


def _go(value: Any) -> str:
    if isinstance(value, list):
        return "[%s]" % " ".join(str(v) for v in value)
    return str(value)


def read_config_file(path: str, required: bool) -> dict[str, Any]:
    """daemon.json: an object of known keys with the right types."""
    try:
        with open(path) as f:
            text = f.read(1 << 20)
    except FileNotFoundError:
        if required:
            raise InvalidArgument("unable to configure the Docker daemon with file %s: open %s: "
                                  "no such file or directory" % (path, path)) from None
        return {}
    except OSError as e:
        raise InvalidArgument("unable to configure the Docker daemon with file %s: %s"
                              % (path, e.strerror)) from None
    try:
        doc = json.loads(text) if text.strip() else {}
    except ValueError as e:
        raise InvalidArgument("unable to configure the Docker daemon with file %s: %s"
                              % (path, e)) from None
    if not isinstance(doc, dict):
        raise InvalidArgument("unable to configure the Docker daemon with file %s: not a JSON "
                              "object" % path)
    known = set(KEYS.values())
    unknown = sorted(k for k in doc if k not in known)
    if unknown:
        raise InvalidArgument("unable to configure the Docker daemon with file %s: the "
                              "following directives don't match any configuration option: %s"
                              % (path, ", ".join(unknown)))
    for key, value in doc.items():
        ok = (isinstance(value, list) and all(isinstance(v, str) for v in value)
              if key in LIST_KEYS else isinstance(value, bool) if key in BOOL_KEYS
              else isinstance(value, str) if key in STR_KEYS
              else isinstance(value, dict) and all(
                  isinstance(v, dict) and isinstance(v.get("path"), str)
                  for v in value.values()))
        if not ok:
            raise InvalidArgument("unable to configure the Docker daemon with file %s: %s: "
                                  "wrong type" % (path, key))
    return doc


def parse_host(host: str) -> tuple[str, str, int]:
    """``unix:///path``, ``tcp://host:port``, ``fd://`` -> (scheme, address, port);
    dockerd's short forms (``:2376``, ``host:port``, ``/path``) too."""
    if host.startswith("/"):
        host = "unix://" + host
    elif "://" not in host:
        host = "tcp://" + host
    try:
        url = urllib.parse.urlsplit(host)
    except ValueError as e:
        raise InvalidArgument("invalid bind address (%s): %s" % (host, e)) from None
    if url.scheme == "unix":
        path = url.netloc + url.path
        if not path.startswith("/"):
            raise InvalidArgument("invalid bind address (%s): unix socket path must be "
                                  "absolute" % host)
        return "unix", path, 0
    if url.scheme == "tcp":
        try:
            port = url.port
        except ValueError:
            port = None
        if port is None:
            raise InvalidArgument("invalid bind address (%s): a port is required" % host)
        return "tcp", url.hostname or "127.0.0.1", port
    raise InvalidArgument("invalid bind address (%s): unsupported protocol %s"
                          % (host, url.scheme or "(none)"))


def tls_context(config: dict[str, Any]) -> ssl.SSLContext:
    """The server's TLS settings: its certificate and key; with tlsverify, client
    certificates signed by tlscacert are required."""
    for key in ("tlscert", "tlskey"):
        if not config.get(key):
            raise InvalidArgument("could not load X509 key pair: --%s is required with "
                                  "--tls/--tlsverify" % key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config["tlscert"], config["tlskey"])
        if config.get("tlsverify"):
            if not config.get("tlscacert"):
                raise InvalidArgument("--tlsverify requires --tlscacert")
            context.load_verify_locations(config["tlscacert"])
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as e:
        raise InvalidArgument("could not load X509 key pair: %s" % e) from None
    return context


class Daemon:
    """One pydockerd: the root lock, the engine, the listeners and the supervisor."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.root = os.path.abspath(config["data-root"])
        self._lock_fd = -1
        self._pidfile_path = ""
        self._stop = threading.Event()
        self.api: Any = None
        self.supervisor: Any = None
        self.engine: Any = None

    def lock(self) -> None:
        """Take the data root; Conflict when another daemon holds it."""
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        path = os.path.join(self.root, "pydockerd.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                pid = os.pread(fd, 32, 0).decode().strip()
            finally:
                os.close(fd)
            raise Conflict("another pydockerd (pid %s) is running on data root %s"
                           % (pid or "?", self.root)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"%d\n" % os.getpid(), 0)
        self._lock_fd = fd

    def _pidfile(self) -> None:
        path = self.config.get("pidfile")
        if not path:
            return
        try:
            with open(path) as f:
                old = int(f.read().strip() or 0)
        except (OSError, ValueError):
            old = 0
        if old and old != os.getpid() and os.path.exists("/proc/%d" % old):
            with open("/proc/%d/cmdline" % old, "rb") as f:
                if b"dockerd" in f.read():
                    raise Conflict("pid file found, ensure docker is not running or delete %s"
                                   % path)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w") as f:
            f.write("%d" % os.getpid())
        self._pidfile_path = path

    def start(self) -> None:
        """Lock the root, open the engine, listen on every host, start the supervisor."""
        from pyrunc.engine.api import server
        from pyrunc.engine.daemon import Engine
        from pyrunc.engine.network import default_bridge
        from pyrunc.engine.api.router.images import RequestAuth
        from pyrunc.engine.registry import RegistryOptions, RegistryService
        config = self.config
        listeners = [parse_host(h) for h in config["hosts"]]
        tls = None
        for scheme, address, port in listeners:
            if scheme == "tcp" and not config.get("tlsverify"):
                raise InvalidArgument(
                    "refusing to listen on tcp://%s:%d without --tlsverify: the API gives root "
                    "on this host to every client; pass --tlsverify --tlscacert --tlscert "
                    "--tlskey" % (address, port))
            if scheme == "tcp" and tls is None:
                tls = tls_context(config)
        self.lock()
        self._pidfile()
        self.engine = Engine(self.root, exec_root=config.get("exec-root"),
                             runtime=config.get("default-runtime") or "pyrunc",
                             runtimes=config.get("runtimes") or None,
                             snapshotter=config.get("storage-driver"),
                             userns_remap=config.get("userns-remap") or None,
                             bridge=config.get("bridge") or default_bridge(
                                 self.root, DEFAULTS["data-root"]),
                             iptables=config.get("iptables", True),
                             dns_upstreams=config.get("dns"), warm_create=True)
        # image events (pull, tag, delete...) go to the engine's event log, for /events
        self.engine.images.events = self.engine.events
        registries = RegistryService(RegistryOptions.from_daemon_config(config),
                                     auth_file=RequestAuth())
        routes = server.load_routes(self.engine, {
            "system": {"config": config, "registries": registries},
            "images": {"registries": registries}, "build": {"registries": registries}})
        self.api = server.APIServer(routes)
        for scheme, address, port in listeners:
            if scheme == "unix":
                self.api.listen_unix(address, config.get("group") or None)
            else:
                assert tls is not None
                self.api.listen_tls(address, port, tls)
        self._start_supervisor()
        self.api.start()
        log.info("API listen on %s", ", ".join(config["hosts"]))

    def _start_supervisor(self) -> None:
        try:
            from pyrunc.engine.supervisor import Supervisor
        except ModuleNotFoundError as e:
            if e.name != "pyrunc.engine.supervisor":
                raise
            log.warning("no supervisor in this build: restart policies and health checks "
                        "do not run")
            return
        self.supervisor = Supervisor(self.engine, boot=True)
        self.supervisor.start()

    def request_stop(self) -> None:
        """Ask ``wait`` to return (safe in a signal handler)."""
        self._stop.set()

    def wait(self) -> None:
        while not self._stop.wait(3600):
            pass

    def stop(self) -> None:
        """Stop listening and supervising; containers keep running."""
        if self.api is not None:
            self.api.stop()
        if self.supervisor is not None:
            self.supervisor.stop()
        if self.engine is not None:
            self.engine.close()
        if self._pidfile_path:   # only the one this daemon wrote
            try:
                os.unlink(self._pidfile_path)
            except FileNotFoundError:
                pass
            self._pidfile_path = ""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1


def main(argv: list[str] | None = None) -> int:
    """Run the daemon until SIGTERM/SIGINT; 1 (with dockerd-style messages) on errors."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        config = load_config(argv)
    except errors.PyruncError as e:
        print("pydockerd: %s" % e, file=sys.stderr)
        return 1
    if config.get("version"):
        import pyrunc
        print("pydockerd version %s" % pyrunc.__version__)
        return 0
    level = logging.DEBUG if config.get("debug") else LOG_LEVELS.get(
        config.get("log-level") or "info", logging.INFO)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="time=\"%(asctime)s\" level=%(levelname)s msg=\"%(message)s\"")
    errors.set_warning_sink(lambda message: log.warning("%s", message))
    daemon = Daemon(config)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: daemon.request_stop())
    try:
        daemon.start()
        daemon.wait()
    except errors.PyruncError as e:
        log.error("%s", e)
        print("pydockerd: %s" % e, file=sys.stderr)
        return 1
    finally:
        daemon.stop()
    log.info("daemon shut down; containers keep running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
