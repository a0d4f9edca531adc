"""docker cp (archive stat/get/put), export, diff and commit on real containers of the built-in
busybox image. Oracles: what the container's own processes see (cat, ls, test inside it), the
host's files behind binds, GNU tar reading our archives, Go's documented FileMode bits."""
import io
import os
import subprocess
import tarfile
import threading
import time

import pytest

from pyrunc import errors
from pyrunc.engine.container import archive, commit

# Go's os.FileMode bits, from Go's documentation (io/fs): ModeDir 1<<31, ModeSymlink 1<<27,
# ModeDevice 1<<26, ModeNamedPipe 1<<25, ModeSetuid 1<<23, ModeSetgid 1<<22,
# ModeCharDevice 1<<21, ModeSticky 1<<20
GO_DIR, GO_SYMLINK, GO_DEVICE, GO_PIPE = 0x80000000, 0x8000000, 0x4000000, 0x2000000
GO_SETUID, GO_CHAR, GO_STICKY = 0x800000, 0x200000, 0x100000


@pytest.fixture(autouse=True)
def _own_images(request):
    """Images a test commits are removed after it (the session's engine root is shared)."""
    if "engine" not in request.fixturenames:
        yield
        return
    engine = request.getfixturevalue("engine")
    before = {i["Id"] for i in engine.images.list()}
    yield
    for c in engine.containers.store.all():
        engine.containers.remove(c.id, force=True, volumes=True)
    for image in engine.images.list():
        if image["Id"] not in before:
            engine.images.remove(image["Id"], force=True)


