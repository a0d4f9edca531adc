"""--userns-remap's setting against test-written /etc/subuid, /etc/subgid, /etc/passwd and
/etc/group (bound over the host's). The kernel is the oracle for what a mapping may be: every
IDMap the parser gives is written into a real user namespace's uid_map and gid_map, and what
the kernel refuses (overlapping ranges) the parser refuses too."""
import os
import stat
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc.engine import idmap
from pyrunc.engine.idmap import IDMap, IDRange, parse_remap
from pyrunc.errors import FailedPrecondition, InvalidArgument

DOCKREMAP_UID = "dockremap:231072:65536\n"
DOCKREMAP_GID = "dockremap:231072:65536\n"


def kernel_accepts(uid_lines, gid_lines):
    """Write the maps into a fresh user namespace; the kernel's verdict (True or errno text)."""
    child = subprocess.Popen(["unshare", "--user", "sleep", "30"])
    try:
        deadline = 100
        while os.readlink("/proc/%d/ns/user" % child.pid) == os.readlink("/proc/self/ns/user"):
            deadline -= 1
            assert deadline, "unshare did not make a user namespace"
            subprocess.run(["sleep", "0.02"])
        for name, lines in (("uid_map", uid_lines), ("gid_map", gid_lines)):
            text = "".join("%d %d %d\n" % line for line in lines)
            try:
                with open("/proc/%d/%s" % (child.pid, name), "w") as f:
                    f.write(text)
            except OSError as e:
                return os.strerror(e.errno)
        with open("/proc/%d/uid_map" % child.pid) as f:
            got = [tuple(map(int, line.split())) for line in f]
        assert got == list(uid_lines)
        return True
    finally:
        child.kill()
        child.wait()


def lines(ranges):
    return [(r.container_id, r.host_id, r.size) for r in ranges]


def test_default_is_dockremap(host_ids):
    host_ids(DOCKREMAP_UID, DOCKREMAP_GID)
    m = parse_remap("default")
    assert (m.user, m.group, m.remap) == ("dockremap", "dockremap", "dockremap:dockremap")
    assert m.uid_mappings == [{"containerID": 0, "hostID": 231072, "size": 65536}]
    assert m.gid_mappings == [{"containerID": 0, "hostID": 231072, "size": 65536}]
    assert m.root == (231072, 231072)
    assert m.dir_name == "231072.231072"
    assert m.root_dir("/var/lib/x") == "/var/lib/x/231072.231072"
    assert kernel_accepts(lines(m.uid_ranges), lines(m.gid_ranges)) is True


def test_default_without_the_dockremap_user_says_to_create_it(host_ids):
    users = {"alice": (1500, 1500), "bob": (1700, 1600)}
    host_ids(DOCKREMAP_UID, DOCKREMAP_GID, users=users)
    with pytest.raises(FailedPrecondition, match="user dockremap not found.*create it"):
        parse_remap("default")


def test_a_user_alone_takes_the_group_of_its_name(host_ids):
    host_ids("alice:100000:65536\nbob:500000:65536\n",
             "staff2:700000:65536\nalice:300000:65536\n")
    m = parse_remap("alice")
    assert (m.user, m.group) == ("alice", "alice")
    assert lines(m.uid_ranges) == [(0, 100000, 65536)]
    assert lines(m.gid_ranges) == [(0, 300000, 65536)]
    assert m.dir_name == "100000.300000"


def test_user_and_group_by_name_or_id(host_ids):
    host_ids("alice:100000:65536\nbob:500000:65536\n",
             "staff2:700000:65536\nalice:300000:65536\n")
    for value in ("alice:staff2", "1500:1600", "alice:1600", "1500:staff2"):
        m = parse_remap(value)
        assert (m.user, m.group) == ("alice", "staff2"), value
        assert m.root == (100000, 700000), value
    m = parse_remap("1500")          # a uid alone: the group of the same id
    assert (m.user, m.group, m.root) == ("alice", "alice", (100000, 300000))


def test_entries_by_id_come_before_entries_by_name(host_ids):
    host_ids("alice:100000:65536\n1500:400000:65536\n", "1500:300000:65536\nalice:1:65536\n")
    assert parse_remap("alice").root == (400000, 300000)


def test_every_range_of_the_user_in_file_order(host_ids):
    host_ids("# comment\n\nalice:300000:65536\nbob:500000:65536\n  alice:100000:1000  \n",
             "alice:200000:70000\n")
    m = parse_remap("alice")
    assert lines(m.uid_ranges) == [(0, 300000, 65536), (65536, 100000, 1000)]
    assert m.to_host(0, 0) == (300000, 200000)
    assert m.to_host(65535, 65535) == (365535, 265535)
    assert m.to_host(65536, 69999) == (100000, 269999)
    assert m.to_container(100999, 200001) == (66535, 1)
    with pytest.raises(InvalidArgument, match="uid 66536 cannot be mapped"):
        m.to_host(66536, 0)
    with pytest.raises(InvalidArgument, match="gid 70000 cannot be mapped"):
        m.to_host(0, 70000)
    with pytest.raises(InvalidArgument, match="host uid 0 is not mapped"):
        m.to_container(0, 200000)
    assert kernel_accepts(lines(m.uid_ranges), lines(m.gid_ranges)) is True


