"""pydocker over TLS to pydockerd listening on tcp://127.0.0.1:PORT with --tlsverify: docker's
flags (--tls, --tlsverify, --tlscacert, --tlscert, --tlskey), DOCKER_TLS_VERIFY and
DOCKER_CERT_PATH, contexts carrying TLS material in docker's files. Certificates are made here
with the openssl CLI; the docker 28 CLI, run on the same daemon with the same files, is the
oracle for what works and for the wording of each failure (a wrong CA, no client
certificate, an expired server certificate, TLS against a plain-HTTP socket, a missing file).
"""
import os
import re
import shutil
import socket
import subprocess
import sys

import pytest

from .conftest import DOCKER28, Target


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _openssl(*args):
    subprocess.run(["openssl"] + [str(a) for a in args], check=True, capture_output=True)


def _signed(d, name, cn, ext, days="2", ca="ca"):
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + cn,
             "-keyout", d / ("%s-key.pem" % name), "-out", d / ("%s.csr" % name))
    (d / ("%s.ext" % name)).write_text(ext + "\n")
    _openssl("x509", "-req", "-in", d / ("%s.csr" % name), "-CA", d / ("%s.pem" % ca),
             "-CAkey", d / ("%s-key.pem" % ca), "-CAcreateserial", "-days", days,
             "-extfile", d / ("%s.ext" % name), "-out", d / ("%s.pem" % name))


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("the openssl CLI is not installed")
    d = tmp_path_factory.mktemp("certs")
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                 "/CN=" + ca, "-keyout", d / ("%s-key.pem" % ca), "-out", d / ("%s.pem" % ca))
    _signed(d, "server", "127.0.0.1", "subjectAltName=IP:127.0.0.1")
    _signed(d, "expired", "127.0.0.1", "subjectAltName=IP:127.0.0.1", days="-1")
    _signed(d, "client", "client", "extendedKeyUsage=clientAuth")
    # docker's names in a cert directory (DOCKER_CERT_PATH, ~/.docker)
    client = d / "client-dir"
    client.mkdir()
    for src, dst in (("ca.pem", "ca.pem"), ("client.pem", "cert.pem"),
                     ("client-key.pem", "key.pem")):
        (client / dst).write_bytes((d / src).read_bytes())
    return d


def _tls_daemon(start_daemon, tmp, certs, server="server"):
    port = _free_port()
    d = start_daemon(tmp, "-H", "tcp://127.0.0.1:%d" % port, "--tlsverify",
                     "--tlscacert", certs / "ca.pem", "--tlscert", certs / ("%s.pem" % server),
                     "--tlskey", certs / ("%s-key.pem" % server))
    d.port = port
    return d


@pytest.fixture
def tls_daemon(start_daemon, tmp_path, certs):
    return _tls_daemon(start_daemon, tmp_path / "d", certs)


def _target(d, tmp_path, **env):
    """Clients with no DOCKER_HOST: each test names the daemon with flags or the env."""
    t = Target(d.host, str(tmp_path / "client"))
    t.env.pop("DOCKER_HOST")
    t.env.pop("DOCKER_TLS_VERIFY", None)
    t.env.pop("DOCKER_CERT_PATH", None)
    t.env.update(env)
    return t


def _same_error(mine, theirs):
    """pydocker's and docker 28's failure: exit 1, one line, the same words (the API version
    in the URL is each client's own)."""
    assert mine.code == 1 and theirs.code == 1, (mine, theirs)
    assert len(mine.err.strip().splitlines()) == 1 and "Traceback" not in mine.err, mine
    assert mine.out == "", mine

    def norm(s):        # Go's transport names its read loop or not, as the timing falls
        return re.sub(r"/v1\.\d+/", "/vX/", s.strip()).replace("readLoopPeekFailLocked: ", "")
    theirs_line = [x for x in theirs.err.splitlines() if x.strip()][-1]
    assert norm(mine.err) == norm(theirs_line), (mine, theirs)


