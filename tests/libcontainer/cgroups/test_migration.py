"""MigrationWarmup: the background writes move nothing, end with the ``with`` block, and a host
where they cannot be made costs nothing but the saving."""
import _thread
import os
import time

import pytest

from pyrunc.libcontainer.cgroups import hierarchy, migration


def _wait_threads(count, timeout=2.0):
    deadline = time.monotonic() + timeout
    while _thread._count() > count and time.monotonic() < deadline:
        time.sleep(0.001)
    return _thread._count()


def test_own_procs_file_lists_this_process():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    path = migration.own_procs_file()
    with open(path) as f:
        assert str(os.getpid()) in f.read().split()


def test_warmup_moves_nothing_and_stops_with_the_block():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    with open("/proc/self/cgroup") as f:
        before = f.read()
    threads = _thread._count()
    with migration.MigrationWarmup():
        time.sleep(migration.INTERVAL * 5)     # several writes of our pid into our own cgroup
        assert _thread._count() == threads + 1
    assert _wait_threads(threads) == threads
    with open("/proc/self/cgroup") as f:
        assert f.read() == before


def test_warmup_without_a_usable_cgroup_is_silent(monkeypatch, capfd):
    def no_layout():
        raise hierarchy.Unavailable("cgroups: no cgroup hierarchy is mounted on this host")
    monkeypatch.setattr(hierarchy, "host_layout", no_layout)
    threads = _thread._count()
    with migration.MigrationWarmup():
        pass
    assert _wait_threads(threads) == threads
    assert capfd.readouterr().err == ""


def test_warmup_ends_by_itself(monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    monkeypatch.setattr(migration, "LIMIT", migration.INTERVAL * 3)
    threads = _thread._count()
    migration.MigrationWarmup().__enter__()     # never exited: the limit ends it
    assert _wait_threads(threads) == threads
