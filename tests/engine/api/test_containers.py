"""The containers router driven by the real docker CLIs (docker 28 and Debian's 20.10) and the
docker SDK: the flows a docker user runs, checked from outside (exit codes the shell sees,
files read inside the container, the host's /proc, cgroup files, docker's own wording).

One daemon serves the module (its busybox comes from the loopback mirror, so the first run
also pulls); every test removes the containers it made.
"""
import contextlib
import fcntl
import io
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import tarfile
import termios
import threading
import time

import pytest

from .conftest import DOCKER_CLIS, Daemon

pytestmark = pytest.mark.usefixtures("private_mount_ns")

RUNNING_RM = ("Error response from daemon: You cannot remove a running container %s. Stop the "
              "container before attempting removal or force remove")


@contextlib.contextmanager
def daemon_for_module(tmp, mirror):
    """A started pydockerd for a whole module (the busybox mirror configured); cleaned up
    (containers force-removed, the daemon killed by PID) at the end."""
    daemon = Daemon(tmp, [], mirror.url)
    try:
        yield daemon.start()
    finally:
        daemon.cleanup()


def pty_run(argv, env, inputs, rows=24, cols=80, timeout=30):
    """Run ``argv`` on a new pseudo-terminal of ``rows`` x ``cols``, typing each of ``inputs``
    once the output has been quiet a moment; (everything it wrote, exit status)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            time.sleep(0.2)             # the parent sizes the terminal first
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    out = bytearray()
    deadline = time.monotonic() + timeout

    def read(quiet):
        last = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last < quiet:
            r, _, _ = select.select([fd], [], [], 0.05)
            if r:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    return False
                if not data:
                    return False
                out.extend(data)
                last = time.monotonic()
        return True
    try:
        read(1.5)
        for text in inputs:
            os.write(fd, text)
            if not read(0.7):
                break
        while read(0.5) and time.monotonic() < deadline:
            pass
        end = time.monotonic() + 5
        got, status = os.waitpid(pid, os.WNOHANG)
        while got == 0 and time.monotonic() < end:
            time.sleep(0.05)
            got, status = os.waitpid(pid, os.WNOHANG)
        if got == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError("%s did not end; it wrote %r" % (argv, bytes(out)))
        return bytes(out), os.waitstatus_to_exitcode(status)
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def d(mirror, tmp_path_factory):
    with daemon_for_module(tmp_path_factory.mktemp("containers"), mirror) as daemon:
        daemon.docker("pull", "busybox")
        yield daemon


@pytest.fixture(autouse=True)
def clean(d):
    yield
    ids = d.docker("ps", "-aq").stdout.split()
    if ids:
        d.docker("rm", "-f", *ids, check=False)


def test_run_output_and_exit_codes(d, cli):
    r = d.docker("run", "--rm", "busybox", "echo", "hi", cli=cli)
    assert r.stdout == "hi\n"
    r = d.docker("run", "--rm", "busybox", "sh", "-c", "exit 3", cli=cli, check=False)
    assert r.returncode == 3
    r = d.docker("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 130",
                 cli=cli, check=False)
    assert (r.returncode, r.stdout, r.stderr) == (130, "out\n", "err\n")
    assert d.docker("ps", "-aq").stdout == ""          # --rm removed them


def test_run_start_failures(d, cli):
    """docker's exit codes for a process that cannot start; --rm still removes the container
    (the CLI waits for that removal before it exits)."""
    r = d.docker("run", "--rm", "busybox", "/no/such", cli=cli, check=False, timeout=60)
    assert r.returncode == 127 and "/no/such" in r.stderr
    assert r.stderr.startswith("docker: Error response from daemon: "), r.stderr
    r = d.docker("run", "--rm", "--user", "nosuchuser", "busybox", "true", cli=cli,
                 check=False, timeout=60)
    assert r.returncode in (125, 126)
    assert "unable to find user nosuchuser" in r.stderr
    assert d.docker("ps", "-aq").stdout == ""


def test_run_output_starts_with_first_byte(d):
    # attach happens before start: the very first output of a quick process is there, in order
    script = "i=0; while [ $i -lt 300 ]; do echo $i; i=$((i+1)); done"
    r = d.docker("run", "--rm", "busybox", "sh", "-c", script)
    assert r.stdout.split() == [str(i) for i in range(300)]


def test_run_stdin(d, cli):
    r = d.docker("run", "-i", "--rm", "busybox", "cat", input="piped\n", cli=cli)
    assert r.stdout == "piped\n"
    data = "".join("%06d\n" % i for i in range(150000))      # 1 MiB through stdin
    r = d.docker("run", "-i", "--rm", "busybox", "wc", "-c", input=data, cli=cli)
    assert r.stdout.strip() == str(len(data))


def test_run_tty_in_pty(d):
    out, code = pty_run([DOCKER_CLIS["docker28"], "run", "-it", "--rm", "busybox", "sh"],
                        d.env(), [b"tty; stty size; echo $((6*7))\r", b"exit 7\r"],
                        rows=30, cols=100)
    assert code == 7
    assert b"/dev/pts/0" in out and b"30 100" in out and b"42" in out


def test_detached_lifecycle(d, cli):
    cid = d.docker("run", "-d", "--name", "life", "busybox", "sleep", "1000",
                   cli=cli).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    ps = d.docker("ps", "--format", "{{.ID}} {{.Names}} {{.Status}}", cli=cli).stdout
    assert re.fullmatch(r"%s life Up .*\n" % cid[:12], ps)
    pid = int(d.docker("inspect", "-f", "{{.State.Pid}}", "life").stdout)
    with open("/proc/%d/cmdline" % pid, "rb") as f:            # the host's view
        assert f.read() == b"sleep\x001000\x00"
    r = d.docker("rm", "life", cli=cli, check=False)
    assert (r.returncode, r.stderr.strip()) == (1, RUNNING_RM % cid)
    assert d.docker("stop", "-t", "1", "life", cli=cli).stdout == "life\n"
    assert not os.path.exists("/proc/%d" % pid)
    status = d.docker("ps", "-a", "--format", "{{.Status}}", cli=cli).stdout
    assert status.startswith("Exited (137)")      # sleep as pid 1 ignores SIGTERM
    d.docker("start", "life", cli=cli)
    pid2 = int(d.docker("inspect", "-f", "{{.State.Pid}}", "life").stdout)
    assert pid2 != pid and os.path.exists("/proc/%d" % pid2)
    d.docker("restart", "-t", "0", "life", cli=cli)
    pid3 = int(d.docker("inspect", "-f", "{{.State.Pid}}", "life").stdout)
    assert pid3 not in (pid, pid2) and not os.path.exists("/proc/%d" % pid2)
    assert d.docker("rm", "-f", "life", cli=cli).stdout == "life\n"
    r = d.docker("inspect", "life", check=False)
    assert r.returncode == 1 and "No such object: life" in r.stderr or \
        "No such container: life" in r.stderr


def test_create_warnings(d, cli):
    r = d.docker("create", "--network", "host", "-p", "8080:80", "busybox", "true", cli=cli)
    assert "WARNING: Published ports are discarded when using host network mode" in r.stderr
    r = d.docker("create", "busybox", "true", cli=cli)
    assert r.stderr == ""


def test_create_platform(d, tmp_path):
    """An image made for another platform: docker's warning, none when that platform is asked
    for, and a refusal when another is."""
    d.docker("create", "--name", "src", "busybox", "true")
    d.docker("export", "-o", str(tmp_path / "fs.tar"), "src")
    d.docker("import", "--platform", "linux/arm64", str(tmp_path / "fs.tar"), "armimg:1")
    try:
        host = {"x86_64": "amd64", "aarch64": "arm64"}[os.uname().machine]
        r = d.docker("create", "armimg:1", "/bin/true")
        if host == "arm64":
            assert r.stderr == ""
        else:
            assert r.stderr == ("WARNING: The requested image's platform (linux/arm64) does not "
                                "match the detected host platform (linux/%s) and no specific "
                                "platform was requested\n" % host)
        r = d.docker("create", "--platform", "linux/arm64", "armimg:1", "/bin/true")
        assert r.stderr == ""
        if host != "arm64":
            status, _, out = d.request("POST", "/containers/create?platform=linux/" + host,
                                       body=b'{"Image": "armimg:1"}')
            assert status == 404        # the CLI then tries a pull, as with dockerd
            assert "does not match the specified platform" in json.loads(out)["message"]
    finally:
        for cid in d.docker("ps", "-aq").stdout.split():
            d.docker("rm", "-f", cid)
        d.docker("rmi", "armimg:1", check=False)


def test_detached_without_a_name(d, cli):
    cid = d.docker("run", "-d", "busybox", "sleep", "1000", cli=cli).stdout.strip()
    name = d.docker("ps", "--no-trunc", "--format", "{{.ID}} {{.Names}}", cli=cli).stdout
    assert re.fullmatch(r"%s [a-z]+_[a-z]+[0-9]?\n" % cid, name)     # docker's random names


def test_stop_of_stopped_and_start_of_running(d):
    d.docker("run", "-d", "--name", "twice", "busybox", "sleep", "1000")
    assert d.request("POST", "/containers/twice/start")[0] == 304
    d.docker("kill", "twice")
    assert d.request("POST", "/containers/twice/stop")[0] == 304


def test_kill_signal_and_wait(d, cli):
    d.docker("run", "-d", "--name", "trapper", "busybox", "sh", "-c",
             "trap 'echo got-usr1; exit 42' USR1; while true; do sleep 0.1; done")
    time.sleep(0.5)
    waiter = subprocess.Popen([DOCKER_CLIS[cli], "wait", "trapper"], env=d.env(),
                              stdout=subprocess.PIPE, text=True)
    d.docker("kill", "-s", "USR1", "trapper", cli=cli)
    out, _ = waiter.communicate(timeout=30)
    assert out == "42\n"
    assert d.docker("logs", "trapper").stdout == "got-usr1\n"
    r = d.docker("kill", "trapper", check=False)
    assert r.returncode == 1 and "is not running" in r.stderr


def test_pause_unpause(d, cli):
    d.docker("run", "-d", "--name", "ticker", "busybox", "sh", "-c",
             "while true; do echo tick; sleep 0.05; done")
    time.sleep(0.5)
    d.docker("pause", "ticker", cli=cli)
    assert "(Paused)" in d.docker("ps", "--format", "{{.Status}}").stdout
    before = d.docker("logs", "ticker").stdout.count("tick")
    time.sleep(1)
    assert d.docker("logs", "ticker").stdout.count("tick") == before     # frozen
    r = d.docker("exec", "ticker", "true", check=False)
    assert r.returncode != 0 and "paused" in r.stderr
    d.docker("unpause", "ticker", cli=cli)
    time.sleep(0.5)
    assert d.docker("logs", "ticker").stdout.count("tick") > before


def test_rename(d, cli):
    cid = d.docker("create", "--name", "old-name", "busybox", "true").stdout.strip()
    d.docker("rename", "old-name", "new-name", cli=cli)
    assert d.docker("inspect", "-f", "{{.Id}} {{.Name}}", "new-name").stdout == \
        "%s /new-name\n" % cid
    r = d.docker("rename", "new-name", "bad name!", check=False, cli=cli)
    assert r.returncode == 1 and "Invalid container name (bad name!)" in r.stderr


def test_logs(d, cli):
    d.docker("run", "--name", "talker", "busybox", "sh", "-c",
             "for i in 1 2 3 4; do echo out$i; echo err$i >&2; sleep 0.05; done")
    r = d.docker("logs", "talker", cli=cli)
    assert r.stdout == "out1\nout2\nout3\nout4\n"
    assert r.stderr == "err1\nerr2\nerr3\nerr4\n"
    r = d.docker("logs", "--tail", "2", "talker", cli=cli)
    assert (r.stdout + r.stderr).count("\n") == 2
    r = d.docker("logs", "-t", "talker", cli=cli)
    lines = r.stdout.splitlines()
    stamp = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (out\d)"
    assert all(re.fullmatch(stamp, line) for line in lines), lines
    third = re.fullmatch(stamp, lines[2]).group(1)
    r = d.docker("logs", "--since", third, "talker", cli=cli)
    assert r.stdout == "out3\nout4\n"
    r = d.docker("logs", "--until", third, "talker", cli=cli)
    assert r.stdout == "out1\nout2\nout3\n"


def test_logs_of_tty_container_are_raw(d):
    d.docker("run", "-t", "--name", "ttylog", "busybox", "echo", "raw")
    status, headers, body = d.request("GET", "/containers/ttylog/logs?stdout=1")
    assert status == 200 and body == b"raw\r\n"
    status, headers, body = d.request("GET", "/v1.43/containers/ttylog/logs?stdout=1&stderr=0")
    assert headers["content-type"] == "application/vnd.docker.raw-stream"


def test_logs_framing(d):
    d.docker("run", "--name", "framed", "busybox", "sh", "-c", "echo a; echo bb >&2")
    status, headers, body = d.request("GET", "/v1.43/containers/framed/logs?stdout=1&stderr=1")
    assert headers["content-type"] == "application/vnd.docker.multiplexed-stream"
    frames = []
    while body:
        stream, size = struct.unpack(">BxxxI", body[:8])
        frames.append((stream, body[8:8 + size]))
        body = body[8 + size:]
    assert sorted(frames) == [(1, b"a\n"), (2, b"bb\n")]


def test_logs_follow_never_blocks_others(d):
    d.docker("run", "-d", "--name", "slow", "busybox", "sh", "-c",
             "for i in 1 2 3 4 5 6; do echo L$i; sleep 0.5; done")
    followers = [subprocess.Popen([DOCKER_CLIS["docker28"], "logs", "-f", "slow"], env=d.env(),
                                  stdout=subprocess.PIPE, text=True) for _ in range(3)]
    attached = subprocess.Popen([DOCKER_CLIS["docker28"], "attach", "slow"], env=d.env(),
                                stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    t0 = time.monotonic()
    for _ in range(5):
        d.docker("ps")
        d.docker("inspect", "slow")
    assert time.monotonic() - t0 < 5
    for p in followers:
        out, _ = p.communicate(timeout=30)
        assert out == "".join("L%d\n" % i for i in range(1, 7))
    out, _ = attached.communicate(timeout=30)
    assert out.endswith("L6\n") and attached.returncode == 0


def test_logs_follow_client_gone_frees_the_reader(d):
    d.docker("run", "-d", "--name", "quiet", "busybox", "sleep", "1000")
    log_path = d.docker("inspect", "-f", "{{.LogPath}}", "quiet").stdout.strip()
    procs = [subprocess.Popen([DOCKER_CLIS["docker28"], "logs", "-f", "quiet"], env=d.env(),
                              stdout=subprocess.DEVNULL) for _ in range(4)]
    deadline = time.monotonic() + 10
    while _open_in_daemon(d, log_path) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _open_in_daemon(d, log_path) == 4        # one reader per follower
    for p in procs:
        p.send_signal(signal.SIGINT)
        p.wait(10)
    deadline = time.monotonic() + 10
    while _open_in_daemon(d, log_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _open_in_daemon(d, log_path) == 0        # the clients left: so did the readers


def _open_in_daemon(d, path):
    """How many of the daemon's descriptors have ``path`` open (the host's /proc)."""
    pid = int(open(d.pidfile).read())
    fd_dir = "/proc/%d/fd" % pid
    count = 0
    for fd in os.listdir(fd_dir):
        try:
            count += os.readlink(os.path.join(fd_dir, fd)) == path
        except FileNotFoundError:
            continue
    return count


def test_attach(d, cli):
    d.docker("run", "-d", "--name", "att", "busybox", "sh", "-c",
             "sleep 1; echo one; echo two >&2; exit 9")
    r = d.docker("attach", "att", cli=cli, check=False)
    assert (r.returncode, r.stdout, r.stderr) == (9, "one\n", "two\n")


def test_attach_stdin_and_start_a(d):
    d.docker("create", "-i", "--name", "catter", "busybox", "cat")
    r = d.docker("start", "-a", "-i", "catter", input="through start -a\n")
    assert r.stdout == "through start -a\n"


def test_cp_both_ways(d, cli, tmp_path):
    d.docker("run", "-d", "--name", "cpy", "busybox", "sleep", "1000")
    src = tmp_path / "in.txt"
    src.write_bytes(b"from the host\n")
    d.docker("cp", str(src), "cpy:/tmp/", cli=cli)
    assert d.docker("exec", "cpy", "cat", "/tmp/in.txt").stdout == "from the host\n"
    d.docker("exec", "cpy", "sh", "-c", "mkdir -p /data/sub && echo deep > /data/sub/f")
    d.docker("cp", "cpy:/data", str(tmp_path / "out"), cli=cli)
    assert (tmp_path / "out" / "sub" / "f").read_text() == "deep\n"
    r = d.docker("cp", "cpy:/nosuch", str(tmp_path), cli=cli, check=False)
    assert r.returncode == 1
    if cli == "docker20":       # that CLI words a 404 to HEAD itself
        assert r.stderr == "Error: No such container:path: cpy:/nosuch\n"
    else:
        assert "Could not find the file /nosuch in container cpy" in r.stderr


def test_archive_stat_header(d):
    d.docker("create", "--name", "statme", "busybox", "true")
    status, headers, _ = d.request("HEAD", "/containers/statme/archive?path=/bin/sh")
    assert status == 200
    import base64
    doc = json.loads(base64.b64decode(headers["x-docker-container-path-stat"]))
    assert doc["name"] == "sh" and doc["linkTarget"] in ("/bin/busybox", "")
    status, _, body = d.request("HEAD", "/containers/statme/archive")
    assert status == 400


def test_top_and_stats(d, cli):
    d.docker("run", "-d", "--name", "busy", "busybox", "sh", "-c",
             "while true; do :; done & sleep 1000")
    top = d.docker("top", "busy", cli=cli).stdout.splitlines()
    assert top[0].split()[:3] == ["UID", "PID", "PPID"]
    pids = [int(line.split()[1]) for line in top[1:]]
    assert len(pids) == 2           # the looping subshell; sleep (the shell exec'd it)
    for pid in pids:        # each row is a process of this container, seen from the host
        with open("/proc/%d/cgroup" % pid) as f:
            assert d.docker("inspect", "-f", "{{.Id}}", "busy").stdout.strip() in f.read()
    out = d.docker("stats", "--no-stream", "--format",
                   "{{.Name}} {{.CPUPerc}} {{.PIDs}}", "busy", cli=cli).stdout.split()
    assert out[0] == "busy" and out[2] == "2"
    assert float(out[1].rstrip("%")) > 1     # one spinning shell (the machine is shared)
    client = d.client()
    doc = client.containers.get("busy").stats(stream=False)
    assert doc["precpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert doc["cpu_stats"]["cpu_usage"]["total_usage"] > \
        doc["precpu_stats"]["cpu_usage"]["total_usage"]
    stream = client.containers.get("busy").stats(stream=True, decode=True)
    first, second = next(stream), next(stream)
    assert second["precpu_stats"] == first["cpu_stats"]
    client.close()


def test_diff_export_commit(d, cli, tmp_path):
    d.docker("run", "--name", "changer", "busybox", "sh", "-c",
             "echo new > /tmp/new; rm /bin/ls")
    diff = d.docker("diff", "changer", cli=cli).stdout.splitlines()
    assert "A /tmp/new" in diff and "D /bin/ls" in diff and "C /bin" in diff
    out = tmp_path / "x.tar"
    d.docker("export", "-o", str(out), "changer", cli=cli)
    with tarfile.open(out) as t:
        names = t.getnames()
        assert "tmp/new" in names and "bin/ls" not in names
        assert t.extractfile("tmp/new").read() == b"new\n"
    d.docker("commit", "-c", "ENV COMMITTED=yes", "-m", "why", "changer", "committed:1",
             cli=cli)
    try:
        r = d.docker("run", "--rm", "committed:1", "sh", "-c", "cat /tmp/new; echo $COMMITTED")
        assert r.stdout == "new\nyes\n"
        assert d.docker("image", "inspect", "-f", "{{.Comment}}",
                        "committed:1").stdout == "why\n"
    finally:
        d.docker("rmi", "committed:1", check=False)


def test_update_sets_the_cgroup(d, cli):
    d.docker("run", "-d", "--name", "upd", "busybox", "sleep", "1000")
    d.docker("update", "--memory", "64m", "--memory-swap", "128m", "--restart",
             "on-failure:2", "upd", cli=cli)
    pid = int(d.docker("inspect", "-f", "{{.State.Pid}}", "upd").stdout)
    with open("/proc/%d/cgroup" % pid) as f:        # the host's view of its cgroups
        paths = dict(line.split(":", 2)[1:] for line in f.read().splitlines())
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        files = {"/sys/fs/cgroup%s/memory.max" % paths[""]: "67108864",
                 "/sys/fs/cgroup%s/memory.swap.max" % paths[""]: "67108864"}
    else:
        base = "/sys/fs/cgroup/memory" + paths["memory"]
        files = {base + "/memory.limit_in_bytes": "67108864",
                 base + "/memory.memsw.limit_in_bytes": "134217728"}
    for path, value in files.items():
        if path.endswith("swap.max") or "memsw" in path:
            if not os.path.exists(path):
                continue                # the kernel accounts no swap here
        with open(path) as f:
            assert f.read().strip() == value, path
    r = d.docker("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}}",
                 "upd").stdout
    assert r == "67108864 on-failure\n"


def test_list_filters_and_prune(d, cli):
    d.docker("run", "--name", "done1", "--label", "team=a", "busybox", "true")
    d.docker("run", "-d", "--name", "run1", "--label", "team=b", "busybox", "sleep", "1000")
    names = d.docker("ps", "--format", "{{.Names}}", cli=cli).stdout.split()
    assert names == ["run1"]
    names = d.docker("ps", "-a", "--format", "{{.Names}}", cli=cli).stdout.split()
    assert sorted(names) == ["done1", "run1"]
    names = d.docker("ps", "-a", "--filter", "label=team=a", "--format", "{{.Names}}",
                     cli=cli).stdout.split()
    assert names == ["done1"]
    names = d.docker("ps", "-a", "--filter", "status=exited", "--format",
                     "{{.Names}}").stdout.split()
    assert names == ["done1"]
    assert d.docker("ps", "-n", "1", "--format", "{{.Names}}").stdout.split() == ["run1"]
    out = d.docker("container", "prune", "-f", cli=cli).stdout
    assert "Deleted Containers:" in out
    assert d.docker("ps", "-a", "--format", "{{.Names}}").stdout.split() == ["run1"]


def test_wait_conditions_api(d):
    cid = d.docker("create", "busybox", "sh", "-c", "sleep 0.5; exit 4").stdout.strip()
    results = {}

    def wait(cond):
        results[cond] = d.request("POST", "/containers/%s/wait?condition=%s" % (cid, cond),
                                  timeout=60)
    threads = [threading.Thread(target=wait, args=(c,)) for c in ("next-exit", "removed")]
    for t in threads:
        t.start()
    time.sleep(0.5)
    d.docker("start", cid)
    threads[0].join(30)
    status, _, body = results["next-exit"]
    assert status == 200 and json.loads(body) == {"StatusCode": 4, "Error": None}
    assert threads[1].is_alive()          # not removed yet
    d.docker("rm", cid)
    threads[1].join(30)
    assert json.loads(results["removed"][2])["StatusCode"] == 4


def test_sdk_flows(d):
    client = d.client()
    try:
        out = client.containers.run("busybox", ["sh", "-c", "echo out; echo err >&2"],
                                    remove=True, stderr=True)
        assert out == b"out\nerr\n"
        c = client.containers.run("busybox", ["sh", "-c", "echo up; sleep 1000"],
                                  detach=True, name="sdk")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            info = tarfile.TarInfo("sdk.txt")
            info.size = 4
            t.addfile(info, io.BytesIO(b"data"))
        assert c.put_archive("/tmp", buf.getvalue())
        bits, stat = c.get_archive("/tmp/sdk.txt")
        assert stat["name"] == "sdk.txt" and stat["size"] == 4
        with tarfile.open(fileobj=io.BytesIO(b"".join(bits))) as t:
            assert t.extractfile("sdk.txt").read() == b"data"
        assert c.logs() == b"up\n"
        c.kill()
        assert c.wait() == {"StatusCode": 137, "Error": None}
        c.reload()
        assert c.status == "exited"
        c.remove()
    finally:
        client.close()


def test_attach_sdk_socket_stdin(d):
    client = d.client()
    try:
        c = client.containers.create("busybox", ["cat"], stdin_open=True, name="sock")
        sock = c.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
        raw = sock._sock
        c.start()
        payload = b"\x01\x00\x00\x00\xff\xff\xff\xfflooks like a header\n"
        raw.sendall(payload)
        got = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            head = _recv_exactly(raw, 8)
            stream, size = struct.unpack(">BxxxI", head)
            got += _recv_exactly(raw, size)
            if len(got) >= len(payload):
                break
        assert got == payload          # bytes pass verbatim, framed on the way back
        raw.close()
    finally:
        client.close()


def _recv_exactly(sock, n):
    out = b""
    while len(out) < n:
        r, _, _ = select.select([sock], [], [], 10)
        assert r, "no data from the daemon"
        piece = sock.recv(n - len(out))
        assert piece, "connection closed"
        out += piece
    return out
