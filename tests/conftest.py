"""Fixtures shared by every layer's tests.

The suite runs as root inside a private mount namespace (scripts/test.sh); container tests
refuse to run outside one.
"""
import os
import subprocess
import sys

import pytest

import support
from pyrunc.containerd.runtime import spec as runtime_spec
from pyrunc.engine import busybox

VENV_BIN = os.path.dirname(sys.executable)

# Fixtures that start or use a peer tool, and parameter values naming a peer runtime: a test
# using either is marked ``peer`` at collection (tests calling need() directly mark themselves).
PEER_FIXTURES = frozenset({"containerd", "registry_bin", "dbus_daemon"})
PEER_PARAMS = frozenset({"runc", "crun"})


def pytest_collection_modifyitems(items: list) -> None:
    for item in items:
        params = getattr(item, "callspec", None)
        values = params.params.values() if params else ()
        if PEER_FIXTURES.intersection(item.fixturenames) or any(
                isinstance(v, str) and v in PEER_PARAMS for v in values):
            item.add_marker(pytest.mark.peer)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the selected VM tests' VMs in the background (support.BackgroundVMs): those of an
    earlier module first, then the longest first; none where the VM cannot boot (the tests
    skip or fail as they say)."""
    if session.config.option.collectonly or os.geteuid() != 0 or support.vm_unavailable():
        return
    jobs, modules = [], {}
    for item in session.items:
        module = getattr(item, "module", None)
        make = getattr(module, "vm_job", None)
        if make is None or item.get_closest_marker("vm") is None:
            continue
        params = getattr(item, "callspec", None)
        job = make(**(params.params if params else {}))
        if job is not None:
            cmd, timeout, usual = job
            jobs.append((modules.setdefault(module, len(modules)), -usual, item.nodeid, cmd,
                         timeout))
    support.background_vms.start([job[2:] for job in sorted(jobs)])


def pytest_sessionfinish(session: pytest.Session) -> None:
    support.background_vms.stop()


def pytest_terminal_summary(terminalreporter) -> None:
    for name, seconds in support.background_vms.seconds:
        terminalreporter.write_line("background VM of %s: %.0f s" % (name, seconds))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    support.current_item = item


def pytest_runtest_teardown(item: pytest.Item) -> None:
    support.current_item = None


def _root_mount_is_private():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == "/":
                return not any(x.startswith("shared:") for x in fields[6:fields.index("-")])
    return False


@pytest.fixture(scope="session")
def private_mount_ns():
    """Fail container tests unless we are root in a private mount namespace: not being root is
    how the suite is run, not something the machine lacks, so it must not pass as skips."""
    if os.geteuid() != 0:
        pytest.fail("container tests need root: run them with scripts/test.sh as root")
    if not _root_mount_is_private():
        pytest.fail("container tests must run in a private mount namespace: use scripts/test.sh")


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory):
    """A busybox-static rootfs built once per session (treat as read-only; copy to change)."""
    root = tmp_path_factory.mktemp("busybox") / "rootfs"
    busybox.make_rootfs(str(root))
    return str(root)


@pytest.fixture
def make_bundle(tmp_path, busybox_rootfs):
    """make_bundle(args, **spec_changes) -> bundle dir with config.json and a rootfs copy.

    The rootfs is a hard-linked copy of the session rootfs (cheap); ``mutate(spec)`` may edit
    the example spec before it is written.
    """
    counter = [0]

    def make(args=("true",), terminal=False, mutate=None):
        counter[0] += 1
        bundle = tmp_path / ("bundle%d" % counter[0])
        bundle.mkdir()
        subprocess.run(["cp", "-al", busybox_rootfs, str(bundle / "rootfs")], check=True)
        spec = runtime_spec.example_spec(args=list(args), terminal=terminal)
        if mutate:
            mutate(spec)
        runtime_spec.write_spec(str(bundle), spec)
        return str(bundle)

    return make


@pytest.fixture(scope="session")
def pyrunc_bin():
    """The pyrunc command of this environment; its absence is a failure (a broken install),
    never a skip."""
    path = os.path.join(VENV_BIN, "pyrunc")
    if not os.access(path, os.X_OK):
        pytest.fail("pyrunc is not installed in %s: run scripts/install.sh" % VENV_BIN)
    return path


@pytest.fixture
def warnings_seen():
    """The messages passed to pyrunc.errors.warn during the test, in order."""
    from pyrunc import errors
    seen = []
    saved = errors.set_warning_sink(seen.append)
    yield seen
    errors.set_warning_sink(saved)