def _tar(*members, gz=False):
    """A tar of (name, kind, payload[, mode]) members: kind "f" (payload: bytes), "d", "l"
    (symlink to payload), "h" (hard link to payload), "c" (char device), "fifo"."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as t:
        for name, kind, payload, *mode in members:
            ti = tarfile.TarInfo(name)
            ti.mode = mode[0] if mode else 0o644
            ti.mtime = 1700000000
            data = None
            if kind == "f":
                ti.size = len(payload)
                data = io.BytesIO(payload)
            elif kind == "d":
                ti.type = tarfile.DIRTYPE
                ti.mode = mode[0] if mode else 0o755
            elif kind == "l":
                ti.type, ti.linkname = tarfile.SYMTYPE, payload
            elif kind == "h":
                ti.type, ti.linkname = tarfile.LNKTYPE, payload
            elif kind == "c":
                ti.type, ti.devmajor, ti.devminor = tarfile.CHRTYPE, 8, 0
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            t.addfile(ti, data)
    buf.seek(0)
    return buf


def _members(stream):
    data = stream.read() if hasattr(stream, "read") else b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return {m.name: (m, t.extractfile(m).read() if m.isreg() else None)
                for m in t.getmembers()}


def _create(engine, cmd, host_config=None, **config):
    return engine.containers.create(dict(config, Image=config.get("Image", "busybox"),
                                         Cmd=list(cmd)), host_config or {})["Id"]


def _run(engine, cmd, host_config=None, **config):
    """Run a container to its end; (id, exit code, stdout)."""
    cs = engine.containers
    cid = _create(engine, cmd, host_config, **config)
    cs.start(cid)
    code = cs.wait(cid, timeout=30)["StatusCode"]
    out = b"".join(m.line for m in cs.logs(cid) if m.stream == "stdout")
    return cid, code, out.decode()


def _exec(engine, cid, cmd):
    """Run ``cmd`` in the running container; (exit code, stdout)."""
    cs = engine.containers
    eid = cs.exec_create(cid, {"Cmd": list(cmd), "AttachStdout": True, "AttachStderr": True})
    proc = cs.exec_start(eid)
    out = b""
    while True:
        stream, data = proc.attachment.read(timeout=20)
        if stream is None:
            break
        if stream == 1:
            out += data
    proc.wait(timeout=20)
    return cs.exec_inspect(eid)["ExitCode"], out.decode()


def _sleeper(engine, script="", host_config=None, **config):
    """A running container that ran ``script`` and then sleeps; its id once the script ended."""
    cid = _create(engine, ["sh", "-c", script + "\ntouch /ready; exec sleep 300"],
                  host_config, **config)
    engine.containers.start(cid)
    for _ in range(200):
        if _exec(engine, cid, ["test", "-e", "/ready"])[0] == 0:
            return cid
        time.sleep(0.05)
    raise AssertionError("the container's script did not finish")


# stat and get -----------------------------------------------------------------------------
def test_stat_and_get_match_the_container(engine):
    cs = engine.containers
    cid = _sleeper(engine, "printf 'abc' > /tmp/f; chmod 4710 /tmp/f; mkfifo /tmp/p")
    code, ls = _exec(engine, cid, ["stat", "-c", "%s %a %Y", "/tmp/f"])
    size, mode, mtime = ls.split()
    st = archive.archive_stat(cs, cid, "/tmp/f")
    assert st["name"] == "f" and st["size"] == int(size) == 3
    assert st["mode"] == int(mode, 8) & 0o777 | GO_SETUID
    assert st["mtime"].startswith(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(mtime))))
    assert st["linkTarget"] == ""
    # a directory, the sticky bit, a named pipe, a symlink (its target fully resolved)
    assert archive.archive_stat(cs, cid, "/tmp")["mode"] == GO_DIR | GO_STICKY | 0o777
    assert archive.archive_stat(cs, cid, "/tmp/p")["mode"] & GO_PIPE
    sh = archive.archive_stat(cs, cid, "/bin/sh")
    assert sh["mode"] & GO_SYMLINK and sh["linkTarget"] == "/bin/busybox"
    assert sh["size"] == len(_exec(engine, cid, ["readlink", "/bin/sh"])[1].strip())
    # the file's bytes, under its base name
    info, stream = archive.archive_get(cs, cid, "/tmp/f")
    got = _members(stream)
    assert info == st and list(got) == ["f"] and got["f"][1] == b"abc"
    assert got["f"][0].mode == 0o4710


def test_get_directory_and_its_contents(engine):
    cs = engine.containers
    cid, code, out = _run(engine, ["sh", "-c", "mkdir -p /d/sub && echo 1 > /d/a && "
                                   "echo 2 > /d/sub/b && ln /d/a /d/hard && ls -R /d"])
    assert code == 0
    _, stream = archive.archive_get(cs, cid, "/d")
    got = _members(stream)
    assert set(got) == {"d", "d/a", "d/sub", "d/sub/b", "d/hard"}
    assert got["d/sub/b"][1] == b"2\n"
    assert got["d/hard"][0].islnk() and got["d/hard"][0].linkname == "d/a"
    # "dir/." gives the contents; "dir/" the directory as "dir"
    _, stream = archive.archive_get(cs, cid, "/d/.")
    assert set(_members(stream)) == {".", "a", "sub", "sub/b", "hard"}
    _, stream = archive.archive_get(cs, cid, "/d/")
    assert "d/a" in _members(stream)


def test_get_stopped_and_created_containers(engine, leftovers):
    cs = engine.containers
    created = _create(engine, ["true"])
    info, stream = archive.archive_get(cs, created, "/etc/passwd")
    assert _members(stream)["passwd"][1].startswith(b"root:x:0:0:")
    cid, code, out = _run(engine, ["cat", "/etc/group"])
    info, stream = archive.archive_get(cs, cid, "/etc/group")
    assert _members(stream)["group"][1].decode() == out
    # the scratch mount of a stopped container is gone once the stream is read or closed
    _, stream = archive.archive_get(cs, cid, "/bin")
    assert any("archive-" in t for t in _mount_targets())
    stream.close()
    assert not any("archive-" in t for t in _mount_targets())
    _, stream = archive.archive_get(cs, cid, "/bin")
    del stream                  # dropped without a read: released all the same
    assert not any("archive-" in t for t in _mount_targets())
    assert not [f for f in os.listdir(os.path.join(engine.root, "containers", cid))
                if f.startswith("archive-")]


def _mount_targets():
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f]


def test_get_missing_path_is_docker_not_found(engine):
    cid = _create(engine, ["true"])
    with pytest.raises(errors.NotFound) as e:
        archive.archive_get(engine.containers, cid[:12], "/no/such")
    assert str(e.value) == "Could not find the file /no/such in container %s" % cid[:12]
    with pytest.raises(errors.NotFound):
        archive.archive_stat(engine.containers, cid, "/etc/passwd/")   # not a directory
    with pytest.raises(errors.NotFound) as e:
        archive.archive_get(engine.containers, "no-such-container", "/")
    assert str(e.value) == "No such container: no-such-container"


def test_symlinks_resolve_inside_the_container(engine, tmp_path):
    """Links to the host's absolute paths, and ../ climbing, stay in the container's root."""
    secret = tmp_path / "secret"
    secret.write_text("HOST\n")
    cs = engine.containers
    cid, code, _ = _run(engine, ["sh", "-c",
                                 "ln -s %s /abs && ln -s ../../../../../../..%s /rel && "
                                 "ln -s %s /dirlink && ln -s /etc /etclink && "
                                 "ln -s loop1 /loop2 && ln -s loop2 /loop1"
                                 % (secret, secret, tmp_path)])
    assert code == 0
    for path in ("/abs/.", "/rel/", "/dirlink/secret", "/loop1/x"):
        with pytest.raises(errors.NotFound):
            archive.archive_get(cs, cid, path)
    # the link itself is copied, its target resolved in the container
    info, stream = archive.archive_get(cs, cid, "/rel")
    assert _members(stream)["rel"][0].issym()
    assert info["linkTarget"] == str(secret)     # "as far as it exists" in the container
    _, stream = archive.archive_get(cs, cid, "/etclink/passwd")
    assert _members(stream)["passwd"][1].startswith(b"root:x:0:0:root:/root:/bin/sh\n")
    # through the link to the container's own hostname file (a mount of the view)
    _, stream = archive.archive_get(cs, cid, "/etclink/hostname")
    assert _members(stream)["hostname"][1] == cid[:12].encode() + b"\n"


def test_symlink_swapped_during_cp_never_reaches_the_host(engine, tmp_path):
    """CVE-2018-15664: the container swaps a directory for a symlink to a host path while cp
    runs, thousands of times; every get returns the container's file or NotFound, and no put
    lands on the host."""
    (tmp_path / "f").write_text("HOST\n")
    cs = engine.containers
    cid = _sleeper(engine, "mkdir -p /w/d && echo CTR > /w/d/f; "
                           "(while :; do mv /w/d /w/x; ln -s %s /w/d; rm /w/d; mv /w/x /w/d; "
                           "done) &" % tmp_path)
    seen = set()
    deadline = time.monotonic() + 6
    n = 0
    while time.monotonic() < deadline:
        n += 1
        try:
            _, stream = archive.archive_get(cs, cid, "/w/d/f")
            seen.add(_members(stream)["f"][1])
        except errors.NotFound:
            seen.add(None)
        try:
            archive.archive_put(cs, cid, "/w/d", _tar(("pwned%d" % n, "f", b"x")))
        except errors.NotFound:
            pass
        # a whole tree read while its directories are swapped: links stay links
        _, stream = archive.archive_get(cs, cid, "/w")
        for name, (member, data) in _members(stream).items():
            seen.add(data if member.isreg() and name.endswith("/f") else None)
    assert seen <= {b"CTR\n", None} and b"CTR\n" in seen
    assert sorted(os.listdir(tmp_path)) == ["f"]


# put ---------------------------------------------------------------------------------------
def test_put_seen_inside_running_and_stopped(engine):
    cs = engine.containers
    cid = _sleeper(engine)
    archive.archive_put(cs, cid, "/root", _tar(("d", "d", None, 0o750), ("d/x", "f", b"hi\n"),
                                               ("d/l", "l", "x"), ("d/h", "h", "d/x"),
                                               ("d/p", "fifo", None)))
    code, out = _exec(engine, cid, ["sh", "-c", "cat /root/d/l; stat -c '%a %h' /root/d "
                                    "/root/d/x; test -p /root/d/p && echo fifo"])
    assert (code, out) == (0, "hi\n750 2\n644 2\nfifo\n")
    cs.kill(cid)
    cs.wait(cid)
    archive.archive_put(cs, cid, "/", _tar(("after", "f", b"stopped\n"), gz=True))
    actions = [e["Action"] for e in engine.events.query(filters={"container": [cid]})]
    assert actions.count("extract-to-dir") == 2
    cs.start(cid)
    assert _exec(engine, cid, ["cat", "/after"]) == (0, "stopped\n")


def test_put_follows_the_destination_symlink_in_scope(engine):
    cs = engine.containers
    cid, code, _ = _run(engine, ["sh", "-c", "ln -s /etc /toetc && ln -s / /toroot"])
    archive.archive_put(cs, cid, "/toetc", _tar(("new.conf", "f", b"1")))
    archive.archive_put(cs, cid, "/toroot/tmp/", _tar(("t", "f", b"2")))
    _, c, out = _run(engine, ["cat", "/etc/new.conf", "/tmp/t"], Image=_commit(engine, cid))
    assert out == "12"


def _commit(engine, cid):
    return commit.commit(engine.containers, cid)


def test_put_errors_name_the_reason(engine, tmp_path):
    cs = engine.containers
    src = tmp_path / "ro"
    src.mkdir()
    cid = _create(engine, ["true"], {"Binds": ["%s:/ro:ro" % src]})
    with pytest.raises(errors.InvalidArgument, match="^extraction point is not a directory$"):
        archive.archive_put(cs, cid, "/etc/passwd", _tar(("x", "f", b"")))
    with pytest.raises(errors.NotFound, match="^Could not find the file /nope in container"):
        archive.archive_put(cs, cid, "/nope", _tar(("x", "f", b"")))
    with pytest.raises(errors.InvalidArgument, match="^mounted volume is marked read-only$"):
        archive.archive_put(cs, cid, "/ro", _tar(("x", "f", b"")))
    ro = _create(engine, ["true"], {"ReadonlyRootfs": True})
    with pytest.raises(errors.InvalidArgument, match="^container rootfs is marked read-only$"):
        archive.archive_put(cs, ro, "/tmp", _tar(("x", "f", b"")))
    # NoOverwriteDirNonDir, both ways
    with pytest.raises(errors.InvalidArgument, match="cannot overwrite directory /etc"):
        archive.archive_put(cs, cid, "/", _tar(("etc", "f", b"")), no_overwrite_dir_non_dir=True)
    with pytest.raises(errors.InvalidArgument, match="non-directory /etc/passwd with dir"):
        archive.archive_put(cs, cid, "/etc", _tar(("passwd", "d", None)),
                            no_overwrite_dir_non_dir=True)
    assert os.listdir(src) == [] and archive.changes(cs, cid) == []
    assert archive.changes(cs, ro) == []


@pytest.mark.parametrize("members, reason", [
    ([("../escape", "f", b"x")], "path escapes the root"),
    ([("a/../../escape", "f", b"x")], "path escapes the root"),
    ([("evil", "l", "/"), ("evil/tmp/pwned", "f", b"x")], "through symlink evil"),
    ([("evil", "l", "../../.."), ("evil/pwned", "f", b"x")], "through symlink evil"),
    ([("evil", "l", "/etc"), ("hard", "h", "evil/passwd")], "through symlink evil"),
    ([("sda", "c", None)], "device node"),
    ([(".wh.passwd", "f", b"")], "whiteout"),
    ([("d/.wh..wh..opq", "f", b"")], "whiteout"),
])
def test_put_hostile_archive_refused_leaving_nothing(engine, members, reason):
    cs = engine.containers
    cid = _create(engine, ["true"])
    tar = _tar(("first-ok", "f", b"ok"), *members)
    with pytest.raises(errors.InvalidArgument, match=reason) as e:
        archive.archive_put(cs, cid, "/etc", tar)
    assert "\n" not in str(e.value) and str(e.value).startswith("copy to container %s:" % cid)
    assert archive.changes(cs, cid) == []     # not even the good member before the bad one
    assert not [f for f in os.listdir(os.path.join(engine.root, "containers", cid))
                if f.startswith(("archive-", "tmp"))]


def test_put_absolute_names_land_inside(engine):
    cs = engine.containers
    cid = _create(engine, ["true"])
    archive.archive_put(cs, cid, "/tmp", _tar(("/abs-pwned", "f", b"x"), ("./dot", "f", b"y")))
    assert not os.path.exists("/abs-pwned")
    assert {c["Path"] for c in archive.changes(cs, cid)} == {"/tmp", "/tmp/abs-pwned",
                                                            "/tmp/dot"}


def test_put_bounded_sizes(engine):
    cs = engine.containers
    cid = _create(engine, ["true"])
    # a header claiming a terabyte with no data behind it: truncated, refused in the check
    ti = tarfile.TarInfo("huge")
    ti.size = 1 << 40
    raw = ti.tobuf(tarfile.PAX_FORMAT) + bytes(4096)
    with pytest.raises(errors.InvalidArgument, match="truncated"):
        archive.archive_put(cs, cid, "/tmp", io.BytesIO(raw))
    # a limit on the archive's bytes
    with pytest.raises(errors.InvalidArgument, match="exceeds the limit of 4096 bytes"):
        archive.archive_put(cs, cid, "/tmp", _tar(("big", "f", bytes(100000))), max_size=4096)
    # a gzip bomb stops at the same limit
    with pytest.raises(errors.InvalidArgument, match="exceeds the limit"):
        archive.archive_put(cs, cid, "/tmp", _tar(("z", "f", bytes(50 << 20)), gz=True),
                            max_size=1 << 20)
    with pytest.raises(errors.InvalidArgument, match="corrupt compressed"):
        archive.archive_put(cs, cid, "/tmp", io.BytesIO(b"\x1f\x8b\x08\x00garbage" * 20))
    assert archive.changes(cs, cid) == []


def test_put_into_volume_and_bind(engine, tmp_path):
    cs = engine.containers
    host = tmp_path / "bind"
    host.mkdir()
    (host / "existing").write_text("from host\n")
    cid = _sleeper(engine, "", {"Binds": ["%s:/data" % host, "vol-a7:/vol"]})
    archive.archive_put(cs, cid, "/data", _tar(("in-bind", "f", b"b\n")))
    archive.archive_put(cs, cid, "/vol", _tar(("in-vol", "f", b"v\n")))
    assert (host / "in-bind").read_text() == "b\n"
    assert _exec(engine, cid, ["cat", "/data/in-bind", "/vol/in-vol", "/data/existing"]) == \
        (0, "b\nv\nfrom host\n")
    _, stream = archive.archive_get(cs, cid, "/")
    got = _members(stream)
    assert got["data/existing"][1] == b"from host\n" and got["vol/in-vol"][1] == b"v\n"
    # a mount nested below the target is not written through the parent
    with pytest.raises(errors.InvalidArgument, match="/data is a mount point of its own"):
        archive.archive_put(cs, cid, "/", _tar(("data/x", "f", b"")))
    # the container's /etc/hosts is the engine's file
    _, stream = archive.archive_get(cs, cid, "/etc/hosts")
    assert _members(stream)["hosts"][1].decode() == _exec(engine, cid, ["cat", "/etc/hosts"])[1]
    cs.remove(cid, force=True, volumes=True)
    engine.volumes.remove("vol-a7")


def test_copy_uid_gid_uses_the_container_user(engine):
    cs = engine.containers
    cid = _create(engine, ["true"], User="nobody")
    archive.archive_put(cs, cid, "/tmp", _tar(("mine", "f", b"")), copy_uid_gid=True)
    archive.archive_put(cs, cid, "/tmp", _tar(("theirs", "f", b"")))
    _, c, out = _run(engine, ["stat", "-c", "%u:%g", "/tmp/mine", "/tmp/theirs"],
                     Image=_commit(engine, cid))
    assert out.split() == ["65534:65534", "0:0"]


def test_get_deep_tree_refused_and_fifo_not_opened(engine):
    cs = engine.containers
    cid, code, _ = _run(engine, ["sh", "-c", "mkfifo /tmp/fifo; cd /tmp; i=0; "
                                 "while [ $i -lt 300 ]; do mkdir d; cd d; i=$((i+1)); done"])
    assert code == 0
    _, stream = archive.archive_get(cs, cid, "/tmp/fifo")
    assert _members(stream)["fifo"][0].isfifo()
    _, stream = archive.archive_get(cs, cid, "/tmp")
    with pytest.raises(errors.InvalidArgument, match="nested deeper than 256"):
        stream.read()


# export ------------------------------------------------------------------------------------
def test_export_round_trip_through_tar(engine, tmp_path):
    cs = engine.containers
    host = tmp_path / "bind"
    host.mkdir()
    (host / "hostfile").write_text("h")
    cid, code, listing = _run(engine, ["sh", "-c", "echo made > /made; rm /bin/ls; "
                                       "find / -xdev | sort"], {"Binds": ["%s:/data" % host]})
    assert code == 0
    out = tmp_path / "export.tar"
    with archive.export(cs, cid) as stream, open(out, "wb") as f:
        for chunk in stream:
            f.write(chunk)
    names = subprocess.run(["tar", "-tf", str(out)], check=True, capture_output=True,
                           text=True).stdout.split()
    names = {n.rstrip("/") for n in names}
    assert "made" in names and "bin/busybox" in names and "bin/ls" not in names
    assert "data/hostfile" not in names          # volumes and binds are not exported
    inside = {p.lstrip("/") for p in listing.split() if p != "/"}
    assert names == inside
    dest = tmp_path / "x"
    dest.mkdir()
    subprocess.run(["tar", "-xf", str(out), "-C", str(dest)], check=True)
    assert (dest / "made").read_text() == "made\n"
    assert os.readlink(dest / "bin" / "sh") == "/bin/busybox"


# diff --------------------------------------------------------------------------------------
DIFF_SCRIPT = ("echo x >> /etc/passwd; mkdir -p /new/sub; touch /new/sub/f; rm /bin/ls; "
               "rm -r /usr/sbin; chmod 700 /root; rm /etc/group; mkdir /etc/group; "
               "echo same > /tmp/t; rm -r /var && mkdir /var && touch /var/n")
DIFF_EXPECTED = [("/bin", 0), ("/bin/ls", 2), ("/etc", 0), ("/etc/group", 0), ("/etc/passwd", 0),
                 ("/new", 1), ("/new/sub", 1), ("/new/sub/f", 1), ("/root", 0), ("/tmp", 0),
                 ("/tmp/t", 1), ("/usr", 0), ("/usr/sbin", 2), ("/var", 0), ("/var/n", 1)]


def _check_kinds_against_fs(engine, cid, diff):
    """Each change's kind agrees with the image (a fresh container of it) and the container."""
    cs = engine.containers
    image = _create(engine, ["true"])
    for ch in diff:
        def exists(ref):
            try:
                archive.archive_stat(cs, ref, ch["Path"])
                return True
            except errors.NotFound:
                return False
        assert (exists(image), exists(cid)) == {0: (True, True), 1: (False, True),
                                                2: (True, False)}[ch["Kind"]], ch


