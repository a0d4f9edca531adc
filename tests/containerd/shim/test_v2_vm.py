"""The lifecycle suite on a pure cgroup v2 host: a throw-away VM (tests/vm/run-v2-vm.sh).

It covers what this hybrid host cannot: OOM kills seen through memory.events, and crun, which
refuses hybrid hosts. One boot for the subset (software emulation: about 90 s)."""
import os
import re
import subprocess
import sys

import pytest

from support import need_vm

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
SELECT = "create_start or oom or update or exec_and or terminal"

pytestmark = pytest.mark.vm


def test_lifecycle_subset_on_pure_cgroup_v2():
    run = need_vm()
    pytest_cmd = " ".join([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--color=no", "-q", "-rs", "-k", "'%s'" % SELECT,
                           "tests/containerd/shim/test_lifecycle.py"])
    cmd = [run, "-r", TOP, "-C", TOP, "-t", "500", "--", "sh", "-c",
           "stat -fc 'cgroupfs=%T' /sys/fs/cgroup && exec unshare --mount --propagation "
           "private " + pytest_cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "cgroupfs=cgroup2fs" in proc.stdout, out[-4000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and "failed" not in summary, out[-4000:]
    assert "crun cannot run a container here" not in out, out[-4000:]   # crun ran there