def _refused_without_certificate(mine, theirs):
    """A server that wants a client certificate refuses after the handshake (TLS 1.3): the
    client reads its alert, or, when its request's write loses the race with the server's
    close, a broken pipe (docker 28 reports either)."""
    assert (mine.code, mine.out) == (1, ""), mine
    assert mine.err.startswith("error during connect: Get \"https://127.0.0.1:"), mine
    assert mine.err.rstrip().endswith(
        ("remote error: tls: certificate required", "write: broken pipe")), mine
    assert theirs.code == 1 and "error during connect: Get" in theirs.err, theirs


def _need_docker28():
    if not os.path.exists(DOCKER28):
        pytest.skip("docker 28 CLI (%s) is not installed" % DOCKER28)


def test_tlsverify_with_env_runs_a_container(tls_daemon, certs, tmp_path):
    """DOCKER_HOST=tcp://..., DOCKER_TLS_VERIFY, DOCKER_CERT_PATH: pull, run with its output
    attached (the hijacked connection is TLS too), ps; the server is the one docker 28 sees."""
    _need_docker28()
    t = _target(tls_daemon, tmp_path, DOCKER_HOST="tcp://127.0.0.1:%d" % tls_daemon.port,
                DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(certs / "client-dir"))
    r = t.pydocker("run", "--name", "overtls", "busybox", "sh", "-c", "echo hello; exit 3")
    assert (r.code, r.out) == (3, "hello\n"), r
    r = t.pydocker("ps", "-a", "--format", "{{.Names}} {{.Status}}")
    assert r.code == 0 and r.out.startswith("overtls Exited (3)"), r
    mine = t.pydocker("version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}")
    theirs = t.docker("version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}")
    assert mine.code == 0 and mine.out == theirs.out, (mine, theirs)
    r = t.pydocker("exec", "-i", "overtls", "true")
    assert r.code == 1 and "is not running" in r.err, r
    r = t.pydocker("rm", "overtls")
    assert (r.code, r.out) == (0, "overtls\n"), r