@pytest.mark.parametrize("backend", ["overlayfs", "native"])
def test_diff_kinds(engine, tmp_path, private_mount_ns, backend):
    from pyrunc.engine import Engine
    if backend == "native":
        eng = Engine(str(tmp_path / "native"), snapshotter="native")
        eng.load_builtin("busybox")
    else:
        eng = engine
        if eng.images.snapshotter.name != "overlayfs":
            pytest.skip("overlayfs is not available on this filesystem (kernel feature)")
    try:
        cid, code, _ = _run(eng, ["sh", "-c", DIFF_SCRIPT])
        assert code == 0
        diff = archive.changes(eng.containers, cid)
        assert [(c["Path"], c["Kind"]) for c in diff] == DIFF_EXPECTED
        _check_kinds_against_fs(eng, cid, diff)
        # no change: an empty list; the runtime's mount points (/etc/hosts...) are not changes
        quiet, code, _ = _run(eng, ["true"])
        assert archive.changes(eng.containers, quiet) == []
    finally:
        if eng is not engine:
            for c in eng.containers.store.all():
                eng.containers.remove(c.id, force=True)


def test_diff_opaque_directory(engine):
    if engine.images.snapshotter.name != "overlayfs":
        pytest.skip("overlayfs is not available on this filesystem (kernel feature)")
    cs = engine.containers
    # rm -r then mkdir of a lower directory gives an opaque directory in the upper layer
    cid, code, _ = _run(engine, ["sh", "-c", "rm -r /sbin && mkdir /sbin && "
                                 "echo n > /sbin/ifconfig && touch /sbin/new"])
    assert code == 0
    diff = {c["Path"]: c["Kind"] for c in archive.changes(cs, cid)}
    assert (diff["/sbin"], diff["/sbin/ifconfig"], diff["/sbin/new"], diff["/sbin/route"]) == \
        (0, 0, 1, 2)
    _check_kinds_against_fs(engine, cid, archive.changes(cs, cid))


