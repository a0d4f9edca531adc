"""The engine's network namespaces: made by a thread that unshares (no forked process), entered
by a thread that joins; the caller's thread and the process stay where they were. The kernel is
the oracle: namespace inodes under /proc, /proc/self/mountinfo, and whether loopback carries a
connection."""
import errno
import os
import socket

import pytest

from pyrunc.engine.network import netlink
from pyrunc.errors import SystemFailure
from pyrunc.libcontainer import system


def _ino(path):
    return os.stat(path).st_ino


def _mounted(path):
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if line.split()[4] == path]


def _loopback_connects():
    """A TCP connection over 127.0.0.1 in the calling thread's namespace (only if lo is up)."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        with socket.create_connection(srv.getsockname(), timeout=2):
            return True


def test_create_enter_remove(tmp_path, private_mount_ns):
    process, thread = _ino("/proc/self/ns/net"), _ino("/proc/thread-self/ns/net")
    path = str(tmp_path / "ns" / "a")
    assert netlink.create_netns(path) == path
    try:
        # the caller and the process did not move; the file is a new namespace of the kernel's
        assert (_ino("/proc/self/ns/net"), _ino("/proc/thread-self/ns/net")) == (process, thread)
        assert _ino(path) not in (process, thread)
        [line] = _mounted(path)
        assert line.split(" - ")[1].split()[0] == "nsfs"
        # a thread that joined it is in it (the kernel says which), with lo up
        assert netlink.in_netns(path, lambda: _ino("/proc/thread-self/ns/net")) == _ino(path)
        assert netlink.in_netns(path, _loopback_connects)
        assert _ino("/proc/thread-self/ns/net") == thread
        # a second one is another namespace
        other = netlink.create_netns(str(tmp_path / "ns" / "b"))
        assert _ino(other) not in (_ino(path), process)
        netlink.remove_netns(other)
    finally:
        netlink.remove_netns(path)
    assert not os.path.lexists(path) and not _mounted(path)
    netlink.remove_netns(path)                  # gone: nothing to do
    netlink.release_netns_dir(str(tmp_path / "ns"))
    assert not _mounted(str(tmp_path / "ns"))


def test_in_netns_raises_what_fn_raised(tmp_path, private_mount_ns):
    path = netlink.create_netns(str(tmp_path / "ns" / "a"))
    try:
        def boom():
            raise KeyError("inside")
        with pytest.raises(KeyError, match="inside"):
            netlink.in_netns(path, boom)
    finally:
        netlink.remove_netns(path)
        netlink.release_netns_dir(str(tmp_path / "ns"))


def test_create_on_a_taken_path_leaves_it(tmp_path, private_mount_ns):
    d = tmp_path / "ns"
    d.mkdir()
    (d / "a").write_text("mine")
    with pytest.raises(SystemFailure) as e:
        netlink.create_netns(str(d / "a"))
    assert e.value.errno == errno.EEXIST and str(d / "a") in str(e.value)
    assert (d / "a").read_text() == "mine"
    assert not _mounted(str(d / "a")) and not _mounted(str(d))


def test_setns_net_errors_are_the_kernels(tmp_path):
    with pytest.raises(SystemFailure) as e:
        system.setns_net(-1)
    assert e.value.errno == errno.EBADF and "\n" not in str(e.value)
    f = tmp_path / "plain"
    f.write_text("")
    fd = os.open(f, os.O_RDONLY)
    try:
        with pytest.raises(SystemFailure) as e:
            system.setns_net(fd)                # not a namespace
        assert e.value.errno == errno.EINVAL
    finally:
        os.close(fd)
    assert _ino("/proc/thread-self/ns/net") == _ino("/proc/self/ns/net")
