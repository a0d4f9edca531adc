"""--user and --group-add resolution in the image's /etc/passwd and /etc/group: docker's rules
and messages, a hostile root filesystem, and busybox's own ``id`` (run chrooted in the same
root) as the oracle for random files."""
import os
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc.errors import InvalidArgument
from pyrunc.engine.oci import user as user_mod
from pyrunc.engine.oci.user import parse_group, parse_passwd, read_root_file, resolve_user

PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "# a comment\n"
          "alice:x:1000:1000:Alice:/home/alice:/bin/sh\n"
          "bob:x:1001:1001::/home/bob:/bin/sh\n"
          "1234:x:1500:1500::/:/bin/sh\n")
GROUP = "root:x:0:\nalice:x:1000:\nstaff:x:50:alice,bob\naudio:x:29:alice\nvideo:x:44:\n"


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "passwd").write_text(PASSWD)
    (r / "etc" / "group").write_text(GROUP)
    return r


def ids(u):
    return (u.uid, u.gid, u.additional_gids)


@pytest.mark.parametrize("spec, group_add, want", [
    ("", None, (0, 0, [0])),
    ("root", None, (0, 0, [0])),
    ("alice", None, (1000, 1000, [1000, 50, 29])),
    ("alice:video", None, (1000, 44, [44])),
    ("alice:44", None, (1000, 44, [44])),
    ("1000", None, (1000, 1000, [1000, 50, 29])),
    ("1234", None, (1234, 0, [0])),          # a number is a uid, never the name "1234"
    ("4000:4001", None, (4000, 4001, [4001])),
    ("bob", ["video", "7777", "staff"], (1001, 1001, [1001, 50, 44, 7777])),
    ("bob", ["44", "video"], (1001, 1001, [1001, 50, 44])),
])
def test_rules(root, spec, group_add, want):
    assert ids(resolve_user(str(root), spec, group_add)) == want


@pytest.mark.parametrize("spec, group_add, message", [
    ("nobody", None, "unable to find user nobody: no matching entries in passwd file"),
    ("alice:wheel", None, "unable to find group wheel: no matching entries in group file"),
    ("alice", ["wheel"], "Unable to find group wheel: no matching entries in group file"),
    ("4294967296", None, "uids and gids must be in range 0-2147483647"),
    ("-5", None, "uids and gids must be in range 0-2147483647"),
    ("0:2147483648", None, "uids and gids must be in range 0-2147483647"),
])
def test_errors(root, spec, group_add, message):
    with pytest.raises(InvalidArgument) as e:
        resolve_user(str(root), spec, group_add)
    assert str(e.value) == message