# commit ------------------------------------------------------------------------------------
def test_commit_then_run_the_new_image(engine):
    cs = engine.containers
    cid, code, _ = _run(engine, ["sh", "-c", "echo committed > /hello; rm /bin/ls"],
                        Env=["KEEP=1"], Labels={"a": "1"})
    parent = engine.images.inspect("busybox")
    image = commit.commit(cs, cid, "a7/committed:v1", comment="a comment", author="A7 <a7@x>",
                          changes=['CMD ["cat", "/hello"]', "ENV NEW=2", "LABEL b=2"])
    info = engine.images.inspect("a7/committed:v1")
    assert info["Id"] == image
    assert info["Author"] == "A7 <a7@x>" and info["Comment"] == "a comment"
    assert len(info["RootFS"]["Layers"]) == len(parent["RootFS"]["Layers"]) + 1
    assert info["Config"]["Cmd"] == ["cat", "/hello"]
    assert "NEW=2" in info["Config"]["Env"] and "KEEP=1" in info["Config"]["Env"]
    assert info["Config"]["Labels"] == {"a": "1", "b": "2"}
    history = engine.images.history(image)
    assert history[0]["Comment"] == "a comment" and history[0]["Size"] > 0
    assert history[0]["CreatedBy"] == "sh -c echo committed > /hello; rm /bin/ls"
    event = list(engine.events.query(filters={"container": [cid], "event": ["commit"]}))[-1]
    assert event["Actor"]["Attributes"]["imageID"] == image
    assert event["Actor"]["Attributes"]["imageRef"] == "a7/committed:v1"
    new, code, out = _run(engine, [], Image="a7/committed:v1")
    assert (code, out) == (0, "committed\n")
    _, code, _ = _run(engine, ["sh", "-c", "test ! -e /bin/ls && test -e /bin/cat"],
                      Image=image)
    assert code == 0
    # the runtime's placeholders are not in the layer
    assert archive.changes(cs, new) == []


