"""Debian's dockerd as a peer, for tests and benchmarks that compare pyrunc's engine with it.

The daemon runs in network and mount namespaces of its own (``unshare --net --mount``): its
bridge, its iptables rules and its FORWARD policy live and die in that network namespace, and
tmpfs over ``/run`` and ``/etc/docker`` keeps its key file and runtime files off the host. Its
containers' cgroups go under a parent named for this run, removed afterwards. Images come from
pyrunc's built-in images through ``docker load`` (no registry, no network).

    with Dockerd(tmp_path) as d:
        d.load_builtin("busybox")
        d.docker("run", "--rm", "busybox", "true")
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

DOCKERD = "/usr/sbin/dockerd"
CGROUP_ROOT = "/sys/fs/cgroup"

_SCRIPT = r"""
set -e
ip link set lo up
mount -t tmpfs -o mode=0755 tmpfs /run
[ -d /etc/docker ] && mount -t tmpfs -o mode=0755 tmpfs /etc/docker
exec "$0" "$@"
"""


def docker_client() -> str | None:
    """The docker CLI to drive dockerd with: Debian's (20.10, /usr/bin) or any on PATH."""
    return shutil.which("docker", path="/usr/bin") or shutil.which("docker")


class Dockerd:
    """One dockerd in its own namespaces, with its data under ``workdir``."""

    def __init__(self, workdir: str, extra_args: tuple = ()) -> None:
        self.workdir = os.path.abspath(str(workdir))
        self.socket = os.path.join(self.workdir, "docker.sock")
        self.host = "unix://" + self.socket
        self.cgroup_parent = "pyrunc-test-dockerd-%d-%d" % (os.getpid(), id(self) % 100000)
        self.extra_args = tuple(extra_args)
        self.proc: subprocess.Popen | None = None
        self.env = dict(os.environ, DOCKER_HOST=self.host,
                        DOCKER_CONFIG=os.path.join(self.workdir, "client-config"))

    def start(self, timeout: float = 60.0) -> "Dockerd":
        os.makedirs(self.workdir, exist_ok=True)
        args = [DOCKERD, "--data-root", os.path.join(self.workdir, "data"),
                "--exec-root", os.path.join(self.workdir, "exec"),
                "--pidfile", os.path.join(self.workdir, "dockerd.pid"),
                "-H", self.host, "--cgroup-parent", "/" + self.cgroup_parent,
                "--log-level", "warn", *self.extra_args]
        self.log = open(os.path.join(self.workdir, "dockerd.log"), "wb")
        self.proc = subprocess.Popen(
            ["unshare", "--net", "--mount", "--propagation", "private", "--",
             "sh", "-c", _SCRIPT, *args],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self._ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("dockerd did not start; its log: %s"
                                   % self._log_tail())
            time.sleep(0.1)
        return self

    def _ping(self) -> bool:
        s = socket.socket(socket.AF_UNIX)
        try:
            s.settimeout(2)
            s.connect(self.socket)
            s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b"200 OK" in s.recv(100)
        except OSError:
            return False
        finally:
            s.close()

    def _log_tail(self) -> str:
        with open(os.path.join(self.workdir, "dockerd.log"), "rb") as f:
            return f.read()[-2000:].decode(errors="replace")

    def docker(self, *args: str, check: bool = True, client: str | None = None,
               **kw) -> subprocess.CompletedProcess:
        """Run the docker CLI against this daemon."""
        return subprocess.run([client or docker_client() or "docker", *args], env=self.env,
                              check=check, capture_output=True, text=True, **kw)

    def load_builtin(self, *names: str) -> None:
        """``docker load`` pyrunc's built-in images (made in a scratch image store)."""
        from pyrunc.engine.images import archive, builtin
        from pyrunc.engine.images.service import ImageService
        store = ImageService(os.path.join(self.workdir, "builtin-images"))
        for name in names:
            builtin.build(store, name)
        tar = os.path.join(self.workdir, "builtin.tar")
        with open(tar, "wb") as f:
            archive.save(store, ["%s:latest" % n for n in names], f)
        self.docker("load", "-i", tar)

    def stop(self) -> None:
        """SIGTERM (dockerd stops its containers and its containerd), SIGKILL after 30 s; then
        the cgroups made for its containers are removed."""
        proc, self.proc = self.proc, None
        terminate(proc)
        if getattr(self, "log", None):
            self.log.close()
        for controller in os.listdir(CGROUP_ROOT):
            _remove_cgroup_tree(os.path.join(CGROUP_ROOT, controller, self.cgroup_parent))

    def __enter__(self) -> "Dockerd":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def terminate(proc: subprocess.Popen | None, timeout: float = 30.0) -> None:
    """SIGTERM a daemon we started and wait for it; SIGKILL after ``timeout`` seconds."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _remove_cgroup_tree(path: str) -> None:
    if not os.path.isdir(path):
        return
    for name in os.listdir(path):
        child = os.path.join(path, name)
        if os.path.isdir(child):
            _remove_cgroup_tree(child)
    try:
        os.rmdir(path)
    except OSError:
        pass
