"""An Engine with --userns-remap: its containers' root is an unprivileged host id range, the
files written inside belong to it on the host, and the engine's tree is ROOT/UID.GID."""
import os
import shutil
import subprocess
import tempfile

import pytest

from pyrunc.engine import Engine

HOST_UID, HOST_GID = 362144, 362144


@pytest.fixture
def remap_ids(tmp_path, private_mount_ns):
    """/etc/subuid and /etc/subgid (and a dockremap user) bound over the host's files in the
    suite's private mount namespace, unmounted afterwards."""
    targets = []
    for name, text in (("subuid", "dockremap:%d:65536\n" % HOST_UID),
                       ("subgid", "dockremap:%d:65536\n" % HOST_GID),
                       ("passwd", None), ("group", None)):
        target = "/etc/" + name
        copy = tmp_path / name
        existing = open(target).read() if os.path.exists(target) else ""
        if name == "passwd" and "\ndockremap:" not in "\n" + existing:
            text = existing + "dockremap:x:999:999::/nonexistent:/usr/sbin/nologin\n"
        elif name == "group" and "\ndockremap:" not in "\n" + existing:
            text = existing + "dockremap:x:999:\n"
        elif text is None:
            continue
        copy.write_text(text)
        if not os.path.exists(target):
            open(target, "w").close()
        subprocess.run(["mount", "--bind", str(copy), target], check=True)
        targets.append(target)
    yield
    for target in reversed(targets):
        subprocess.run(["umount", target], check=False)


@pytest.fixture
def passable_dir():
    """A directory the remapped root may pass through (pytest's are 0700)."""
    path = tempfile.mkdtemp(prefix="pyrunc-engine-userns-")
    os.chmod(path, 0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_remapped_container(passable_dir, remap_ids, runtime):
    root = os.path.join(passable_dir, "root")
    eng = Engine(root, userns_remap="default")
    try:
        assert os.path.isdir(os.path.join(root, "%d.%d" % (HOST_UID, HOST_GID), "image"))
        eng.load_builtin("busybox")
        cs = eng.containers
        cid = cs.create({"Image": "busybox",
                         "Cmd": ["sh", "-c", "id -u; cat /proc/self/uid_map; touch /made"]},
                        # the default "0 2147483647" names gids the user namespace has no
                        # mapping for, which the kernel refuses (EINVAL): the spec builder's
                        # default does not account for the remapping yet
                        {"Runtime": runtime,
                         "Sysctls": {"net.ipv4.ping_group_range": "0 65535"}})["Id"]
        cs.start(cid)
        assert cs.wait(cid, timeout=30)["StatusCode"] == 0
        out = b"".join(m.line for m in cs.logs(cid)).decode().split()
        assert out[0] == "0"                                  # root inside
        assert out[1:4] == ["0", str(HOST_UID), "65536"]      # the kernel's map
        upper = eng.images.snapshotter.writable_dir(cid)
        st = os.lstat(os.path.join(upper, "made"))
        assert (st.st_uid, st.st_gid) == (HOST_UID, HOST_GID)  # owned by the range outside
        cs.remove(cid)
    finally:
        for c in eng.containers.store.all():
            eng.containers.remove(c.id, force=True)