def test_commit_unchanged_is_an_empty_layer(engine):
    cid, code, _ = _run(engine, ["true"])
    image = commit.commit(engine.containers, cid)
    info = engine.images.inspect(image)
    assert info["RootFS"]["Layers"] == engine.images.inspect("busybox")["RootFS"]["Layers"]
    assert info["RepoTags"] == []
    assert engine.images.get(image).config["history"][-1]["empty_layer"] is True


def test_commit_running_container_pauses_it(engine):
    cs = engine.containers
    cid = _sleeper(engine, "echo live > /live")
    freezes = []
    original = cs.pause

    def pause(ref):
        freezes.append(ref)
        original(ref)
    cs.pause = pause
    image = commit.commit(cs, cid, "a7/live")
    assert freezes == [cid]
    state = cs.inspect(cid)["State"]
    assert state["Running"] and not state["Paused"]
    _, code, out = _run(engine, ["cat", "/live"], Image=image)
    assert out == "live\n"


def test_commit_bad_input(engine):
    cid, code, _ = _run(engine, ["sh", "-c", "touch /changed"])
    before = engine.images.list()
    with pytest.raises(errors.InvalidArgument, match="not a valid change command"):
        commit.commit(engine.containers, cid, changes=["RUN rm -rf /"])
    with pytest.raises(errors.InvalidArgument, match="must be lowercase"):
        commit.commit(engine.containers, cid, "Bad")
    with pytest.raises(errors.InvalidArgument, match="digest"):
        commit.commit(engine.containers, cid, "a@sha256:" + "0" * 64)
    assert engine.images.list() == before