def test_tlsverify_flags_and_stdin_over_tls(tls_daemon, certs, tmp_path):
    t = _target(tls_daemon, tmp_path)
    flags = ["--tlsverify", "--tlscacert", certs / "ca.pem", "--tlscert", certs / "client.pem",
             "--tlskey", certs / "client-key.pem", "-H", "tcp://127.0.0.1:%d" % tls_daemon.port]
    # stdin's end reaches the container through the TLS connection (close_notify)
    r = t.pydocker(*flags, "run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done",
                   input="line1\nline2\n")
    assert (r.code, r.out) == (0, "line1\nline2\ndone\n"), r
    r = t.pydocker(*flags, "ps", "-aq")
    assert (r.code, r.out) == (0, ""), r
    # --tls alone encrypts without checking the server: a CA that did not sign it is fine
    r = t.pydocker("--tls", "--tlscacert", certs / "other-ca.pem", "--tlscert",
                   certs / "client.pem", "--tlskey", certs / "client-key.pem",
                   "-H", "tcp://127.0.0.1:%d" % tls_daemon.port, "ps", "-q")
    assert (r.code, r.out) == (0, ""), r
    # DOCKER_TLS is --tls
    env = dict(t.env, DOCKER_TLS="1", DOCKER_CERT_PATH=str(certs / "client-dir"),
               DOCKER_HOST="tcp://127.0.0.1:%d" % tls_daemon.port)
    r = subprocess.run([sys.executable, "-m", "pyrunc.cli", "ps", "-q"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, ""), r
    # plain HTTP to the TLS port fails (the server wants a handshake): one line, as docker's
    # up to the reason (Go names the connection's addresses there)
    mine = t.pydocker("-H", "tcp://127.0.0.1:%d" % tls_daemon.port, "ps")
    assert mine.code == 1 and "Traceback" not in mine.err and len(mine.err.splitlines()) == 1, \
        mine
    assert mine.err.startswith('error during connect: Get "http://127.0.0.1:%d/v1.'
                               % tls_daemon.port), mine
    if os.path.exists(DOCKER28):
        theirs = t.docker("-H", "tcp://127.0.0.1:%d" % tls_daemon.port, "ps")
        assert theirs.code == 1 and re.sub(r"/v1\.\d+/", "/vX/", theirs.err).split(": ")[:2] \
            == re.sub(r"/v1\.\d+/", "/vX/", mine.err).split(": ")[:2], (mine, theirs)


def test_tls_failures_read_as_dockers(tls_daemon, certs, tmp_path, mirror):
    _need_docker28()
    host = "tcp://127.0.0.1:%d" % tls_daemon.port
    t = _target(tls_daemon, tmp_path)
    cases = {
        "wrong CA": ["--tlsverify", "--tlscacert", certs / "other-ca.pem", "--tlscert",
                     certs / "client.pem", "--tlskey", certs / "client-key.pem", "-H", host],
        "no client certificate": ["--tlsverify", "--tlscacert", certs / "ca.pem", "-H", host],
        "missing file": ["--tlsverify", "--tlscacert", certs / "ca.pem", "--tlscert",
                         certs / "nonexistent.pem", "-H", host],
        "name not in the certificate": [
            "--tlsverify", "--tlscacert", certs / "ca.pem", "--tlscert", certs / "client.pem",
            "--tlskey", certs / "client-key.pem", "-H", "tcp://localhost:%d" % tls_daemon.port],
        # the loopback registry speaks plain HTTP on TCP
        "plain-HTTP server": ["--tlsverify", "--tlscacert", certs / "ca.pem", "--tlscert",
                              certs / "client.pem", "--tlskey", certs / "client-key.pem",
                              "-H", "tcp://" + mirror.url.split("://")[1]],
    }
    expected = {"wrong CA": "x509: certificate signed by unknown authority",
                "no client certificate": "error during connect: ",
                "missing file": "Failed to initialize: unable to resolve docker endpoint: "
                                "open %s: no such file or directory" % (certs / "nonexistent.pem"),
                "name not in the certificate": "x509: certificate is not valid for any names, "
                                               "but wanted to match localhost",
                "plain-HTTP server": "http: server gave HTTP response to HTTPS client"}
    for name, flags in cases.items():
        mine = t.pydocker(*flags, "ps")
        theirs = t.docker(*flags, "ps")
        assert expected[name] in mine.err, (name, mine)
        if name == "no client certificate":
            _refused_without_certificate(mine, theirs)
        else:
            _same_error(mine, theirs)
    # TLS applies to TCP only: the daemon's unix socket stays plain HTTP, as with docker
    flags = ["--tlsverify", "--tlscacert", certs / "other-ca.pem", "-H", tls_daemon.host]
    for cli in (t.pydocker, t.docker):
        r = cli(*flags, "ps", "-q")
        assert (r.code, r.out) == (0, ""), r
    # the daemon is unharmed and serves a good client
    r = t.pydocker("--tlsverify", "--tlscacert", certs / "ca.pem", "--tlscert",
                   certs / "client.pem", "--tlskey", certs / "client-key.pem", "-H", host,
                   "ps", "-q")
    assert (r.code, r.out) == (0, ""), r


def test_expired_server_certificate(start_daemon, certs, tmp_path):
    _need_docker28()
    d = _tls_daemon(start_daemon, tmp_path / "d", certs, server="expired")
    t = _target(d, tmp_path, DOCKER_HOST="tcp://127.0.0.1:%d" % d.port, DOCKER_TLS_VERIFY="1",
                DOCKER_CERT_PATH=str(certs / "client-dir"))
    mine = t.pydocker("ps")
    theirs = t.docker("ps")
    assert re.search(r"tls: failed to verify certificate: x509: certificate has expired or is "
                     r"not yet valid: current time \S+Z is after \S+Z$", mine.err.strip()), mine
    # the current time in the message may differ by a second between the two runs
    _same_error(type(mine)(subprocess.CompletedProcess(
        [], mine.code, mine.out, re.sub(r"current time \S+", "T", mine.err))),
        type(theirs)(subprocess.CompletedProcess(
            [], theirs.code, theirs.out, re.sub(r"current time \S+", "T", theirs.err))))


def test_context_with_tls_material(tls_daemon, certs, tmp_path):
    """A context made by pydocker carries the CA and the client's pair in docker's TLS store
    (docker 28 uses it as is); one made by docker 28 works for pydocker."""
    _need_docker28()
    t = _target(tls_daemon, tmp_path)
    host = "tcp://127.0.0.1:%d" % tls_daemon.port
    spec = "host=%s,ca=%s,cert=%s,key=%s" % (host, certs / "ca.pem", certs / "client.pem",
                                             certs / "client-key.pem")
    r = t.pydocker("context", "create", "secure", "--docker", spec)
    assert r.code == 0, r
    for cli in (t.pydocker, t.docker):
        r = cli("--context", "secure", "version", "--format", "{{.Server.Os}}")
        assert (r.code, r.out) == (0, "linux\n"), r
    mine = t.pydocker("context", "inspect", "secure")
    theirs = t.docker("context", "inspect", "secure")
    assert mine.code == 0 and mine.out == theirs.out, (mine, theirs)
    tls_dir = os.path.join(t.config_dir, "contexts", "tls")
    (entry,) = os.listdir(tls_dir)
    assert sorted(os.listdir(os.path.join(tls_dir, entry, "docker"))) == [
        "ca.pem", "cert.pem", "key.pem"]
    assert os.stat(os.path.join(tls_dir, entry, "docker", "key.pem")).st_mode & 0o077 == 0
    r = t.docker("context", "create", "bydocker", "--docker", spec)
    assert r.code == 0, r
    r = t.pydocker("--context", "bydocker", "ps", "-q")
    assert (r.code, r.out) == (0, ""), r
    # skip-tls-verify without material: TLS without checking (and no client certificate,
    # which this daemon requires)
    r = t.pydocker("context", "create", "skip", "--docker", "host=%s,skip-tls-verify=true" % host)
    assert r.code == 0, r
    _refused_without_certificate(t.pydocker("--context", "skip", "ps"),
                                 t.docker("--context", "skip", "ps"))
    # a context naming a file that is not there is refused, leaving nothing
    r = t.pydocker("context", "create", "broken", "--docker",
                   "host=%s,ca=%s" % (host, certs / "nonexistent.pem"))
    assert r.code == 1 and r.err.strip() == (
        "unable to create docker endpoint config: open %s: no such file or directory"
        % (certs / "nonexistent.pem")), r
    assert "broken" not in t.pydocker("context", "ls", "-q").out
    r = t.pydocker("context", "rm", "secure", "bydocker", "skip")
    assert r.code == 0, r
    assert os.listdir(tls_dir) == []


def _openssl_dates(pem):
    """notBefore/notAfter as the openssl CLI reads them, in RFC 3339."""
    import calendar
    out = subprocess.run(["openssl", "x509", "-noout", "-dates", "-in", str(pem)],
                         capture_output=True, text=True, check=True).stdout
    dates = dict(line.split("=", 1) for line in out.splitlines())

    def rfc3339(text):
        import time
        t = time.strptime(text.replace(" GMT", ""), "%b %d %H:%M:%S %Y")
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(calendar.timegm(t)))
    return rfc3339(dates["notBefore"]), rfc3339(dates["notAfter"])


