"""The warm create path (pyrunc.containerd.shim.warm): what only it has. The rest of this
directory's suites run through both paths (the ``create_path`` fixture).

Oracles: the kernel's view of the processes (/proc: descriptors, signal masks, the mount of
the executable), the state directory's files, and the cold path's result for the same request.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from pyrunc import errors
from pyrunc.containerd.shim.client import shim_binary
from pyrunc.containerd.shim.warm import CreateServer, own_pyrunc
from pyrunc.containerd.tasks import CREATED, TaskManager

from support import exe_mount_id

from .conftest import check_manager_closed, cleanup_root, create_servers_of, new_id
from .test_restart import DRIVER, wait_for


def warm(test):
    """The test's ``manager``: pyrunc, warm."""
    test = pytest.mark.parametrize("runtime", ["pyrunc"], indirect=True)(test)
    return pytest.mark.parametrize("create_path", ["warm"], indirect=True)(test)



def descriptors(pid, task):
    """``pid``'s open descriptors as (what, flags): numbers and inode numbers left out."""
    found = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                flags = next(line.split()[1] for line in f if line.startswith("flags:"))
        except FileNotFoundError:
            continue
        target = target.split(":[", 1)[0] if ":[" in target else target
        target = target.replace(task.state_dir, "STATE").replace(task.manager.root, "ROOT")
        found.append((target.replace(task.id, "ID"), flags))
    return sorted(found)


def status_fields(pid, names=("SigBlk", "SigIgn", "SigCgt", "CapEff", "CapBnd", "NoNewPrivs",
                              "Seccomp", "Uid", "Gid", "Groups")):
    with open("/proc/%d/status" % pid) as f:
        return {k: v.strip() for k, _, v in (line.partition(":") for line in f) if k in names}


def observed(task):
    """What a created task looks like from outside: files, the shim's and the init's
    descriptors and process state, the init's parent (read before any request to the shim,
    whose connections would show)."""
    pids = {}
    for name in ("shim", "init"):
        with open(os.path.join(task.state_dir, name + ".pid")) as f:
            pids[name] = int(f.read())
    with open("/proc/%d/stat" % pids["init"]) as f:
        init_ppid = int(f.read().rsplit(")", 1)[1].split()[1])
    with open("/proc/%d/cmdline" % pids["shim"], "rb") as f:
        shim_argv = f.read().split(b"\0")
    seen = {"files": sorted(name.replace(task.id, "ID") for name in os.listdir(task.state_dir)),
            "shim": descriptors(pids["shim"], task),
            "shim_status": status_fields(pids["shim"]),
            "shim_exe": shim_argv[0],
            "init": descriptors(pids["init"], task),
            "init_status": status_fields(pids["init"]),
            "init_is_shims_child": init_ppid == pids["shim"]}
    assert task.state().status == CREATED
    return seen


@pytest.fixture
def cold_manager(tmp_path, shim_built):
    root = str(tmp_path / "cold-root")
    mgr = TaskManager(root, runtime="pyrunc")
    yield mgr
    for task in mgr.list():
        task.delete(force=True)
    assert cleanup_root(root) == []


@warm
@pytest.mark.parametrize("terminal,stdin", [(False, False), (False, True), (True, True)])
def test_the_create_runs_in_the_server_and_looks_like_a_cold_one(manager, cold_manager, bundle,
                                                                  terminal, stdin):
    path = bundle(["sh", "-c", "read line; echo got $line"], terminal=terminal)
    warm = manager.create(new_id("warm"), path, terminal=terminal, stdin=stdin)
    cold = cold_manager.create(new_id("cold"), path, terminal=terminal, stdin=stdin)
    seen, reference = observed(warm), observed(cold)
    # the init is a clone of the server's interpreter (the same protected executable), not of
    # a pyrunc command run for this create
    server = manager.create_server.pid
    assert exe_mount_id(warm.state().pid) == exe_mount_id(server)
    assert exe_mount_id(cold.state().pid) != exe_mount_id(server)
    for key in reference:
        assert seen[key] == reference[key], "%s:\n%r\n%r" % (key, seen[key], reference[key])
    assert seen["init_is_shims_child"]
    for task in (warm, cold):
        att = task.attach()
        task.start()
        if terminal:
            time.sleep(0.2)
        if stdin:
            att.write(b"hello\n")
            if not terminal:
                att.close_stdin()
        out, status = att.read_all(timeout=20)
        att.close()
        assert status == 0
        assert out[1].replace(b"\r", b"") == (b"hello\ngot hello\n" if terminal else
                                              b"got hello\n" if stdin else b"got\n")
        task.delete()


@warm
def test_a_failed_create_is_the_cold_paths_failure(manager, cold_manager, bundle):
    def bad_mount(spec):
        spec["mounts"].append({"destination": "/x", "type": "bind", "source": "/nonexistent-src",
                               "options": ["bind"]})
    path = bundle(["true"], mutate=bad_mount)
    messages = []
    for mgr in (manager, cold_manager):
        cid = new_id()
        with pytest.raises(errors.PyruncError) as info:
            mgr.create(cid, path)
        messages.append(str(info.value).replace(cid, "ID"))
        assert mgr.list() == []
        assert os.listdir(os.path.join(mgr.root, "runtime", "pyrunc")) == []
        assert [e["type"] for _, e in mgr.events() if e["id"] == cid] == []
    assert messages[0] == messages[1]
    assert "\n" not in messages[0] and "runtime create failed" in messages[0]


