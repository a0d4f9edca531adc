"""Credential helpers (config.json's ``credsStore`` and ``credHelpers``) through pydockerd and
a loopback registry that wants Basic auth. The helpers are executables this test writes that
speak the docker-credential-helpers protocol and log every call; the protocol, what the
registries receive, and docker 28 doing the same steps with a helper of its own are the
oracles."""
import base64
import http.server
import json
import os
import stat
import sys
import threading

import pytest

from .conftest import DOCKER28, _api

auth_registry = _api.auth_registry

HELPER = r'''#!%(python)s
import json, sys
STORE, LOG = %(store)r, %(log)r
action = sys.argv[1]
data = sys.stdin.read()
with open(LOG, "a") as f:
    f.write(json.dumps({"action": action, "input": data}) + "\n")
try:
    with open(STORE) as f:
        creds = json.load(f)
except FileNotFoundError:
    creds = {}
if action == "get":
    if data not in creds:
        sys.stdout.write("credentials not found in native keychain\n")
        sys.exit(1)
    c = creds[data]
    json.dump({"ServerURL": data, "Username": c[0], "Secret": c[1]}, sys.stdout)
elif action == "store":
    doc = json.loads(data)
    creds[doc["ServerURL"]] = [doc["Username"], doc["Secret"]]
elif action == "erase":
    if data not in creds:
        sys.stdout.write("credentials not found in native keychain\n")
        sys.exit(1)
    del creds[data]
elif action == "list":
    json.dump({k: v[0] for k, v in creds.items()}, sys.stdout)
else:
    sys.stdout.write("unknown action\n")
    sys.exit(1)
with open(STORE, "w") as f:
    json.dump(creds, f)
'''


class Helper:
    def __init__(self, bindir, name):
        self.name = name
        self.store = str(bindir / ("%s.store.json" % name))
        self.log = str(bindir / ("%s.log" % name))
        path = bindir / ("docker-credential-" + name)
        path.write_text(HELPER % {"python": sys.executable, "store": self.store,
                                  "log": self.log})
        path.chmod(path.stat().st_mode | stat.S_IXUSR)

    def put(self, server, user, secret):
        creds = self.creds()
        creds[server] = [user, secret]
        with open(self.store, "w") as f:
            json.dump(creds, f)

    def creds(self):
        try:
            with open(self.store) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def calls(self):
        """(action, stdin) of every call since the last one read."""
        try:
            with open(self.log) as f:
                out = [json.loads(x) for x in f]
        except FileNotFoundError:
            return []
        os.unlink(self.log)
        return [(c["action"], json.loads(c["input"]) if c["action"] == "store"
                 else c["input"]) for c in out]


class Recorder:
    """A registry B on loopback that asks for Basic auth and records every request's
    Authorization header."""

    def __init__(self):
        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                seen.append((self.path, self.headers.get("Authorization", "")))
                body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="b"')
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_HEAD = do_GET

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.domain = "127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder():
    r = Recorder()
    yield r
    r.stop()


@pytest.fixture
def helpers(tmp_path, pyd):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    hs = {name: Helper(bindir, name) for name in ("pyt-a", "pyt-b", "pyt-docker")}
    pyd.env["PATH"] = str(bindir) + os.pathsep + pyd.env.get("PATH", "")
    return hs


def _config(target, doc):
    with open(os.path.join(target.config_dir, "config.json"), "w") as f:
        json.dump(doc, f)


def _read_config(config_dir):
    with open(os.path.join(config_dir, "config.json")) as f:
        return json.load(f)


def _docker_target(pyd, tmp_path):
    """docker 28 on the same daemon with a config directory of its own."""
    if not os.path.exists(DOCKER28):
        pytest.skip("docker 28 CLI (%s) is not installed" % DOCKER28)
    from .conftest import Target
    t = Target(pyd.host, str(tmp_path / "docker-client"))
    t.env["PATH"] = pyd.env["PATH"]
    return t


def test_login_push_pull_logout_through_a_helper(pyd, helpers, auth_registry, tmp_path):
    a = auth_registry.domain
    mine, theirs = helpers["pyt-a"], helpers["pyt-docker"]
    _config(pyd, {"credsStore": "pyt-a"})
    dock = _docker_target(pyd, tmp_path)
    _config(dock, {"credsStore": "pyt-docker"})

    r = pyd.pydocker("login", "-u", "alice", "--password-stdin", a, input="wonderland\n")
    assert (r.code, r.out) == (0, "Login Succeeded\n"), r
    assert "unencrypted" not in r.err, r
    r2 = dock.docker("login", "-u", "alice", "--password-stdin", a, input="wonderland\n")
    assert r2.code == 0, r2
    stored = {"ServerURL": a, "Username": "alice", "Secret": "wonderland"}
    assert ("store", stored) in mine.calls()
    assert ("store", stored) in theirs.calls()
    # config.json keeps the registry's name and no secret, as docker's does
    assert _read_config(pyd.config_dir)["auths"] == _read_config(dock.config_dir)["auths"] \
        == {a: {}}

    target = "%s/private/bb:1" % a
    assert pyd.pydocker("tag", "busybox", target).code == 0
    r = pyd.pydocker("push", target)
    assert r.code == 0 and "digest: sha256:" in r.out, r
    assert mine.calls() == [("get", a)]
    assert pyd.pydocker("rmi", target).code == 0
    r = pyd.pydocker("pull", target)
    assert r.code == 0 and "Downloaded newer image for %s" % target in r.out, r
    assert mine.calls() == [("get", a)]
    assert pyd.pydocker("rmi", target).code == 0
    r = pyd.pydocker("run", "--rm", target, "echo", "ran")
    assert (r.code, r.out.splitlines()[-1]) == (0, "ran"), r
    assert mine.calls() == [("get", a)]

    r = pyd.pydocker("logout", a)
    assert (r.code, r.out) == (0, "Removing login credentials for %s\n" % a), r
    r2 = dock.docker("logout", a)
    assert r2.code == 0 and r2.out == r.out, r2
    mc, tc = mine.calls(), theirs.calls()
    # docker erases every name the registry may be known by (the one given twice)
    assert mc == tc == [("erase", a), ("erase", a), ("erase", "http://" + a),
                        ("erase", "https://" + a)], (mc, tc)
    assert mine.creds() == {} and theirs.creds() == {}
    assert _read_config(pyd.config_dir)["auths"] == _read_config(dock.config_dir)["auths"] == {}

    # nothing kept: the helper says so, the pull goes anonymous and is refused
    assert pyd.pydocker("rmi", target).code == 0
    r = pyd.pydocker("pull", target)
    assert r.code == 1 and "pull access denied" in r.err, r
    assert mine.calls() == [("get", a)]


