"""Mounts from resolve_mounts, run in real containers (pyrunc, and runc as the peer that reads
the same OCI mounts): what the container sees is the oracle (its writes, /proc/self/mountinfo,
stat from inside)."""
import os
import subprocess
import time

import pytest

from pyrunc.engine.volume import copy_up, release_mounts, resolve_mounts, setup_mounts
from pyrunc.engine.volume import teardown_mounts

CID = "c" * 64


def _oci(points):
    return [p.to_oci() for p in points]


def _mountinfo_line(text, target):
    """The mountinfo line of ``target`` in a container's /proc/self/mountinfo output."""
    lines = [line for line in text.splitlines() if line.split()[4:5] == [target]]
    assert lines, "%s not mounted in the container:\n%s" % (target, text)
    return lines[-1]


def test_bind_ro_and_rw(runner, tmp_path, volumes):
    ro, rw = tmp_path / "ro", tmp_path / "rw"
    ro.mkdir()
    rw.mkdir()
    (ro / "f").write_text("host\n")
    points = resolve_mounts({"Binds": ["%s:/ro:ro" % ro, "%s:/rw" % rw]}, None,
                            container_id=CID, volumes=volumes)
    r = runner.run(["sh", "-c", "cat /ro/f; echo x > /ro/g; echo rc=$?; echo y > /rw/g"],
                   _oci(points))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("host\n")
    assert "rc=1" in r.stdout and "Read-only file system" in r.stderr
    assert not (ro / "g").exists()
    assert (rw / "g").read_text() == "y\n"


