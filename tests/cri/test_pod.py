"""A pod on pyrunc through containerd's CRI plugin, spoken to as a kubelet would.

The oracles are outside pyrunc: containerd's answers over CRI, the registry's image IDs, the
kernel's /proc (namespaces, cgroups, mounts), the links of the node's network namespace, and
runc's own ``list`` beside pyrunc's for which runtime ran what.
"""
import datetime
import json
import os
import re
import time

import grpc
import pytest

pytestmark = pytest.mark.peer

LOG_LINE = re.compile(r"^(\S+) (stdout|stderr) ([FP]) (.*)$")
SERVER = ("server", ["sh", "-c", "mkdir -p /www && echo hello-from-pod > /www/index.html"
                     " && echo serving && exec httpd -f -p 8080 -h /www"])
CLIENT = ("client", ["sh", "-c", "echo client-started; echo to-stderr >&2;"
                     " trap 'exit 0' TERM; while :; do sleep 0.2; done"])


def exec_sync(node, cid, *cmd, timeout=20):
    r = node.runtime.ExecSync(node.pb.ExecSyncRequest(container_id=cid, cmd=list(cmd),
                                                      timeout=timeout), timeout=timeout + 10)
    return r.stdout.decode(), r.stderr.decode(), r.exit_code


def status(node, cid):
    return node.runtime.ContainerStatus(node.pb.ContainerStatusRequest(
        container_id=cid, verbose=True), timeout=30)


def read_log(path, want, timeout=10):
    """The CRI log lines of ``path`` once ``want`` (a text) is among them."""
    deadline = time.monotonic() + timeout
    while True:
        lines = open(path).read().splitlines() if os.path.exists(path) else []
        if any(line.endswith(" " + want) for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def parse_time(text):
    """An RFC 3339 time with nanoseconds (as containerd writes them) to a datetime."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)", text)
    assert m, text
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.datetime.fromisoformat(m.group(1) + zone)


def test_version_names_containerd(cri_node):
    v = cri_node.runtime.Version(cri_node.pb.VersionRequest(version="v1"), timeout=30)
    assert v.runtime_name == "containerd"
    assert v.runtime_api_version == "v1"


def test_pull_through_the_mirror(cri_node):
    """PullImage resolves docker.io/library/busybox through the loopback mirror; the image
    ID it answers is the one pyrunc's engine pushed."""
    ref = cri_node.pull("busybox")
    assert ref == cri_node.image_ids["busybox"]


@pytest.mark.parametrize("handler", ["pyrunc", "runc"])
def test_pod_end_to_end(cri_node, handler):
    """The pod on ``pyrunc``; the same on ``runc`` is the reference: every check holds for
    both, and the runtime roots tell which one ran the containers."""
    node, pb = cri_node, cri_node.pb
    other = "runc" if handler == "pyrunc" else "pyrunc"
    node.pull("busybox")
    started = datetime.datetime.now(datetime.timezone.utc)
    sid, config, (server, client) = node.run_pod("web-" + handler, handler, [SERVER, CLIENT])
    try:
        # the sandbox and both containers run, on the handler asked for
        pods = {p.id: p for p in node.runtime.ListPodSandbox(pb.ListPodSandboxRequest(),
                                                             timeout=30).items}
        assert pods[sid].runtime_handler == handler
        assert pods[sid].state == pb.SANDBOX_READY
        listed = node.runtime.ListContainers(pb.ListContainersRequest(
            filter=pb.ContainerFilter(pod_sandbox_id=sid)), timeout=30).containers
        assert {c.id: c.state for c in listed} == {server: pb.CONTAINER_RUNNING,
                                                   client: pb.CONTAINER_RUNNING}

        # the handler's runtime ran each of them: its state under the shim's runtime root has
        # them, the other handler's root has none of them
        assert node.runtime_list(handler) == sorted([sid, server, client])
        assert node.runtime_list(other) == []

        # one network namespace for the pod: the sandbox's (pause) and both containers'
        sandbox_status = node.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(
            pod_sandbox_id=sid, verbose=True), timeout=30)
        pause_pid = json.loads(sandbox_status.info["info"])["pid"]
        pod_net = os.readlink("/proc/%d/ns/net" % pause_pid)
        for cid in (server, client):
            out, _, code = exec_sync(node, cid, "readlink", "/proc/self/ns/net")
            assert (out.strip(), code) == (pod_net, 0)
        assert pod_net != os.readlink("/proc/thread-self/ns/net")

        # the pod's address comes from the CNI bridge plugin's host-local range, and eth0
        # inside has it
        ip = sandbox_status.status.network.ip
        assert ip.startswith("10.251.7."), ip
        out, _, code = exec_sync(node, client, "ip", "-4", "-o", "addr", "show", "eth0")
        assert code == 0 and (" %s/24 " % ip) in out, out

        # what the pod holds on the node while it runs (what must be gone after): the
        # kernel puts the sandbox in its cgroup under the pod's parent, containerd has the
        # rootfs and /dev/shm mounts and the network namespace, the bridge has its veth
        with open("/proc/%d/cgroup" % pause_pid) as f:
            cgroups = f.read().splitlines()
        assert any(line.endswith(":%s/%s" % (node.cgroup_parent, sid)) for line in cgroups), \
            cgroups
        mounts = node.containerd_mounts()
        assert [m for m in mounts if sid in m] and [m for m in mounts if server in m], mounts
        assert node.shims()
        assert [link for link in node.links() if link.startswith("veth")]

        # the client reaches the server on the pod's loopback
        deadline = time.monotonic() + 15
        while True:
            out, err, code = exec_sync(node, client, "wget", "-q", "-O-",
                                       "http://127.0.0.1:8080/")
            if code == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert (out, code) == ("hello-from-pod\n", 0), err

        # ExecSync: both streams and the exit code
        assert exec_sync(node, client, "sh", "-c", "echo out; echo err >&2; exit 3") == \
            ("out\n", "err\n", 3)
        with pytest.raises(grpc.RpcError) as e:
            exec_sync(node, client, "/no/such/program")
        assert "/no/such/program" in e.value.details()
        assert "no such file or directory" in e.value.details()

        # ExecSync's timeout: containerd kills the exec'd process through the runtime
        with pytest.raises(grpc.RpcError) as e:
            exec_sync(node, client, "sleep", "1000", timeout=1)
        assert "timeout 1s exceeded" in e.value.details()
        deadline = time.monotonic() + 10
        while True:
            out, _, _ = exec_sync(node, client, "ps", "-o", "args")
            if "sleep 1000" not in out or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert "sleep 1000" not in out
        # CRI-format logs: TIMESTAMP STREAM F TEXT, in the file the kubelet asked for
        st = status(node, client).status
        assert st.log_path == os.path.join(config.log_directory, "client/0.log")
        lines = read_log(st.log_path, "to-stderr")
        parsed = [LOG_LINE.match(line) for line in lines]
        assert all(parsed), lines
        # (the two streams are read apart, so their order in the file is not fixed)
        assert sorted((m.group(2), m.group(3), m.group(4)) for m in parsed) == [
            ("stderr", "F", "to-stderr"), ("stdout", "F", "client-started")]
        for m in parsed:
            when = parse_time(m.group(1))
            assert started - datetime.timedelta(seconds=5) <= when <= \
                datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=5)
        assert "serving" in [LOG_LINE.match(line).group(4) for line in
                             read_log(status(node, server).status.log_path, "serving")]

        # stop the client: its TERM trap exits 0
        node.runtime.StopContainer(pb.StopContainerRequest(container_id=client, timeout=10),
                                   timeout=60)
        st = status(node, client).status
        assert (st.state, st.exit_code) == (pb.CONTAINER_EXITED, 0)
        assert st.finished_at >= st.started_at > 0
        node.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=client),
                                     timeout=60)
        assert node.runtime_list(handler) == sorted([sid, server])
    finally:
        node.remove_pod(sid)

    # nothing is left: no pod, no shim, no runtime state, no mount, no cgroup, no veth
    assert node.runtime.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=30).items == []
    assert node.runtime.ListContainers(pb.ListContainersRequest(), timeout=30).containers == []
    assert node.shims() == []
    assert node.runtime_list(handler) == []
    assert node.containerd_mounts() == []
    for parent in node.cgroup_dirs():
        assert [d for d in os.listdir(parent) if os.path.isdir(os.path.join(parent, d))] == [], \
            parent
    assert [link for link in node.links() if link.startswith("veth")] == []
    assert not os.path.exists("/proc/%d" % pause_pid)


