"""The container lifecycle with real containers: Factory, Container, state dir, hooks."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from pyrunc import errors
from pyrunc.libcontainer.container import Factory
from support import unique_id

pytestmark = pytest.mark.usefixtures("private_mount_ns")


@pytest.fixture
def factory(tmp_path):
    f = Factory(root=str(tmp_path / "state"))
    yield f
    for c in f.list():
        c.destroy(force=True)


@pytest.fixture
def bundle(make_bundle):
    """A busybox bundle with runc's example config (its cgroup mount included)."""
    def make(args=("sleep", "30"), mutate=None):
        return make_bundle(args, mutate=mutate)
    return make


def cgroup_dirs(container):
    return sorted(set(container.manager.paths().values()))


def assert_gone(factory, container, pid, dirs):
    assert not os.path.exists(os.path.join(factory.root, container.id))
    assert not any(os.path.exists(d) for d in dirs)
    assert not os.path.exists("/proc/%d" % pid) or _zombie_or_gone(pid)


def _zombie_or_gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in "ZX"
    except FileNotFoundError:
        return True


def wait_until(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# -- lifecycle --------------------------------------------------------------------------------

def test_create_start_kill_delete(factory, bundle):
    b = bundle()
    cid = unique_id("lc")
    c = factory.create(cid, b)
    state = c.state()
    assert state["status"] == "created" and state["id"] == cid
    assert list(state) == ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created",
                           "owner"]
    assert state["bundle"] == b and state["rootfs"] == os.path.join(b, "rootfs")
    assert state["pid"] > 0 and os.path.exists("/proc/%d" % state["pid"])
    assert state["created"].endswith("Z") and state["ociVersion"] == "1.0.2-dev"
    assert os.path.exists(os.path.join(factory.root, cid, "exec.fifo"))
    dirs = cgroup_dirs(c)
    assert dirs and all(os.path.isdir(d) for d in dirs)

    loaded = factory.load(cid)
    assert loaded.status == "created"
    loaded.start()
    assert loaded.status == "running"
    assert not os.path.exists(os.path.join(factory.root, cid, "exec.fifo"))

    def cmdline():
        with open("/proc/%d/cmdline" % state["pid"], "rb") as f:
            return f.read().split(b"\0")[:2]
    wait_until(lambda: cmdline() == [b"sleep", b"30"])

    with pytest.raises(errors.FailedPrecondition, match="not stopped: running"):
        factory.load(cid).destroy()
    factory.load(cid).signal(signal.SIGKILL)
    assert c.wait() == 128 + signal.SIGKILL
    assert factory.load(cid).status == "stopped"
    assert factory.load(cid).state()["pid"] == 0
    with pytest.raises(errors.FailedPrecondition, match="not running"):
        factory.load(cid).signal(signal.SIGTERM)
    factory.load(cid).destroy()
    assert_gone(factory, c, state["pid"], dirs)
    with pytest.raises(errors.NotFound, match='container "%s" does not exist' % cid):
        factory.load(cid)


def test_exit_status_and_stdio(factory, bundle, tmp_path):
    out = tmp_path / "out"
    with open(out, "wb") as f:
        c = factory.create(unique_id("lc"), bundle(("sh", "-c", "echo hi $(hostname); exit 7")),
                           stdio=(0, f.fileno(), f.fileno()))
    c.start()
    assert c.wait() == 7
    assert out.read_text() == "hi runc\n"
    c.destroy()


def test_user_namespace_container(factory, bundle, tmp_path):
    """A new user namespace: the maps are written, devices are bind-mounted host nodes."""
    def userns(spec):
        spec["linux"]["namespaces"].append({"type": "user"})
        maps = [{"containerID": 0, "hostID": 0, "size": 1},
                {"containerID": 1, "hostID": 100001, "size": 65535}]
        spec["linux"]["uidMappings"] = maps
        spec["linux"]["gidMappings"] = maps
    out = tmp_path / "out"
    script = "cat /proc/self/uid_map; stat -c '%t:%T %F' /dev/null; echo x > /dev/null && echo ok"
    with open(out, "wb") as f:
        c = factory.create(unique_id("us"), bundle(("sh", "-c", script), mutate=userns),
                           stdio=(0, f.fileno(), f.fileno()))
    c.start()
    assert c.wait() == 0
    lines = out.read_text().splitlines()
    assert [line.split() for line in lines[:2]] == [["0", "0", "1"], ["1", "100001", "65535"]]
    assert lines[2:] == ["1:3 character special file", "ok"]
    c.destroy()