def test_ro_is_recursive_and_ro_non_recursive_is_not(runner, tmp_path, volumes):
    """``ro`` makes the mounts below the source read-only too (rro); ``ro-non-recursive`` only
    the top."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    assert subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(src / "sub")]).returncode == 0
    try:
        for mode, sub_writable in (("ro", False), ("ro-non-recursive", True)):
            points = resolve_mounts({"Binds": ["%s:/s:%s" % (src, mode)]}, None,
                                    container_id=CID, volumes=volumes)
            r = runner.run(["sh", "-c", "touch /s/sub/f && echo wrote; touch /s/top || true"],
                           _oci(points))
            assert ("wrote" in r.stdout) == sub_writable, (mode, r.stdout, r.stderr)
            assert not (src / "top").exists()
    finally:
        subprocess.run(["umount", "-l", str(src / "sub")], check=True)


def test_missing_host_path_of_v_is_created_at_start(runner, tmp_path, volumes):
    missing = tmp_path / "a" / "b"
    points = resolve_mounts({"Binds": ["%s:/m" % missing]}, None, container_id=CID,
                            volumes=volumes)
    assert not missing.exists()          # create makes nothing on the host
    setup_mounts(points, volumes, CID)
    assert missing.is_dir() and oct(missing.stat().st_mode & 0o777) == oct(0o755)
    r = runner.run(["sh", "-c", "echo hi > /m/f"], _oci(points))
    assert r.returncode == 0, r.stderr
    assert (missing / "f").read_text() == "hi\n"


def test_tmpfs_size_mode_and_docker_flags(runner, volumes):
    points = resolve_mounts(
        {"Mounts": [{"Type": "tmpfs", "Target": "/run", "TmpfsOptions": {"SizeBytes": 1 << 20}},
                    {"Type": "tmpfs", "Target": "/t",
                     "TmpfsOptions": {"SizeBytes": 2 << 20, "Mode": 0o1770}}]},
        None, container_id=CID, volumes=volumes)
    script = ("cat /proc/self/mountinfo; stat -c 'mode=%a' /t; "
              "dd if=/dev/zero of=/run/big bs=1024 count=1500 2>/dev/null; echo dd=$?; "
              "ls -l /run/big | awk '{print \"size=\" $5}'; "
              "cp /bin/busybox /t/bb && /t/bb true; echo exec=$?")
    r = runner.run(["sh", "-c", script], _oci(points))
    assert r.returncode == 0, r.stderr
    for target, size in (("/run", "1024k"), ("/t", "2048k")):
        line = _mountinfo_line(r.stdout, target)
        opts = line.split()[5].split(",")
        assert {"nosuid", "nodev", "noexec"} <= set(opts), line
        assert "size=%s" % size in line.split(" - ")[1], line
    assert "mode=1770" in r.stdout
    assert "dd=1" in r.stdout                              # the 1 MiB tmpfs is full
    size = int(r.stdout.split("size=")[-1].split()[0])
    assert size <= 1 << 20
    assert "exec=126" in r.stdout                          # noexec


def test_propagation_rshared_sees_host_mounts_rprivate_does_not(runner, tmp_path, volumes):
    src = tmp_path / "shared"
    (src / "sub").mkdir(parents=True)
    # a shared mount on the host side, as a shared bind source needs
    subprocess.run(["mount", "--bind", str(src), str(src)], check=True)
    subprocess.run(["mount", "--make-shared", str(src)], check=True)
    try:
        points = resolve_mounts(
            {"Mounts": [{"Type": "bind", "Source": str(src), "Target": "/a",
                         "BindOptions": {"Propagation": "rshared"}}],
             "Binds": ["%s:/b:rprivate" % src]}, None, container_id=CID, volumes=volumes)
        assert [p.propagation for p in points] == ["rshared", "rprivate"]
        script = ("touch /a/ready; i=0; while [ ! -e /a/go ] && [ $i -lt 300 ]; do "
                  "sleep 0.1; i=$((i+1)); done; cat /proc/self/mountinfo")
        _, proc = runner.popen(["sh", "-c", script], _oci(points))
        deadline = time.monotonic() + 20
        while not (src / "ready").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "late", str(src / "sub")],
                       check=True)
        (src / "go").write_text("")
        r = runner.wait(proc)
        assert r.returncode == 0, r.stderr
        targets = [line.split()[4] for line in r.stdout.splitlines()]
        assert "/a/sub" in targets
        assert "/b/sub" not in targets
    finally:
        subprocess.run(["umount", "-R", "-l", str(src)], check=False)


def test_named_volume_shared_between_containers_and_kept(runner, volumes):
    p1 = resolve_mounts({"Binds": ["data1:/d"]}, None, container_id="a" * 64, volumes=volumes)
    p2 = resolve_mounts({"Binds": ["data1:/e:ro"]}, None, container_id="b" * 64,
                        volumes=volumes)
    assert runner.run(["sh", "-c", "echo one > /d/f"], _oci(p1)).returncode == 0
    r = runner.run(["sh", "-c", "cat /e/f; echo two > /e/g"], _oci(p2))
    assert r.stdout.startswith("one\n") and "Read-only" in r.stderr
    assert sorted(volumes.references("data1")) == ["a" * 64, "b" * 64]
    release_mounts(p1, volumes, "a" * 64, remove_anonymous=True)
    release_mounts(p2, volumes, "b" * 64, remove_anonymous=True)
    assert volumes.exists("data1")          # a named volume stays
    volumes.remove("data1")
    assert os.listdir(volumes.root) == [".meta", ".trash"] or \
        sorted(os.listdir(volumes.root)) == [".meta", ".trash"]


def test_tmpfs_volume_is_mounted_while_used(runner, volumes, mount_targets):
    """A local volume with type=tmpfs: mounted on _data at the first start, content seen by
    the container, unmounted when the last user stops (the kernel's mount list is the
    oracle)."""
    volumes.create("tv", driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    points = resolve_mounts({"Binds": ["tv:/v"]}, None, container_id=CID, volumes=volumes)
    mp = volumes.mountpoint("tv")
    assert mp not in mount_targets()
    setup_mounts(points, volumes, CID)
    setup_mounts(points, volumes, "d" * 64)
    assert mount_targets().count(mp) == 1
    r = runner.run(["sh", "-c", "df -k /v | tail -1; echo x > /v/f"], _oci(points))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[1] == "1024"     # the tmpfs's size, seen inside
    assert open(os.path.join(mp, "f")).read() == "x\n"
    teardown_mounts(points, volumes, CID)
    assert mp in mount_targets()             # another user still runs
    teardown_mounts(points, volumes, "d" * 64)
    assert mp not in mount_targets()
    assert not os.path.exists(os.path.join(mp, "f"))
    release_mounts(points, volumes, CID)
    volumes.remove("tv")


def _image_rootfs(runner):
    """A busybox rootfs with /data as an image would have it: owners, modes, a symlink out of
    the rootfs, a hard link, a fifo, a set-uid file."""
    rootfs = runner.rootfs()
    data = os.path.join(rootfs, "data")
    os.makedirs(os.path.join(data, "sub"))
    with open(os.path.join(data, "sub", "f"), "w") as f:
        f.write("content\n")
    os.link(os.path.join(data, "sub", "f"), os.path.join(data, "hard"))
    os.symlink("/etc/shadow", os.path.join(data, "shadow"))
    os.symlink("../../../../../../etc", os.path.join(data, "up"))
    os.mkfifo(os.path.join(data, "fifo"))
    with open(os.path.join(data, "suid"), "w") as f:
        f.write("#!/bin/sh\n")
    os.chown(os.path.join(data, "sub", "f"), 1234, 5678)
    os.chmod(os.path.join(data, "sub", "f"), 0o640)
    os.chown(os.path.join(data, "suid"), 1234, 5678)
    os.chmod(os.path.join(data, "suid"), 0o4755)
    os.chown(os.path.join(data, "sub"), 1000, 1000)
    os.chmod(os.path.join(data, "sub"), 0o750)
    os.chown(data, 999, 998)
    os.chmod(data, 0o700)
    os.lchown(os.path.join(data, "shadow"), 42, 43)
    return rootfs


STAT = "stat -c '%n %u %g %a %F %h' /data /data/sub /data/sub/f /data/hard /data/shadow " \
       "/data/fifo /data/suid; readlink /data/shadow; readlink /data/up; cat /data/hard"


def test_copy_up_of_an_image_volume(runner, volumes):
    rootfs = _image_rootfs(runner)
    # what the image shows, read inside a container without any volume: the oracle
    want = runner.run(["sh", "-c", STAT], [], rootfs=rootfs)
    assert want.returncode == 0, want.stderr
    points = resolve_mounts({}, {"/data": {}}, container_id=CID, volumes=volumes)
    setup_mounts(points, volumes, CID)
    assert copy_up(points, rootfs) == ["/data"]
    got = runner.run(["sh", "-c", STAT], _oci(points), rootfs=rootfs)
    assert got.returncode == 0, got.stderr
    assert got.stdout == want.stdout
    assert "/data 999 998 700 directory" in got.stdout
    assert "/data/suid 1234 5678 4755" in got.stdout
    assert "/data/hard 1234 5678 640 regular file 2" in got.stdout
    # the volume on the host holds the links as links
    src = points[0].source
    assert os.readlink(os.path.join(src, "shadow")) == "/etc/shadow"
    assert os.lstat(os.path.join(src, "shadow")).st_uid == 42
    # a second start copies nothing more: the volume is not empty
    assert copy_up(points, rootfs) == []
    teardown_mounts(points, volumes, CID)
    release_mounts(points, volumes, CID, remove_anonymous=True)
    assert volumes.list()["Volumes"] == []


def test_copy_up_not_with_nocopy_nor_into_a_used_volume_nor_for_binds(pyrunc_runner, volumes,
                                                                       tmp_path):
    rootfs = _image_rootfs(pyrunc_runner)
    volumes.create("full")
    with open(os.path.join(volumes.mountpoint("full"), "mine"), "w") as f:
        f.write("kept")
    host = tmp_path / "host"
    host.mkdir()
    points = resolve_mounts(
        {"Binds": ["nc:/data:nocopy", "full:/data/sub", "%s:/data/x" % host]}, None,
        container_id=CID, volumes=volumes)
    assert copy_up(points, rootfs) == []
    assert os.listdir(volumes.mountpoint("nc")) == []
    assert os.listdir(volumes.mountpoint("full")) == ["mine"]
    assert os.listdir(host) == []
    release_mounts(points, volumes, CID)


def test_copy_up_hostile_rootfs_never_reads_the_host(pyrunc_runner, volumes, tmp_path):
    """A destination that is a symlink to / or to a host path resolves inside the rootfs."""
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "hostfile").write_text("host only")
    rootfs = pyrunc_runner.rootfs()
    os.symlink("/", os.path.join(rootfs, "toroot"))
    os.symlink(str(secret), os.path.join(rootfs, "tohost"))
    os.symlink("../../../../../../../../" + str(secret).lstrip("/"),
               os.path.join(rootfs, "uphost"))
    points = resolve_mounts({}, {"/toroot": {}, "/tohost": {}, "/uphost": {}},
                            container_id=CID, volumes=volumes)
    by_dest = {p.destination: p for p in points}
    assert copy_up(points, rootfs) == ["/toroot"]
    # /toroot is the rootfs's own root: its entries, none of the host's /
    assert sorted(os.listdir(by_dest["/toroot"].source)) == sorted(
        e for e in os.listdir(rootfs))
    assert not os.path.exists(os.path.join(by_dest["/toroot"].source, "work")) or \
        os.path.exists(os.path.join(rootfs, "work"))
    for dest in ("/tohost", "/uphost"):
        assert os.listdir(by_dest[dest].source) == []
    release_mounts(points, volumes, CID, remove_anonymous=True)
    assert volumes.list()["Volumes"] == []


# cap_net_raw+ep as the kernel stores it (VFS_CAP_REVISION_2, effective, permitted bit 13)
NET_RAW_CAP = bytes([0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00] + [0] * 12)


def test_copy_up_keeps_xattrs_and_file_capabilities(pyrunc_runner, volumes):
    """Extended attributes survive the copy, a file capability too (set after the owner, which
    would clear it); the kernel's getxattr on the volume is the oracle."""
    rootfs = pyrunc_runner.rootfs()
    data = os.path.join(rootfs, "data")
    os.mkdir(data)
    path = os.path.join(data, "ping")
    with open(path, "w") as f:
        f.write("x")
    os.chown(path, 1000, 1000)
    os.setxattr(path, "user.origin", b"image")
    os.setxattr(path, "trusted.pyrunc", b"t")
    os.setxattr(path, "security.capability", NET_RAW_CAP)
    points = resolve_mounts({}, {"/data": {}}, container_id=CID, volumes=volumes)
    assert copy_up(points, rootfs) == ["/data"]
    copied = os.path.join(points[0].source, "ping")
    for key in ("user.origin", "trusted.pyrunc", "security.capability"):
        assert os.getxattr(copied, key) == os.getxattr(path, key), key
    assert os.stat(copied).st_uid == 1000
    release_mounts(points, volumes, CID, remove_anonymous=True)


