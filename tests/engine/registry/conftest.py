"""Real registries for the registry tests: Debian's docker-registry (distribution 2.8).

Each server runs on a free loopback port with its own config and storage in a temp dir and is
stopped by PID when the fixture ends. Variants: plain HTTP, TLS with a CA the tests make,
htpasswd Basic auth, and Bearer token auth through the small token server in tokenserver.py.
"""
import base64
import gzip
import http.server
import io
import json
import os
import signal
import socket
import subprocess
import tarfile
import threading
import time
import urllib.parse

import pytest

from pyrunc.engine.content import ContentStore, digest_bytes
from pyrunc.engine.registry import mediatypes

REGISTRY_BIN = "/usr/bin/docker-registry"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("registry exited with %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("registry did not listen on %d" % port)


class RegistryServer:
    """One docker-registry process; ``stop()`` ends it by PID (idempotent)."""

    def __init__(self, workdir, tls=None, htpasswd=None, token=None, port=None):
        self.workdir = str(workdir)
        self.port = port or free_port()
        self.tls = tls
        self.storage = os.path.join(self.workdir, "storage")
        os.makedirs(self.storage, exist_ok=True)
        self.config = os.path.join(self.workdir, "config.yml")
        lines = [
            "version: 0.1",
            "log:",
            "  level: error",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            "    rootdirectory: %s" % self.storage,
            "  delete:",
            "    enabled: true",
            "  maintenance:",
            "    uploadpurging:",
            "      enabled: false",
            "http:",
            "  addr: 127.0.0.1:%d" % self.port,
            "  secret: test-secret",
        ]
        if tls:
            lines += ["  tls:", "    certificate: %s" % tls["cert"], "    key: %s" % tls["key"]]
            if tls.get("client_ca"):
                lines += ["    clientcas:", "      - %s" % tls["client_ca"]]
        if htpasswd:
            lines += ["auth:", "  htpasswd:", "    realm: basic-realm", "    path: %s" % htpasswd]
        if token:
            lines += ["auth:", "  token:", "    realm: %s" % token.realm,
                      "    service: %s" % token.service, "    issuer: %s" % token.issuer,
                      "    rootcertbundle: %s" % token.cert]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None

    @property
    def domain(self):
        return "127.0.0.1:%d" % self.port

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def start(self):
        self.log = open(os.path.join(self.workdir, "registry.log"), "ab")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_port(self.port, self.proc)
        except Exception:
            self.stop()
            raise
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.log.close()
        self.proc = None


@pytest.fixture(scope="session")
def registry_bin():
    if not os.path.exists(REGISTRY_BIN):
        pytest.skip("docker-registry is not installed")
    return REGISTRY_BIN


@pytest.fixture
def start_registry(registry_bin, tmp_path):
    """start_registry(**options) -> a running RegistryServer, stopped at teardown."""
    servers = []

    def start(**options):
        server = RegistryServer(tmp_path / ("registry%d" % len(servers)), **options)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def plain_registry(registry_bin, tmp_path_factory):
    server = RegistryServer(tmp_path_factory.mktemp("registry")).start()
    yield server
    server.stop()


def openssl(*args, cwd=None):
    subprocess.run(["openssl", *args], check=True, cwd=cwd, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
            "-keyout", "ca.key", "-out", "ca.crt", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                 "extendedKeyUsage=serverAuth\n"),
                      ("client", "extendedKeyUsage=clientAuth\n")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=%s" % name,
                "-keyout", name + ".key", "-out", name + ".csr", cwd=d)
        (d / (name + ".ext")).write_text(ext)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", name + ".ext", "-out", name + ".crt",
                cwd=d)
    return {name: str(d / name) for name in ("ca.crt", "server.crt", "server.key",
                                              "client.crt", "client.key")}


