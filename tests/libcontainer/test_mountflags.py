"""The one table of mount flags (pyrunc.libcontainer.mountflags) against the kernel's headers and
mount(8), and the option words of specconv.mounts against mount(8) on real mounts."""
import errno
import os
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc.libcontainer import mountflags
from pyrunc.libcontainer.specconv.mounts import FLAGS, Options

NAMES = [n for n in dir(mountflags) if n.startswith(("MS_", "MOUNT_ATTR_"))]


def _kernel_header_values():
    """Every MS_* and MOUNT_ATTR_* macro of the kernel's <linux/mount.h>, evaluated."""
    cpp = shutil.which("cpp")
    if cpp is None:
        pytest.skip("cpp (the C preprocessor, Debian's cpp package) is not installed")
    out = subprocess.run([cpp, "-dM", "-"], input="#include <linux/mount.h>\n",
                         capture_output=True, text=True, check=True).stdout
    values = {}
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0] == "#define" and parts[1].startswith(("MS_", "MOUNT_")):
            try:    # numbers and shifts: "4096", "(1<<16)", "0x00000010"
                values[parts[1]] = eval(parts[2], {"__builtins__": {}})
            except (NameError, SyntaxError):
                pass
    return values


def test_every_flag_is_the_kernels():
    assert len(NAMES) >= 30
    kernel = _kernel_header_values()
    for name in NAMES:
        assert name in kernel, "%s is not in <linux/mount.h>" % name
        assert getattr(mountflags, name) == kernel[name], name


def test_no_other_table_of_flags_in_src():
    """Only mountflags gives the flags values; every other module imports them."""
    import ast

    import pyrunc
    src = os.path.dirname(pyrunc.__file__)
    table = os.path.join(src, "libcontainer", "mountflags.py")
    found = []
    for top, _, files in os.walk(src):
        for name in files:
            path = os.path.join(top, name)
            if not name.endswith(".py") or path == table:
                continue
            with open(path) as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and \
                        node.id.startswith(("MS_", "MOUNT_ATTR_", "MNT_")):
                    found.append("%s:%d: %s" % (os.path.relpath(path, src), node.lineno, node.id))
    assert found == []


def _options(target):
    """(per-mount options, super options) of the mount on ``target``, from mountinfo."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == target:
                found = fields
    sep = found.index("-")
    return set(found[5].split(",")), set(found[sep + 3].split(","))


@pytest.fixture
def two_dirs(tmp_path, private_mount_ns):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    os.mkdir(a)
    os.mkdir(b)
    yield a, b
    for d in (a, b):
        while mountflags.umount(d, mountflags.MNT_DETACH) == 0:
            pass


# mount(8) passes acl/noacl to the filesystem as data (tmpfs refuses them); mand is gone from
# the kernel; bind, rbind and remount need another mount to act on
COMPARABLE = sorted(set(FLAGS) - {"acl", "noacl", "mand", "nomand", "bind", "rbind", "remount"})


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.sampled_from(COMPARABLE), min_size=1, max_size=6))
def test_option_words_mount_as_mount8_mounts_them(two_dirs, words):
    """A tmpfs mounted with the flags pyrunc makes of the words has the options (per mount and
    per superblock, as the kernel reports them) of a tmpfs mounted by mount(8) -o words."""
    ours, theirs = two_dirs
    opts = Options(words)
    assert opts.data == ""
    assert mountflags.mount("tmpfs", ours, "tmpfs", opts.flags) == 0
    subprocess.run(["mount", "-n", "-t", "tmpfs", "-o", ",".join(words), "tmpfs", theirs],
                   check=True)
    try:
        assert _options(ours) == _options(theirs), words
    finally:
        assert mountflags.umount(ours) == 0
        assert mountflags.umount(theirs) == 0


def test_mount_reports_the_errno(tmp_path, private_mount_ns):
    missing = str(tmp_path / "missing")
    assert mountflags.mount("tmpfs", missing, "tmpfs", 0) == errno.ENOENT
    assert mountflags.umount(missing) == errno.ENOENT


def test_detach_unmounts_a_busy_mount(two_dirs):
    """MNT_DETACH is umount2's lazy flag: a mount in use cannot go without it, and goes with it."""
    target, _ = two_dirs
    assert mountflags.mount("tmpfs", target, "tmpfs", 0) == 0
    fd = os.open(os.path.join(target, "open"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        assert mountflags.umount(target) == errno.EBUSY
        assert mountflags.umount(target, mountflags.MNT_DETACH) == 0
    finally:
        os.close(fd)
    assert target not in {line.split()[4] for line in open("/proc/self/mountinfo")}


def test_restore_root_bind_is_private_and_read_only(two_dirs):
    """CRIU's restore root (criu._bind, through the table and the core's mount): a recursive
    private bind, read-only when asked; mountinfo tells (no "shared:" tag, "ro")."""
    from pyrunc.libcontainer import criu
    source, target = two_dirs
    assert mountflags.mount("tmpfs", source, "tmpfs", 0) == 0
    assert mountflags.mount(None, source, None, mountflags.MS_SHARED) == 0
    criu._bind(source, target, readonly=True)
    with open("/proc/self/mountinfo") as f:
        line = [x.split() for x in f if x.split()[4] == target][-1]
    assert "ro" in line[5].split(",")
    assert not any(tag.startswith("shared:") for tag in line[6:line.index("-")])
    criu._umount(target)
    assert target not in {x.split()[4] for x in open("/proc/self/mountinfo")}