# resolution against the kernel's own, in a chroot ------------------------------------------
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from pyrunc.engine.container.archive_fs import ContainerFS  # noqa: E402

_TREE_LINKS = {"a/up": "..", "a/top": "/", "a/b/back": "../../a", "abs": "/a/b",
               "rel": "a/b/../b", "tofile": "a/file", "loop1": "loop2", "loop2": "loop1",
               "escape": "../../../../..", "hostpath": "/etc/../a", "a/b/dangling": "nowhere"}


@pytest.fixture(scope="module")
def chroot_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree")
    for d in ("bin", "a/b/c", "etc"):
        (root / d).mkdir(parents=True)
    (root / "a" / "file").write_text("f")
    subprocess.run(["cp", "/bin/busybox", str(root / "bin" / "busybox")], check=True)
    for link, target in _TREE_LINKS.items():
        os.symlink(target, root / link)
    return str(root)


def _kernel_realpath(root, path):
    """The path as the kernel resolves it inside a chroot of ``root`` (busybox realpath)."""
    r = subprocess.run(["chroot", root, "/bin/busybox", "sh", "-c",
                        'p=$(/bin/busybox realpath "$1") && [ -e "$p" ] && echo "$p"', "-",
                        path], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["a", "b", "c", "up", "top", "back", "abs", "rel", "tofile",
                                 "file", "loop1", "escape", "hostpath", "dangling", "..", ".",
                                 "", "nope"]), max_size=7),
       st.booleans())
