"""The pydockerd command: dockerd's flags and daemon.json, the socket's owner and mode, TLS-only
TCP, one daemon per root, SIGTERM and SIGKILL (containers and images survive both)."""
import grp
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time

import pytest

from pyrunc.engine import Engine


def run_dockerd(*args, timeout=20):
    return subprocess.run([sys.executable, "-m", "pyrunc.engine.dockerd"] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_socket_owner_mode_and_pidfile(dockerd):
    st = os.stat(dockerd.sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert st.st_uid == 0
    try:
        assert st.st_gid == grp.getgrnam("docker").gr_gid
    except KeyError:
        assert st.st_gid == 0
    with open(dockerd.pidfile) as f:
        pid = int(f.read())
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        assert b"pyrunc.engine.dockerd" in f.read()


def test_sigterm_stops_cleanly_leaving_containers(dockerd):
    eng = Engine(dockerd.root, exec_root=dockerd.exec_root)
    dockerd.docker("pull", "busybox")
    cid = eng.containers.create({"Image": "busybox", "Cmd": ["sleep", "300"]})["Id"]
    eng.containers.start(cid)
    pid = eng.containers.inspect(cid)["State"]["Pid"]
    # a client following /events does not hold the daemon up
    follower = socket.socket(socket.AF_UNIX)
    follower.connect(dockerd.sock)
    follower.sendall(b"GET /events HTTP/1.1\r\nHost: d\r\n\r\n")
    assert follower.recv(12) == b"HTTP/1.1 200"
    t0 = time.monotonic()
    assert dockerd.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t0 < 10
    follower.close()
    assert not os.path.exists(dockerd.sock)
    assert not os.path.exists(dockerd.pidfile)
    assert "daemon shut down" in dockerd.output()
    # the container's process is still there, and the engine still says running
    os.kill(pid, 0)
    assert eng.containers.inspect(cid)["State"]["Running"] is True
    dockerd.start()
    out = json.loads(dockerd.request("GET", "/images/json")[2])
    assert out[0]["RepoTags"] == ["busybox:latest"]


def test_sigkill_loses_nothing(dockerd):
    dockerd.docker("pull", "busybox")
    dockerd.docker("volume", "create", "kept")
    dockerd.stop(signal.SIGKILL)
    assert os.path.exists(dockerd.sock)       # stale, as a killed dockerd leaves it
    dockerd.start()                           # the lock died with the process
    assert dockerd.docker("volume", "ls", "-q").stdout.split() == ["kept"]
    r = dockerd.docker("pull", "busybox")
    assert "Status: Image is up to date for busybox:latest" in r.stdout


def test_second_daemon_on_root_refused(dockerd, tmp_path):
    r = run_dockerd("-H", "unix://%s" % (tmp_path / "other.sock"), "--data-root", dockerd.root,
                    "--pidfile", tmp_path / "other.pid", "--config-file",
                    dockerd.config_file)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == \
        "pydockerd: another pydockerd (pid %d) is running on data root %s" % (
            _daemon_pid(dockerd), dockerd.root)
    assert not os.path.exists(tmp_path / "other.sock")
    # another root but the same pidfile: dockerd's message
    r = run_dockerd("-H", "unix://%s" % (tmp_path / "other.sock"), "--data-root",
                    tmp_path / "root2", "--pidfile", dockerd.pidfile, "--config-file",
                    dockerd.config_file)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == "pydockerd: pid file found, ensure docker is " \
        "not running or delete %s" % dockerd.pidfile
    assert not os.path.exists(tmp_path / "other.sock")
    assert _daemon_pid(dockerd) == dockerd.proc.pid     # the refused one left it alone
    # another root, the same socket: refused, the socket left to its daemon
    r = run_dockerd("-H", dockerd.host, "--data-root", tmp_path / "root3", "--pidfile",
                    tmp_path / "p3", "--config-file", dockerd.config_file)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == \
        "pydockerd: %s is in use: another daemon serves it" % dockerd.sock
    # the same with a free socket first: that one is removed again, nothing hangs
    r = run_dockerd("-H", "unix://%s" % (tmp_path / "free.sock"), "-H", dockerd.host,
                    "--data-root", tmp_path / "root3", "--pidfile", tmp_path / "p3",
                    "--config-file", dockerd.config_file)
    assert r.returncode == 1 and "is in use" in r.stderr
    assert not os.path.exists(tmp_path / "free.sock")
    assert not os.path.exists(tmp_path / "p3")
    assert dockerd.request("GET", "/_ping")[0] == 200


def _daemon_pid(d):
    with open(d.pidfile) as f:
        return int(f.read())


def test_tcp_without_tls_refused(tmp_path):
    port = free_port()
    r = run_dockerd("-H", "tcp://127.0.0.1:%d" % port, "--data-root", tmp_path / "root",
                    "--pidfile", tmp_path / "pid", "--config-file", tmp_path / "none.json",
                    timeout=20)
    # an explicit --config-file that does not exist is refused first, as dockerd does
    assert r.returncode == 1 and "none.json" in r.stderr
    (tmp_path / "empty.json").write_text("{}")
    r = run_dockerd("-H", "tcp://127.0.0.1:%d" % port, "--data-root", tmp_path / "root",
                    "--pidfile", tmp_path / "pid", "--config-file", tmp_path / "empty.json")
    assert r.returncode == 1
    assert "refusing to listen on tcp://127.0.0.1:%d without --tlsverify" % port in r.stderr
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert not os.path.exists(tmp_path / "root")


def test_config_file_rules(tmp_path):
    cfg = tmp_path / "daemon.json"
    cfg.write_text(json.dumps({"data-root": str(tmp_path / "a")}))
    r = run_dockerd("--config-file", cfg, "--data-root", tmp_path / "b")
    assert r.returncode == 1
    assert "the following directives are specified both as a flag and in the configuration " \
           "file: data-root: (from flag: %s, from file: %s)" % (tmp_path / "b", tmp_path / "a") \
        in r.stderr
    cfg.write_text(json.dumps({"no-such-key": 1}))
    r = run_dockerd("--config-file", cfg)
    assert r.returncode == 1 and "don't match any configuration option: no-such-key" in r.stderr
    cfg.write_text('{"hosts": "unix:///x"}')
    r = run_dockerd("--config-file", cfg)
    assert r.returncode == 1 and "hosts: wrong type" in r.stderr
    cfg.write_text("{oops")
    r = run_dockerd("--config-file", cfg)
    assert r.returncode == 1 and str(cfg) in r.stderr
    r = run_dockerd("--add-runtime", "nopath")
    assert r.returncode == 2 and "want name=path" in r.stderr
    r = run_dockerd("-H", "ftp://x", "--config-file", tmp_path / "missing.json")
    assert r.returncode == 1


def test_config_file_and_several_hosts(start_daemon, tmp_path):
    second = tmp_path / "d" / "second.sock"
    d = start_daemon(tmp_path / "d", "-H", "unix://%s" % second, "--add-runtime",
                     "myrt=/usr/bin/true", "--label", "site=test",
                     config={"insecure-registries": ["myreg.example:5000"]})
    for path in (d.sock, str(second)):
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 200 OK")
        s.close()
    info = json.loads(d.request("GET", "/info")[2])
    assert info["Runtimes"]["myrt"] == {"path": "/usr/bin/true"}
    assert info["Labels"] == ["site=test"]
    assert info["RegistryConfig"]["IndexConfigs"]["myreg.example:5000"]["Secure"] is False


def _make_certs(d):
    def ssl(*args):
        subprocess.run(["openssl"] + [str(a) for a in args], check=True, capture_output=True)
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
        "-keyout", d / "ca-key.pem", "-out", d / "ca.pem")
    for name, cn, ext in (("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1"),
                          ("client", "client", "extendedKeyUsage=clientAuth")):
        ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + cn,
            "-keyout", d / ("%s-key.pem" % name), "-out", d / ("%s.csr" % name))
        (d / ("%s.ext" % name)).write_text(ext + "\n")
        ssl("x509", "-req", "-in", d / ("%s.csr" % name), "-CA", d / "ca.pem", "-CAkey",
            d / "ca-key.pem", "-CAcreateserial", "-days", "2", "-extfile", d / ("%s.ext" % name),
            "-out", d / ("%s.pem" % name))


