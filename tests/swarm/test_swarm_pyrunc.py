"""Docker Swarm on pyrunc: Debian's dockerd with ``--add-runtime pyrunc=<the pyrunc command>
--default-runtime pyrunc`` runs a single-node swarm on loopback, in network and mount namespaces
of its own (tests/dockerd_peer.py).

One service of busybox ``sleep`` goes through what a swarm operator does: three replicas, scaled
to five and back to two, one task's container killed (SIGKILL by its PID, from inside dockerd's
namespaces) and replaced by the swarm, a rolling update to a second tag with a new environment
variable, removal, ``swarm leave --force``, dockerd stopped; then nothing of it is left.

Which runtime ran each task is read from outside pyrunc: dockerd's record (HostConfig.Runtime),
containerd's (the runc shim's options name the pyrunc command as its BinaryName), runc, which
cannot load any of the states in the runtime root dockerd gives the shim, and the kernel (the
task's PID runs ``sleep`` with the environment the service asked for).
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time

import pytest

import support
from dockerd_peer import CGROUP_ROOT, DOCKERD, Dockerd

pytestmark = pytest.mark.peer

SERVICE = "web"
SLEEP = ["sleep", "1000"]
CONVERGE = 90  # seconds the CLI may wait for a service to converge


def _kernel_has_vxlan() -> bool:
    """Whether a vxlan link can be made: tried in a network namespace made for the question."""
    r = subprocess.run(["unshare", "--net", "--", "ip", "link", "add", "vx0", "type", "vxlan",
                        "id", "42", "dstport", "4789"], capture_output=True)
    return r.returncode == 0


def _protobuf_fields(data: bytes) -> dict[int, bytes]:
    """The length-delimited fields of a protobuf message (number -> bytes); varints skipped."""
    def varint(i: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            b = data[i]
            value |= (b & 0x7F) << shift
            i, shift = i + 1, shift + 7
            if not b & 0x80:
                return value, i
    fields, i = {}, 0
    while i < len(data):
        key, i = varint(i)
        if key & 7 == 0:
            _, i = varint(i)
        elif key & 7 == 2:
            size, i = varint(i)
            fields[key >> 3] = data[i:i + size]
            i += size
        else:
            raise AssertionError("unexpected protobuf wire type %d" % (key & 7))
    return fields


def _ns_inode(pid: int, kind: str) -> int:
    return os.stat("/proc/%d/ns/%s" % (pid, kind)).st_ino


def _pids_in_ns(kind: str, inode: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat("/proc/%s/ns/%s" % (name, kind)).st_ino == inode:
                    found.append(int(name))
            except OSError:
                pass
    return found


def _shims_of(address: str) -> list[int]:
    """The containerd-shim-runc-v2 processes serving the containerd at ``address``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and address.encode() in argv:
            found.append(int(name))
    return found


def _wait(predicate, what: str, timeout: float = CONVERGE):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(0.3)