def test_certificate_dates_read_as_openssl_reads_them(certs):
    import ssl
    from pyrunc.cli.tls import validity
    for name in ("ca", "server", "expired", "client"):
        pem = certs / ("%s.pem" % name)
        der = ssl.PEM_cert_to_DER_cert(pem.read_text())
        assert validity(der) == _openssl_dates(pem), name


def test_certificate_parser_on_hostile_bytes(certs):
    """A server sends the certificate: any bytes give dates or None, never an exception."""
    import ssl
    from hypothesis import given, settings, strategies as st
    from pyrunc.cli.tls import validity
    good = ssl.PEM_cert_to_DER_cert((certs / "server.pem").read_text())

    @settings(max_examples=400, deadline=None)
    @given(st.one_of(st.binary(max_size=300),
                     st.tuples(st.integers(0, len(good) - 1), st.binary(min_size=1,
                                                                         max_size=8)).map(
                         lambda t: good[:t[0]] + t[1] + good[t[0] + len(t[1]):]),
                     st.integers(0, len(good)).map(lambda n: good[:n])))
    def check(data):
        out = validity(data)
        assert out is None or (isinstance(out, tuple) and len(out) == 2
                               and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", x)
                                       for x in out)), out
    check()


def test_tls_to_debian_dockerd(certs, tmp_path, private_mount_ns):
    """The reference server: Debian's dockerd listening with --tlsverify on 127.0.0.1:2376 in
    its own network namespace; both clients run in that namespace (nsenter)."""
    import sys as _sys
    _sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import dockerd_peer
    if not os.path.exists(dockerd_peer.DOCKERD):
        pytest.skip("Debian's dockerd (%s, package docker.io) is not installed"
                    % dockerd_peer.DOCKERD)
    if not shutil.which("nsenter"):
        pytest.skip("nsenter (util-linux) is not installed")
    _need_docker28()
    d = dockerd_peer.Dockerd(str(tmp_path / "dd"), extra_args=(
        "-H", "tcp://127.0.0.1:2376", "--tlsverify", "--tlscacert", str(certs / "ca.pem"),
        "--tlscert", str(certs / "server.pem"), "--tlskey", str(certs / "server-key.pem")))
    d.start()
    try:
        d.load_builtin("busybox")
        env = dict(os.environ, DOCKER_HOST="tcp://127.0.0.1:2376", DOCKER_TLS_VERIFY="1",
                   DOCKER_CERT_PATH=str(certs / "client-dir"),
                   DOCKER_CONFIG=str(tmp_path / "client"), DOCKER_CLI_HINTS="false")

        def run(argv, input=None, **extra):
            from .conftest import Result
            return Result(subprocess.run(
                ["nsenter", "-t", str(d.proc.pid), "-n", "--"] + [str(a) for a in argv],
                env=dict(env, **extra), input=input, capture_output=True, text=True,
                timeout=120))
        mine = [sys.executable, "-m", "pyrunc.cli"]
        r = run(mine + ["version", "--format", "{{.Server.APIVersion}}"])
        assert (r.code, r.out) == (0, "1.41\n"), r
        r = run(mine + ["run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done"],
                input="over tls\n")
        assert (r.code, r.out) == (0, "over tls\ndone\n"), r
        flags = ["--tlsverify", "--tlscacert", certs / "other-ca.pem", "--tlscert",
                 certs / "client.pem", "--tlskey", certs / "client-key.pem"]
        _same_error(run(mine + flags + ["ps"]), run([DOCKER28] + flags + ["ps"]))
        flags = ["--tlsverify", "--tlscacert", certs / "ca.pem"]
        # dockerd 20.10 refuses in the handshake (TLS 1.2): the same alert for both
        r = run(mine + flags + ["ps"], DOCKER_CERT_PATH="/nonexistent")
        assert r.err.rstrip().endswith("remote error: tls: bad certificate"), r
        _same_error(r, run([DOCKER28] + flags + ["ps"], DOCKER_CERT_PATH="/nonexistent"))
    finally:
        d.stop()