def test_tls_tcp(start_daemon, tmp_path):
    certs = tmp_path / "certs"
    certs.mkdir()
    _make_certs(certs)
    port = free_port()
    d = start_daemon(tmp_path / "d", "-H", "tcp://127.0.0.1:%d" % port, "--tlsverify",
                     "--tlscacert", certs / "ca.pem", "--tlscert", certs / "server.pem",
                     "--tlskey", certs / "server-key.pem")
    # the client's certificate files, under docker's names
    client = tmp_path / "client"
    client.mkdir()
    for src, dst in (("ca.pem", "ca.pem"), ("client.pem", "cert.pem"),
                     ("client-key.pem", "key.pem")):
        (client / dst).write_bytes((certs / src).read_bytes())
    env = dict(d.env(), DOCKER_HOST="tcp://127.0.0.1:%d" % port, DOCKER_TLS_VERIFY="1",
               DOCKER_CERT_PATH=str(client))
    # a client that connects and never starts its TLS handshake holds only its connection
    stalled = socket.create_connection(("127.0.0.1", port))
    t0 = time.monotonic()
    r = subprocess.run(["/usr/local/bin/docker", "version", "--format",
                        "{{.Server.APIVersion}}"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert time.monotonic() - t0 < 10
    stalled.close()
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1.43"
    # without a client certificate the handshake is refused
    os.unlink(client / "cert.pem")
    os.unlink(client / "key.pem")
    r = subprocess.run(["/usr/local/bin/docker", "--tlsverify", "--tlscacert",
                        str(client / "ca.pem"), "-H", "tcp://127.0.0.1:%d" % port, "version"],
                       env=dict(d.env(), DOCKER_HOST=""), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0
    assert "Server:" not in r.stdout


def _wait_line(proc, text, timeout=30):
    """Read ``proc``'s stdout until a line containing ``text``; the lines read."""
    import select
    lines = []
    deadline = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        piece = os.read(fd, 4096)
        if not piece:
            break
        buf += piece
        *done, buf = buf.split(b"\n")
        lines += [x.decode() for x in done]
        if any(text in x for x in lines):
            return lines
    raise AssertionError("%r never came; got %r" % (text, lines))


def test_sigkill_while_pulling_following_and_running(start_daemon, slow_mirror, tmp_path):
    d = start_daemon(tmp_path / "d", mirror_url=slow_mirror.url)
    d.docker("pull", "busybox")
    cid = d.docker("run", "-d", "busybox", "sh", "-c",
                   "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.1; done").stdout.strip()
    docker = "/usr/local/bin/docker"
    logs = subprocess.Popen([docker, "logs", "-f", cid], env=d.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    pull = subprocess.Popen([docker, "pull", "big"], env=d.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        _wait_line(logs, "line3")
        _wait_line(pull, "Pulling fs layer")
        time.sleep(0.5)
        assert pull.poll() is None, "the pull ended before the daemon was killed"
        d.stop(signal.SIGKILL)
        assert pull.wait(20) != 0
        assert logs.wait(20) is not None
    finally:
        for p in (pull, logs):
            if p.poll() is None:
                p.kill()
            p.wait()
            p.stdout.close()
        pull.stderr.close()
    before = int(time.time())
    time.sleep(0.5)
    d.start()
    # the container ran on while no daemon was there
    assert d.docker("inspect", "-f", "{{.State.Running}}", cid).stdout.strip() == "true"
    later = d.docker("logs", "--since", str(before), cid).stdout.split()
    assert later and all(x.startswith("line") for x in later)
    # the interrupted pull can be repeated
    r = d.docker("pull", "big", timeout=120)
    assert "Status: Downloaded newer image for big:latest" in r.stdout
    d.docker("rm", "-f", cid)


def test_supervisor_runs_in_the_daemon(dockerd):
    """Restart policies are applied while pydockerd runs, and again after it restarts."""
    dockerd.docker("pull", "busybox")
    cid = dockerd.docker("run", "-d", "--restart", "always", "busybox", "sh", "-c",
                         "sleep 0.3; exit 3").stdout.strip()

    def restarts():
        return int(dockerd.docker("inspect", "-f", "{{.RestartCount}}", cid).stdout)

    deadline = time.monotonic() + 20
    while restarts() < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert restarts() >= 1
    dockerd.stop(signal.SIGTERM)
    dockerd.start()
    seen = restarts()
    deadline = time.monotonic() + 20
    while restarts() <= seen and time.monotonic() < deadline:
        time.sleep(0.2)
    assert restarts() > seen
    dockerd.docker("rm", "-f", cid)
