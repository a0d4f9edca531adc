"""Config fields seen from inside real containers (scheduler, I/O priority, personality, console
size), and linux.resources refused before anything is created or named when too low to start."""
import array
import os
import socket
import subprocess

import pytest

from pyrunc import errors
from pyrunc.libcontainer import cgroups
from pyrunc.libcontainer.container import Factory
from support import unique_id

pytestmark = pytest.mark.usefixtures("private_mount_ns")


@pytest.fixture
def factory(tmp_path):
    f = Factory(root=str(tmp_path / "state"))
    yield f
    if os.path.isdir(f.root):
        for c in f.list():
            c.destroy(force=True)


def run(factory, bundle, tmp_path):
    """Create, start and wait for the container; (exit status, its output)."""
    out = tmp_path / "out"
    with open(out, "wb") as f:
        c = factory.create(unique_id("cfg"), bundle, stdio=(0, f.fileno(), f.fileno()))
    c.start()
    status = c.wait()
    c.destroy()
    return status, out.read_text()


def test_scheduler_io_priority_and_personality(factory, make_bundle, tmp_path):
    def attributes(spec):
        spec["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 7}
        spec["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 6}
        spec["linux"]["personality"] = {"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]}
    b = make_bundle(["sh", "-c", "cut -d' ' -f19,41 /proc/self/stat; ionice; uname -m; "
                                 "cat /proc/self/personality"], mutate=attributes)
    status, out = run(factory, b, tmp_path)
    assert status == 0, out
    stat, io, machine, personality = out.splitlines()
    assert stat == "7 3"                        # nice 7, SCHED_BATCH
    assert io == "best-effort: prio 6"
    assert machine in ("i686", "i386")          # PER_LINUX32
    assert int(personality, 16) == 0x0040000 | 0x0008


def test_realtime_scheduler(factory, make_bundle, tmp_path):
    """SCHED_FIFO needs realtime time in the container's cgroup (the kernel's realtime group
    scheduling gives a new v1 cpu cgroup none)."""
    def fifo(spec):
        spec["process"]["scheduler"] = {"policy": "SCHED_FIFO", "priority": 3}
        spec["linux"]["resources"] = {"cpu": {"realtimeRuntime": 10000,
                                              "realtimePeriod": 1000000}}
    b = make_bundle(["sh", "-c", "cut -d' ' -f18,41 /proc/self/stat"], mutate=fifo)
    status, out = run(factory, b, tmp_path)
    assert status == 0, out
    assert out.split() == ["-4", "1"]           # kernel prio -1 - rt_priority; SCHED_FIFO


def test_console_size(factory, make_bundle, tmp_path):
    def tty(spec):
        spec["process"]["terminal"] = True
        spec["process"]["consoleSize"] = {"height": 33, "width": 111}
    path = str(tmp_path / "console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    c = factory.create(unique_id("tty"), make_bundle(["stty", "size"], mutate=tty),
                       console_socket=path)
    conn, _ = listener.accept()
    fds = array.array("i")
    _, ancdata, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
    conn.close()
    listener.close()
    fds.frombytes(ancdata[0][2][:fds.itemsize])
    master = fds[0]
    output = b""
    try:
        c.start()
        assert c.wait() == 0
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:          # EIO: the other side is closed
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(master)
        c.destroy()
    assert output.strip() == b"33 111"


@pytest.mark.parametrize("resources, category, message", [
    ({"memory": {"limit": 100 << 20, "swap": 1 << 20}}, errors.InvalidArgument,
     "linux.resources.memory.swap: 1048576 is below memory.limit 104857600"),
    ({"cpu": {"cpus": "3-1"}}, errors.InvalidArgument, "linux.resources.cpu.cpus"),
    ({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}, errors.Unavailable,
     'cgroup controller "hugetlb" is not available'),
])
def test_bad_resources_create_nothing(factory, make_bundle, resources, category, message):
    if category is errors.Unavailable and cgroups.new_manager(None, "x").version != 1:
        pytest.skip("a v1 host without hugetlb in its v1 hierarchies")
    cid = unique_id("res")
    b = make_bundle(["true"], mutate=lambda spec: spec["linux"].update(resources=resources))
    with pytest.raises(category) as e:
        factory.create(cid, b)
    assert message in str(e.value)
    assert not os.path.exists(factory.root)     # checked before the state dir is made
    assert not any(os.path.exists(d) for d in cgroups.new_manager(None, cid).paths().values())


@pytest.mark.parametrize("resources, message", [
    ({"memory": {"limit": 65536}},
     "pyrunc: config.json: the memory limit (linux.resources.memory.limit = 65536 bytes) is too "
     "low for the container to start: its init was OOM-killed ("),
    ({"pids": {"limit": 1}},
     "pyrunc: config.json: the pids limit (linux.resources.pids.limit = 1) is too low for the "
     "container to start: fork failed ("),
])
def test_limit_too_low_to_start(pyrunc_bin, make_bundle, tmp_path, resources, message):
    root = str(tmp_path / "state")
    cid = unique_id("low")
    b = make_bundle(["true"], mutate=lambda spec: spec["linux"].update(resources=resources))
    r = subprocess.run([pyrunc_bin, "--root", root, "run", "--bundle", b, cid],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode == errors.InvalidArgument.exit_code, r.stderr
    assert r.stderr.startswith(message), r.stderr
    assert len(r.stderr.splitlines()) == 1
    assert not os.path.exists(root) or os.listdir(root) == []
    assert not any(os.path.exists(d) for d in cgroups.new_manager(None, cid).paths().values())
