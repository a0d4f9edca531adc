"""The lifecycle suite on a pure cgroup v2 host: a throw-away VM (tests/vm/run-v2-vm.sh).

It covers what this hybrid host cannot: OOM kills seen through memory.events, and crun, which
refuses hybrid hosts. One boot for the subset (software emulation: about 70 s), started in the
background at collection's end (tests/conftest.py); the test waits for its result."""
import os
import re
import sys

import pytest

import support

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
SELECT = "create_start or oom or update or exec_and or terminal"

pytestmark = pytest.mark.vm


def vm_job():
    """The run-v2-vm.sh command line of the test, the bound on it and its usual duration. In the
    background of the host tests, niced, the VM gets only the CPU they leave (emulated, the
    guest sees that as slowness): its bound allows for that."""
    pytest_cmd = " ".join([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--color=no", "-q", "-rs", "-k", "'%s'" % SELECT,
                           "tests/containerd/shim/test_lifecycle.py"])
    cmd = [support.VM_RUNNER, "-r", TOP, "-C", TOP, "-t", "600", "--", "sh", "-c",
           "stat -fc 'cgroupfs=%T' /sys/fs/cgroup && exec unshare --mount --propagation "
           "private " + pytest_cmd]
    return cmd, 660, 71


def test_lifecycle_subset_on_pure_cgroup_v2():
    support.need_vm()
    cmd, timeout, _ = vm_job()
    proc = support.background_vms.take(cmd, timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "cgroupfs=cgroup2fs" in proc.stdout, out[-4000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and "failed" not in summary, out[-4000:]
    assert "crun cannot run a container here" not in out, out[-4000:]   # crun ran there
