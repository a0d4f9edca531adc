"""pyrunc.engine.busybox: the busybox rootfs and the demo's bundle, checked with runc (a peer)."""
import subprocess
import sys

import pytest

from support import need, unique_id


@pytest.mark.peer
def test_the_module_makes_a_bundle_runc_runs(tmp_path, private_mount_ns):
    """The README tour's first step: ``python -m pyrunc.engine.busybox DIR -- ARGS`` gives a
    bundle that runc itself runs, with runc's example config (hostname "runc")."""
    runc = need("runc")
    bundle = str(tmp_path / "b")
    subprocess.run([sys.executable, "-m", "pyrunc.engine.busybox", bundle, "--", "sh", "-c",
                    "echo hi from $(hostname) as $(id -u)"], check=True, timeout=60)
    r = subprocess.run([runc, "--root", str(tmp_path / "state"), "run", "--bundle", bundle,
                        unique_id("bb")], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, "hi from runc as 0\n"), r.stderr


def test_the_builtin_image_does_not_load_the_runtime():
    """The engine's built-in busybox image needs the rootfs builder only, not the runtime."""
    code = ("import sys, pyrunc.engine.images.builtin;"
            "print(sorted(m for m in sys.modules if m.startswith('pyrunc.containerd')))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    assert out.strip() == "[]"
