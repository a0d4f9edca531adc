"""The cgroup v2 backend for real: the shared cgroup suite run inside a throw-away VM whose only
hierarchy is cgroup2 (software emulation: one boot for the whole subset, about 30 s)."""
import os
import re
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
RUN = os.path.join(HERE, "run-v2-vm.sh")
SUBSET = ["tests/libcontainer/cgroups/test_manager.py", "tests/libcontainer/cgroups/test_ebpf.py"]

pytestmark = pytest.mark.vm


def _need_vm_tools():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if os.environ.get("PYRUNC_VM"):
        pytest.skip("already inside the VM")
    for tool in ("qemu-system-x86_64", "cpio", "modprobe"):
        if not shutil.which(tool):
            pytest.skip("%s is not installed" % tool)
    if not os.path.exists("/usr/lib/qemu/virtiofsd"):
        pytest.skip("virtiofsd is not installed")


def test_cgroup_suite_passes_on_pure_cgroup_v2():
    _need_vm_tools()
    pytest_cmd = " ".join([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--color=no", "-q", "-rs"] + SUBSET)
    cmd = [RUN, "-r", TOP, "-C", TOP, "--", "sh", "-c",
           "stat -fc 'cgroupfs=%T' /sys/fs/cgroup && exec " + pytest_cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "cgroupfs=cgroup2fs" in proc.stdout, out[-4000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary), out[-4000:]
    assert "skipped" not in summary and "failed" not in summary, out[-4000:]
