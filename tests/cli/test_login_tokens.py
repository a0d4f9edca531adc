"""``login`` when the registry answers with an identity token: the token is kept instead of the
password (config.json's ``identitytoken``, or the helper's ``<token>`` user) and sent on the
next pull. A stand-in daemon answers /auth with an IdentityToken and records each pull's
X-Registry-Auth; docker 28 doing the same steps against it is the oracle."""
import base64
import json
import os
import socketserver
import threading
from http.server import BaseHTTPRequestHandler

import pytest

from .conftest import DOCKER28, Target
from .test_credentials import Helper

TOKEN = "identity-token-0123"
REGISTRY = "tokens.example:5000"


class StandIn:
    """A daemon on a unix socket: /_ping as API 1.41, POST /auth answers ``auth_answer``,
    POST /images/create keeps its X-Registry-Auth and answers one status line."""

    def __init__(self, path):
        self.auth_answer = {"Status": "Login Succeeded", "IdentityToken": TOKEN}
        self.auth_status = 200
        self.logins = []
        self.pulls = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, code, body, ctype="application/json"):
                self.send_response(code)
                self.send_header("Api-Version", "1.41")
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_HEAD(self):
                self._send(200, b"OK", "text/plain")

            def do_GET(self):
                if "/_ping" in self.path:
                    return self._send(200, b"OK", "text/plain")
                self._send(404, b'{"message":"page not found"}')

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.split("?")[0].endswith("/auth"):
                    outer.logins.append(json.loads(body))
                    return self._send(outer.auth_status, json.dumps(outer.auth_answer).encode())
                if "/images/create" in self.path:
                    outer.pulls.append(self.headers.get("X-Registry-Auth"))
                    return self._send(200, b'{"status":"Status: Image is up to date for '
                                           b'x"}\r\n')
                self._send(404, b'{"message":"page not found"}')

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

            def get_request(self):
                conn, _ = self.socket.accept()
                return conn, ("local", 0)

        self.server = Server(path, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def standin(tmp_path):
    s = StandIn(str(tmp_path / "daemon.sock"))
    yield s
    s.stop()


def _targets(standin, tmp_path):
    if not os.path.exists(DOCKER28):
        pytest.skip("docker 28 CLI (%s) is not installed" % DOCKER28)
    host = "unix://" + standin.server.server_address
    return {cli: Target(host, str(tmp_path / cli)) for cli in ("docker", "pydocker")}


def _run(target, cli, *args, input=None):
    return (target.docker if cli == "docker" else target.pydocker)(*args, input=input)


def _config(target):
    with open(os.path.join(target.config_dir, "config.json")) as f:
        return json.load(f)


def _decoded(header):
    return json.loads(base64.urlsafe_b64decode(header))


def test_token_kept_in_config_json_and_sent(standin, tmp_path):
    targets = _targets(standin, tmp_path)
    got = {}
    for cli, t in targets.items():
        r = _run(t, cli, "login", "-u", "alice", "--password-stdin", REGISTRY,
                 input="wonderland\n")
        assert r.code == 0, r
        assert "Login Succeeded" in r.out
        assert "unencrypted" not in r.err
        entry = _config(t)["auths"][REGISTRY]
        r = _run(t, cli, "pull", REGISTRY + "/img:1")
        assert r.code == 0, r
        got[cli] = (entry, _decoded(standin.pulls[-1]))
    assert got["pydocker"] == got["docker"]
    entry, sent = got["pydocker"]
    # the password is never kept, and never sent again
    assert entry == {"auth": base64.b64encode(b"alice:").decode(), "identitytoken": TOKEN}
    assert sent == {"username": "alice", "identitytoken": TOKEN, "serveraddress": REGISTRY}
    assert "wonderland" not in json.dumps(got)
    # no password kept: none of the "stored unencrypted" warning
    # the login itself carried the password to the daemon
    assert [x["password"] for x in standin.logins] == ["wonderland", "wonderland"]


def test_token_kept_by_helper_as_token_user(standin, tmp_path):
    targets = _targets(standin, tmp_path)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    got = {}
    for cli, t in targets.items():
        helper = Helper(bindir, "pyt-" + cli)
        with open(os.path.join(t.config_dir, "config.json"), "w") as f:
            json.dump({"credsStore": "pyt-" + cli}, f)
        t.env["PATH"] = str(bindir) + os.pathsep + t.env.get("PATH", "")
        r = _run(t, cli, "login", "-u", "alice", "--password-stdin", REGISTRY,
                 input="wonderland\n")
        assert r.code == 0, r
        r = _run(t, cli, "pull", REGISTRY + "/img:1")
        assert r.code == 0, r
        got[cli] = (helper.creds(), _config(t)["auths"], _decoded(standin.pulls[-1]))
    assert got["pydocker"] == got["docker"]
    creds, auths, sent = got["pydocker"]
    assert creds == {REGISTRY: ["<token>", TOKEN]}
    assert auths == {REGISTRY: {}}
    assert sent == {"identitytoken": TOKEN, "serveraddress": REGISTRY}


def test_no_token_keeps_the_password(standin, tmp_path):
    """Without an IdentityToken in the answer the password is kept, as before."""
    standin.auth_answer = {"Status": "Login Succeeded"}
    t = Target("unix://" + standin.server.server_address, str(tmp_path / "pydocker"))
    r = t.pydocker("login", "-u", "alice", "--password-stdin", REGISTRY, input="wonderland\n")
    assert r.code == 0, r
    assert "WARNING! Your credentials are stored unencrypted" in r.err
    assert _config(t)["auths"][REGISTRY] == {"auth": base64.b64encode(
        b"alice:wonderland").decode()}
    assert t.pydocker("pull", REGISTRY + "/img:1").code == 0
    assert _decoded(standin.pulls[-1]) == {"username": "alice", "password": "wonderland",
                                           "serveraddress": REGISTRY}


def test_prompts_need_a_terminal(standin, tmp_path):
    """Off a terminal a login that would prompt fails as docker's (no traceback, nothing sent,
    nothing written); --password warns; -u and -p together log in without a prompt."""
    targets = _targets(standin, tmp_path)
    for args in (["login", REGISTRY], ["login", "-u", "bob", REGISTRY],
                 ["login", "-p", "x", REGISTRY], ["login", "-u", "bob", "-p", "x", REGISTRY]):
        got = {}
        for cli, t in targets.items():
            r = _run(t, cli, *args)
            got[cli] = (r.code, r.out, r.err)
        assert got["pydocker"] == got["docker"], args
    code, out, err = got["pydocker"]
    assert (code, out) == (0, "Login Succeeded\n")
    assert err.startswith("WARNING! Using --password via the CLI is insecure.")
    # the three refused logins sent nothing; the last one (each client) did
    assert [x["username"] for x in standin.logins] == ["bob", "bob"]


@pytest.mark.parametrize("status", [200, 401, 500])
def test_stored_credentials_tried_first(standin, tmp_path, status):
    """``login SERVER`` with a user and password kept: "Authenticating with existing
    credentials...", the kept pair sent, the answer's token kept; refused (401) or failing
    (500), docker's message and then its prompt, which needs a terminal."""
    targets = _targets(standin, tmp_path)
    standin.auth_status = status
    if status != 200:
        standin.auth_answer = {"message": "no thanks"}
    kept = {"auths": {REGISTRY: {"auth": base64.b64encode(b"alice:wonderland").decode()}}}
    got = {}
    for cli, t in targets.items():
        with open(os.path.join(t.config_dir, "config.json"), "w") as f:
            json.dump(kept, f)
        r = _run(t, cli, "login", REGISTRY)
        got[cli] = (r.code, r.out, r.err.replace(t.config_dir, "DIR"), _config(t))
    assert got["pydocker"] == got["docker"]
    code, out, err, conf = got["pydocker"]
    assert err.startswith("Authenticating with existing credentials... [Username: alice]\n")
    assert [(x["username"], x["password"]) for x in standin.logins] == [("alice",
                                                                         "wonderland")] * 2
    if status == 200:
        assert code == 0 and out.endswith("Login Succeeded\n")
        assert conf["auths"][REGISTRY]["identitytoken"] == TOKEN
    else:
        assert code == 1 and "Cannot perform an interactive login from a non TTY device" in err
        assert conf == kept


def test_a_kept_token_alone_is_not_tried(standin, tmp_path):
    """An identity token without a password is not "existing credentials": the user is asked
    again (off a terminal: docker's error), nothing is sent."""
    targets = _targets(standin, tmp_path)
    kept = {"auths": {REGISTRY: {"auth": base64.b64encode(b"alice:").decode(),
                                 "identitytoken": TOKEN}}}
    got = {}
    for cli, t in targets.items():
        with open(os.path.join(t.config_dir, "config.json"), "w") as f:
            json.dump(kept, f)
        r = _run(t, cli, "login", REGISTRY)
        got[cli] = (r.code, r.out, r.err)
    assert got["pydocker"] == got["docker"]
    assert got["pydocker"][0] == 1 and standin.logins == []


def _in_pty(argv, env, answers):
    """Run ``argv`` on a pseudo-terminal, typing each answer once its prompt shows."""
    import select
    import subprocess
    import time
    master, slave = os.openpty()
    proc = subprocess.Popen(argv, env=env, stdin=slave, stdout=slave, stderr=slave,
                            close_fds=True)
    os.close(slave)
    out = b""
    pending = list(answers)
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    break
                if not data:
                    break
                out += data
                if pending and pending[0][0] in out:
                    os.write(master, pending.pop(0)[1])
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=10), out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_prompt_offers_the_kept_user(standin, tmp_path):
    """On a terminal, with only a token kept: "Username (alice): " (Enter keeps alice), the
    password prompt, the login sent as alice, as docker 28 does on the same terminal."""
    import sys
    targets = _targets(standin, tmp_path)
    kept = {"auths": {REGISTRY: {"auth": base64.b64encode(b"alice:").decode(),
                                 "identitytoken": "old-token"}}}
    got = {}
    for cli, t in targets.items():
        with open(os.path.join(t.config_dir, "config.json"), "w") as f:
            json.dump(kept, f)
        argv = [DOCKER28] if cli == "docker" else [sys.executable, "-m", "pyrunc.cli"]
        got[cli] = _in_pty(argv + ["login", REGISTRY], t.env,
                           [(b"Username (alice): ", b"\r"), (b"Password: ", b"pw2\r")])
    assert got["pydocker"] == got["docker"]
    assert got["pydocker"] == (0, b"Username (alice): \r\nPassword: \r\nLogin Succeeded\r\n")
    assert [(x["username"], x["password"]) for x in standin.logins] == [("alice", "pw2")] * 2