@warm
def test_a_server_gone_is_replaced_and_its_create_runs_cold(manager, bundle):
    path = bundle(["true"])
    first = manager.create_server.pid
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: create_servers_of(os.getpid()) == [])     # a zombie has no argv
    task = manager.create(new_id(), path)           # found gone: cold, and started again
    second = manager.create_server.pid
    assert second not in (None, first)
    assert exe_mount_id(task.state().pid) != exe_mount_id(second)
    again = manager.create(new_id(), path)
    assert exe_mount_id(again.state().pid) == exe_mount_id(second)
    for t in (task, again):
        t.start()
        assert t.wait(timeout=20).status == 0
        t.delete()


@warm
def test_the_server_exits_when_idle_and_comes_back(manager, bundle, tmp_path):
    manager.create_server.stop()
    manager.create_server = CreateServer(idle_exit=0.3)
    manager.create_server.start()
    pid = manager.create_server.pid
    wait_for(lambda: manager.create_server.pid is None)
    assert not os.path.exists("/proc/%d" % pid)      # waited for, not a zombie
    task = manager.create(new_id(), bundle(["true"]))
    task.start()
    assert task.wait(timeout=20).status == 0
    task.delete()
    assert manager.create_server.pid not in (None, pid)


@warm
def test_the_server_dies_with_its_owner(manager, bundle):
    """A manager process SIGKILLed: its server sees its end closed and exits (the owner's
    thread that started it is irrelevant)."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys, threading\n"
                             "from pyrunc.containerd.tasks import TaskManager\n"
                             "kept = []\n"
                             "t = threading.Thread(target=lambda: kept.append(TaskManager("
                             "sys.argv[1], warm_create=True)))\nt.start(); t.join()\n"
                             "print('go', flush=True); sys.stdin.read()",
                             manager.root], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"go\n"
        servers = create_servers_of(proc.pid)
        assert len(servers) == 1
        time.sleep(0.3)                         # the server outlives the thread that started it
        assert create_servers_of(proc.pid) == servers
    finally:
        proc.kill()
        proc.wait()
    wait_for(lambda: not os.path.exists("/proc/%d" % servers[0]), timeout=10)


@warm
def test_the_server_killed_mid_create_leaves_nothing(manager, bundle):
    path = bundle(["true"])
    for delay in (0.0, 0.002, 0.01, 0.03):
        manager.create_server.start()
        pid = manager.create_server.pid
        killer = threading.Timer(delay, os.kill, (pid, signal.SIGKILL))
        killer.start()
        cid = new_id()
        try:
            task = manager.create(cid, path)
        except errors.PyruncError as e:
            assert "\n" not in str(e)
            assert manager.list() == []
        else:
            task.start()
            assert task.wait(timeout=20).status == 0
            task.delete()
        finally:
            killer.join()


@warm
def test_two_creates_of_one_id_at_once(manager, bundle):
    path = bundle(["sleep", "100"])
    cid = new_id()
    outcomes = []

    def create():
        try:
            manager.create(cid, path)
            outcomes.append("created")
        except errors.AlreadyExists:
            outcomes.append("exists")
    threads = [threading.Thread(target=create) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["created", "exists"]
    assert manager.get(cid).state().status == CREATED


def raw_request(server, payload, fds):
    """Send a request as anyone holding the manager's end could; the server's answer."""
    sock = server._sock
    socket.send_fds(sock, [payload], fds)
    return sock.recv(4096)


@pytest.mark.parametrize("payload,nfds,message", [
    (b"--id\0x\0--state-dir\0/tmp\0--bundle\0/b\0--runtime\0/usr/bin/runc", 1,
     b"err create server: runtime /usr/bin/runc: not this pyrunc"),
    (b"--id\0x\0--state-dir\0/tmp\0--bundle\0/b\0--runtime\0%s\0--evil\0\n" % os.fsencode(
        own_pyrunc()), 1, b"err create server: option --evil: not a shim option"),
    (b"--id\0x\0--runtime\0%s" % os.fsencode(own_pyrunc()), 1,
     b"err create server: option --state-dir: missing"),
    (b"\xff\n\0--id", 1, b"err create server: option \\udcff\\n: not a shim option"),
    (b"--id\0x", 0, b"err create server: a request carries exactly one descriptor"),
    (b"--id\0x", 2, b"err create server: a request carries exactly one descriptor"),
])
@warm
def test_hostile_requests_are_refused(manager, payload, nfds, message):
    server = manager.create_server
    server.start()
    r, w = os.pipe()
    try:
        answer = raw_request(server, payload, [w] * nfds)
        assert answer.startswith(message) and b"\n" not in answer
        os.close(w)
        w = -1
        assert os.read(r, 100) == b""           # the server kept no copy of the pipe
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    assert server.pid is not None                # and it still serves
    assert manager.list() == []


@warm
def test_a_refused_request_is_an_invalid_argument(manager, tmp_path):
    r, w = os.pipe()
    try:
        with pytest.raises(errors.InvalidArgument, match="^create server: runtime /bin/true:"):
            manager.create_server.request(["--id", "x", "--state-dir", str(tmp_path),
                                           "--bundle", str(tmp_path), "--runtime", "/bin/true"],
                                          w)
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("args", [[], ["x", "1"], ["0", "1"], ["3", "nan"], ["3"],
                                  ["99", "1"], ["3", "1", "2"]])
def test_the_internal_command_refuses_bad_arguments(args, shim_built):
    proc = subprocess.run([own_pyrunc(), "create-server"] + args, capture_output=True,
                          timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyrunc: create-server: internal command:")


@warm
def test_a_stopped_manager_has_no_server(manager):
    pid = manager.create_server.pid
    assert pid is not None
    check_manager_closed(manager)
    assert manager.create_server.pid is None
    assert not os.path.exists("/proc/%d" % pid)
    assert json.dumps(create_servers_of(os.getpid())) == "[]"
    assert os.access(shim_binary(), os.X_OK)