def test_start_twice_and_delete_created(factory, bundle):
    c = factory.create(unique_id("lc"), bundle())
    pid = c.pid
    c.start()
    with pytest.raises(errors.FailedPrecondition, match="cannot start a container that is running"):
        c.start()
    c2 = factory.create(unique_id("lc"), bundle())
    pid2, dirs2 = c2.pid, cgroup_dirs(c2)
    c2.destroy()                      # a created container is killed by delete, as in runc
    assert_gone(factory, c2, pid2, dirs2)
    dirs = cgroup_dirs(c)
    c.destroy(force=True)
    assert_gone(factory, c, pid, dirs)


def test_pid_file_and_list(factory, bundle, tmp_path):
    ids = sorted(unique_id("lc") for _ in range(2))
    pid_file = tmp_path / "pid"
    a = factory.create(ids[0], bundle(), pid_file=str(pid_file))
    assert pid_file.read_text() == str(a.pid)
    factory.create(ids[1], bundle())
    assert [c.id for c in factory.list()] == ids
    assert [c.status for c in factory.list()] == ["created", "created"]


def test_duplicate_id(factory, bundle):
    cid = unique_id("lc")
    c = factory.create(cid, bundle())
    with pytest.raises(errors.AlreadyExists, match='container "%s" already exists' % cid):
        factory.create(cid, bundle())
    assert factory.load(cid).status == "created" and factory.load(cid).pid == c.pid


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "a b", "x" * 300, "caf\u00e9", "-\n"])
def test_bad_ids(factory, bundle, bad):
    with pytest.raises(errors.InvalidArgument):
        factory.create(bad, bundle())
    with pytest.raises(errors.InvalidArgument):
        factory.load(bad)
    assert not os.path.exists(factory.root) or os.listdir(factory.root) == []


def test_good_ids(factory, bundle):
    # runc's rule: letters, digits and _ + - . (the ids here all pass it)
    for cid in ("a", "A_b-c.d+e", "0" * 200):
        cid += unique_id("")
        c = factory.create(cid, bundle())
        assert c.id == cid and factory.load(cid).status == "created"
        assert os.listdir(factory.root) == [cid]
        c.destroy()
        with pytest.raises(errors.NotFound):
            factory.load(cid)
        assert os.listdir(factory.root) == []


def test_failed_create_leaves_nothing(factory, bundle):
    def bad_mount(spec):
        spec["mounts"].append({"destination": "/mnt", "type": "nosuchfs", "source": "x"})
    cid = unique_id("lc")
    with pytest.raises(errors.SystemFailure) as e:
        factory.create(cid, bundle(mutate=bad_mount))
    assert "/mnt" in str(e.value)
    assert os.listdir(factory.root) == []
    from pyrunc.libcontainer import cgroups
    dirs = cgroups.new_manager(None, cid).paths().values()
    assert not any(os.path.exists(d) for d in dirs)


CREATE_ONLY = """
import sys
from pyrunc.libcontainer.container import Factory
Factory(root=sys.argv[1]).create(sys.argv[2], sys.argv[3], stdio=(0, 1, 2))
"""


