"""The cgroup backends and drivers for real: the shared cgroup suite run inside throw-away VMs,
one whose only hierarchy is cgroup2 with a plain init (cgroupfs driver), one with systemd as
PID 1 (both drivers), and a legacy one with cgroup v1 only. Those with a plain init (and a
hybrid one, like this host) also run checkpoint/restore, which CRIU cannot do on this host's
kernel; one more plain VM runs the differential config test with crun as the oracle, which
refuses this hybrid host. Software emulation: one boot per VM for its subset (80-230 s each in
a full run), started in the background at collection's end (tests/conftest.py), so that they
use what CPU the host tests leave idle; each test here waits for its VM's result."""
import json
import os
import re
import sys
import warnings

import pytest

import support

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
SUBSET = ["tests/libcontainer/cgroups/test_manager.py", "tests/libcontainer/cgroups/test_ebpf.py",
          "tests/libcontainer/cgroups/test_container_view.py"]
# CRIU (Debian 12's 3.17) cannot run on this host's kernel but can on the VM's Debian kernel
# (it wants loopback up): checkpoint/restore for real, pyrunc and runc side by side.
PLAIN_ONLY = ["tests/containerd/runtime/test_checkpoint.py"]
# crun (which refuses hybrid hosts) as the differential test's oracle; hypothesis draws the
# same derandomized cases as on the host, fewer (three runtimes per case, emulated)
CRUN_DIFF = ("tests/libcontainer/test_differential_runc.py::"
             "test_crun_runc_and_pyrunc_accept_the_same_configs")
CRUN_EXAMPLES = 25
TIMED_OUT = 124             # run-v2-vm.sh's code for a VM that did not finish in time
# A VM's time bound, and ours on run-v2-vm.sh: in the background of the host tests, niced, a VM
# gets only the CPU they leave (emulated, the guest sees that as slowness; its tests allow it).
VM_SECONDS = 720
RUN_SECONDS = VM_SECONDS + 60

pytestmark = pytest.mark.vm


# Per VM: the run-v2-vm.sh flags, the test files, what /sys/fs/cgroup is, what PID 1 is.
VMS = {
    "plain": ([], SUBSET + PLAIN_ONLY, "cgroup2fs", "busybox"),
    "systemd": (["-s"], SUBSET, "cgroup2fs", "systemd"),
    # a legacy host: cgroup v1 only (this host is hybrid); no eBPF device programs there
    "v1": (["-1"], [t for t in SUBSET if "ebpf" not in t] + PLAIN_ONLY, "tmpfs", "busybox"),
    # a hybrid host like this one, where CRIU runs
    "hybrid": (["-H"], ["tests/libcontainer/cgroups/test_container_view.py"] + PLAIN_ONLY,
               "tmpfs", "busybox"),
    # -s: the counts it prints (crun vs pyrunc, crun vs runc) are checked here too
    "crun": (["-e", "PYRUNC_DIFF_EXAMPLES=%d" % CRUN_EXAMPLES], ["-s", CRUN_DIFF], "cgroup2fs",
             "busybox"),
}
# Per VM: the seconds it took in a full run (tests/conftest.py starts the longest first)
USUAL_SECONDS = {"v1": 231, "plain": 217, "hybrid": 167, "crun": 119, "systemd": 78}


def vm_job(init):
    """The run-v2-vm.sh command line of a VM's test, the bound on it, its usual duration; None
    where the test skips for want of systemd."""
    if init == "systemd" and not os.path.exists("/lib/systemd/systemd"):
        return None
    flags, tests, cgroupfs, pid1 = VMS[init]
    # a private mount namespace, as scripts/test.sh gives (systemd makes / shared); a test
    # stuck for two minutes prints every thread's stack before the VM's time runs out
    pytest_cmd = " ".join(["unshare", "--mount", "--propagation", "private", "--",
                           sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--color=no", "-q", "-rs", "-o", "faulthandler_timeout=120"] + tests)
    cmd = [support.VM_RUNNER, "-t", str(VM_SECONDS)] + flags + [
        "-r", TOP, "-C", TOP, "--", "sh", "-c",
        "ip link set lo up && stat -fc 'cgroupfs=%T' /sys/fs/cgroup && cat /proc/1/comm && "
        "exec " + pytest_cmd]
    return cmd, RUN_SECONDS, USUAL_SECONDS[init]


@pytest.mark.parametrize("init", sorted(VMS))
def test_cgroup_suite_passes_in_the_vm(init):
    support.need_vm()
    job = vm_job(init)
    if job is None:
        pytest.skip("systemd is not installed")
    cmd, timeout, _ = job
    cgroupfs, pid1 = VMS[init][2:]
    proc = support.background_vms.take(cmd, timeout)
    out = proc.stdout + proc.stderr
    if proc.returncode == TIMED_OUT:
        # A VM's tests stalled (twice in six full runs, in the v1 VM and in the plain one; not
        # in twenty runs of the VMs alone): boot a fresh one, and say where the first stood.
        # One cause is known and gone: test_checkpoint.py read the restored container's
        # stdout without a bound, after its exec had written into the counter's file instead.
        warnings.warn("the %s VM timed out; a fresh VM ran the tests again. The first one "
                      "said:\n%s" % (init, _stall_report(out)))
        proc = support.run_vm(cmd, timeout)
        out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "cgroupfs=" + cgroupfs, out[-4000:]
    assert lines[1] == pid1, out[-4000:]
    assert re.search(r"\d+ passed", lines[-1]), out[-4000:]
    assert "failed" not in lines[-1] and "error" not in lines[-1], out[-4000:]
    skips = [x for x in lines if x.startswith("SKIPPED")]
    if init == "systemd":
        # under systemd: the systemd driver runs, so its "not running" error test is skipped
        assert len(skips) == 1 and "systemd runs here" in skips[0], out[-4000:]
    else:
        assert not skips, out[-4000:]
    if init == "crun":
        counts = dict((m.group(1), json.loads(m.group(2))) for m in re.finditer(
            r"^crun vs (pyrunc|runc): (\{.*\})$", proc.stdout, re.M))
        assert sorted(counts) == ["pyrunc", "runc"], out[-4000:]
        for name, c in sorted(counts.items()):
            print("crun vs %s in the VM: %s" % (name, json.dumps(c)))      # shown with -s
            assert c["configs"] == CRUN_EXAMPLES and c["unexplained differences"] == 0, c


def _stall_report(out):
    """What a stalled run said: the stuck test's stack (pytest's faulthandler dump, innermost
    frames first) and the end of the output, with the guest console's last lines."""
    dump = out.rfind("Timeout (")
    head = out[dump:dump + 2500] + "\n[...]\n" if dump >= 0 else ""
    return head + out[-1500:]
