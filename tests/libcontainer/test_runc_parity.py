"""Configs on which pyrunc once decided otherwise than runc 1.1.5 (test_differential_runc.py
found them), each held to runc's decision:

* no proc file system at /proc: runc refuses at ``create`` (its init reads /proc/self/fd);
  pyrunc's init reopens the exec fifo through /proc/self/fd, so ``create`` must fail too,
  instead of a container that is created and then stopped at once;
* a mount at ``/``: it covers the root filesystem, and runc fails part way through its setup;
  pyrunc refuses it up front;
* ``linux.resources.devices`` given as an empty array (no deny-all rule): runc accepts it as
  deny-all followed by its default device rules; pyrunc used to deny every device, even the
  /dev/null it creates.
"""
import os
import subprocess
import tempfile

import pytest

from support import unique_id

pytestmark = pytest.mark.usefixtures("private_mount_ns")


def _pyrunc(pyrunc_bin, root, *args):
    """The command's outcome; its output goes to files, not pipes: a created container
    inherits them and would hold a pipe open."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.run([pyrunc_bin, "--root", root, *args], stdin=subprocess.DEVNULL,
                              stdout=out, stderr=err, timeout=60)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.read().decode(),
                                           err.read().decode())


def _cgroup_dirs(name):
    """The directories named ``name`` at the top of every cgroup hierarchy mounted here."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("cgroup", "cgroup2"):
                out.append(os.path.join(fields[4], name))
    return out


def test_no_proc_mount_fails_create_and_leaves_nothing(make_bundle, pyrunc_bin, tmp_path):
    cgroup = unique_id("noproc")

    def no_proc(spec):
        spec["mounts"] = [m for m in spec["mounts"] if m["destination"] != "/proc"]
        spec["linux"]["cgroupsPath"] = "/" + cgroup
    bundle = make_bundle(mutate=no_proc)
    root = str(tmp_path / "state")
    cid = unique_id("noproc")
    try:
        r = _pyrunc(pyrunc_bin, root, "create", "--bundle", bundle, cid)
        state = _pyrunc(pyrunc_bin, root, "state", cid)
        assert r.returncode == 1, (r.returncode, r.stderr, state.stdout)
        first, hint = r.stderr.splitlines()
        assert first == "pyrunc: find the exec fifo at /proc/self/fd/%s: no such file or " \
            "directory" % first.split("/proc/self/fd/")[1].split(":")[0]
        assert hint == ("pyrunc: hint: the container needs a proc file system mounted at /proc "
                        "(see mounts)")
        assert state.returncode == 3, state.stdout      # NotFound: no state left
        assert not os.path.exists(os.path.join(root, cid))
        left = [d for d in _cgroup_dirs(cgroup) if os.path.exists(d)]
        assert not left, left
    finally:
        _pyrunc(pyrunc_bin, root, "delete", "--force", cid)


def test_a_proc_mount_elsewhere_still_fails_create(make_bundle, pyrunc_bin, tmp_path):
    """/proc is there but holds no proc file system (proc is mounted at /mnt/proc)."""
    def moved(spec):
        for m in spec["mounts"]:
            if m["destination"] == "/proc":
                m["destination"] = "/mnt/proc"
    root = str(tmp_path / "state")
    cid = unique_id("proc-elsewhere")
    try:
        r = _pyrunc(pyrunc_bin, root, "create", "--bundle", make_bundle(mutate=moved), cid)
        assert r.returncode == 1, r.stderr
        assert r.stderr.startswith("pyrunc: find the exec fifo at /proc/self/fd/"), r.stderr
        assert not os.path.exists(os.path.join(root, cid))
    finally:
        _pyrunc(pyrunc_bin, root, "delete", "--force", cid)


@pytest.mark.parametrize("destination", ["/", "//", "/.", ".", "/tmp/.."])
@pytest.mark.parametrize("index", [0, 3, 7])
def test_a_mount_over_the_root_is_refused(make_bundle, pyrunc_bin, tmp_path, destination,
                                          index):
    def over_root(spec):
        if index < len(spec["mounts"]):
            spec["mounts"][index]["destination"] = destination
        else:
            spec["mounts"].append({"destination": destination, "type": "tmpfs",
                                   "source": "tmpfs"})
    root = str(tmp_path / "state")
    cid = unique_id("over-root")
    try:
        r = _pyrunc(pyrunc_bin, root, "create", "--bundle", make_bundle(mutate=over_root), cid)
        assert r.returncode == 2, r.stderr                  # InvalidArgument
        assert r.stderr == ("pyrunc: config.json: mounts[%d].destination: must not be / (a mount "
                            "there would cover the root filesystem)\n" % index)
        assert not os.path.exists(os.path.join(root, cid))
    finally:
        _pyrunc(pyrunc_bin, root, "delete", "--force", cid)


def test_empty_device_rules_are_deny_all_then_the_defaults(make_bundle, pyrunc_bin, tmp_path):
    """The kernel's answers inside the container: the default devices work, and a device
    node of another number (1:1, /dev/mem) can be made (runc's rules allow mknod of any
    character device) but not opened."""
    script = ("echo x > /dev/null && head -c 1 /dev/zero | od -An -tx1 && "
              "mknod /dev/mem c 1 1 && head -c 1 /dev/mem; echo mem=$?")

    def no_rules(spec):
        spec["linux"]["resources"] = {"devices": []}
    root = str(tmp_path / "state")
    cid = unique_id("no-rules")
    try:
        r = _pyrunc(pyrunc_bin, root, "run", "--bundle",
                    make_bundle(["sh", "-c", script], mutate=no_rules), cid)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["00", "mem=1"], (r.stdout, r.stderr)
        assert "Operation not permitted" in r.stderr, r.stderr
    finally:
        _pyrunc(pyrunc_bin, root, "delete", "--force", cid)