@pytest.fixture(scope="session")
def htpasswd_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("htpasswd") / "htpasswd"
    subprocess.run(["htpasswd", "-Bbc", str(path), "alice", "wonderland"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return str(path)


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A token server for the registry's ``token`` auth: JWTs signed (RS256, by the openssl
    CLI) with a key whose self-signed certificate is the registry's ``rootcertbundle``.

    Anonymous clients get ``pull`` when ``anonymous_pull``; users in ``users`` get every
    action they ask for. ``requests`` records (user, scopes) of each token handed out.
    """

    service = "test-registry"
    issuer = "test-issuer"

    def __init__(self, workdir, users, anonymous_pull=True, lifetime=300):
        os.makedirs(workdir, exist_ok=True)
        self.key = os.path.join(workdir, "token.key")
        self.cert = os.path.join(workdir, "token.crt")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", "/CN=token signer", "-keyout", self.key, "-out", self.cert)
        der = subprocess.run(["openssl", "x509", "-in", self.cert, "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.users = users
        self.refresh_tokens = {}          # identity (refresh) token -> user, for OAuth2 POSTs
        self.anonymous_pull = anonymous_pull
        self.lifetime = lifetime
        self.requests = []
        self.port = free_port()
        self.realm = "http://127.0.0.1:%d/token" % self.port
        self.httpd = None

    def sign(self, claims):
        header = _b64url(json.dumps({"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}).encode())
        payload = _b64url(json.dumps(claims).encode())
        signing_input = ("%s.%s" % (header, payload)).encode()
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key],
                                   input=signing_input, check=True, capture_output=True).stdout
        return "%s.%s.%s" % (header, payload, _b64url(signature))

    def issue(self, user, scopes):
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            granted = wanted if user else (["pull"] if self.anonymous_pull and "pull" in wanted
                                           else [])
            granted = [a for a in granted if a in wanted]
            if granted:
                access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        return self.sign({"iss": self.issuer, "sub": user or "", "aud": self.service,
                          "exp": now + self.lifetime, "nbf": now - 10, "iat": now,
                          "jti": os.urandom(8).hex(), "access": access})

    def start(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                user = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if server.users.get(name) != password:
                        self.send_response(401)
                        self.send_header("Content-Type", "application/json")
                        self.end_headers()
                        self.wfile.write(b'{"details":"incorrect username or password"}')
                        return
                    user = name
                if url.path != "/token" or query.get("service") != [server.service]:
                    self.send_response(400)
                    self.end_headers()
                    return
                scopes = query.get("scope", [])
                server.requests.append((user, tuple(scopes)))
                body = json.dumps({"token": server.issue(user, scopes),
                                   "expires_in": server.lifetime}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                user = server.refresh_tokens.get((form.get("refresh_token") or [""])[0])
                if form.get("grant_type") != ["refresh_token"] or user is None:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                scopes = (form.get("scope") or [""])[0].split()
                server.requests.append((user, tuple(scopes)))
                body = json.dumps({"access_token": server.issue(user, scopes),
                                   "expires_in": server.lifetime}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


@pytest.fixture
def token_server(tmp_path):
    """A token server granting anonymous pulls; alice (password wonderland) may push."""
    server = TokenServer(str(tmp_path / "token"), users={"alice": "wonderland"})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def private_token_server(tmp_path):
    """A token server granting nothing to anonymous clients."""
    server = TokenServer(str(tmp_path / "private-token"), users={"alice": "wonderland"},
                         anonymous_pull=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def store(tmp_path):
    return ContentStore(str(tmp_path / "content"))


# -- a tiny image built by the tests -----------------------------------------------------------

def make_layer(files, compress=True):
    """A layer tarball holding ``files`` ({path: bytes}); gzip'd unless told otherwise."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1700000000
            tar.addfile(info, io.BytesIO(data))
    diff = raw.getvalue()
    blob = gzip.compress(diff, mtime=0) if compress else diff
    return blob, digest_bytes(diff)


def build_image(store, layers_files, oci=True, arch="amd64", cmd=("sh",)):
    """Write a small image into ``store``; returns (manifest digest, manifest bytes, layer
    descriptors). ``layers_files`` is a list of {path: bytes}."""
    layers, diff_ids = [], []
    for files in layers_files:
        blob, diff_id = make_layer(files)
        digest = store.put(blob)
        layers.append({"mediaType": mediatypes.OCI_LAYER_GZIP if oci else
                       mediatypes.DOCKER_LAYER_GZIP, "digest": digest, "size": len(blob)})
        diff_ids.append(diff_id)
    config = json.dumps({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": list(cmd), "Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "test layer %d" % i} for i in range(len(layers))],
    }, sort_keys=True).encode()
    config_digest = store.put(config)
    manifest = {"schemaVersion": 2,
                "mediaType": mediatypes.OCI_MANIFEST if oci else mediatypes.DOCKER_MANIFEST,
                "config": {"mediaType": mediatypes.OCI_CONFIG if oci else mediatypes.DOCKER_CONFIG,
                           "digest": config_digest, "size": len(config)},
                "layers": layers}
    data = json.dumps(manifest, sort_keys=True).encode()
    return store.put(data), data, layers


@pytest.fixture
def images():
    """Builders for test images: ``images.layer(files)``, ``images.build(store, [files...])``."""
    import types
    return types.SimpleNamespace(layer=make_layer, build=build_image)