def test_resolution_matches_the_kernel_in_a_chroot(chroot_tree, parts, trailing):
    path = "/" + "/".join(parts) + ("/" if trailing and parts else "")
    expected = _kernel_realpath(chroot_tree, path)
    with ContainerFS(chroot_tree) as fs:
        try:
            node = fs.resolve(path, follow_last=True)
            got = node.path
            node.close()
        except errors.NotFound:
            got = None
    assert got == expected, path


def test_remapped_owners_shift_both_ways(tmp_path):
    """Under --userns-remap the files on disk carry host ids: a tar copied in is written with
    them, a tar read out (cp, export) carries the container's, ids outside the map as 65534."""
    from pyrunc.engine.idmap import IDMap, IDRange
    m = IDMap([IDRange(0, 231072, 65536)], [IDRange(0, 300000, 65536)])
    root = tmp_path / "root"
    root.mkdir()
    os.chown(root, 231072, 300000)
    (root / "outside").write_text("x")            # host root's: not mapped inside
    with ContainerFS(str(root), idmap=m) as fs:
        fs.extract("/", _tar(("d", "d", None), ("d/f", "f", b"1")))
        ti = tarfile.TarInfo("bad")
        ti.uid = 65536                              # past the range
        tar = io.BytesIO(ti.tobuf(tarfile.PAX_FORMAT) + bytes(1024))
        with pytest.raises(errors.InvalidArgument, match="container uid 65536 cannot be mapped"):
            fs.extract("/", tar)
        assert (os.stat(root / "d").st_uid, os.stat(root / "d/f").st_gid) == (231072, 300000)
        assert os.stat(root).st_uid == 231072
        got = _members(fs.export())
        assert (got["d/f"][0].uid, got["d/f"][0].gid) == (0, 0)
        assert (got["outside"][0].uid, got["outside"][0].gid) == (65534, 65534)