class Swarm:
    """The dockerd under test, and the views of it the test compares."""

    def __init__(self, d: Dockerd, pyrunc: str, runc: str, ctr: str) -> None:
        self.d, self.pyrunc, self.runc, self.ctr = d, pyrunc, runc, ctr
        assert d.proc is not None
        self.pid = d.proc.pid
        self.containerd_sock = os.path.join(d.workdir, "exec", "containerd", "containerd.sock")
        # dockerd 20.10 gives the runc shim of every runtime it adds this root ("runtime-" and
        # the stock runtime's name), so pyrunc's states and any runc state would share it.
        self.runtime_root = os.path.join(d.workdir, "exec", "runtime-runc", "moby")

    def docker(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.d.docker(*args, timeout=CONVERGE + 30, **kw)

    def inside(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """A command in dockerd's network and mount namespaces."""
        return subprocess.run(["nsenter", "-t", str(self.pid), "-n", "-m", "--", *args],
                              capture_output=True, text=True, check=check, timeout=30)

    def task_containers(self, service: str = SERVICE, running: bool = True) -> dict[str, dict]:
        """A service's task containers (docker's view): id -> docker inspect."""
        args = ["ps", "-q", "--no-trunc", "--filter",
                "label=com.docker.swarm.service.name=%s" % service]
        if not running:
            args.insert(1, "-a")
        ids = self.docker(*args).stdout.split()
        if not ids:
            return {}
        # A container may go between the two calls (inspect still prints the others).
        docs = json.loads(self.docker("inspect", *ids, check=False).stdout or "[]")
        return {c["Id"]: c for c in docs if not running or c["State"]["Running"]}

    def pyrunc_states(self) -> dict[str, dict]:
        r = subprocess.run([self.pyrunc, "--root", self.runtime_root, "list", "-f", "json"],
                           capture_output=True, text=True, check=True)
        return {s["id"]: s for s in json.loads(r.stdout or "null") or []}

    def runc_ids(self) -> list[str]:
        r = subprocess.run([self.runc, "--root", self.runtime_root, "list", "-q"],
                           capture_output=True, text=True)
        return r.stdout.split()

    def binary_name(self, cid: str) -> str:
        """The runtime command containerd's runc shim runs for the container: field 6
        (BinaryName) of the shim options containerd keeps (protobuf) for it."""
        r = subprocess.run([self.ctr, "--address", self.containerd_sock, "-n", "moby",
                            "containers", "info", cid], capture_output=True, text=True,
                           check=True)
        options = json.loads(r.stdout)["Runtime"]["Options"]
        assert options["type_url"] == "containerd.runc.v1.Options", options
        return _protobuf_fields(base64.b64decode(options["value"])).get(6, b"").decode()

    def netns_mounts(self) -> dict[str, int]:
        """The network namespaces dockerd keeps mounted in its exec root: name -> inode."""
        netns_dir = os.path.join(self.d.workdir, "exec", "netns")
        found = {}
        with open("/proc/%d/mountinfo" % self.pid) as f:
            for line in f:
                fields = line.split()
                if fields[4].startswith(netns_dir + "/") and fields[3].startswith("net:["):
                    found[os.path.basename(fields[4])] = int(fields[3][5:-1])
        return found

    def converged(self, n: int, without: str = "", service: str = SERVICE) -> dict[str, dict]:
        """Wait until exactly ``n`` task containers of ``service`` run (``without`` not among
        them) and pyrunc holds the states of exactly the running containers, all running;
        return the service's."""
        def check():
            tasks = self.task_containers(service)
            running = set(self.docker("ps", "-q", "--no-trunc").stdout.split())
            states = self.pyrunc_states()
            if len(tasks) == n and without not in tasks and set(states) == running and all(
                    st["status"] == "running" for st in states.values()):
                return tasks
            return None
        return _wait(check, "%d running tasks of %s on pyrunc" % (n, service))

    def assert_ran_on_pyrunc(self, tasks: dict[str, dict], env: str | None = None,
                             argv: list[str] = SLEEP) -> None:
        states = self.pyrunc_states()
        runc_sees = set(self.runc_ids())
        for cid, doc in tasks.items():
            pid = doc["State"]["Pid"]
            assert doc["HostConfig"]["Runtime"] == "pyrunc", doc["HostConfig"]["Runtime"]
            assert self.binary_name(cid) == self.pyrunc
            assert states[cid]["pid"] == pid, (states[cid], pid)
            assert cid not in runc_sees
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                assert f.read().split(b"\0")[:-1] == [a.encode() for a in argv]
            if env is not None:
                with open("/proc/%d/environ" % pid, "rb") as f:
                    assert env.encode() in f.read().split(b"\0"), (cid, env)


@pytest.fixture
def swarm(tmp_path, private_mount_ns, pyrunc_bin):
    if not os.path.exists(DOCKERD):
        pytest.skip("Debian's dockerd (package docker.io) is not installed")
    for tool in ("unshare", "nsenter", "ip"):
        if not shutil.which(tool):
            pytest.skip("%s is not installed" % tool)
    shim, runc, ctr = (support.need(t) for t in ("containerd-shim-runc-v2", "runc", "ctr"))
    assert shim
    if not _kernel_has_vxlan():
        pytest.skip("the kernel cannot make vxlan links (swarm's ingress overlay network)")
    d = Dockerd(str(tmp_path / "d"), extra_args=(
        "--add-runtime", "pyrunc=%s" % pyrunc_bin, "--default-runtime", "pyrunc"))
    d.start()
    s = Swarm(d, pyrunc_bin, runc, ctr)
    try:
        yield s
    finally:
        d.stop()
        # A failed test may leave shims and containers behind a dockerd that died early: end
        # those we can name (the shims of its containerd, the processes in the cgroups made
        # for its containers) by PID, then remove those cgroups again.
        leftovers = _shims_of(s.containerd_sock)
        for top, _, files in os.walk(os.path.join(CGROUP_ROOT, "pids", d.cgroup_parent)):
            if "cgroup.procs" in files:
                with open(os.path.join(top, "cgroup.procs")) as f:
                    leftovers += [int(pid) for pid in f.read().split()]
        for pid in leftovers:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        if leftovers:
            time.sleep(0.5)
            d.stop()


def test_swarm_on_pyrunc(swarm):
    s = swarm
    started = time.monotonic()
    s.d.load_builtin("busybox")
    s.docker("tag", "busybox:latest", "busybox:v2")
    info = s.docker("info", "-f", "{{json .DefaultRuntime}} {{json .Runtimes}}").stdout
    assert info.startswith('"pyrunc" ') and '"pyrunc"' in info.split(" ", 1)[1], info

    s.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    assert s.docker("info", "-f", "{{.Swarm.LocalNodeState}}").stdout.strip() == "active"

    # Three replicas; the CLI returns once the service has converged.
    s.docker("service", "create", "--name", SERVICE, "--replicas", "3", "--no-resolve-image",
             "--restart-delay", "1s", "--stop-grace-period", "1s", "busybox:latest", *SLEEP)
    tasks = s.converged(3)
    s.assert_ran_on_pyrunc(tasks)

    # Scale up, then down: the states pyrunc holds follow the running tasks exactly.
    s.docker("service", "scale", "%s=5" % SERVICE)
    five = s.converged(5)
    s.assert_ran_on_pyrunc(five)
    assert set(tasks) <= set(five)
    s.docker("service", "scale", "%s=2" % SERVICE)
    two = s.converged(2)
    s.assert_ran_on_pyrunc(two)
    assert set(two) < set(five)
    for cid in set(five) - set(two):
        assert not os.path.exists("/proc/%d" % five[cid]["State"]["Pid"])

    # Kill one task's container by its PID from inside dockerd's namespaces: the swarm sees
    # the task fail and starts another one in its place.
    victim = sorted(two)[0]
    s.inside("kill", "-KILL", str(two[victim]["State"]["Pid"]))
    replaced = s.converged(2, without=victim)
    s.assert_ran_on_pyrunc(replaced)
    dead = json.loads(s.docker("inspect", victim).stdout)[0]["State"]
    assert (dead["Running"], dead["ExitCode"]) == (False, 137), dead

    # A rolling update to the second tag with one more environment variable: every task is
    # replaced, one at a time, and the update completes.
    s.docker("service", "update", "--image", "busybox:v2", "--no-resolve-image",
             "--env-add", "SWARM_ROLL=2", "--update-parallelism", "1", SERVICE)
    service = json.loads(s.docker("service", "inspect", SERVICE).stdout)[0]
    assert service["UpdateStatus"]["State"] == "completed", service["UpdateStatus"]
    updated = s.converged(2)
    assert not set(updated) & set(replaced)
    for doc in updated.values():
        assert doc["Config"]["Image"] == "busybox:v2", doc["Config"]["Image"]
    s.assert_ran_on_pyrunc(updated, env="SWARM_ROLL=2")

    # Removal: no task container, no state, no shim, no container mount in dockerd's mounts.
    s.docker("service", "rm", SERVICE)
    _wait(lambda: not s.task_containers(running=False), "the task containers to be removed")
    _wait(lambda: not _shims_of(s.containerd_sock), "the shims to exit")
    assert s.pyrunc_states() == {}
    # the compiled-seccomp cache stays by design (tests/libcontainer/test_seccomp_cache.py)
    assert [n for n in os.listdir(s.runtime_root) if n != "@seccomp-cache"] == []
    layers = os.path.join(s.d.workdir, "data", "overlay2")
    with open("/proc/%d/mountinfo" % s.pid) as f:
        mounted = [line for line in f if " %s/" % layers in line]
    assert mounted == [], mounted

    # Leaving the swarm takes the ingress network and its namespaces (the ingress sandbox,
    # the overlay's own) away.
    swarm_netns = s.netns_mounts()
    assert {"ingress_sbox"} < set(swarm_netns), swarm_netns
    s.docker("swarm", "leave", "--force")
    assert s.docker("info", "-f", "{{.Swarm.LocalNodeState}}").stdout.strip() == "inactive"
    assert "ingress" not in s.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert s.netns_mounts() == {}

    # dockerd stopped: no process is left in its namespaces or in those it kept mounted, so
    # they went, and with them their bridges (docker0, docker_gwbridge, still there until now)
    # and mounts; no shim; the cgroups made for its containers are gone.
    bridges = s.inside("ip", "-o", "link", "show", "type", "bridge").stdout
    assert " docker_gwbridge: " in bridges and " docker0: " in bridges, bridges
    net, mnt = _ns_inode(s.pid, "net"), _ns_inode(s.pid, "mnt")
    s.d.stop()
    assert _pids_in_ns("mnt", mnt) == []
    with open("/proc/self/mountinfo") as f:
        ours = f.read()
    for inode in (net, *swarm_netns.values()):
        assert _pids_in_ns("net", inode) == [] and "net:[%d]" % inode not in ours
    assert _shims_of(s.containerd_sock) == []
    for controller in os.listdir(CGROUP_ROOT):
        assert not os.path.exists(os.path.join(CGROUP_ROOT, controller, s.d.cgroup_parent))
    print("swarm test took %.1f s" % (time.monotonic() - started))


HTTPD = ["httpd", "-f", "-p", "80", "-h", "/www"]
SERVE = ["sh", "-c", "mkdir /www && hostname > /www/index.html && exec %s" % " ".join(HTTPD)]


def test_swarm_overlay_network_on_pyrunc(swarm):
    """Tasks on pyrunc, attached to a swarm overlay network (vxlan), reach each other by the
    addresses and names the swarm gives them, and a port published in host mode reaches a
    task. Names resolve by DNS round robin: a virtual IP and the routing mesh need IPVS, which
    this kernel lacks (not tested)."""
    s = swarm
    s.d.load_builtin("busybox")
    s.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    s.docker("network", "create", "--driver", "overlay", "backend")
    common = ("--no-resolve-image", "--stop-grace-period", "1s")
    s.docker("service", "create", "--name", "web", "--replicas", "2", "--network", "backend",
             "--endpoint-mode", "dnsrr", *common, "busybox:latest", *SERVE)
    s.docker("service", "create", "--name", "edge", "--publish",
             "mode=host,target=80,published=8080", *common, "busybox:latest", *SERVE)
    web = s.converged(2, service="web")
    edge = s.converged(1, service="edge")
    s.assert_ran_on_pyrunc(web, argv=HTTPD)
    s.assert_ran_on_pyrunc(edge, argv=HTTPD)

    # Each task's address on the overlay, as docker reports it and as its network namespace
    # has it.
    address = {}
    for cid, doc in web.items():
        ip = doc["NetworkSettings"]["Networks"]["backend"]["IPAddress"]
        addrs = subprocess.run(["nsenter", "-t", str(doc["State"]["Pid"]), "-n", "ip", "-o",
                                "-4", "addr", "show"], capture_output=True, text=True,
                               check=True).stdout
        assert " %s/" % ip in addrs, (ip, addrs)
        address[cid] = ip

    # From inside each task (docker exec, which pyrunc runs): swarm's DNS names both tasks,
    # and each task's page, fetched over the overlay, is the other task's hostname.
    for cid in web:
        answer = s.docker("exec", cid, "nslookup", "tasks.web").stdout
        found = {line.split()[-1] for line in answer.splitlines()
                 if line.startswith("Address:") and not line.rstrip().endswith(":53")}
        assert found == set(address.values()), answer
        for other, doc in web.items():
            page = s.docker("exec", cid, "wget", "-qO-", "http://%s/" % address[other]).stdout
            assert page == doc["Config"]["Hostname"] + "\n", (page, doc["Config"]["Hostname"])

    # The published port, from dockerd's network namespace.
    (edge_doc,) = edge.values()
    page = s.inside("wget", "-qO-", "http://127.0.0.1:8080/").stdout
    assert page == edge_doc["Config"]["Hostname"] + "\n", page

    s.docker("service", "rm", "web", "edge")
    _wait(lambda: not s.docker("ps", "-aq").stdout.split(), "the task containers to be removed")
    s.docker("network", "rm", "backend")
    s.docker("swarm", "leave", "--force")
    assert s.pyrunc_states() == {}
    assert s.netns_mounts() == {}
    _wait(lambda: not _shims_of(s.containerd_sock), "the shims to exit")
