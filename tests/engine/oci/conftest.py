"""Fixtures of the runtime-config tests: run a busybox container from build_spec's config with
pyrunc or runc, and read what the container sees from inside it.

``oci_run``: parametrized over pyrunc, runc and crun (peers: those tests are marked so). Its
``run(config, host_config, ...)`` builds a bundle (a hard-linked copy of the session's busybox
rootfs; ``files`` replaces files in it without touching the shared copy), writes the hosts,
hostname and resolv.conf files the engine writes, runs the container in the foreground and
returns the CompletedProcess. Every container is force-deleted and its cgroup directories
removed at teardown, even when the test fails.
"""
import os
import subprocess

import pytest

import support
from pyrunc.containerd.runtime.spec import write_spec
from pyrunc.engine.oci import build_spec, merge_image_config

CGROUP_PARENT = "pyrunc-oci-test"
BUSYBOX_IMAGE = {"Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                                        "/usr/bin:/sbin:/bin"]}


def cgroup_dirs(cid):
    """The container's cgroup directories (v1 hierarchies or the v2 tree)."""
    out = []
    base = "/sys/fs/cgroup"
    if os.path.exists(os.path.join(base, "cgroup.controllers")):
        out.append(os.path.join(base, CGROUP_PARENT, cid))
    else:
        for name in sorted(os.listdir(base)):
            path = os.path.join(base, name)
            if os.path.isdir(path) and not os.path.islink(path):
                out.append(os.path.join(path, CGROUP_PARENT, cid))
    return out


class OciRun:
    def __init__(self, name, binary, state, tmp_path, busybox_rootfs):
        self.name = name
        self.binary = binary
        self.state = state
        self.tmp_path = tmp_path
        self.busybox_rootfs = busybox_rootfs
        self.ids = []
        self.count = 0

    def bundle(self, config=None, host_config=None, *, mounts=(), files=None, image=None,
               hostname="ocitest", where=None, **kw):
        """A bundle whose config.json build_spec made (in ``where``, else the test's temporary
        directory); returns (bundle, cid, spec)."""
        self.count += 1
        bundle = (where or self.tmp_path) / ("bundle-%s-%d" % (self.name, self.count))
        bundle.mkdir()
        rootfs = bundle / "rootfs"
        subprocess.run(["cp", "-al", self.busybox_rootfs, str(rootfs)], check=True)
        for path, content in (files or {}).items():
            target = rootfs / path.lstrip("/")
            if os.path.lexists(target):
                os.unlink(target)        # never write through a link shared with the session
            target.parent.mkdir(parents=True, exist_ok=True)
            if callable(content):
                content(str(target))
            else:
                target.write_text(content)
        for name, text in (("hosts", "127.0.0.1\tlocalhost\n"), ("hostname", hostname + "\n"),
                           ("resolv.conf", "nameserver 127.0.0.1\n")):
            (bundle / name).write_text(text)
        cid = support.unique_id("oci")
        merged = merge_image_config(BUSYBOX_IMAGE if image is None else image, config or {})
        spec = build_spec(config=merged, host_config=host_config or {}, rootfs=str(rootfs),
                          container_dir=str(bundle), mounts=list(mounts),
                          cgroups_path="/%s/%s" % (CGROUP_PARENT, cid), hostname=hostname,
                          **kw)
        write_spec(str(bundle), spec)
        return bundle, cid, spec

    def run(self, config=None, host_config=None, *, check=True, timeout=60, **kw):
        """Run the container to its end; the CompletedProcess (text)."""
        bundle, cid, spec = self.bundle(config, host_config, **kw)
        self.ids.append(cid)
        r = subprocess.run([self.binary, "--root", self.state, "run", "-b", str(bundle), cid],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout)
        self.delete(cid)
        r.spec = spec
        if check and r.returncode != 0:
            raise AssertionError("%s run exited %d\nstdout: %s\nstderr: %s" % (
                self.name, r.returncode, r.stdout, r.stderr))
        return r

    def sh(self, script, host_config=None, config=None, **kw):
        """Run ``sh -c script``; its stdout."""
        config = dict(config or {}, Cmd=["sh", "-c", script])
        return self.run(config, host_config, **kw).stdout

    def delete(self, cid):
        subprocess.run([self.binary, "--root", self.state, "delete", "--force", cid],
                       capture_output=True, timeout=30)
        for path in cgroup_dirs(cid):
            if os.path.isdir(path):
                os.rmdir(path)

    def cleanup(self):
        for cid in self.ids:
            self.delete(cid)
        for path in cgroup_dirs(""):
            try:
                os.rmdir(path)
            except OSError:
                pass


_PROBED = {}


def _probe(name, binary, tmp_path_factory, busybox_rootfs):
    """Why the peer ``name`` cannot run a container from build_spec's config on this host
    (crun refuses hybrid cgroup hosts), or None; probed once per session."""
    if name not in _PROBED:
        base = tmp_path_factory.mktemp("probe-" + name)
        rt = OciRun(name, binary, str(base / "state"), base, busybox_rootfs)
        try:
            r = rt.run({"Cmd": ["true"]}, check=False)
            _PROBED[name] = None if r.returncode == 0 else r.stderr.strip()[-300:]
        finally:
            rt.cleanup()
    return _PROBED[name]


@pytest.fixture(params=["pyrunc", "runc", "crun"])
def oci_run(request, tmp_path, tmp_path_factory, private_mount_ns, pyrunc_bin, busybox_rootfs):
    if request.param == "pyrunc":
        binary = pyrunc_bin
    else:
        binary = support.need(request.param)
        reason = _probe(request.param, binary, tmp_path_factory, busybox_rootfs)
        if reason:
            pytest.skip("%s cannot run a container on this host: %s" % (request.param, reason))
    rt = OciRun(request.param, binary, str(tmp_path / ("state-" + request.param)), tmp_path,
                busybox_rootfs)
    yield rt
    rt.cleanup()


@pytest.fixture
def pyrunc_run(tmp_path, private_mount_ns, pyrunc_bin, busybox_rootfs):
    """The same runner with pyrunc only (for the tests that compare with a fixed oracle)."""
    rt = OciRun("pyrunc", pyrunc_bin, str(tmp_path / "state-pyrunc"), tmp_path, busybox_rootfs)
    yield rt
    rt.cleanup()
