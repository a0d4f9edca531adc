"""Faults: a killed shim, a killed init, a manager killed mid-create, two managers racing on
one id, a full disk under the log. Every test's teardown checks that nothing is left."""
import json
import os
import signal
import subprocess
import time

import pytest

from support import exited

from pyrunc import errors
from pyrunc.containerd.tasks import CREATED, STOPPED, TaskManager

from .conftest import leftover_cgroups, new_id, runtime_path
from .test_restart import start_driver, wait_for


def test_killed_shim_is_reported_and_cleaned(manager, bundle):
    task = manager.create(new_id(), bundle(["sleep", "1000"]))
    task.start()
    st = task.state()
    os.kill(st.shim_pid, signal.SIGKILL)
    wait_for(lambda: exited(st.shim_pid))
    after = task.state()
    assert (after.status, after.exit_status) == (STOPPED, None)
    wait_for(lambda: exited(st.pid))         # the container went with its monitor
    assert task.wait().status is None
    assert task.delete().status is None
    exits = [e for _, e in manager.events() if e["type"] == "exit" and e["id"] == task.id]
    assert exits == [dict(exits[0], exit_status=None, shim_died=True)]


def test_requests_to_a_killed_shim_fail_cleanly(manager, bundle):
    created = manager.create(new_id(), bundle(["sleep", "1000"]))
    shim = created.state().shim_pid
    os.kill(shim, signal.SIGKILL)
    wait_for(lambda: exited(shim))
    with pytest.raises(errors.FailedPrecondition, match="is stopped"):
        created.start()
    with pytest.raises(errors.FailedPrecondition, match="is stopped"):
        created.pause()
    assert created.wait().status is None
    created.delete()


def test_killed_init_reports_sigkill(manager, bundle):
    task = manager.create(new_id(), bundle(["sleep", "1000"]))
    task.start()
    os.kill(task.state().pid, signal.SIGKILL)
    assert task.wait(timeout=20).status == 128 + signal.SIGKILL
    assert task.state().status == STOPPED


@pytest.mark.parametrize("delay", [0.0, 0.005, 0.02, 0.05])
def test_manager_killed_mid_create(manager, bundle, delay):
    cid = new_id()
    path = bundle(["true"])
    driver = start_driver(manager, "create", cid, path)
    time.sleep(delay)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    with TaskManager(manager.root, runtime=manager.runtime,
                     warm_create=manager.create_server is not None) as fresh:
        try:
            task = fresh.get(cid)
        except errors.NotFound:
            task = None
        if task is not None:
            # the shim finishes a create on its own, or the task is settled as stopped
            assert task.state().status in (CREATED, STOPPED)
            task.delete(force=True)
        again = fresh.create(cid, path)
        again.start()
        assert again.wait(timeout=20).status == 0
        again.delete()


@pytest.mark.parametrize("delay", ["0.005", "0.03", "0.08"])
def test_runtime_killed_mid_create(manager, bundle, tmp_path, delay):
    """The runtime's create is SIGKILLed part way: the error is reported, the shim removes
    what the runtime left, and the id can be used again."""
    wrapper = tmp_path / "runtime-dies"
    wrapper.write_text('#!/bin/sh\ncase " $* " in\n'
                       '*" create "*) %s "$@" & pid=$!; sleep %s; kill -9 $pid 2>/dev/null;'
                       ' wait $pid; exit 137;;\n'
                       '*) exec %s "$@";;\nesac\n'
                       % (runtime_path(manager.runtime), delay, runtime_path(manager.runtime)))
    wrapper.chmod(0o755)
    cid = new_id()
    path = bundle(["true"])
    try:
        with pytest.raises(errors.PyruncError, match="runtime create failed"):
            manager.create(cid, path, runtime=str(wrapper))
        assert manager.list() == []
        state = os.path.join(manager.root, "runtime", "runtime-dies")
        assert os.listdir(state) == []
        if manager.runtime == "pyrunc":  # runc 1.1's delete leaves the cgroup of such a create
            assert leftover_cgroups([cid]) == []
        task = manager.create(cid, path)
        task.start()
        assert task.wait(timeout=20).status == 0
        task.delete()
    finally:
        for cg in leftover_cgroups([cid]):   # (empty: the id's runtime state is gone)
            os.rmdir(cg)


def test_concurrent_create_delete_of_one_id(manager, bundle):
    cid = new_id()
    path = bundle(["sleep", "1000"])
    drivers = [start_driver(manager, "churn", cid, path, "6")
               for _ in range(2)]
    results = []
    try:
        for d in drivers:
            line = d.stdout.readline().strip()
            assert line.startswith("conflicts="), line
            results.append(dict(kv.split("=") for kv in line.split()))
            assert d.stdout.readline().strip() == "done"
    finally:
        for d in drivers:
            d.send_signal(signal.SIGKILL)
            d.wait()
    created = sum(int(r["created"]) for r in results)
    deleted = sum(int(r["deleted"]) for r in results)
    assert created == deleted and created >= 6
    assert manager.list() == []


def test_full_disk_under_the_log(manager, bundle, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], check=True)
    try:
        task = manager.create(new_id(), bundle(
            ["sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done"]),
            log_path=str(small / "json.log"))
        task.start()
        assert task.wait(timeout=30).status == 0
        st = task.state()
        with open(small / "json.log") as f:
            kept = [json.loads(line)["log"] for line in f]
        numbers = [int(text.split()[1]) for text in kept]
        assert numbers == sorted(numbers) and numbers[0] == 0
        assert st.log_dropped > 0 and len(kept) + st.log_dropped == 3000
        task.delete()
    finally:
        subprocess.run(["umount", str(small)], check=True)