def test_rm_v_removes_only_unshared_anonymous_volumes(volumes):
    p1 = resolve_mounts({"Binds": ["named:/n", "/anon"]}, {"/img": {}}, container_id="a" * 64,
                        volumes=volumes)
    anon = {p.destination: p.name for p in p1}
    # a second container uses the first one's anonymous /anon volume by name
    p2 = resolve_mounts({"Binds": ["%s:/x" % anon["/anon"]]}, None, container_id="b" * 64,
                        volumes=volumes)
    release_mounts(p1, volumes, "a" * 64, remove_anonymous=True)
    assert sorted(v["Name"] for v in volumes.list()["Volumes"]) == sorted(
        ["named", anon["/anon"]])
    release_mounts(p2, volumes, "b" * 64, remove_anonymous=True)
    assert volumes.exists(anon["/anon"])      # named in the second: not its anonymous one
    assert not volumes.exists(anon["/img"])


def test_volume_owner_lets_that_user_write(runner, tmp_path):
    """VolumeService(owner=) gives new volumes' _data to that uid:gid (docker's remapped root):
    a container process of that uid can write into it, and cannot without."""
    from pyrunc.engine.volume import VolumeService
    owned = VolumeService(str(tmp_path / "e1" / "volumes"), owner=(1000, 1000))
    plain = VolumeService(str(tmp_path / "e2" / "volumes"))
    results = []
    for svc in (owned, plain):
        points = resolve_mounts({"Binds": ["w1:/w"]}, None, container_id=CID, volumes=svc)
        st = os.stat(svc.mountpoint("w1"))
        results.append((st.st_uid, st.st_gid))
        r = runner.run(["sh", "-c", "id -u; echo x > /w/f && echo wrote"], _oci(points),
                       user=(1000, 1000))
        assert r.stdout.startswith("1000\n"), r.stderr
        results.append("wrote" in r.stdout)
        release_mounts(points, svc, CID)
    assert results == [(1000, 1000), True, (0, 0), False]
