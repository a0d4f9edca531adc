"""Fixtures for the shim and lifecycle-manager tests: real containers from busybox bundles.

``runtime`` is parametrized over the runtimes with runc's command line, and ``create_path``
over the manager's two ways to create a pyrunc container: ``cold`` (the shim runs ``pyrunc
create``) and ``warm`` (the manager's create server runs the create in process and executes the
shim in adopt mode); a peer runtime is always created the cold way, so its warm items are
deselected. pyrunc is the runtime
under test: it is never probed, and a missing pyrunc fails the test. The peers (runc, crun) are
probed once: a peer that is missing or cannot run a container on this host (crun on a hybrid
cgroup host with controllers on cgroup2) is skipped with its own error as the reason. Every test's manager is torn down checking that no shim, no
container, no cgroup and no state is left behind.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

from pyrunc.containerd.shim.client import shim_binary
from support import pids_by_argv
from pyrunc.containerd.tasks import TaskManager

PEERS = ["runc", "crun"]
RUNTIMES = ["pyrunc"] + PEERS
_probed = {}


def runtime_path(name):
    if name == "pyrunc":
        path = os.path.join(os.path.dirname(sys.executable), "pyrunc")
        return path if os.path.exists(path) else None
    return shutil.which(name)


def probe(name, tmp_path_factory, busybox_rootfs):
    """None if the peer ``name`` runs a busybox container here, else the reason it cannot."""
    assert name in PEERS, "pyrunc is under test, not probed like a peer"
    if name in _probed:
        return _probed[name]
    path = runtime_path(name)
    if not path:
        _probed[name] = "%s is not installed" % name
        return _probed[name]
    from pyrunc.containerd.runtime import spec as runtime_spec
    work = tmp_path_factory.mktemp("probe-" + name)
    bundle = work / "bundle"
    bundle.mkdir()
    subprocess.run(["cp", "-al", busybox_rootfs, str(bundle / "rootfs")], check=True)
    spec = runtime_spec.example_spec(args=["true"], terminal=False)
    spec["mounts"] = [m for m in spec["mounts"] if m["type"] != "cgroup"]
    runtime_spec.write_spec(str(bundle), spec)
    cid = "shimt-probe-%s" % uuid.uuid4().hex[:8]
    try:
        proc = subprocess.run([path, "--root", str(work / "state"), "run", "--bundle",
                               str(bundle), cid], capture_output=True, timeout=30)
        reason = None if proc.returncode == 0 else (
            "%s cannot run a container here: %s" % (name, proc.stderr.decode().strip()[-300:]))
    except subprocess.TimeoutExpired:
        reason = "%s run timed out" % name
    subprocess.run([path, "--root", str(work / "state"), "delete", "--force", cid],
                   capture_output=True)
    _probed[name] = reason
    return reason


@pytest.fixture(params=["pyrunc"] + [pytest.param(p, marks=pytest.mark.peer) for p in PEERS])
def runtime(request, private_mount_ns, tmp_path_factory, busybox_rootfs):
    if request.param == "pyrunc":
        if not runtime_path("pyrunc"):
            pytest.fail("pyrunc is not installed in %s: run scripts/install.sh"
                        % os.path.dirname(sys.executable))
        return "pyrunc"
    reason = probe(request.param, tmp_path_factory, busybox_rootfs)
    if reason:
        pytest.skip(reason)
    return request.param


@pytest.fixture(params=["cold", "warm"])
def create_path(request):
    """"warm": managers are made with ``warm_create=True``."""
    return request.param


def pytest_collection_modifyitems(config, items):
    """A peer's create never goes through the create server: its "warm" items would run the
    cold path again."""
    keep, dropped = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("create_path") == "warm" and params.get("runtime") in PEERS:
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def create_servers_of(pid):
    """Pids of the create servers that are children of ``pid`` (run by the pyrunc launcher:
    ``pyrunc create-server ...``, then ``python pyrunc-python create-server ...``)."""
    return [p for p in pids_by_argv(lambda argv: b"create-server" in argv[1:3])
            if _ppid(p) == pid]


def _ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None


def check_manager_closed(mgr):
    """Close the manager; its create server must be gone (waited for) afterwards."""
    server = mgr.create_server.pid if mgr.create_server is not None else None
    mgr.close()
    if server is not None:
        assert not os.path.exists("/proc/%d" % server), "create server %d left" % server
    assert create_servers_of(os.getpid()) == []


@pytest.fixture(scope="session")
def shim_built():
    try:
        return shim_binary()
    except Exception as e:      # noqa: BLE001 - reported as the failure reason
        pytest.fail(str(e))


def new_id(prefix="c"):
    """Container ids unique on this host (cgroup paths are named after them)."""
    return "shimt-%s-%s" % (prefix, uuid.uuid4().hex[:10])


def shim_pids_under(root):
    """Pids of live shims whose state directory is under ``root``."""
    return pids_by_argv(lambda argv: argv[0].endswith(b"pyrunc-shim") and any(
        a.startswith(root.encode()) for a in argv))


def leftover_cgroups(ids):
    found = []
    for controller in sorted(os.listdir("/sys/fs/cgroup")):
        base = os.path.join("/sys/fs/cgroup", controller)
        if not os.path.isdir(base) or os.path.islink(base):
            continue
        for cid in ids:
            if os.path.exists(os.path.join(base, cid)):
                found.append(os.path.join(base, cid))
    return found


def cleanup_root(root, runtime_names=("runc", "crun", "pyrunc")):
    """Force everything under a manager root away; returns what had to be removed by force."""
    leaks = []
    ids = set()
    tasks_dir = os.path.join(root, "tasks")
    if os.path.isdir(tasks_dir):
        ids.update(os.listdir(tasks_dir))
    for name in os.listdir(os.path.join(root, "runtime")) if os.path.isdir(
            os.path.join(root, "runtime")) else []:
        state = os.path.join(root, "runtime", name)
        ids.update(os.listdir(state))
        for cid in os.listdir(state):
            path = runtime_path(name)
            if path:
                subprocess.run([path, "--root", state, "delete", "--force", cid],
                               capture_output=True)
            leaks.append("runtime state %s/%s" % (name, cid))
    for pid in shim_pids_under(root):
        leaks.append("shim %d" % pid)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for cg in leftover_cgroups(ids):
        leaks.append("cgroup " + cg)
        try:
            os.rmdir(cg)
        except OSError:
            pass
    return leaks


@pytest.fixture
def manager(tmp_path, runtime, shim_built, create_path):
    """A TaskManager on a fresh root; teardown fails the test on leftovers after deleting."""
    root = str(tmp_path / "root")
    mgr = TaskManager(root, runtime=runtime, warm_create=create_path == "warm")
    yield mgr
    for task in mgr.list():
        try:
            task.delete(force=True)
        except Exception:       # noqa: BLE001 - whatever is left is cleaned below
            pass
    check_manager_closed(mgr)
    leaks = cleanup_root(root)
    time.sleep(0)
    assert leaks == [], "left behind: %s" % leaks
    assert os.listdir(os.path.join(root, "tasks")) == []


@pytest.fixture
def bundle(make_bundle):
    """bundle(args, terminal=False, mutate=None) -> a busybox bundle directory."""
    def make(args, terminal=False, mutate=None):
        def change(spec):
            # the cgroup mount is not needed and crun refuses it on hybrid hosts
            spec["mounts"] = [m for m in spec["mounts"] if m["type"] != "cgroup"]
            if mutate:
                mutate(spec)
        return make_bundle(args, terminal=terminal, mutate=change)
    return make


def read_json_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f]
