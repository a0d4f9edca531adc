"""Terminals under a manager root so deep that a console socket's path does not fit in a
socket address (108 bytes): the runtime still gets a path it can connect to, whatever its
working directory (runc's is the bundle), and nothing of the state directory reaches the
container."""
import os
import time

import pytest

from pyrunc.containerd.tasks import TaskManager

from .conftest import check_manager_closed, cleanup_root, new_id

SUN_PATH_MAX = 108


@pytest.fixture
def long_manager(tmp_path, runtime, shim_built, create_path):
    root = str(tmp_path / ("deep-" + "d" * 100) / "root")
    mgr = TaskManager(root, runtime=runtime, warm_create=create_path == "warm")
    yield mgr
    for task in mgr.list():
        try:
            task.delete(force=True)
        except Exception:       # noqa: BLE001 - whatever is left is cleaned below
            pass
    check_manager_closed(mgr)
    leaks = cleanup_root(root)
    assert leaks == [], "left behind: %s" % leaks


def wait_exec_of(pid, comm, timeout=20.0):
    """Wait until the process ``pid`` runs the program ``comm`` (its runtime's setup is over)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open("/proc/%d/comm" % pid) as f:
            if f.read().strip() == comm:
                return
        time.sleep(0.01)
    raise AssertionError("process %d never ran %s" % (pid, comm))


def test_terminal_and_exec_terminal_under_a_long_root(long_manager, bundle):
    mgr = long_manager
    cid = new_id("tty")
    sock = os.path.join(mgr.tasks_dir, cid, "console.sock")
    assert len(sock.encode()) > SUN_PATH_MAX
    task = mgr.create(cid, bundle(["sh", "-c", "tty; read line; echo got $line"],
                                  terminal=True), terminal=True)
    pid = task.state().pid
    with task.attach() as attached:
        task.start()
        wait_exec_of(pid, "sh")
        held = [os.readlink("/proc/%d/fd/%s" % (pid, fd))
                for fd in os.listdir("/proc/%d/fd" % pid)]
        assert held and not [h for h in held if h.startswith(mgr.root)], held
        proc = task.exec("t1", ["tty"], tty=True)
        assert proc.wait(timeout=20).status == 0
        assert proc.output()[0].startswith("/dev/pts/")
        attached.write(b"hi\n")
        out, status = attached.read_all(timeout=20)
    assert status == 0
    text = out[1].decode().replace("\r", "")
    assert "got hi\n" in text and "not a tty" not in text
    assert text.split("\n")[0].startswith(("/dev/pts/", "/dev/console")), text
    assert task.wait(timeout=20).status == 0
    task.delete()
    assert mgr.list() == []