def test_create_killed_midway_is_cleaned_by_delete(factory, bundle, tmp_path):
    """A runtime killed during create (here while a prestart hook runs): the container reads
    "creating" while its creator lives, "stopped" after; delete removes processes, cgroup and
    state, and the id can be used again."""
    marker = tmp_path / "in-hook"

    def slow_hook(spec):
        spec["hooks"] = {"prestart": [{"path": "/bin/sh", "args": [
            "sh", "-c", "echo $$ > %s.tmp; mv %s.tmp %s; exec sleep 60" % ((marker,) * 3)]}]}
    b = bundle(mutate=slow_hook)
    cid = unique_id("kill")
    creator = subprocess.Popen([sys.executable, "-c", CREATE_ONLY, factory.root, cid, b],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        wait_until(marker.exists)
        c = factory.load(cid)
        assert c.status == "creating" and c.state()["pid"] == 0
        dirs = cgroup_dirs(c)
        assert c.manager.pids()          # the container's first processes are in its cgroup
        with pytest.raises(errors.Conflict, match="is being created"):
            c.destroy(force=True)
    finally:
        creator.kill()
        creator.wait()
        if marker.exists():
            os.kill(int(marker.read_text()), signal.SIGKILL)   # the hook, in its own session
    c = factory.load(cid)
    assert c.status == "stopped"
    c.destroy()
    assert not os.path.exists(os.path.join(factory.root, cid))
    assert not any(os.path.exists(d) for d in dirs)
    factory.create(cid, bundle()).destroy()


STOP_IN_CGROUP_CREATION = """
import os, sys, time
from pyrunc.libcontainer.cgroups import v1
from pyrunc.libcontainer.container import Factory
made = []
real = v1.mkdir_p
def mkdir_p(path, on_create=None):
    made.append(real(path, on_create))
    if len(made) == 2:       # two hierarchies made, the others not yet
        open(sys.argv[4], "w").close()
        time.sleep(60)
    return made[-1]
v1.mkdir_p = mkdir_p
Factory(root=sys.argv[1]).create(sys.argv[2], sys.argv[3], stdio=(0, 1, 2))
"""


def test_create_killed_while_making_its_cgroup_is_cleaned_by_delete(factory, bundle, tmp_path):
    """Killed with the cgroup made in some v1 hierarchies only: delete --force cannot freeze
    it (no freezer cgroup yet) and removes what there is."""
    from pyrunc.libcontainer import cgroups
    cid = unique_id("kill")
    if cgroups.new_manager(None, cid).version != 1:
        pytest.skip("a v1 host: one cgroup per hierarchy")
    marker = tmp_path / "stopped"
    creator = subprocess.Popen([sys.executable, "-c", STOP_IN_CGROUP_CREATION, factory.root,
                                cid, bundle(), str(marker)], stdin=subprocess.DEVNULL)
    try:
        wait_until(marker.exists)
    finally:
        creator.kill()
        creator.wait()
    c = factory.load(cid)
    assert c.status == "stopped"
    dirs = cgroup_dirs(c)
    assert 0 < sum(os.path.isdir(d) for d in dirs) < len(dirs)
    c.destroy(force=True)
    assert not os.path.exists(os.path.join(factory.root, cid))
    assert not any(os.path.exists(d) for d in dirs)


def test_bad_config_creates_nothing(factory, bundle):
    def bad(spec):
        spec["process"]["rlimits"].append({"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1})
    with pytest.raises(errors.InvalidArgument, match=r"process.rlimits\[1\].type"):
        factory.create(unique_id("lc"), bundle(mutate=bad))
    assert not os.path.exists(factory.root) or os.listdir(factory.root) == []


def test_terminal_needs_console_socket(factory, bundle):
    def tty(spec):
        spec["process"]["terminal"] = True
    with pytest.raises(errors.InvalidArgument, match="console socket"):
        factory.create(unique_id("lc"), bundle(mutate=tty))
    assert os.listdir(factory.root) == [] if os.path.exists(factory.root) else True


CREATE_AND_START = """
import sys
from pyrunc.libcontainer.container import Factory
c = Factory(root=sys.argv[1]).create(sys.argv[2], sys.argv[3], stdio=(0, 1, 2))
c.start()
print(c.status)
"""


def test_console_socket_gets_the_pty_master(factory, bundle, tmp_path):
    import array
    import socket

    def tty(spec):
        spec["process"]["terminal"] = True
    path = str(tmp_path / "console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    c = factory.create(unique_id("tty"), bundle(("sh", "-c", "tty; echo ok"), mutate=tty),
                       console_socket=path)
    conn, _ = listener.accept()
    fds = array.array("i")
    _, ancdata, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
    conn.close()
    listener.close()
    fds.frombytes(ancdata[0][2][:fds.itemsize])
    master = fds[0]
    try:
        c.start()
        assert c.wait() == 0
        output = b""
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
    assert output.replace(b"\r\n", b"\n") == b"/dev/pts/0\nok\n"


@pytest.mark.peer
def test_state_matches_runc(factory, bundle, tmp_path):
    from support import need
    runc = need("runc")
    b = bundle(mutate=lambda spec: spec.update(annotations={"org.example": "x"}))
    rid, cid = unique_id("runc"), unique_id("lc")
    root = str(tmp_path / "runc")
    subprocess.run([runc, "--root", root, "create", "--bundle", b, rid], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        theirs = json.loads(subprocess.run([runc, "--root", root, "state", rid], check=True,
                                           capture_output=True).stdout)
    finally:
        subprocess.run([runc, "--root", root, "delete", "--force", rid], check=True)
    ours = factory.create(cid, b).state()
    assert list(ours) == list(theirs)
    for key in ("ociVersion", "status", "bundle", "rootfs", "owner", "annotations"):
        assert ours[key] == theirs[key], key
    rfc3339nano = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z"   # Go's: no trailing 0s
    assert re.fullmatch(rfc3339nano, theirs["created"])
    assert re.fullmatch(rfc3339nano, ours["created"])


def test_two_containers_in_parallel(factory, bundle, tmp_path):
    """Two runtime processes, as two ``pyrunc run -d`` would be, each creating and starting
    its container at the same time; the inits outlive their creators."""
    ids = [unique_id("par") for _ in range(2)]
    outs = [open(tmp_path / cid, "w+") for cid in ids]   # the inits keep them open
    procs = [subprocess.Popen([sys.executable, "-c", CREATE_AND_START, factory.root, cid,
                               bundle()], stdin=subprocess.DEVNULL, stdout=out, stderr=out)
             for cid, out in zip(ids, outs)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    assert [(tmp_path / cid).read_text() for cid in ids] == ["running\n"] * 2
    containers = [factory.load(cid) for cid in ids]
    assert [c.status for c in containers] == ["running", "running"]
    assert len({c.pid for c in containers}) == 2
    for c in containers:       # not our children: delete kills them and waits for them to go
        pid, dirs = c.pid, cgroup_dirs(c)
        c.destroy(force=True)
        assert_gone(factory, c, pid, dirs)
    for out in outs:
        out.close()


def test_pid_reuse_is_detected(factory, bundle):
    c = factory.create(unique_id("lc"), bundle())
    path = os.path.join(factory.root, c.id, "state.json")
    with open(path) as f:
        state = json.load(f)
    state["pid_start"] += 1        # as if the pid now belonged to another process
    with open(path, "w") as f:
        json.dump(state, f)
    assert factory.load(c.id).status == "stopped"
    state["pid_start"] -= 1
    with open(path, "w") as f:
        json.dump(state, f)


def test_pause_resume_and_signal_all(factory, bundle):
    c = factory.create(unique_id("lc"), bundle(("sh", "-c", "sleep 30 & sleep 30")))
    c.start()
    wait_until(lambda: len(c.manager.pids()) == 2)
    c.pause()
    assert factory.load(c.id).status == "paused"
    c.resume()
    assert factory.load(c.id).status == "running"
    c.signal(signal.SIGKILL, all=True)
    wait_until(lambda: c.manager.pids() == [])
    # a task leaves its cgroup's list before it becomes a zombie: the init may still be exiting
    wait_until(lambda: factory.load(c.id).status == "stopped")


# -- hooks ------------------------------------------------------------------------------------

def host_hook(log, name, extra="", **kw):
    return dict({"path": "/bin/sh",
                 "args": ["sh", "-c", "cat > %s/%s.json; echo %s >> %s/order%s"
                          % (log, name, name, log, extra)]}, **kw)


def test_hooks_order_and_state_on_stdin(factory, bundle, tmp_path):
    log = tmp_path / "log"
    log.mkdir()

    def hooks(spec):
        spec["mounts"].append({"destination": "/log", "type": "bind", "source": str(log),
                               "options": ["rbind", "rw"]})
        spec["hooks"] = {
            "prestart": [host_hook(log, "prestart")],
            "createRuntime": [host_hook(log, "createRuntime")],
            "createContainer": [host_hook(log, "createContainer")],
            # startContainer runs in the container, after pivot_root: its paths are the
            # container's (busybox's sh, the bind-mounted log)
            "startContainer": [host_hook("/log", "startContainer")],
            "poststart": [host_hook(log, "poststart", env=["A=1"])],
            "poststop": [host_hook(log, "poststop")],
        }
        spec["annotations"] = {"org.example": "yes"}
    b = bundle(("true",), mutate=hooks)
    cid = unique_id("hk")
    c = factory.create(cid, b)
    pid = c.pid
    assert (log / "order").read_text().split() == ["prestart", "createRuntime",
                                                   "createContainer"]
    c.start()
    c.wait()
    order = (log / "order").read_text().split()
    # startContainer runs in the init between the release and exec, poststart in the runtime
    # after the release: as with runc, the two may finish in either order
    assert order[:3] == ["prestart", "createRuntime", "createContainer"]
    assert sorted(order[3:]) == ["poststart", "startContainer"]
    c.destroy()
    assert (log / "order").read_text().split()[-1] == "poststop"
    states = {n: json.loads((log / (n + ".json")).read_text())
              for n in ("prestart", "createRuntime", "createContainer", "poststart",
                        "poststop")}
    for name, st in states.items():
        assert st["id"] == cid and st["bundle"] == b, name
        assert st["annotations"] == {"org.example": "yes"}
    assert states["prestart"]["status"] == "created" == states["createContainer"]["status"]
    assert states["prestart"]["pid"] == pid and states["createRuntime"]["pid"] == pid
    assert states["poststart"]["status"] == "running" and states["poststart"]["pid"] == pid
    assert states["poststop"]["status"] == "stopped"


def test_failing_prestart_hook_stops_create(factory, bundle):
    def hooks(spec):
        spec["hooks"] = {"prestart": [{"path": "/bin/sh",
                                       "args": ["sh", "-c", "echo broken >&2; exit 3"]}]}
    cid = unique_id("hk")
    with pytest.raises(errors.PyruncError,
                       match="prestart hook /bin/sh: exit status 3: broken"):
        factory.create(cid, bundle(mutate=hooks))
    assert os.listdir(factory.root) == []


def test_hook_timeout(factory, bundle):
    def hooks(spec):
        spec["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"],
                                            "timeout": 1}]}
    t = time.monotonic()
    with pytest.raises(errors.PyruncError, match="createRuntime hook /bin/sleep: timed out "
                                                 "after 1s"):
        factory.create(unique_id("hk"), bundle(mutate=hooks))
    assert time.monotonic() - t < 10
    assert os.listdir(factory.root) == []


def test_failing_poststart_and_poststop_hooks_only_warn(factory, bundle, warnings_seen):
    def hooks(spec):
        spec["hooks"] = {"poststart": [{"path": "/bin/false"}],
                         "poststop": [{"path": "/bin/false"}]}
    c = factory.create(unique_id("hk"), bundle(mutate=hooks))
    c.start()
    assert c.status == "running"
    c.destroy(force=True)
    assert "poststart hook /bin/false: exit status 1" in warnings_seen
    assert "poststop hook /bin/false: exit status 1" in warnings_seen


# -- features ---------------------------------------------------------------------------------

def test_features_shape_matches_runc():
    from pyrunc.libcontainer.features import features
    doc = features()
    assert list(doc) == ["ociVersionMin", "ociVersionMax", "hooks", "mountOptions", "linux",
                         "annotations"]
    assert doc["hooks"] == ["prestart", "createRuntime", "createContainer", "startContainer",
                            "poststart", "poststop"]
    assert {"rro", "rbind", "nosymfollow"} <= set(doc["mountOptions"])
    assert "tmpcopyup" not in doc["mountOptions"]
    linux = doc["linux"]
    assert {"pid", "mount", "user", "cgroup"} <= set(linux["namespaces"])
    assert linux["capabilities"][:2] == ["CAP_CHOWN", "CAP_DAC_OVERRIDE"]
    assert linux["cgroup"] == {"v1": True, "v2": True, "systemd": True, "systemdUser": False}
    assert linux["apparmor"] == {"enabled": False}
    assert linux["seccomp"]["enabled"] and "SCMP_ACT_NOTIFY" in linux["seccomp"]["actions"]
    assert doc["annotations"]["io.github.seccomp.libseccomp.version"].count(".") == 2