@pytest.mark.parametrize("value", ["root", "0", "root:root", "0:0"])
def test_root_turns_remapping_off_with_a_warning(host_ids, warnings_seen, value):
    host_ids("root:100000:65536\n", "root:100000:65536\n")
    assert parse_remap(value) is None
    assert warnings_seen == ["User namespaces: root cannot be remapped with itself; "
                             "user namespaces are OFF"]


@pytest.mark.parametrize("value, error, match", [
    ("", InvalidArgument, "Invalid user/group specification"),
    ("a:b:c", InvalidArgument, "Invalid user/group specification"),
    ("alice:", InvalidArgument, "Invalid user/group specification"),
    (":alice", InvalidArgument, "Invalid user/group specification"),
    ("ali ce", InvalidArgument, "Invalid user/group specification"),
    ("alice\n", InvalidArgument, "Invalid user/group specification"),
    ("alice\0", InvalidArgument, "Invalid user/group specification"),
    ("x" * 300, InvalidArgument, "Invalid user/group specification"),
    ("nosuchuser", FailedPrecondition, "uid lookup for 'nosuchuser'"),
    ("alice:nosuchgroup", FailedPrecondition, "gid lookup for 'nosuchgroup'"),
    ("bob", FailedPrecondition, "gid lookup for 'bob'"),      # no group named bob
    ("4000", FailedPrecondition, "uid 4000 has no entry in /etc/passwd"),
    ("alice:4000", FailedPrecondition, "gid 4000 has no entry in /etc/group"),
    ("99999999999", FailedPrecondition, "uid lookup"),        # not an id: a name, unknown
    ("-1", FailedPrecondition, "uid lookup for '-1'"),
])
def test_bad_settings(host_ids, value, error, match):
    host_ids("alice:100000:65536\n", "alice:100000:65536\nstaff2:1000000:65536\n")
    with pytest.raises(error, match=match):
        parse_remap(value)


def test_no_ranges_for_the_user_or_the_group(host_ids):
    host_ids("bob:100000:65536\n", "alice:100000:65536\n")
    with pytest.raises(FailedPrecondition, match="no subuid ranges found for user 'alice'"):
        parse_remap("alice")
    host_ids("alice:100000:65536\n", "bob:100000:65536\n")
    with pytest.raises(FailedPrecondition, match="no subgid ranges found for group 'alice'"):
        parse_remap("alice")


def test_a_missing_file(host_ids, tmp_path):
    host_ids("alice:100000:65536\n", "alice:100000:65536\n")
    with pytest.raises(FailedPrecondition, match="no such file"):
        parse_remap("alice", subuid=str(tmp_path / "none"))


@pytest.mark.parametrize("subuid, match", [
    # malformed lines: refused wherever they are, as docker does
    ("alice:100000\n", "line 1: not NAME:START:COUNT"),
    ("bob:1:2:3\nalice:100000:65536\n", "line 1: not NAME:START:COUNT"),
    ("alice:100000:65536\nnonsense\n", "line 2: not NAME:START:COUNT"),
    ("alice:abc:65536\n", "line 1: START and COUNT must be decimal"),
    ("alice:-1:65536\n", "START and COUNT must be decimal"),
    ("alice:+100000:65536\n", "START and COUNT must be decimal"),
    ("alice:0x10000:65536\n", "START and COUNT must be decimal"),
    ("alice: 100000:65536\n", "START and COUNT must be decimal"),
    ("alice:100000:65536.0\n", "START and COUNT must be decimal"),
    ("alice:100000:\n", "START and COUNT must be decimal"),
    ("alice:\u0661\u0660\u0660\u0660\u0660\u0660:65536\n", "START and COUNT must be decimal"),
    ("alice:99999999999:65536\n", "START and COUNT must be decimal"),
    ("alice:4294967295:1\n", "START and COUNT must be decimal"),
    # ranges that cannot be a mapping
    ("alice:4294901760:65536\n", "passes the last id"),          # ends at 2^32-1
    ("alice:4294967294:65536\n", "passes the last id"),
    ("alice:0:65536\n", "holds host id 0"),
    ("alice:100000:0\n", "an empty range"),
    ("alice:100000:65535\n", "hold 65535 ids; at least 65536"),
    ("alice:100000:1000\nalice:300000:1000\n", "hold 2000 ids; at least 65536"),
    ("alice:100000:65536\nalice:165535:10\n", "lines 1 and 2: the ranges overlap"),
    ("alice:200000:65536\nbob:1:1\nalice:100000:100001\n", "lines 1 and 3: the ranges overlap"),
    ("alice:100000:65536\nalice:100000:65536\n", "lines 1 and 2: the ranges overlap"),
    ("".join("alice:%d:200\n" % (100000 + 1000 * i) for i in range(341)),
     "341 ranges; a user namespace takes at most 340"),
])
def test_hostile_subuid(host_ids, subuid, match):
    host_ids(subuid, "alice:100000:65536\n")
    with pytest.raises(InvalidArgument, match=match):
        parse_remap("alice")


