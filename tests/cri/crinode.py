"""A Kubernetes node without the kubelet: Debian's containerd with its CRI plugin, spoken to
over gRPC by a small CRI client, for the CRI tests and benchmarks/pod_start_cri.py.

``CriNode(workdir).start()`` does, in this order:

- makes a network namespace under ``workdir`` and moves the calling thread into it (the
  processes it starts from then on are in it too): containerd, the CNI plugins it runs, the
  pods' veths and bridge and the registry all live there, and vanish with it;
- starts a docker-registry on that namespace's loopback and pushes pyrunc's built-in busybox
  and a pause image (``pause.c``, compiled statically here) to it as ``library/busybox:latest``
  and ``library/pause:1``;
- starts containerd in a mount namespace of its own (tmpfs over /run/containerd, an overlay
  over /var/lib so libcni's cache stays out of the host's), with root, state, socket and CNI
  configuration under ``workdir``, the CRI plugin enabled, the docker.io mirror pointing at
  the registry, the pause image as ``sandbox_image``, and two runtime handlers: ``pyrunc``
  and ``runc``, both containerd's runc shim (``io.containerd.runc.v2``) with ``BinaryName``
  the one or the other command and a runtime root of their own under ``workdir``.

``stop()`` removes every pod, ends containerd, any shim left and the registry by PID, removes
the pods' cgroup parent and goes back to the original network namespace, removing the one it
made. ``cri.runtime`` and ``cri.images`` are the RuntimeService and ImageService stubs;
``pb`` the message classes (compiled from runtime_v1.proto into ``workdir``).
"""
from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import uuid

from support import pids_by_argv

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
CGROUP_ROOT = "/sys/fs/cgroup"
CNI_BIN = "/usr/lib/cni"
SHIM = "containerd-shim-runc-v2"
SUBNET = "10.251.7.0/24"
PAUSE_IMAGE = "docker.io/library/pause:1"
BUSYBOX_IMAGE = "docker.io/library/busybox:latest"
NAMESPACE = "k8s.io"                 # the containerd namespace of the CRI plugin


def compile_proto(out: str):
    """Compile runtime_v1.proto with grpcio-tools into ``out``; returns (pb2, pb2_grpc)."""
    from grpc_tools import protoc
    os.makedirs(out, exist_ok=True)
    rc = protoc.main(["protoc", "-I" + HERE, "--python_out=" + out, "--grpc_python_out=" + out,
                      os.path.join(HERE, "runtime_v1.proto")])
    if rc != 0:
        raise RuntimeError("protoc failed on runtime_v1.proto (%d)" % rc)
    if out not in sys.path:
        sys.path.insert(0, out)
    pb2 = importlib.import_module("runtime_v1_pb2")
    return pb2, importlib.import_module("runtime_v1_pb2_grpc")


def _registry_server_class():
    """The registry tests' RegistryServer (their conftest, loaded under a name of its own)."""
    import importlib.util
    path = os.path.join(TESTS, "engine", "registry", "conftest.py")
    spec = importlib.util.spec_from_file_location("engine_registry_fixtures_cri", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RegistryServer


def _tar_member(tar, name, data, mode):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 1700000000
    tar.addfile(info, io.BytesIO(data))


def pause_archive(work: str) -> str:
    """A docker-archive (``docker save`` format) of the image ``pause:1``: one layer holding
    ``/pause``, built from pause.c with ``gcc -static``; returns the archive's path."""
    binary = os.path.join(work, "pause")
    subprocess.run(["gcc", "-static", "-O2", "-Wall", "-Werror", "-o", binary,
                    os.path.join(HERE, "pause.c")], check=True)
    with open(binary, "rb") as f:
        program = f.read()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _tar_member(tar, "pause", program, 0o755)
    layer = raw.getvalue()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/pause"], "WorkingDir": "/"},
        "rootfs": {"type": "layers",
                   "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
        "history": [{"created_by": "COPY pause.c, built static /pause"}],
    }).encode()
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["pause:1"],
                            "Layers": ["layer.tar"]}]).encode()
    path = os.path.join(work, "pause.tar")
    with tarfile.open(path, "w") as tar:
        _tar_member(tar, "layer.tar", layer, 0o644)
        _tar_member(tar, "config.json", config, 0o644)
        _tar_member(tar, "manifest.json", manifest, 0o644)
    return path


