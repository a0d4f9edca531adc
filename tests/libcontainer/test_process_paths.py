"""Property: whatever symlinks a rootfs holds, a mount step's destination stays inside it.

Each example builds a rootfs with random symlinks (absolute, relative, climbing with ..,
chained, dangling), mounts a tmpfs at a random destination through the native core, and checks
that nothing appeared outside the rootfs. A step may fail (a loop, a file in the way): then it
fails with one SystemFailure line and leaves no process behind.
"""
import os
import shutil
import subprocess
import tempfile

import pytest
import support
from hypothesis import HealthCheck, given, settings, strategies as st

from pyrunc.errors import SystemFailure
from pyrunc.libcontainer.plan import MountStep, Namespace, Plan
from pyrunc.libcontainer.process import spawn_init

pytestmark = pytest.mark.usefixtures("private_mount_ns")

NAMES = st.sampled_from(["a", "b", "c", "..", "."])
REL = st.lists(NAMES, min_size=1, max_size=4).map("/".join)
TARGET = st.one_of(REL, REL.map(lambda p: "/" + p), st.sampled_from(["/", "..", "../..",
                                                                      "/../../x"]))
LINKS = st.lists(st.tuples(st.sampled_from(["a", "b", "c", "a/l", "b/m"]), TARGET),
                 max_size=5)


def snapshot(top, rootfs):
    seen = {os.path.join("/", name) for name in os.listdir("/")}
    for dirpath, dirnames, filenames in os.walk(top):
        if dirpath == rootfs:
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            seen.add(os.path.join(dirpath, name))
    return seen


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(links=LINKS, destination=REL)
def test_mount_destination_never_leaves_the_rootfs(busybox_rootfs, links, destination):
    top = tempfile.mkdtemp(prefix="pyrunc-paths-")
    children = support.child_pids()
    try:
        rootfs = os.path.join(top, "in", "rootfs")
        os.makedirs(os.path.join(top, "in"))
        subprocess.run(["cp", "-al", busybox_rootfs, rootfs], check=True)
        for d in ("a", "b"):
            os.makedirs(os.path.join(rootfs, d), exist_ok=True)
        for link, target in links:
            path = os.path.join(rootfs, link)
            if not os.path.lexists(path) and os.path.isdir(os.path.dirname(path)):
                os.symlink(target, path)
        before = snapshot(top, rootfs)
        plan = Plan(container_id="t", bundle=top, rootfs=rootfs,
                    namespaces=[Namespace(0x00020000), Namespace(0x20000000)],
                    mounts=[MountStep("mount", "/" + destination, "tmpfs", "tmpfs")],
                    env=["PATH=/bin"], args=["true"])
        try:
            pid = spawn_init(plan, exec_fifo_fd=-1)
            assert os.waitpid(pid, 0)[1] == 0
        except SystemFailure as e:
            assert str(e).startswith("mount tmpfs on /%s: " % destination)
            assert "\n" not in str(e)
        assert snapshot(top, rootfs) == before
        assert support.child_pids() - children == set()
    finally:
        shutil.rmtree(top)
