"""The store on disk is closed to other users: an unprivileged user (65534, in a forked child
that drops to it with setresuid) can neither stat, open nor execute anything under it, not even
the setuid-root program and the device node a real image layer put there. A store an older
version left open (0755 directories) is closed when it is opened."""
import io
import json
import os
import shutil
import stat
import tempfile

import pytest

from engine.layers.tarbuild import entry, make_tar
from pyrunc.engine.images import ImageService, import_image
from pyrunc.errors import InvalidArgument

NOBODY = 65534


@pytest.fixture
def base(private_mount_ns):
    """A directory every user may traverse (pytest's own tmp_path is 0700, which would hide
    the store whatever its modes)."""
    path = tempfile.mkdtemp(prefix="pyrunc-perm-", dir="/tmp")
    os.chmod(path, 0o711)
    with open(os.path.join(path, "public"), "w") as f:
        f.write("anyone may read this")
    os.chmod(os.path.join(path, "public"), 0o644)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def as_nobody(paths, control):
    """In a child running as 65534 with no groups: for each path, what stat, open and exec
    give ("ok" or the errno name); and the same stat and open of ``control``."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            out = {}

            def attempt(fn):
                try:
                    fn()
                    return "ok"
                except OSError as e:
                    return __import__("errno").errorcode.get(e.errno, str(e.errno))

            for p in paths + [control]:
                def do_open(p=p):
                    os.close(os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW))

                def do_exec(p=p):
                    # access(X_OK) as this user, then the real thing in a grandchild
                    if not os.access(p, os.X_OK):
                        raise PermissionError(13, "access")

                out[p] = {"stat": attempt(lambda p=p: os.lstat(p)), "open": attempt(do_open),
                          "exec": attempt(do_exec)}
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 1 << 16)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


def hostile_image(svc):
    layer = make_tar([
        entry("bin", "dir"),
        entry("bin/rootshell", data=open("/bin/true", "rb").read(), mode=0o4755, uid=0, gid=0),
        entry("dev", "dir"),
        entry("dev/null", "char", mode=0o666, dev=(1, 3)),
        entry("etc", "dir"),
        entry("etc/motd", data=b"hello", mode=0o644),
    ])
    return import_image(svc, io.BytesIO(layer), "hostile:1")


def everything_under(root):
    out = [root]
    for dirpath, dirs, files in os.walk(root):
        out += [os.path.join(dirpath, n) for n in dirs + files]
    return out


def find(root, tail):
    hits = [p for p in everything_under(root) if p.endswith(tail)]
    assert hits, "no %s under %s" % (tail, root)
    return hits


def check_closed(store):
    paths = everything_under(store)
    suid = find(store, "/bin/rootshell")
    dev = find(store, "/dev/null")
    st = os.lstat(suid[0])
    assert st.st_mode & stat.S_ISUID and st.st_uid == 0          # a real setuid-root file
    assert stat.S_ISCHR(os.lstat(dev[0]).st_mode)                 # and a real device node
    control = os.path.join(os.path.dirname(store), "public")
    seen = as_nobody(paths, control)
    # the control shows the child could reach the store's parent and read what is public
    assert seen[control]["stat"] == "ok" and seen[control]["open"] == "ok"
    for p in paths:
        if p == store:
            # the root itself: its parent is open, so stat works, but nothing inside
            assert seen[p]["open"] == "EACCES" or stat.S_IMODE(os.stat(p).st_mode) == 0o700
            continue
        assert seen[p] == {"stat": "EACCES", "open": "EACCES", "exec": "EACCES"}, (p, seen[p])
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o700


@pytest.mark.parametrize("backend", ["overlayfs", "native"])
def test_nobody_cannot_reach_anything_in_the_store(base, backend):
    svc = ImageService(os.path.join(base, "engine"), snapshotter=backend)
    hostile_image(svc)
    check_closed(svc.root)


def test_an_open_store_is_closed_when_opened(base):
    root = os.path.join(base, "engine")
    hostile_image(ImageService(root, snapshotter="native"))
    # what an older version left: every directory 0755
    for p in everything_under(root):
        if os.path.isdir(p) and not os.path.islink(p):
            os.chmod(p, 0o755)
    assert as_nobody([find(root, "/bin/rootshell")[0]], os.path.join(base, "public"))[
        find(root, "/bin/rootshell")[0]]["exec"] == "ok"          # the exposure, reproduced
    ImageService(root, snapshotter="native")
    check_closed(root)


def test_a_shared_directory_is_refused_not_closed(base):
    """Closing the root must not close a directory others use: a sticky one like /tmp, or
    one another user owns, is refused and keeps its mode."""
    sticky = os.path.join(base, "sticky")
    os.mkdir(sticky)
    os.chmod(sticky, 0o1777)
    with open(os.path.join(sticky, "someone-elses-file"), "w"):
        pass
    with pytest.raises(InvalidArgument, match="^store directory .*/sticky: a shared directory "
                                              r"\(sticky\): give the store a directory of "
                                              "its own$"):
        ImageService(sticky)
    assert stat.S_IMODE(os.stat(sticky).st_mode) == 0o1777
    # an empty sticky directory (a tmpfs just mounted for the store) is taken and closed
    fresh = os.path.join(base, "fresh")
    os.mkdir(fresh)
    os.chmod(fresh, 0o1777)
    ImageService(fresh, snapshotter="native")
    assert stat.S_IMODE(os.stat(fresh).st_mode) == 0o700
    theirs = os.path.join(base, "theirs")
    os.mkdir(theirs, 0o755)
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(InvalidArgument, match="owned by uid 65534"):
        ImageService(theirs)
    assert stat.S_IMODE(os.stat(theirs).st_mode) == 0o755


def test_an_ingest_in_progress_is_closed_too(base):
    svc = ImageService(os.path.join(base, "engine"), snapshotter="native")
    w = svc.content.writer("in-progress")
    try:
        w.write(b"partial")
        assert stat.S_IMODE(os.stat(w.dir).st_mode) == 0o700
        seen = as_nobody([w.data_path], os.path.join(base, "public"))
        assert seen[w.data_path]["open"] == "EACCES"
    finally:
        w.abort()