def seed_registry(domain: str, work: str) -> dict:
    """Push busybox and pause:1 to the registry at ``domain``; returns {name: image ID}."""
    from pyrunc.engine import Engine
    from pyrunc.engine.distribution.push import push
    from pyrunc.engine.images import archive
    from pyrunc.engine.registry import RegistryOptions, RegistryService
    eng = Engine(os.path.join(work, "seed"))
    ids = {"busybox": eng.load_builtin("busybox")}
    with open(pause_archive(work), "rb") as f:
        archive.load(eng.images, f)
    ids["pause"] = eng.images.inspect("pause:1")["Id"]
    registries = RegistryService(RegistryOptions())
    try:
        for name, tag in (("busybox", "latest"), ("pause", "1")):
            target = "%s/library/%s:%s" % (domain, name, tag)
            eng.images.tag("%s:%s" % (name, tag), target)
            push(target, eng.images.content, registries, images=eng.images)
    finally:
        registries.close()
        eng.close()
    return ids


_LAUNCH = r"""
set -e
mount -t tmpfs -o mode=0711 tmpfs /run/containerd
mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$1,workdir=$2" /var/lib
shift 2
exec "$@"
"""


def _toml_str(value: str) -> str:
    return json.dumps(value)


class CriNode:
    """containerd + CRI in namespaces of its own under ``workdir``; see the module doc."""

    def __init__(self, workdir: str, pyrunc: str, runc: str = "/usr/sbin/runc") -> None:
        self.work = os.path.abspath(str(workdir))
        self.pyrunc = pyrunc
        self.runc = runc
        self.sock = os.path.join(self.work, "containerd.sock")
        self.state = os.path.join(self.work, "state")
        self.roots = {"pyrunc": os.path.join(self.work, "pyrunc-root"),
                      "runc": os.path.join(self.work, "runc-root")}
        self.cgroup_parent = "/pyrunc-cri-" + uuid.uuid4().hex[:10]
        self.bridge = "cri" + uuid.uuid4().hex[:8]
        self.netns_path = os.path.join(self.work, "netns", "node")
        self.saved_netns = None
        self.registry = None
        self.proc = None
        self.channel = None
        self.image_ids = {}

    # -- start -------------------------------------------------------------------------------

    def start(self) -> CriNode:
        try:
            self._enter_netns()
            self._start_registry()
            self._write_config()
            self._start_containerd()
            self._connect()
        except BaseException:
            self.stop()
            raise
        return self

    def _enter_netns(self) -> None:
        from pyroute2 import netns
        from pyrunc.engine.network import netlink
        netlink.create_netns(self.netns_path)
        self.saved_netns = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        fd = os.open(self.netns_path, os.O_RDONLY)
        try:
            netns.setns(fd, flags=0)
        finally:
            os.close(fd)

    def _start_registry(self) -> None:
        self.registry = _registry_server_class()(os.path.join(self.work, "registry")).start()
        self.image_ids = seed_registry(self.registry.domain, self.work)

    def _write_config(self) -> None:
        cni = os.path.join(self.work, "cni")
        os.makedirs(cni, exist_ok=True)
        with open(os.path.join(cni, "10-pods.conflist"), "w") as f:
            json.dump({"cniVersion": "0.4.0", "name": "pods", "plugins": [{
                "type": "bridge", "bridge": self.bridge, "isGateway": False,
                "isDefaultGateway": False, "ipMasq": False, "hairpinMode": False,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": SUBNET}]],
                         "dataDir": os.path.join(self.work, "ipam")}}]}, f)
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        lines = [
            "version = 2",
            "root = %s" % _toml_str(os.path.join(self.work, "root")),
            "state = %s" % _toml_str(self.state),
            'disabled_plugins = ["io.containerd.snapshotter.v1.btrfs",'
            ' "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",'
            ' "io.containerd.snapshotter.v1.aufs"]',
            "[grpc]", "  address = %s" % _toml_str(self.sock),
            "[ttrpc]", "  address = %s" % _toml_str(self.sock + ".ttrpc"),
            "[%s]" % cri,
            "  sandbox_image = %s" % _toml_str(PAUSE_IMAGE),
            "  netns_mounts_under_state_dir = true",
            # no process here may lower its OOM score (no CAP_SYS_RESOURCE on these machines):
            # the sandbox's -998 becomes containerd's own score
            "  restrict_oom_score_adj = true",
            '  stream_server_address = "127.0.0.1"',
            '  stream_server_port = "0"',
            "[%s.containerd]" % cri,
            '  snapshotter = "overlayfs"',
            '  default_runtime_name = "runc"',
        ]
        for name, binary in (("pyrunc", self.pyrunc), ("runc", self.runc)):
            lines += [
                "[%s.containerd.runtimes.%s]" % (cri, name),
                '  runtime_type = "io.containerd.runc.v2"',
                "[%s.containerd.runtimes.%s.options]" % (cri, name),
                "  BinaryName = %s" % _toml_str(binary),
                "  Root = %s" % _toml_str(self.roots[name]),
                "  SystemdCgroup = false",
            ]
        lines += [
            "[%s.cni]" % cri,
            "  bin_dir = %s" % _toml_str(CNI_BIN),
            "  conf_dir = %s" % _toml_str(cni),
            "  max_conf_num = 1",
            '[%s.registry.mirrors."docker.io"]' % cri,
            "  endpoint = [%s]" % _toml_str(self.registry.url),
        ]
        self.config = os.path.join(self.work, "config.toml")
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _start_containerd(self) -> None:
        upper = os.path.join(self.work, "varlib", "upper")
        lower_work = os.path.join(self.work, "varlib", "work")
        os.makedirs(upper)
        os.makedirs(lower_work)
        self.log = open(os.path.join(self.work, "containerd.log"), "w")
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", _LAUNCH,
             "sh", upper, lower_work, "containerd", "--config", self.config,
             "--log-level", "info"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("containerd did not start: %s" % self.log_tail())
            time.sleep(0.05)

    def _connect(self) -> None:
        import grpc
        self.pb, pb_grpc = compile_proto(os.path.join(self.work, "proto"))
        self.channel = grpc.insecure_channel("unix:" + self.sock)
        grpc.channel_ready_future(self.channel).result(timeout=20)
        self.runtime = pb_grpc.RuntimeServiceStub(self.channel)
        self.images = pb_grpc.ImageServiceStub(self.channel)

    def log_tail(self, size: int = 3000) -> str:
        with open(os.path.join(self.work, "containerd.log"), errors="replace") as f:
            return f.read()[-size:]

    # -- pods --------------------------------------------------------------------------------

    def sandbox_config(self, name: str):
        """A PodSandboxConfig for a pod ``name`` with its logs under ``workdir/logs/name``,
        its cgroups under this node's parent, every namespace shared in the pod."""
        pb = self.pb
        logs = os.path.join(self.work, "logs", name)
        os.makedirs(logs, exist_ok=True)
        return pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=uuid.uuid4().hex, namespace="default"),
            hostname=name, log_directory=logs,
            linux=pb.LinuxPodSandboxConfig(cgroup_parent=self.cgroup_parent))

    def container_config(self, name: str, command, image: str = BUSYBOX_IMAGE):
        pb = self.pb
        return pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name),
                                  image=pb.ImageSpec(image=image), command=list(command),
                                  log_path="%s/0.log" % name)

    def run_pod(self, name: str, handler: str, containers=()):
        """RunPodSandbox with ``handler``, then create and start each (name, command) of
        ``containers``; returns (sandbox id, sandbox config, [container ids])."""
        pb = self.pb
        config = self.sandbox_config(name)
        sid = self.runtime.RunPodSandbox(pb.RunPodSandboxRequest(
            config=config, runtime_handler=handler), timeout=120).pod_sandbox_id
        ids = []
        for cname, command in containers:
            cid = self.runtime.CreateContainer(pb.CreateContainerRequest(
                pod_sandbox_id=sid, config=self.container_config(cname, command),
                sandbox_config=config), timeout=60).container_id
            self.runtime.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=60)
            ids.append(cid)
        return sid, config, ids

    def remove_pod(self, sid: str) -> None:
        pb = self.pb
        self.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sid), timeout=60)
        self.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sid), timeout=60)

    def pull(self, image: str) -> str:
        return self.images.PullImage(self.pb.PullImageRequest(
            image=self.pb.ImageSpec(image=image)), timeout=120).image_ref

    # -- what is on the machine --------------------------------------------------------------

    def shims(self) -> list[int]:
        """PIDs of the runc shims serving this containerd."""
        return pids_by_argv(lambda argv: os.path.basename(argv[0]).decode(errors="replace")
                            == SHIM and self.sock.encode() in argv)

    def containerd_mounts(self) -> list[str]:
        """Mount points in containerd's mount namespace under its root and state directories
        (rootfs overlays, the sandboxes' /dev/shm, the pods' network namespaces)."""
        dirs = (self.state + "/", os.path.join(self.work, "root") + "/")
        try:
            with open("/proc/%d/mountinfo" % self._containerd_pid()) as f:
                return [line.split()[4] for line in f if line.split()[4].startswith(dirs)]
        except (OSError, ValueError):
            return []

    def _containerd_pid(self) -> int:
        """containerd's PID (the launcher's shell exec'd it, under unshare's child)."""
        with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
            children = f.read().split()
        return int(children[0]) if children else self.proc.pid

    def cgroup_dirs(self) -> list[str]:
        """The pods' cgroup parent directories that exist, in every hierarchy."""
        found = []
        for base in [CGROUP_ROOT] + [os.path.join(CGROUP_ROOT, d)
                                     for d in sorted(os.listdir(CGROUP_ROOT))]:
            path = base + self.cgroup_parent
            if os.path.isdir(path):
                found.append(path)
        return found

    def runtime_list(self, handler: str) -> list[str]:
        """IDs the runtime ``handler`` (pyrunc or runc) lists under its shim root."""
        root = os.path.join(self.roots[handler], NAMESPACE)
        binary = self.pyrunc if handler == "pyrunc" else self.runc
        r = subprocess.run([binary, "--root", root, "list", "--format", "json"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            if not os.path.exists(root):
                return []
            raise AssertionError("%s list: %s" % (handler, r.stderr))
        return sorted(c["id"] for c in json.loads(r.stdout or "null") or [])

    def links(self) -> list[str]:
        """The names of the links of the node's network namespace."""
        from pyroute2 import IPRoute
        with IPRoute() as ip:
            return sorted(link.get_attr("IFLA_IFNAME") for link in ip.get_links())

    # -- stop --------------------------------------------------------------------------------

    def stop(self) -> None:
        if self.channel is not None:
            try:
                pb = self.pb
                for pod in self.runtime.ListPodSandbox(pb.ListPodSandboxRequest(),
                                                       timeout=30).items:
                    self.remove_pod(pod.id)
            except Exception:
                pass
            self.channel.close()
            self.channel = None
        if self.proc is not None:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait()
            self.log.close()
            self.proc = None
        for pid in self.shims():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for path in sorted(self.cgroup_dirs(), reverse=True):
            for sub, _, _ in os.walk(path, topdown=False):
                try:
                    os.rmdir(sub)
                except OSError:
                    pass
        if self.registry is not None:
            self.registry.stop()
            self.registry = None
        from pyrunc.engine.network import netlink
        if self.saved_netns is not None:
            from pyroute2 import netns
            netns.setns(self.saved_netns, flags=0)
            os.close(self.saved_netns)
            self.saved_netns = None
        netlink.remove_netns(self.netns_path)
        netlink.release_netns_dir(os.path.dirname(self.netns_path))
