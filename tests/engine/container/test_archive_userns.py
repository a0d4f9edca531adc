"""docker cp, export, diff and commit on an Engine with --userns-remap: on disk the container's
files belong to the host range, in every tar they carry the container's own ids (the oracle
for those: stat run inside the container, and lstat on the host)."""
import io
import os
import shutil
import subprocess
import tarfile
import tempfile

import pytest

from pyrunc.engine import Engine
from pyrunc.engine.container import archive, commit

BASE_UID, BASE_GID = 420000, 430000
RANGES = {"subuid": "dockremap:%d:65536\n" % BASE_UID,
          "subgid": "dockremap:%d:65536\n" % BASE_GID}


@pytest.fixture
def remapped_engine(tmp_path, private_mount_ns):
    """An Engine with --userns-remap=default over test-written /etc/subuid, /etc/subgid and a
    dockremap entry, bound over the host's files in the private mount namespace."""
    bound = []
    for name in ("subuid", "subgid", "passwd", "group"):
        target = "/etc/" + name
        text = open(target).read() if os.path.exists(target) else ""
        if name in RANGES:
            text = RANGES[name]
        elif not any(line.startswith("dockremap:") for line in text.splitlines()):
            text += "dockremap:x:998:998::/nonexistent:/bin/false\n" if name == "passwd" \
                else "dockremap:x:998:\n"
        (tmp_path / name).write_text(text)
        if not os.path.exists(target):
            open(target, "w").close()
        subprocess.run(["mount", "--bind", str(tmp_path / name), target], check=True)
        bound.append(target)
    top = tempfile.mkdtemp(prefix="pyrunc-a7-userns-")
    os.chmod(top, 0o711)                    # the remapped root passes through it
    eng = Engine(os.path.join(top, "root"), userns_remap="default")
    try:
        eng.load_builtin("busybox")
        yield eng
    finally:
        for c in eng.containers.store.all():
            eng.containers.remove(c.id, force=True)
        for target in reversed(bound):
            subprocess.run(["umount", target], check=False)
        shutil.rmtree(top, ignore_errors=True)


def _run(eng, cmd, image="busybox"):
    cs = eng.containers
    cid = cs.create({"Image": image, "Cmd": cmd},
                    {"Sysctls": {"net.ipv4.ping_group_range": "0 65535"}})["Id"]
    cs.start(cid)
    code = cs.wait(cid, timeout=30)["StatusCode"]
    return cid, code, b"".join(m.line for m in cs.logs(cid)).decode()


def _tar_member(name, uid, gid):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        ti = tarfile.TarInfo(name)
        ti.size, ti.uid, ti.gid = 2, uid, gid
        t.addfile(ti, io.BytesIO(b"in"))
    buf.seek(0)
    return buf


def _tar_ids(stream, name):
    with tarfile.open(fileobj=io.BytesIO(stream.read())) as t:
        m = t.getmember(name)
        return m.uid, m.gid


def test_cp_export_diff_commit_remapped(remapped_engine):
    eng = remapped_engine
    cs = eng.containers
    cid, code, out = _run(eng, ["sh", "-c", "echo x > /made && chown 5:6 /made"])
    assert code == 0, out
    upper = eng.images.snapshotter.writable_dir(cid)
    st = os.lstat(os.path.join(upper, "made"))
    assert (st.st_uid, st.st_gid) == (BASE_UID + 5, BASE_GID + 6)
    # out: the container's ids
    _, stream = archive.archive_get(cs, cid, "/made")
    assert _tar_ids(stream, "made") == (5, 6)
    assert _tar_ids(archive.export(cs, cid), "made") == (5, 6)
    # in: written with the host's, seen inside as the tar's
    archive.archive_put(cs, cid, "/", _tar_member("put", 7, 8))
    st = os.lstat(os.path.join(upper, "put"))
    assert (st.st_uid, st.st_gid) == (BASE_UID + 7, BASE_GID + 8)
    assert [(c["Path"], c["Kind"]) for c in archive.changes(cs, cid)] == \
        [("/made", 1), ("/put", 1)]
    # the committed layer carries the container's ids: the remapped store unpacks it shifted
    image = commit.commit(cs, cid)
    _, code, out = _run(eng, ["stat", "-c", "%u:%g", "/made", "/put"], image)
    assert (code, out.split()) == (0, ["5:6", "7:8"])