def test_a_secret_goes_only_to_its_registry(pyd, helpers, auth_registry, recorder):
    """The helper knows registry A; a pull from registry B asks the helper about B only, and
    B never receives A's secret; credHelpers picks the helper per registry."""
    a, b = auth_registry.domain, recorder.domain
    helpers["pyt-a"].put(a, "alice", "wonderland")
    _config(pyd, {"credsStore": "pyt-b", "credHelpers": {a: "pyt-a"}})
    r = pyd.pydocker("pull", "%s/private/x:1" % b)
    assert r.code == 1, r
    assert helpers["pyt-b"].calls() == [("get", b)]
    assert helpers["pyt-a"].calls() == []
    assert recorder.seen, "registry B was not asked"
    secret = base64.b64encode(b"alice:wonderland").decode()
    for path, authorization in recorder.seen:
        assert "wonderland" not in authorization and secret not in authorization, path
    # the same helper's secret reaches A, for A
    target = "%s/private/bb:2" % a
    assert pyd.pydocker("tag", "busybox", target).code == 0
    r = pyd.pydocker("push", target)
    assert r.code == 0 and "digest: sha256:" in r.out, r
    assert helpers["pyt-a"].calls() == [("get", a)]
    assert helpers["pyt-b"].calls() == []


def test_helper_failures_read_as_dockers(pyd, helpers, auth_registry, tmp_path):
    dock = _docker_target(pyd, tmp_path)
    a = auth_registry.domain
    target = "%s/private/bb:3" % a
    for t in (pyd, dock):
        _config(t, {"credsStore": "pyt-missing"})
    # a helper that cannot run: the pull goes anonymous, as docker's (and is refused)
    mine = pyd.pydocker("pull", target)
    theirs = dock.docker("pull", target)
    assert mine.code == theirs.code == 1, (mine, theirs)
    assert mine.err == theirs.err and "pull access denied" in mine.err, (mine, theirs)
    # a login whose helper cannot store: the daemon accepted it, nothing is written
    mine = pyd.pydocker("login", "-u", "alice", "--password-stdin", a, input="wonderland\n")
    theirs = dock.docker("login", "-u", "alice", "--password-stdin", a, input="wonderland\n")
    assert mine.code == theirs.code == 1, (mine, theirs)
    assert mine.err.strip().splitlines()[-1] == theirs.err.strip().splitlines()[-1], \
        (mine, theirs)
    assert "auths" not in _read_config(pyd.config_dir) or \
        a not in _read_config(pyd.config_dir)["auths"]


def test_hostile_helper_answers(pyd, tmp_path, auth_registry):
    """A helper that answers junk, a list, or a secret with control characters: no traceback,
    the pull goes on as docker's does with the same helper."""
    dock = _docker_target(pyd, tmp_path)
    bindir = tmp_path / "junkbin"
    bindir.mkdir()
    answers = {"junk": "{not json", "list": "[1, 2]", "huge": "x" * 200000,
               "ctl": '{"ServerURL":"x","Username":"a\\u0000\\n","Secret":"b\\r\\nX-Evil: 1"}'}
    for name, answer in answers.items():
        path = bindir / ("docker-credential-pyt-" + name)
        path.write_text("#!/bin/sh\ncat >/dev/null\nprintf '%%s' '%s'\n" % answer)
        path.chmod(0o755)
    for t in (pyd, dock):
        t.env["PATH"] = str(bindir) + os.pathsep + t.env["PATH"]
    target = "%s/private/none:1" % auth_registry.domain
    for name in answers:
        for t in (pyd, dock):
            _config(t, {"credsStore": "pyt-" + name})
        mine = pyd.pydocker("pull", target)
        theirs = dock.docker("pull", target)
        assert mine.code == theirs.code == 1 and "Traceback" not in mine.err, (name, mine)
        assert len(mine.err.strip().splitlines()) == 1, (name, mine)
        assert mine.err.split(":")[0] == theirs.err.split(":")[0], (name, mine, theirs)
