"""Fixtures of the volume tests: a volume service on a private root, and real containers (a
busybox bundle whose config carries the mounts that ``MountPoint.to_oci`` gives)."""
import os
import subprocess
import tempfile

import pytest

import support
from pyrunc.containerd.runtime import spec as runtime_spec
from pyrunc.engine.volume import VolumeService


def _mount_targets():
    """The mount points of this mount namespace (the kernel's list)."""
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f]


@pytest.fixture
def mount_targets():
    """() -> the mount points of this mount namespace, read from /proc/self/mountinfo."""
    return _mount_targets


@pytest.fixture
def volumes(tmp_path):
    """A VolumeService on tmp_path/engine/volumes (the engine's root is tmp_path/engine); at
    the end nothing may stay mounted under it."""
    svc = VolumeService(str(tmp_path / "engine" / "volumes"))
    yield svc
    left = [t for t in _mount_targets() if t.startswith(svc.root)]
    for target in reversed(left):
        subprocess.run(["umount", "-l", target], check=False)
    assert not left, "mounts left behind: %s" % left


class Runner:
    """Runs one-shot containers with a runtime (pyrunc or runc) from a bundle of busybox."""

    def __init__(self, binary, state, tmp_path, busybox_rootfs):
        self.binary = binary
        self.state = state
        self.tmp_path = tmp_path
        self.busybox_rootfs = busybox_rootfs
        self.count = 0
        self.ids = []

    def rootfs(self):
        """A fresh hard-linked copy of the busybox rootfs (edit by replacing, never in place)."""
        self.count += 1
        path = self.tmp_path / ("rootfs%d" % self.count)
        subprocess.run(["cp", "-al", self.busybox_rootfs, str(path)], check=True)
        return str(path)

    def popen(self, args, mounts, rootfs=None, user=None):
        """Start a container running ``args`` with the OCI ``mounts`` added (as ``user``, a
        (uid, gid), when given); returns (id, Popen)."""
        self.count += 1
        bundle = self.tmp_path / ("bundle%d" % self.count)
        bundle.mkdir()
        spec = runtime_spec.example_spec(args=list(args), terminal=False)
        spec["root"] = {"path": rootfs or self.rootfs(), "readonly": False}
        spec["mounts"].extend(mounts)
        for caps in spec["process"]["capabilities"].values():
            caps.append("CAP_DAC_OVERRIDE")        # root reads every file, as in docker
        if user is not None:
            spec["process"]["user"] = {"uid": user[0], "gid": user[1]}
            for key in ("effective", "permitted", "ambient"):
                spec["process"]["capabilities"][key] = []
        runtime_spec.write_spec(str(bundle), spec)
        cid = support.unique_id("vol")
        self.ids.append(cid)
        out = tempfile.TemporaryFile()
        err = tempfile.TemporaryFile()
        proc = subprocess.Popen([self.binary, "--root", self.state, "run", "-b", str(bundle),
                                 cid], stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        proc.out, proc.err = out, err
        return cid, proc

    def run(self, args, mounts, rootfs=None, timeout=60, user=None):
        """Run a container to its end: CompletedProcess with text stdout and stderr."""
        _, proc = self.popen(args, mounts, rootfs, user)
        return self.wait(proc, timeout)

    @staticmethod
    def wait(proc, timeout=60):
        proc.wait(timeout=timeout)
        proc.out.seek(0)
        proc.err.seek(0)
        r = subprocess.CompletedProcess(proc.args, proc.returncode,
                                        proc.out.read().decode(), proc.err.read().decode())
        proc.out.close()
        proc.err.close()
        return r

    def cleanup(self):
        for cid in self.ids:
            subprocess.run([self.binary, "--root", self.state, "delete", "--force", cid],
                           capture_output=True, check=False)


@pytest.fixture(params=["pyrunc", "runc"])
def runner(request, tmp_path, private_mount_ns, pyrunc_bin, busybox_rootfs):
    """A Runner with pyrunc, then with runc (the peer reads the same OCI mounts)."""
    binary = pyrunc_bin if request.param == "pyrunc" else support.need("runc")
    r = Runner(binary, str(tmp_path / ("state-" + request.param)), tmp_path, busybox_rootfs)
    yield r
    r.cleanup()


@pytest.fixture
def pyrunc_runner(tmp_path, private_mount_ns, pyrunc_bin, busybox_rootfs):
    """A Runner with pyrunc only."""
    r = Runner(pyrunc_bin, str(tmp_path / "state-pyrunc"), tmp_path, busybox_rootfs)
    yield r
    r.cleanup()