def test_numeric_ids_need_no_files(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert ids(resolve_user(str(empty), "123:456", ["789"])) == (123, 456, [456, 789])
    assert ids(resolve_user(str(empty), "", None)) == (0, 0, [0])
    with pytest.raises(InvalidArgument, match="unable to find user alice"):
        resolve_user(str(empty), "alice")


# -- a hostile root filesystem ---------------------------------------------------------------

HOST_PASSWD = "evil:x:4242:4242::/:/bin/sh\nroot:x:0:31337::/:/bin/sh\n"


@pytest.fixture
def host_files(tmp_path):
    d = tmp_path / "host"
    d.mkdir()
    (d / "passwd").write_text(HOST_PASSWD)
    (d / "group").write_text("evilgroup:x:4343:root\n")
    return d


@pytest.mark.parametrize("how", ["absolute", "relative", "dir", "chain"])
def test_symlinks_never_leave_the_root(tmp_path, host_files, how):
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    passwd, group = str(host_files / "passwd"), str(host_files / "group")
    if how == "absolute":
        os.symlink(passwd, r / "etc" / "passwd")
        os.symlink(group, r / "etc" / "group")
    elif how == "relative":
        os.symlink("../" * 30 + passwd.lstrip("/"), r / "etc" / "passwd")
        os.symlink("../" * 30 + group.lstrip("/"), r / "etc" / "group")
    elif how == "dir":
        os.rmdir(r / "etc")
        os.symlink(str(host_files), r / "etc")
    else:
        (r / "a").mkdir()
        os.symlink("../..", r / "a" / "up")
        os.symlink("/a/up/a/up/../.." + passwd, r / "etc" / "passwd")
        os.symlink("/a/up/a/up/../.." + group, r / "etc" / "group")
    with pytest.raises(InvalidArgument, match="unable to find user evil: no matching entries"):
        resolve_user(str(r), "evil")
    # root's gid is not the host file's 31337, and no host group is added
    assert ids(resolve_user(str(r), "")) == (0, 0, [0])
    with pytest.raises(InvalidArgument, match="Unable to find group evilgroup"):
        resolve_user(str(r), "", ["evilgroup"])


def test_symlink_inside_the_root_is_followed_there(tmp_path, host_files):
    """A link to an absolute path names that path in the root, not on the host."""
    r = tmp_path / "root"
    hostish = r / str(host_files).lstrip("/")
    hostish.mkdir(parents=True)
    (hostish / "passwd").write_text("inside:x:77:78::/:/bin/sh\n")
    (r / "etc").mkdir()
    os.symlink(str(host_files / "passwd"), r / "etc" / "passwd")
    assert ids(resolve_user(str(r), "inside")) == (77, 78, [78])
    with pytest.raises(InvalidArgument):
        resolve_user(str(r), "evil")


def test_special_files_are_not_read(tmp_path):
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    os.mkfifo(r / "etc" / "passwd")                   # reading it would block
    os.mknod(r / "etc" / "group", 0o600 | 0o020000, os.makedev(1, 5))   # /dev/zero
    with pytest.raises(InvalidArgument, match="unable to find user alice"):
        resolve_user(str(r), "alice")
    assert ids(resolve_user(str(r), "", ["5"])) == (0, 0, [0, 5])
    os.unlink(r / "etc" / "passwd")
    os.symlink("passwd", r / "etc" / "passwd")        # a loop
    assert read_root_file(str(r), "/etc/passwd") is None


def test_huge_file_is_read_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(user_mod, "MAX_FILE", 1 << 16)
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    with open(r / "etc" / "passwd", "w") as f:
        f.write("a:x:1:1::/:/bin/sh\n")
        f.write("#" * (1 << 20) + "\n")
        f.write("late:x:2:2::/:/bin/sh\n")
    assert len(read_root_file(str(r), "/etc/passwd")) == 1 << 16
    assert ids(resolve_user(str(r), "a")) == (1, 1, [1])
    with pytest.raises(InvalidArgument):
        resolve_user(str(r), "late")


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400))
def test_parsers_never_crash(data):
    for entry in parse_passwd(data):
        assert entry.uid >= 0 and entry.gid >= 0
    for group in parse_group(data):
        assert group.gid >= 0


# -- busybox's id as the oracle --------------------------------------------------------------

NAMES = st.text(alphabet="abcdefgh", min_size=1, max_size=4)


@st.composite
def user_files(draw):
    users = draw(st.lists(st.tuples(NAMES, st.integers(0, 3000), st.integers(0, 3000)),
                          min_size=1, max_size=5, unique_by=lambda u: u[0]))
    groups = draw(st.lists(st.tuples(NAMES, st.integers(1, 3000),
                                     st.lists(st.sampled_from([u[0] for u in users]),
                                              max_size=3, unique=True)),
                           max_size=5, unique_by=lambda g: (g[0], g[1])))
    who = draw(st.sampled_from(users))[0]
    return users, groups, who


@pytest.fixture(scope="module")
def chroot_root(tmp_path_factory):
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(busybox):
        pytest.skip("busybox is not installed")
    r = tmp_path_factory.mktemp("idroot")
    (r / "bin").mkdir()
    (r / "etc").mkdir()
    shutil.copy(busybox, r / "bin" / "busybox")
    return r


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=user_files())
def test_agrees_with_busybox_id(chroot_root, private_mount_ns, case):
    users, groups, who = case
    passwd = "".join("%s:x:%d:%d::/:/bin/sh\n" % u for u in users)
    group = "".join("%s:x:%d:%s\n" % (g[0], g[1], ",".join(g[2])) for g in groups)
    (chroot_root / "etc" / "passwd").write_text(passwd)
    (chroot_root / "etc" / "group").write_text(group)
    got = resolve_user(str(chroot_root), who)

    def busybox_id(flag):
        r = subprocess.run(["chroot", str(chroot_root), "/bin/busybox", "id", flag, who],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return [int(x) for x in r.stdout.split()]

    assert busybox_id("-u") == [got.uid]
    assert busybox_id("-g") == [got.gid]
    assert set(busybox_id("-G")) == set(got.additional_gids)