def test_cp_and_diff_with_each_runtime(engine, runtime):
    """The runtime makes the mount points it needs (/etc/hosts, /etc/resolv.conf...) in the
    root: no runtime's placeholders show as changes; cp works the same in its containers."""
    cs = engine.containers
    cid = _sleeper(engine, "", {"Runtime": runtime})
    archive.archive_put(cs, cid, "/tmp", _tar(("via", "f", runtime.encode())))
    assert _exec(engine, cid, ["cat", "/tmp/via"]) == (0, runtime)
    assert [(c["Path"], c["Kind"]) for c in archive.changes(cs, cid)] == \
        [("/ready", 1), ("/tmp", 0), ("/tmp/via", 1)]
    cs.kill(cid)
    cs.wait(cid)
    _, stream = archive.archive_get(cs, cid, "/tmp/via")
    assert _members(stream)["via"][1] == runtime.encode()


def test_get_file_growing_while_read(engine):
    """A file the container keeps appending to is copied at the size its header states."""
    cs = engine.containers
    cid = _sleeper(engine, "(while :; do echo 0123456789abcdef >> /grow; done) &"
                           "\nsleep 0.3")
    for _ in range(5):
        _, stream = archive.archive_get(cs, cid, "/grow")
        member, data = _members(stream)["grow"]
        assert len(data) == member.size > 0
        assert data.startswith(b"0123456789abcdef\n")


_NAMES = st.lists(st.sampled_from(["a", "b", "..", ".", "", "/", ".wh.x", "l"]),
                  min_size=1, max_size=4).map("/".join)
_MEMBER = st.tuples(_NAMES, st.sampled_from(["f", "d", "l", "h"]),
                    st.sampled_from(["/", "..", "../..", "../outside", "a", "/etc", "l/a"]))


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_MEMBER, min_size=1, max_size=6))
def test_put_random_archives_stay_inside(tmp_path_factory, members):
    """Whatever the names and links of an archive, cp writes only below its target: the
    target's siblings and parents are unchanged, and a refusal is one line."""
    top = tmp_path_factory.mktemp("put")
    (top / "outside").mkdir()
    (top / "outside" / "keep").write_text("k")
    root = top / "root"
    (root / "etc").mkdir(parents=True)

    def snapshot():
        out = set()
        for base, dirs, files in os.walk(top):
            if base.startswith(str(root)):
                continue
            out.update(os.path.join(base, n) for n in dirs + files)
        return out

    before = snapshot()
    tar = _tar(*[(name, kind, b"x" if kind == "f" else None if kind == "d" else target)
                 for name, kind, target in members])
    with ContainerFS(str(root)) as fs:
        try:
            fs.extract("/etc", tar)
        except (errors.InvalidArgument, errors.NotFound) as e:
            assert "\n" not in str(e)
    assert snapshot() == before
    assert (top / "outside" / "keep").read_text() == "k"
    assert os.listdir(top / "outside") == ["keep"]
