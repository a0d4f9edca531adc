"""containerd's own runc shim drives a runtime binary (checked with runc itself first)."""
import uuid


def test_ctr_runs_runc(containerd, busybox_rootfs):
    cid = "h-" + uuid.uuid4().hex[:8]
    r = containerd("run", "--rm", "--runc-binary", "runc", "--rootfs", busybox_rootfs, cid,
                   "/bin/echo", "hello")
    assert r.stdout.strip() == "hello"