def test_the_kernel_refuses_what_the_parser_refuses_as_overlapping():
    assert kernel_accepts([(0, 100000, 65536), (65536, 165535, 10)],
                          [(0, 100000, 65546)]) is not True
    assert kernel_accepts([(0, 100000, 65536), (65536, 165536, 10)],
                          [(0, 100000, 65546)]) is True


def _ranges_text(n):
    return "".join("alice:%d:300\n" % (1000000 + 1000 * i) for i in range(n))


def test_many_ranges_up_to_the_kernels_limit(host_ids):
    # a uid_map is written in one write(2) of less than a page: 229 of these lines fit
    # (4082 bytes), 230 do not (4100), below the limit of 340 lines
    host_ids(_ranges_text(229), "alice:100000:70000\n")
    m = parse_remap("alice")
    assert len(m.uid_ranges) == 229
    assert m.to_host(229 * 300 - 1, 0) == (1000000 + 1000 * 228 + 299, 100000)
    assert kernel_accepts(lines(m.uid_ranges), lines(m.gid_ranges)) is True


def test_ranges_past_a_page_of_uid_map(host_ids):
    host_ids(_ranges_text(230), "alice:100000:70000\n")
    with pytest.raises(InvalidArgument, match="make a uid_map of 4100 bytes; the kernel takes "
                                              "less than 4096"):
        parse_remap("alice")
    whole = [(i * 300, 1000000 + 1000 * i, 300) for i in range(230)]
    assert kernel_accepts(whole, [(0, 100000, 70000)]) == "Invalid argument"


def test_an_idmap_must_map_root():
    with pytest.raises(InvalidArgument, match="container uid 0 is not mapped"):
        IDMap([IDRange(1, 100000, 65536)], [IDRange(0, 100000, 65536)])


def test_make_root_dir(tmp_path):
    m = IDMap([IDRange(0, 100000, 65536)], [IDRange(0, 300000, 65536)], "a", "b")
    root = tmp_path / "engine"
    path = m.make_root_dir(str(root))
    assert path == str(root / "100000.300000")
    st_root, st_tree = os.stat(root), os.stat(path)
    assert stat.S_IMODE(st_root.st_mode) == 0o711 and st_root.st_uid == 0
    assert stat.S_IMODE(st_tree.st_mode) == 0o710
    assert (st_tree.st_uid, st_tree.st_gid) == (0, 300000)
    assert m.make_root_dir(str(root)) == path        # again: the same, no error
    os.chown(path, 12345, -1)
    with pytest.raises(FailedPrecondition, match="not a directory of this user"):
        m.make_root_dir(str(root))


_line = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=30),
    st.builds(lambda n, a, b: "%s:%s:%s" % (n, a, b),
              st.sampled_from(["alice", "1500", "bob", "", "alice "]),
              st.one_of(st.integers(-5, 2 ** 33).map(str), st.text(max_size=4)),
              st.one_of(st.integers(-5, 2 ** 33).map(str), st.sampled_from(["65536", "0"]))),
)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_line, max_size=8))
def test_any_subuid_text_gives_a_valid_map_or_one_clear_error(host_ids, tmp_path, text):
    host_ids("", "alice:100000:65536\n")
    path = tmp_path / "subuid"
    path.write_text("\n".join(text), encoding="utf-8", errors="surrogateescape")
    try:
        m = parse_remap("alice", subuid=str(path))
    except (InvalidArgument, FailedPrecondition) as e:
        assert "\n" not in str(e)
        return
    assert m is not None
    ranges = sorted((r.host_id, r.size) for r in m.uid_ranges)
    assert sum(size for _, size in ranges) >= idmap.MIN_IDS
    assert all(host > 0 and host + size - 1 <= idmap.MAX_ID for host, size in ranges)
    assert all(a + n <= b for (a, n), (b, _) in zip(ranges, ranges[1:]))
    at = 0
    for r in m.uid_ranges:
        assert r.container_id == at
        at += r.size


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=40),
                 st.builds(lambda a, b: a + ":" + b,
                           st.sampled_from(["alice", "1500", "default", "root", "0", ""]),
                           st.one_of(st.text(max_size=12),
                                     st.sampled_from(["staff2", "1600", "alice"])))))
def test_any_setting_gives_a_map_or_one_clear_error(host_ids, value):
    host_ids("alice:100000:65536\n1500:100000:65536\n", "alice:200000:65536\n"
             "staff2:300000:65536\n1600:300000:65536\n1500:200000:65536\n")
    try:
        m = parse_remap(value)
    except (InvalidArgument, FailedPrecondition) as e:
        assert "\n" not in str(e)
        return
    assert m is None or m.user == "alice"
