"""Fixtures for the cgroup tests: a throw-away cgroup on whatever backend this host has, and
plain forked processes placed in it (no container runtime involved)."""
import os
import signal
import time
import uuid

import pytest

from pyrunc.libcontainer import cgroups

PARENT = "/pyrunc-cgroup-tests"


def _needs_root():
    if os.geteuid() != 0:
        pytest.fail("the cgroup tests need root: run them with scripts/test.sh as root")


def _systemd_runs():
    return os.path.isdir("/run/systemd/system") and os.path.exists("/run/systemd/private")


def pytest_generate_tests(metafunc):
    """Every test using a cgroup runs on each driver this host has: cgroupfs always, systemd
    where systemd is PID 1 (the backend, v1 or v2, is the host's)."""
    if "driver" in metafunc.fixturenames:
        metafunc.parametrize("driver", ["cgroupfs"] + (["systemd"] if _systemd_runs() else []))


@pytest.fixture
def make_cgroup(driver):
    """make_cgroup() -> a manager for a fresh cgroup (cgroupfs: under /pyrunc-cgroup-tests;
    systemd: a pyrunc-test-*.scope in system.slice), not created yet. Every process left in it
    is killed and the cgroup removed afterwards."""
    _needs_root()
    made = []

    def make(name=None):
        name = name or uuid.uuid4().hex[:12]
        if driver == "systemd":
            m = cgroups.new_manager("system.slice:pyrunc-test:" + name, "test", systemd=True)
        else:
            m = cgroups.new_manager("%s/%s" % (PARENT, name), "test")
        made.append(m)
        return m

    yield make
    for m in made:
        cleanup(m)


@pytest.fixture
def cgroup(make_cgroup):
    return make_cgroup()


def cleanup(m):
    if not m.exists():
        return
    try:
        if m.freezer_state() == "FROZEN":
            m.thaw()
    except Exception:
        pass
    for _ in range(100):
        pids = m.pids()
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)
    m.destroy()
    for d in set(m.paths().values()):
        parent = os.path.dirname(d)
        if parent.endswith(PARENT):
            try:
                os.rmdir(parent)
            except OSError:
                pass


class Child:
    """A forked process that waits until it is in the cgroup, then runs ``body()`` and exits
    with its return value; ``body`` may send bytes back with ``child.send``."""

    def __init__(self, manager, body):
        self.manager = manager
        self._go_r, self._go_w = os.pipe()
        self._out_r, self._out_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            code = 1
            try:
                os.close(self._go_w)
                os.close(self._out_r)
                os.read(self._go_r, 1)
                code = body(self) or 0
            finally:
                os._exit(code)
        os.close(self._go_r)
        os.close(self._out_w)
        self.status = None
        try:
            manager.apply(self.pid)
        except BaseException:
            self.kill()
            raise

    def start(self):
        os.write(self._go_w, b"g")
        os.close(self._go_w)
        return self

    def send(self, data):
        os.write(self._out_w, data)

    def output(self):
        chunks = []
        while True:
            chunk = os.read(self._out_r, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def wait(self, timeout=30):
        """(exit status as os.waitstatus, rusage) of the child."""
        deadline = time.monotonic() + timeout
        while True:
            pid, status, rusage = os.wait4(self.pid, os.WNOHANG)
            if pid:
                self.status = status
                return status, rusage
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError("child %d did not exit in %ss" % (self.pid, timeout))
            time.sleep(0.01)

    def kill(self):
        try:
            if self.manager.freezer_state() == "FROZEN":
                self.manager.thaw()         # a frozen task cannot die
        except Exception:
            pass
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.status is None:
            _, self.status = os.waitpid(self.pid, 0)


@pytest.fixture
def spawn():
    """spawn(manager, body) -> a started Child in the manager's cgroup; reaped afterwards."""
    children = []

    def make(manager, body, start=True):
        child = Child(manager, body)
        children.append(child)
        return child.start() if start else child

    yield make
    for child in children:
        if child.status is None:
            child.kill()
        for fd in (child._out_r,):
            try:
                os.close(fd)
            except OSError:
                pass
