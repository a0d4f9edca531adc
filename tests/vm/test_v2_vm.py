"""The cgroup v2 backend and the systemd driver for real: the shared cgroup suite run inside a
throw-away VM whose only hierarchy is cgroup2, once with a plain init (cgroupfs driver; there also
checkpoint/restore, which CRIU cannot do on this host's kernel) and once with systemd as PID 1
(both drivers). Software emulation: one boot per mode for the whole subset (about 2-3 min plain,
60-90 s with systemd)."""
import os
import re
import subprocess
import sys

import pytest

from support import need_vm

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
SUBSET = ["tests/libcontainer/cgroups/test_manager.py", "tests/libcontainer/cgroups/test_ebpf.py",
          "tests/libcontainer/cgroups/test_container_view.py"]
# CRIU (Debian 12's 3.17) cannot run on this host's kernel but can on the VM's Debian kernel
# (it wants loopback up): checkpoint/restore for real, pyrunc and runc side by side.
PLAIN_ONLY = ["tests/containerd/runtime/test_checkpoint.py"]

pytestmark = pytest.mark.vm


@pytest.mark.parametrize("init", ["plain", "systemd"])
def test_cgroup_suite_passes_on_pure_cgroup_v2(init):
    run = need_vm()
    if init == "systemd" and not os.path.exists("/lib/systemd/systemd"):
        pytest.skip("systemd is not installed")
    # a private mount namespace, as scripts/test.sh gives (systemd makes / shared)
    pytest_cmd = " ".join(["unshare", "--mount", "--propagation", "private", "--",
                           sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--color=no", "-q", "-rs"] + SUBSET +
                          (PLAIN_ONLY if init == "plain" else []))
    cmd = [run] + (["-s"] if init == "systemd" else []) + [
        "-r", TOP, "-C", TOP, "--", "sh", "-c",
        "ip link set lo up && stat -fc 'cgroupfs=%T' /sys/fs/cgroup && cat /proc/1/comm && "
        "exec " + pytest_cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "cgroupfs=cgroup2fs", out[-4000:]
    assert lines[1] == ("systemd" if init == "systemd" else "busybox"), out[-4000:]
    assert re.search(r"\d+ passed", lines[-1]), out[-4000:]
    assert "failed" not in lines[-1] and "error" not in lines[-1], out[-4000:]
    skips = [x for x in lines if x.startswith("SKIPPED")]
    if init == "systemd":
        # under systemd: the systemd driver runs, so its "not running" error test is skipped
        assert len(skips) == 1 and "systemd runs here" in skips[0], out[-4000:]
        assert "[systemd]" in proc.stdout or re.search(r"(\d+) passed", lines[-1])
    else:
        assert not skips, out[-4000:]
