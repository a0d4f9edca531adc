"""Fixtures for the pyrunc command: runtimes side by side, and a private containerd."""
import os
import shutil
import signal
import subprocess
import time

import pytest

from support import need

NAMESPACE = "pyrunc-test"


class Runtime:
    """A runc-compatible binary with its own state root."""

    def __init__(self, name, binary, root):
        self.name = name
        self.binary = binary
        self.root = root

    def cmd(self, *args):
        return [self.binary, "--root", self.root] + list(args)

    def __call__(self, *args, check=True, timeout=30, **kw):
        """Run a command; output is captured through files, not pipes, so a container that
        inherits stdio (create, run -d) does not keep the call waiting."""
        import tempfile
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run(self.cmd(*args), stdout=out, stderr=err, timeout=timeout,
                                  stdin=kw.pop("stdin", subprocess.DEVNULL), **kw)
            out.seek(0)
            err.seek(0)
            r = subprocess.CompletedProcess(proc.args, proc.returncode,
                                            out.read().decode(), err.read().decode())
        if check and r.returncode != 0:
            raise AssertionError("%s %s failed (%d): %s" % (self.name, " ".join(args),
                                                           r.returncode, r.stderr))
        return r

    def cleanup(self):
        """Force-delete whatever a test left, then remove the root."""
        if os.path.isdir(self.root):
            for cid in os.listdir(self.root):
                self("delete", "--force", cid, check=False)
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(params=["pyrunc", "runc"])
def runtime(request, tmp_path, private_mount_ns, pyrunc_bin):
    binary = pyrunc_bin if request.param == "pyrunc" else need("runc")
    rt = Runtime(request.param, binary, str(tmp_path / ("state-" + request.param)))
    yield rt
    rt.cleanup()


@pytest.fixture
def pyrunc(tmp_path, private_mount_ns, pyrunc_bin):
    rt = Runtime("pyrunc", pyrunc_bin, str(tmp_path / "state-pyrunc"))
    yield rt
    rt.cleanup()


@pytest.fixture(scope="module")
def containerd(tmp_path_factory, private_mount_ns):
    """Debian's containerd on a private socket, root and state; stopped after the module."""
    binary = need("containerd")
    need("ctr")
    base = tmp_path_factory.mktemp("containerd")
    sock = str(base / "containerd.sock")
    config = base / "config.toml"
    config.write_text(
        'version = 2\nroot = "%s"\nstate = "%s"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",'
        ' "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",'
        ' "io.containerd.snapshotter.v1.aufs"]\n'
        '[grpc]\n  address = "%s"\n[ttrpc]\n  address = "%s.ttrpc"\n'
        % (base / "root", base / "state", sock, sock))
    log = open(base / "containerd.log", "w")
    proc = subprocess.Popen([binary, "--config", str(config)], stdout=log, stderr=log,
                            start_new_session=True)
    deadline = time.monotonic() + 20
    while not os.path.exists(sock):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("containerd did not start: %s"
                               % (base / "containerd.log").read_text()[-2000:])
        time.sleep(0.05)

    def ctr(*args, check=True, timeout=60):
        r = subprocess.run(["ctr", "--address", sock, "--namespace", NAMESPACE] + list(args),
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("ctr %s failed (%d): %s%s" % (" ".join(args), r.returncode,
                                                              r.stdout, r.stderr))
        return r

    ctr.address = sock
    yield ctr
    for line in ctr("tasks", "ls", "-q", check=False).stdout.split():
        ctr("tasks", "kill", "-s", "SIGKILL", line, check=False)
    time.sleep(0.2)
    for line in ctr("containers", "ls", "-q", check=False).stdout.split():
        ctr("tasks", "delete", "-f", line, check=False)
        ctr("containers", "delete", line, check=False)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()
    # containerd leaves its shims' mounts under the state dir; this mount namespace is private.
    subprocess.run(["sh", "-c", "grep -o ' %s[^ ]*' /proc/self/mountinfo | sort -r | "
                    "xargs -r -n1 umount -l" % base], check=False)
    # ... and the namespace's parent cgroup (cgroupsPath /<namespace>/<id>) in every hierarchy.
    subprocess.run(["sh", "-c", "find /sys/fs/cgroup -maxdepth 4 -type d -name %s "
                    "-exec rmdir {} + 2>/dev/null" % NAMESPACE], check=False)