class FaultProxy:
    """An HTTP proxy in front of a registry that breaks blob downloads on request.

    ``faults[digest]`` is a list of actions used one per GET of that blob: ``("drop", n)``
    sends the headers and ``n`` bytes then closes the connection; ``("corrupt",)`` flips a
    byte. ``failures`` answers a matching request with an error status instead of passing it
    on. ``requests`` records (method, path, Range header) of every request.
    """

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.port = free_port()
        self.faults = {}
        self.failures = []                # (method, path substring, status), each used once
        self.requests = []
        self.httpd = None

    @property
    def domain(self):
        return "127.0.0.1:%d" % self.port

    def _failure(self, method, path):
        for failure in self.failures:
            if failure[0] == method and failure[1] in path:
                self.failures.remove(failure)
                return failure[2]
        return None

    def start(self):
        import http.client
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                proxy.requests.append((self.command, self.path, self.headers.get("Range")))
                status = proxy._failure(self.command, self.path)
                if status:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port,
                                                      timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items()
                               if k.lower() not in ("connection", "keep-alive")}
                    upstream.request(self.command, self.path, body, headers)
                    response = upstream.getresponse()
                    data = response.read()
                except OSError:
                    self.send_error(502)
                    return
                finally:
                    upstream.close()
                action = None
                if self.command == "GET" and "/blobs/sha256:" in self.path:
                    queue = proxy.faults.get(self.path.rsplit("/", 1)[1].split("?")[0])
                    if queue:
                        action = queue.pop(0)
                if action and action[0] == "corrupt" and data:
                    data = bytes([data[0] ^ 0xff]) + data[1:]
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if action and action[0] == "drop":
                    self.wfile.write(data[:action[1]])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = forward

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


@pytest.fixture
def fault_proxy():
    """fault_proxy(registry) -> a running FaultProxy in front of it, stopped at teardown."""
    proxies = []

    def start(server):
        proxy = FaultProxy(server.port).start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


# -- a scripted, possibly hostile, registry ----------------------------------------------------

class FakeRegistry:
    """An HTTP/1.1 server on a loopback address whose every answer the test scripts.

    ``route(method, prefix, handler)``: the first route whose method matches and whose prefix
    starts the path answers with ``handler(request)``, where ``request`` is the
    BaseHTTPRequestHandler (``request.body`` holds the request body). Unrouted requests get
    404; ``GET /v2/`` answers 200 unless routed. ``requests`` records (method, path, headers)
    and ``sent`` counts the body bytes written, so tests can bound what a client read.
    ``tls`` is (cert, key) to serve HTTPS.
    """

    def __init__(self, host="127.0.0.1", tls=None):
        self.host = host
        self.port = free_port()
        self.tls = tls
        self.routes = []
        self.requests = []
        self.sent = 0
        self.stopping = threading.Event()
        self.httpd = None

    @property
    def domain(self):
        return "%s:%d" % (self.host, self.port)

    @property
    def url(self):
        return "%s://%s" % ("https" if self.tls else "http", self.domain)

    def route(self, method, prefix, handler):
        self.routes.insert(0, (method, prefix, handler))
        return self

    def headers_of(self, method, prefix):
        return [h for m, p, h in self.requests if m == method and p.startswith(prefix)]

    def start(self):
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_one(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.body = self.rfile.read(length) if length else b""
                fake.requests.append((self.command, self.path, dict(self.headers.items())))
                for method, prefix, handler in fake.routes:
                    if method == self.command and self.path.startswith(prefix):
                        try:
                            handler(self)
                        except (BrokenPipeError, ConnectionResetError, socket.timeout):
                            self.close_connection = True
                        return
                if self.command == "GET" and self.path == "/v2/":
                    reply(self, 200, b"{}")
                else:
                    reply(self, 404, b'{"errors":[{"code":"NOT_FOUND","message":"not here"}]}')

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one

        self.httpd = http.server.ThreadingHTTPServer((self.host, self.port), Handler)
        self.httpd.daemon_threads = True
        if self.tls:
            import ssl
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.stopping.set()
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


def reply(request, status, body=b"", headers=None, length=None):
    """Answer ``status`` with ``body``; ``length`` overrides the Content-Length sent."""
    request.send_response(status)
    for key, value in (headers or {}).items():
        request.send_header(key, value)
    request.send_header("Content-Length", str(len(body) if length is None else length))
    request.end_headers()
    if request.command != "HEAD":
        request.wfile.write(body)


def endless(fake, request, status=200, headers=None, chunk=b"x" * 65536, delay=0.0,
            cap=1 << 30):
    """Answer with a chunked body that never ends (until the client leaves, the server stops
    or ``cap`` bytes went out); ``fake.sent`` counts it."""
    request.send_response(status)
    for key, value in (headers or {}).items():
        request.send_header(key, value)
    request.send_header("Transfer-Encoding", "chunked")
    request.end_headers()
    while not fake.stopping.is_set() and fake.sent < cap:
        request.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        request.wfile.flush()
        fake.sent += len(chunk)
        if delay:
            time.sleep(delay)
    request.close_connection = True


@pytest.fixture
def fake_registry():
    """fake_registry(host="127.0.0.1", tls=None) -> a started FakeRegistry, stopped at
    teardown."""
    fakes = []

    def start(host="127.0.0.1", tls=None):
        fake = FakeRegistry(host, tls).start()
        fakes.append(fake)
        return fake

    yield start
    for fake in fakes:
        fake.stop()
