"""Helpers importable by every test module (``from support import need``)."""
import os
import shutil

import pytest


# The external tools pyrunc is compared with or tested against: a test that needs one carries
# the ``peer`` marker (``-m "not peer"`` leaves them out); need() fails a test that does not.
PEER_TOOLS = frozenset({"runc", "crun", "ctr", "containerd", "containerd-shim-runc-v2", "skopeo",
                        "umoci", "docker-registry", "criu", "dbus-daemon", "dbus-send"})

# The test being set up or run (set by tests/conftest.py), so that need() can check its marker.
current_item = None


def need(binary):
    """Skip unless an external tool is installed (what the machine lacks); a peer tool needs
    the test to be marked ``peer``."""
    item = current_item
    if binary in PEER_TOOLS and item is not None and item.get_closest_marker("peer") is None:
        pytest.fail("%s is a peer tool: mark %s with @pytest.mark.peer" % (binary, item.nodeid))
    path = shutil.which(binary)
    if not path:
        pytest.skip("%s is not installed" % binary)
    return path


def unique_id(prefix="t"):
    """A container id no other test (or a parallel run) uses."""
    import uuid
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def wait_for_status(runtime, cid, status, timeout=10):
    """Poll ``runtime state`` until the container reaches ``status``."""
    import json
    import time
    deadline = time.monotonic() + timeout
    while True:
        r = runtime("state", cid, check=False)
        got = json.loads(r.stdout)["status"] if r.returncode == 0 else r.stderr.strip()
        if got == status:
            return
        if time.monotonic() > deadline:
            raise AssertionError("%s: status %r, wanted %r" % (cid, got, status))
        time.sleep(0.02)


VM_RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vm", "run-v2-vm.sh")


def need_vm():
    """Skip unless the pure cgroup v2 VM can boot here (qemu, virtiofsd; not inside it); fail
    when not root."""
    if os.geteuid() != 0:
        pytest.fail("the VM tests need root: run them with scripts/test.sh as root")
    if os.environ.get("PYRUNC_VM"):
        pytest.skip("already inside the VM")
    for tool in ("qemu-system-x86_64", "cpio", "modprobe"):
        if not shutil.which(tool):
            pytest.skip("%s is not installed" % tool)
    if not os.path.exists("/usr/lib/qemu/virtiofsd"):
        pytest.skip("virtiofsd is not installed")
    return VM_RUNNER


def go_json_text(data: bytes) -> str:
    """Go's encoding/json on a byte string (what Docker's json-file keeps of output bytes): valid
    UTF-8 kept, each other byte U+FFFD."""
    out, i = [], 0
    while i < len(data):
        for n in (1, 2, 3, 4):
            try:
                ch = data[i:i + n].decode("utf-8")
            except UnicodeDecodeError:
                continue
            if len(ch) == 1:
                out.append(ch)
                i += n
                break
        else:
            out.append("\ufffd")
            i += 1
    return "".join(out)


def child_pids():
    """The PIDs of this process's children (zombies too), from every thread's
    /proc/self/task/TID/children: a test compares the set before and after it, so children of
    longer-lived fixtures (a registry kept for the session) do not count against it."""
    pids = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open("/proc/self/task/%s/children" % tid) as f:
                pids.update(int(p) for p in f.read().split())
        except FileNotFoundError:       # the thread ended meanwhile
            pass
    return pids


def pids_by_argv(match):
    """The PIDs of the live processes whose argument list (bytes) ``match`` accepts."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and match(argv):
            found.append(int(entry))
    return found


def http_get(port, seconds=10):
    """The answer to GET / on 127.0.0.1:PORT (b"" if none), trying for ``seconds`` while the
    server starts."""
    import socket
    import time
    body = b""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                body = s.makefile("rb").read()
            if body:
                return body
        except OSError:
            pass
        if time.monotonic() >= deadline:
            return body
        time.sleep(0.2)


def link_names():
    """The link names of the calling thread's network namespace, from netlink (/sys/class/net
    shows the namespace sysfs was mounted in, not the one a test moved its thread into)."""
    from pyroute2 import IPRoute
    with IPRoute() as ip:
        return sorted(link.get_attr("IFLA_IFNAME") for link in ip.get_links())


def wait_links_gone(prefix, timeout=5.0):
    """Wait until the calling thread's network namespace has no link whose name starts with
    ``prefix``, polling for up to ``timeout`` seconds: a stopped container's veths go with its
    network namespace, which the kernel destroys asynchronously once the engine let go of it.
    The names still there at the deadline ([] when all went)."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        left = [name for name in link_names() if name.startswith(prefix)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.02)
