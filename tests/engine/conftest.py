"""Fixtures of the engine's tests: an Engine on a temporary root with the built-in busybox.

``engine``: a new Engine object for each test over one session root (the busybox image is
built once); every container a test leaves is force-removed at teardown, with its anonymous
volumes. ``fresh_engine``: an Engine on a root of its own, with no image. ``runtime``: the
OCI runtime name, parametrized over pyrunc and runc (a peer: skipped, naming it, when absent).
"""
import os
import shutil
import tempfile

import pytest

from pyrunc.engine import Engine


@pytest.fixture(scope="session")
def exec_root(private_mount_ns):
    """A short task state root, as dockerd's /run/docker: the shim's console socket path
    must fit a socket address (108 bytes), which a pytest temporary path does not."""
    path = tempfile.mkdtemp(prefix="pe-", dir="/run")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def engine_root(tmp_path_factory, exec_root):
    root = str(tmp_path_factory.mktemp("engine") / "root")
    eng = Engine(root, exec_root=exec_root)
    eng.load_builtin("busybox")
    return root


def _remove_all(eng):
    for c in eng.containers.store.all():
        try:
            eng.containers.remove(c.id, force=True, volumes=True)
        except Exception as e:     # report, but go on removing the others
            print("teardown: remove %s: %s" % (c.id[:12], e))


@pytest.fixture
def engine(engine_root, exec_root):
    eng = Engine(engine_root, exec_root=exec_root)
    yield eng
    _remove_all(eng)


@pytest.fixture
def fresh_engine(tmp_path, private_mount_ns):
    eng = Engine(str(tmp_path / "fresh"))
    yield eng
    _remove_all(eng)


@pytest.fixture(params=["pyrunc", "runc"])
def runtime(request):
    if request.param != "pyrunc" and not shutil.which(request.param):
        pytest.skip("peer runtime %s is not installed" % request.param)
    return request.param


def _run_container(engine, cmd, runtime="pyrunc", host_config=None, **config):
    """Create and start a busybox container running ``cmd``; wait for it; return
    (id, exit code, stdout text, stderr text)."""
    hc = dict(host_config or {}, Runtime=runtime)
    cid = engine.containers.create(dict(config, Image="busybox", Cmd=list(cmd)), hc)["Id"]
    engine.containers.start(cid)
    code = engine.containers.wait(cid, timeout=30)["StatusCode"]
    out = {"stdout": [], "stderr": []}
    for m in engine.containers.logs(cid):
        out[m.stream].append(m.line.decode())
    return cid, code, "".join(out["stdout"]), "".join(out["stderr"])


def mountinfo_targets():
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f]


def _leftovers(engine, cid):
    """What a container ``cid`` left behind: mounts under its directory, cgroup directories,
    its snapshot, its directory, its task state."""
    found = []
    cdir = os.path.join(engine.containers.store.root, cid)
    found += ["mount " + t for t in mountinfo_targets() if cid in t]
    for base, dirs, _ in os.walk("/sys/fs/cgroup"):
        if os.path.basename(base) == cid:
            found.append("cgroup " + base)
        if base.count("/") > 6:
            dirs[:] = []
    if any(i.name == cid for i in engine.images.snapshotter.walk()):
        found.append("snapshot " + cid)
    if os.path.exists(cdir):
        found.append("dir " + cdir)
    if os.path.exists(os.path.join(engine.exec_root, "tasks", cid)):
        found.append("task " + cid)
    return found


@pytest.fixture
def run_container():
    """run_container(engine, cmd, runtime, host_config=None, **config) ->
    (id, exit code, stdout, stderr) of a busybox container run to its end."""
    return _run_container


@pytest.fixture
def leftovers():
    """leftovers(engine, id) -> what the container left (mounts, cgroups, snapshot, dirs)."""
    return _leftovers
