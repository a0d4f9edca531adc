"""The cgroup v2 device program on a real kernel: every access a child makes is allowed or
denied exactly as the rules decide (devices.decide, the runtime spec's last-match-wins order).
Runs wherever a cgroup2 hierarchy is mounted: the unified hierarchy of a hybrid host, or a
pure cgroup v2 host (tests/vm)."""
import os
import stat
import tempfile
import uuid

import pytest

from pyrunc.libcontainer.cgroups import devices, ebpf, hierarchy

NODES = [("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7), ("/dev/urandom", 1, 9)]

SCENARIOS = {
    "nothing allowed": [],
    "one device read-write": [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}],
    "all but writes to zero": [{"allow": True},
                               {"allow": False, "type": "c", "major": 1, "minor": 5, "access": "w"}],
    "wildcard minor and major": [{"allow": True, "type": "c", "major": 1, "access": "rwm"},
                                 {"allow": False, "type": "c", "minor": 7, "access": "rwm"}],
    "block only, mknod of one char": [{"allow": False},
                                      {"allow": True, "type": "b", "access": "rwm"},
                                      {"allow": True, "type": "c", "major": 1, "minor": 9,
                                       "access": "m"}],
}


@pytest.fixture
def v2_dir():
    if os.geteuid() != 0:
        pytest.fail("the eBPF tests need root: run them with scripts/test.sh as root")
    layout = hierarchy.host_layout()
    if layout.unified is None:
        pytest.skip("no cgroup2 hierarchy on this host")
    path = os.path.join(layout.unified.mountpoint, "pyrunc-ebpf-test-" + uuid.uuid4().hex[:8])
    os.mkdir(path)
    yield path
    os.rmdir(path)


def _try_everything(cgroup_dir):
    """[(node, access, allowed)] as seen by a child in ``cgroup_dir``."""
    r, w = os.pipe()
    scratch = tempfile.mkdtemp()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            with open(os.path.join(cgroup_dir, "cgroup.procs"), "w") as f:
                f.write("0")
            out = []
            for path, major, minor in NODES:
                for access, flags in (("r", os.O_RDONLY), ("w", os.O_WRONLY)):
                    try:
                        os.close(os.open(path, flags))
                        out.append("%s %s 1" % (path, access))
                    except PermissionError:
                        out.append("%s %s 0" % (path, access))
                node = os.path.join(scratch, os.path.basename(path))
                try:
                    os.mknod(node, stat.S_IFCHR | 0o600, os.makedev(major, minor))
                    os.unlink(node)
                    out.append("%s m 1" % path)
                except PermissionError:
                    out.append("%s m 0" % path)
            os.write(w, "\n".join(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    os.rmdir(scratch)
    return [(line.split()[0], line.split()[1], line.split()[2] == "1")
            for line in data.decode().splitlines()]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_device_program_decides_like_the_rules(v2_dir, name):
    rules = devices.parse_rules({"devices": SCENARIOS[name]})
    ebpf.set_device_rules(v2_dir, rules)
    numbers = {path: (major, minor) for path, major, minor in NODES}
    seen = _try_everything(v2_dir)
    assert len(seen) == 3 * len(NODES)
    for path, access, allowed in seen:
        expected = devices.decide(rules, "c", *numbers[path], access)
        assert allowed == expected, (path, access, allowed)


def test_update_replaces_the_program(v2_dir):
    ebpf.set_device_rules(v2_dir, devices.parse_rules({"devices": []}))
    ebpf.set_device_rules(v2_dir, devices.parse_rules({"devices": [{"allow": True}]}))
    fd = os.open(v2_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert len(ebpf.attached(fd)) == 1
    finally:
        os.close(fd)
    assert all(allowed for _, _, allowed in _try_everything(v2_dir))