def test_unknown_handler_is_refused(cri_node):
    """A RuntimeClass naming a handler the node lacks: RunPodSandbox fails naming it, and no
    sandbox, shim or veth is left."""
    node = cri_node
    with pytest.raises(grpc.RpcError) as e:
        node.run_pod("nohandler", "nosuchruntime")
    assert 'no runtime for "nosuchruntime" is configured' in e.value.details()
    assert node.runtime.ListPodSandbox(node.pb.ListPodSandboxRequest(), timeout=30).items == []
    assert node.shims() == []
    assert [link for link in node.links() if link.startswith("veth")] == []


def test_missing_program_fails_start_and_leaves_nothing(cri_node):
    """A container whose command the image lacks: pyrunc's error reaches the kubelet through
    StartContainer, naming the program and the reason; removing the pod leaves nothing."""
    node, pb = cri_node, cri_node.pb
    sid, config, _ = node.run_pod("broken", "pyrunc")
    try:
        cid = node.runtime.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=sid, config=node.container_config("main", ["/no/such/binary"]),
            sandbox_config=config), timeout=60).container_id
        with pytest.raises(grpc.RpcError) as e:
            node.runtime.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=60)
        assert "/no/such/binary: no such file or directory" in e.value.details()
        assert status(node, cid).status.state != pb.CONTAINER_RUNNING
        assert cid not in node.runtime_list("pyrunc")
    finally:
        node.remove_pod(sid)
    assert node.runtime.ListContainers(pb.ListContainersRequest(), timeout=30).containers == []
    assert node.shims() == []
    assert node.runtime_list("pyrunc") == []
    assert node.containerd_mounts() == []
    assert [link for link in node.links() if link.startswith("veth")] == []
