"""Bundles runc refuses: a rootfs that is, or passes through, a symlink; NUL bytes in strings
that reach the kernel. pyrunc and runc run on the same bundle; pyrunc's refusal is one line,
InvalidArgument (exit 2), naming the field."""
import json
import os

import pytest

from support import unique_id


def _write(bundle, mutate):
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        spec = json.load(f)
    mutate(spec)
    with open(path, "w") as f:
        json.dump(spec, f)


def _refused(runtime, bundle, field):
    cid = unique_id()
    r = runtime("create", "--bundle", bundle, cid, check=False)
    if r.returncode == 0:
        runtime("delete", "--force", cid, check=False)
    assert r.returncode != 0, "%s accepted the bundle" % runtime.name
    if runtime.name == "pyrunc":
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith("pyrunc: config.json: %s: " % field), r.stderr
        assert r.stderr.count("\n") == 1, r.stderr
    assert os.listdir(runtime.root) == [] if os.path.isdir(runtime.root) else True


def _accepted(runtime, bundle):
    r = runtime("run", "--bundle", bundle, unique_id(), check=False)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("target", ["rootfs", "/"], ids=["to-a-directory", "to-slash"])
def test_rootfs_that_is_a_symlink(runtime, make_bundle, target):
    bundle = make_bundle(["true"])
    os.symlink(target, os.path.join(bundle, "link"))
    _write(bundle, lambda spec: spec["root"].update(path="link"))
    _refused(runtime, bundle, "root.path")


def test_rootfs_below_a_symlink(runtime, make_bundle, tmp_path):
    bundle = make_bundle(["true"])
    os.symlink(bundle, str(tmp_path / "via"))
    _write(bundle, lambda spec: spec["root"].update(path=str(tmp_path / "via" / "rootfs")))
    _refused(runtime, bundle, "root.path")


def test_rootfs_relative_with_dotdot_through_a_symlink(runtime, make_bundle):
    bundle = make_bundle(["true"])
    os.mkdir(os.path.join(bundle, "d"))
    os.symlink(os.path.join(bundle, "d"), os.path.join(bundle, "s"))
    _write(bundle, lambda spec: spec["root"].update(path="s/../rootfs"))
    # cleaned lexically first, "s/../rootfs" is "rootfs": no symlink is left to follow
    _accepted(runtime, bundle)


def test_bundle_reached_through_a_symlink_is_fine(runtime, make_bundle, tmp_path):
    """The bundle's own path may have symlinks: runc works from its real path (a relative
    root.path is taken from there)."""
    bundle = make_bundle(["true"])
    link = str(tmp_path / "bundle-link")
    os.symlink(bundle, link)
    _accepted(runtime, link)


@pytest.mark.parametrize("field,mutate", [
    ("mounts[5].options[0]",
     lambda spec: spec["mounts"][5].update(options=["nosuid\0,suid", "noexec"])),
    ("mounts[5].source", lambda spec: spec["mounts"][5].update(source="sysfs\0x")),
    ("process.args[0]", lambda spec: spec["process"].update(args=["true\0false"])),
    ("process.env[0]", lambda spec: spec["process"].update(env=["PATH=/bin\0:/x"])),
    ("hostname", lambda spec: spec.update(hostname="a\0b")),
])
def test_nul_bytes_are_refused(runtime, make_bundle, field, mutate):
    """Go refuses NUL in a string it passes to a system call as a C string; sethostname takes
    a length, so runc sets a hostname with a NUL in it, which pyrunc (C strings) refuses."""
    bundle = make_bundle(["true"])
    _write(bundle, mutate)
    if runtime.name == "runc" and field == "hostname":
        _accepted(runtime, bundle)
        return
    _refused(runtime, bundle, field)
