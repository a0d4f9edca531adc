"""pydockerd under test, driven by software nobody here wrote: the docker CLI and the docker SDK.

``mirror`` (session): a docker-registry on loopback holding the built-in busybox and
hello-world as ``library/busybox:latest`` and ``library/hello-world:latest``, so that with
``--registry-mirror`` a daemon resolves ``docker pull busybox`` without the internet.

``dockerd`` (function): a started pydockerd (a subprocess of the test, in a mount namespace of
its own whose /etc/resolv.conf names only 127.0.0.1, so nothing falls back to Docker Hub), with
its data root, exec root, socket and pidfile in tmp_path and the mirror configured. Its
``docker(*args)`` runs a docker CLI with DOCKER_HOST at its socket and an empty client
config; ``client()`` gives a ``docker.DockerClient``; ``stop()`` sends SIGTERM; at teardown
every container is force-removed through the engine and the daemon ended by PID.
``start_daemon(tmp, *flags)`` starts more (for flag and lifecycle tests).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

import support

from pyrunc.engine import Engine


def _registry_server_class():
    """The registry tests' RegistryServer (their conftest, loaded under a name of its own)."""
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "registry", "conftest.py")
    spec = importlib.util.spec_from_file_location("engine_registry_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RegistryServer, module.REGISTRY_BIN


DOCKER_CLIS = {"docker28": "/usr/local/bin/docker", "docker20": "/usr/bin/docker"}
# the machine's network namespace: the session's, before any test enters one of its own
MACHINE_NETNS = os.stat("/proc/self/ns/net").st_ino


def _push_builtin(registry, work):
    from pyrunc.engine.distribution.push import push
    from pyrunc.engine.registry import RegistryOptions, RegistryService
    eng = Engine(str(work / "seed"))
    registries = RegistryService(RegistryOptions())
    for name in ("busybox", "hello-world"):
        eng.load_builtin(name)
        target = "%s/library/%s:latest" % (registry.domain, name)
        eng.images.tag(name, target)
        push(target, eng.images.content, registries, images=eng.images)
    registries.close()


@pytest.fixture(scope="session")
def mirror(tmp_path_factory, private_mount_ns):
    registry_server, binary = _registry_server_class()
    if not os.path.exists(binary):
        pytest.skip("docker-registry (%s) is not installed" % binary)
    work = tmp_path_factory.mktemp("mirror")
    registry = registry_server(work / "registry").start()
    try:
        _push_builtin(registry, work)
        yield registry
    finally:
        registry.stop()


class SlowProxy:
    """An HTTP proxy on loopback in front of a registry that sends blobs slowly (64 KiB every
    ``delay`` seconds), so a pull is still streaming when a test kills the daemon."""

    def __init__(self, upstream_port, delay=0.05):
        import http.client
        import http.server
        import threading
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                up = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                up.request(self.command, self.path, headers=headers)
                r = up.getresponse()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection"):
                        self.send_header(k, v)
                data = r.read()
                if "Content-Length" not in dict(r.getheaders()):
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                slow = "/blobs/" in self.path and self.command == "GET"
                try:
                    if self.command != "HEAD":
                        for i in range(0, len(data), 65536):
                            self.wfile.write(data[i:i + 65536])
                            self.wfile.flush()
                            if slow:
                                time.sleep(proxy.delay)
                except OSError:
                    pass
                up.close()

            do_HEAD = do_GET

        self.delay = delay
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def _push_big(registry, work, size):
    """library/big:latest: one layer of ``size`` random bytes."""
    import io
    import tarfile
    from pyrunc.engine.distribution.push import push
    from pyrunc.engine.images.importer import import_image
    from pyrunc.engine.registry import RegistryOptions, RegistryService
    eng = Engine(str(work / "bigseed"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("blob.bin")
        info.size = size
        t.addfile(info, io.BytesIO(os.urandom(size)))
    buf.seek(0)
    target = "%s/library/big:latest" % registry.domain
    import_image(eng.images, buf, ref=target)
    registries = RegistryService(RegistryOptions())
    push(target, eng.images.content, registries, images=eng.images)
    registries.close()


@pytest.fixture(scope="session")
def slow_mirror(mirror, tmp_path_factory):
    """The mirror, plus library/big (8 MiB), behind a proxy that takes about 6 s to send it."""
    _push_big(mirror, tmp_path_factory.mktemp("big"), 8 << 20)
    proxy = SlowProxy(mirror.port)
    try:
        yield proxy
    finally:
        proxy.stop()


class Daemon:
    """One pydockerd subprocess and the clients pointed at it."""

    def __init__(self, tmp, flags, mirror_url=None, config=None):
        self.tmp = str(tmp)
        os.makedirs(self.tmp, exist_ok=True)
        self.root = os.path.join(self.tmp, "root")
        self.exec_root = os.path.join(self.tmp, "exec")
        self.sock = os.path.join(self.tmp, "docker.sock")
        self.pidfile = os.path.join(self.tmp, "pydockerd.pid")
        self.config_file = os.path.join(self.tmp, "daemon.json")
        self.client_config = os.path.join(self.tmp, "client-config")
        os.makedirs(self.client_config, exist_ok=True)
        self.mirror_url = mirror_url
        doc = dict(config or {})
        if mirror_url:
            doc.setdefault("registry-mirrors", [mirror_url])
        with open(self.config_file, "w") as f:
            json.dump(doc, f)
        self.resolv = os.path.join(self.tmp, "resolv.conf")
        with open(self.resolv, "w") as f:
            f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        self.flags = list(flags)
        # in the machine's network namespace (the mirror is on its loopback) the daemon has
        # no network (--bridge=none: no bridge, no rule there); in a namespace the test made
        # (the network tests' host_ns) a default bridge of its own, removed at cleanup
        own_netns = os.stat("/proc/thread-self/ns/net").st_ino != MACHINE_NETNS
        self.bridge = "pyt%s" % os.urandom(4).hex() if own_netns else None
        self.log_path = os.path.join(self.tmp, "pydockerd.log")
        self.proc = None

    @property
    def host(self):
        return "unix://" + self.sock

    def argv(self):
        return [sys.executable, "-m", "pyrunc.engine.dockerd", "-H", self.host,
                "--data-root", self.root, "--exec-root", self.exec_root,
                "--pidfile", self.pidfile, "--config-file", self.config_file,
                "--bridge", self.bridge or "none", "--iptables=false"] + self.flags

    def start(self, wait=True):
        # the daemon's own mount namespace: resolv.conf names only loopback
        script = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
             self.resolv] + self.argv(), stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("pydockerd exited with %s:\n%s"
                                   % (self.proc.returncode, self.output()))
            try:
                if self.request("GET", "/_ping")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("pydockerd did not answer in %ss:\n%s" % (timeout, self.output()))

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def request(self, method, path, body=None, headers=None, timeout=30):
        """(status, headers dict, body bytes) of one request over a new connection."""
        return support.unix_request(self.sock, method, path, body, headers, timeout)

    def env(self):
        return dict(os.environ, DOCKER_HOST=self.host, DOCKER_CONFIG=self.client_config,
                    DOCKER_CLI_HINTS="false")

    def docker(self, *args, cli="docker28", input=None, check=True, timeout=120):
        """Run the docker CLI; returns the CompletedProcess (text)."""
        # no terminal and no stdin unless given: a CLI prompt (docker login's user name
        # after a 401) ends at once instead of waiting
        r = subprocess.run([DOCKER_CLIS[cli]] + [str(a) for a in args], env=self.env(),
                           input="" if input is None else input, capture_output=True,
                           text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("docker %s: exit %d\n%s%s\n--- daemon ---\n%s"
                                 % (" ".join(map(str, args)), r.returncode, r.stdout, r.stderr,
                                    self.output()[-3000:]))
        return r

    def client(self):
        import docker
        return docker.DockerClient(base_url=self.host, version="auto", timeout=60)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Signal the daemon (by PID) and wait for it; returns its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("pydockerd did not stop in %ss after %s"
                                     % (timeout, signal.Signals(sig).name))
        code = self.proc.returncode
        self.log.close()
        self.proc = None
        return code

    def cleanup(self):
        try:
            self.stop(signal.SIGKILL)
        finally:
            if os.path.isdir(self.root):
                eng = Engine(self.root, exec_root=self.exec_root, bridge=self.bridge,
                             iptables=False)
                for c in eng.containers.store.all():
                    try:
                        eng.containers.remove(c.id, force=True, volumes=True)
                    except Exception as e:   # report, go on with the others
                        print("teardown: remove %s: %s" % (c.id[:12], e))
            if self.bridge and os.path.exists("/sys/class/net/%s" % self.bridge):
                subprocess.run(["ip", "link", "del", self.bridge], check=False)


@pytest.fixture
def start_daemon(private_mount_ns, mirror):
    started = []

    def start(tmp, *flags, wait=True, config=None, with_mirror=True, mirror_url=None):
        d = Daemon(tmp, flags, (mirror_url or mirror.url) if with_mirror else None, config)
        started.append(d)
        return d.start(wait=wait)

    yield start
    for d in started:
        d.cleanup()


@pytest.fixture
def dockerd(start_daemon, tmp_path):
    return start_daemon(tmp_path / "d")


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory, private_mount_ns):
    """A docker-registry on loopback that wants Basic auth: alice / wonderland."""
    server_class, binary = _registry_server_class()
    if not os.path.exists(binary):
        pytest.skip("docker-registry (%s) is not installed" % binary)
    if not shutil.which("htpasswd"):
        pytest.skip("htpasswd (apache2-utils) is not installed")
    work = tmp_path_factory.mktemp("authreg")
    htpasswd = work / "htpasswd"
    subprocess.run(["htpasswd", "-Bbc", str(htpasswd), "alice", "wonderland"], check=True,
                   capture_output=True)
    registry = server_class(work / "reg", htpasswd=str(htpasswd)).start()
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture(params=sorted(DOCKER_CLIS))
def cli(request):
    """Each docker CLI that is installed (a peer: skipped, naming it, when absent)."""
    if not shutil.which(DOCKER_CLIS[request.param]):
        pytest.skip("docker CLI %s (%s) is not installed" % (request.param,
                                                             DOCKER_CLIS[request.param]))
    return request.param