def test_unusable_tls_material_fails_before_connecting(certs, tmp_path):
    """Files that are not what their flag wants: docker's "Failed to initialize: ..." line,
    exit 1, nothing sent (the port has no listener: a client that connected would say so)."""
    _need_docker28()
    junk = tmp_path / "junk.pem"
    junk.write_text("not a pem\n")
    t = Target("tcp://127.0.0.1:1", str(tmp_path / "client"))
    cases = [["--tlsverify", "--tlscacert", junk],
             ["--tls", "--tlscacert", junk],
             ["--tlsverify", "--tlscacert", certs / "ca.pem", "--tlscert", junk,
              "--tlskey", certs / "client-key.pem"],
             ["--tlsverify", "--tlscacert", certs / "ca.pem", "--tlscert", certs / "client.pem",
              "--tlskey", junk],
             ["--tlsverify", "--tlscacert", certs / "ca.pem", "--tlscert", certs / "client.pem",
              "--tlskey", certs / "server-key.pem"]]
    for flags in cases:
        mine, theirs = t.pydocker(*flags, "ps"), t.docker(*flags, "ps")
        assert mine.err.startswith("Failed to initialize: "), (flags, mine)
        assert (mine.code, mine.out, mine.err) == (theirs.code, theirs.out, theirs.err), \
            (flags, mine, theirs)
