"""VolumeService: docker's shapes, names, filters, use references, prune, several processes at
once, and nothing left after remove."""
import multiprocessing
import os
import re

import pytest

from pyrunc.engine.volume import ANONYMOUS_LABEL, VolumeService
from pyrunc.errors import Conflict, InvalidArgument, NotFound

CID = "c" * 64
# docker's rule for a local volume name, written as docker documents it
DOCKER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+\Z")
RFC3339_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")


def test_create_inspect_shape(volumes):
    v = volumes.create("data1")
    assert v == volumes.inspect("data1")
    assert sorted(v) == ["CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options",
                         "Scope"]
    assert (v["Name"], v["Driver"], v["Scope"], v["Labels"], v["Options"]) == \
        ("data1", "local", "local", None, None)
    assert v["Mountpoint"] == os.path.join(volumes.root, "data1", "_data")
    assert os.path.isdir(v["Mountpoint"])
    assert RFC3339_SECONDS.match(v["CreatedAt"])
    w = volumes.create("data2", driver_opts={"type": "tmpfs", "device": "tmpfs",
                                             "o": "size=1m"}, labels={"a": "1"})
    assert w["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
    assert w["Labels"] == {"a": "1"}


def test_create_existing_returns_it(volumes):
    first = volumes.create("same", labels={"x": "1"})
    assert volumes.create("same", labels={"y": "2"}) == first
    assert len(volumes.list()["Volumes"]) == 1


def test_anonymous_volume(volumes):
    v = volumes.create()
    assert re.fullmatch(r"[0-9a-f]{64}", v["Name"])
    assert v["Labels"] == {ANONYMOUS_LABEL: ""}
    assert volumes.create()["Name"] != v["Name"]


@pytest.mark.parametrize("name, message", [
    ("a", "volume name is too short, names should be at least two alphanumeric characters"),
    ("..", '".." includes invalid characters for a local volume name'),
    ("../../etc", '"../../etc" includes invalid characters'),
    ("a/b", '"a/b" includes invalid characters'),
    ("_ab", '"_ab" includes invalid characters'),
    ("a\0b", '"a\\x00b" includes invalid characters'),
    ("a b", '"a b" includes invalid characters'),
    ("a\nb", '"a\\x0ab" includes invalid characters'),
    ("x" * 256, "volume name is too long"),
])
def test_bad_names_refused_and_nothing_made(volumes, name, message):
    with pytest.raises(InvalidArgument) as e:
        volumes.create(name)
    assert message in str(e.value)
    assert "\n" not in str(e.value)
    assert sorted(os.listdir(volumes.root)) == [".meta", ".trash"]


def test_name_rule_is_dockers():
    from hypothesis import given, settings, strategies as st
    from pyrunc.engine.volume import validate_name

    @settings(max_examples=400, deadline=None)
    @given(st.text(alphabet=st.sampled_from("aZ09_.-/ \0\n\u00e9:"), max_size=12))
    def check(name):
        try:
            validate_name(name)
            ok = True
        except InvalidArgument:
            ok = False
        assert ok == bool(DOCKER_NAME.match(name))
    check()


@pytest.mark.parametrize("opts, message", [
    ({"foo": "bar"}, 'invalid option: "foo"'),
    ({"type": "tmpfs"}, 'missing required option: "device"'),
    ({"device": "tmpfs"}, 'missing required option: "type"'),
    ({"o": "size=1m", "type": "tmpfs"}, 'missing required option: "device"'),
    ({"size": "10m"}, "quota size requested but no quota support"),
    ({"type": 1}, "driver options must be a map of strings"),
])
def test_bad_driver_options(volumes, opts, message):
    with pytest.raises(InvalidArgument) as e:
        volumes.create("v1", driver_opts=opts)
    assert message in str(e.value)
    assert not volumes.exists("v1")


def test_unknown_driver(volumes):
    with pytest.raises(NotFound) as e:
        volumes.create("v1", driver="nfsplugin")
    assert "plugin" in str(e.value)


def test_not_found(volumes):
    for call in (volumes.inspect, volumes.remove):
        with pytest.raises(NotFound) as e:
            call("nope")
        assert str(e.value) == "get nope: no such volume"
    volumes.remove("nope", force=True)


def test_in_use_refused_even_forced(volumes):
    volumes.create("used")
    volumes.acquire("used", CID)
    volumes.acquire("used", "d" * 64)
    for force in (False, True):
        with pytest.raises(Conflict) as e:
            volumes.remove("used", force=force)
        assert str(e.value) == "remove used: volume is in use - [%s, %s]" % (CID, "d" * 64)
    assert volumes.list({"dangling": ["true"]})["Volumes"] == []
    volumes.release("used", CID)
    volumes.release("used", "d" * 64)
    volumes.remove("used")
    assert sorted(os.listdir(volumes.root)) == [".meta", ".trash"]


def test_acquire_missing_and_bad_reference(volumes):
    with pytest.raises(NotFound):
        volumes.acquire("nope", CID)
    volumes.create("v1")
    for bad in ("", "../x", "a" * 200, None):
        with pytest.raises(InvalidArgument):
            volumes.acquire("v1", bad)


def test_list_filters(volumes):
    volumes.create("alpha", labels={"team": "x", "tier": "db"})
    volumes.create("beta", labels={"team": "y"})
    anon = volumes.create()["Name"]
    volumes.acquire("beta", CID)

    def names(filters):
        return [v["Name"] for v in volumes.list(filters)["Volumes"]]
    assert names(None) == sorted(["alpha", "beta", anon])
    assert names({"name": ["alp"]}) == ["alpha"]
    assert names({"name": ["l"]}) == ["alpha"]           # (no "l", "t" in hex names)
    assert names({"name": ["^al"]}) == ["alpha"]
    assert names({"name": ["ta$"]}) == ["beta"]
    assert names({"name": ["^lpha"]}) == []
    assert names({"name": ["^bet$"]}) == []
    assert names({"name": ["^beta$"]}) == ["beta"]
    assert names({"name": ["(a+)+$"]}) == []
    assert names({"label": ["team"]}) == ["alpha", "beta"]
    assert names({"label": ["team=x"]}) == ["alpha"]
    assert names({"label": ["team=x", "tier=db"]}) == ["alpha"]
    assert names({"label": ["team=x", "tier=web"]}) == []
    assert names({"dangling": ["true"]}) == sorted(["alpha", anon])
    assert names({"dangling": {"false": True}}) == ["beta"]
    assert names({"driver": ["local"]}) == sorted(["alpha", "beta", anon])
    assert names({"driver": ["other"]}) == []
    with pytest.raises(InvalidArgument) as e:
        volumes.list({"colour": ["red"]})
    assert str(e.value) == "invalid filter 'colour'"
    with pytest.raises(InvalidArgument) as e:
        volumes.list({"dangling": ["maybe"]})
    assert str(e.value) == "invalid filter 'dangling=maybe'"


def test_prune_anonymous_only_unless_all(volumes):
    volumes.create("named")
    a1 = volumes.create()["Name"]
    a2 = volumes.create(labels={"keep": "1"})["Name"]
    used = volumes.create()["Name"]
    volumes.acquire(used, CID)
    with open(os.path.join(volumes.mountpoint(a1), "f"), "wb") as f:
        f.write(b"x" * 5000)
    os.link(os.path.join(volumes.mountpoint(a1), "f"), os.path.join(volumes.mountpoint(a1), "g"))
    r = volumes.prune({"label!": ["keep"]})
    assert r == {"VolumesDeleted": [a1], "SpaceReclaimed": 5000}
    r = volumes.prune({"all": ["true"]})
    assert sorted(r["VolumesDeleted"]) == sorted(["named", a2])
    assert [v["Name"] for v in volumes.list()["Volumes"]] == [used]
    assert sorted(os.listdir(volumes.root)) == sorted([".meta", ".trash", used])
    with pytest.raises(InvalidArgument):
        volumes.prune({"dangling": ["true"]})


def test_crash_leftovers_are_cleaned(volumes):
    """A directory without a record (a create or remove that died part way) is cleared when
    the name is created again; a trash entry is emptied by the next service."""
    os.makedirs(os.path.join(volumes.root, "ghost", "_data"))
    with open(os.path.join(volumes.root, "ghost", "_data", "old"), "w") as f:
        f.write("stale")
    os.makedirs(os.path.join(volumes.root, ".trash", "x-1", "_data"))
    assert volumes.list()["Volumes"] == []
    volumes.create("ghost")
    assert os.listdir(volumes.mountpoint("ghost")) == []
    VolumeService(volumes.root)
    assert os.listdir(os.path.join(volumes.root, ".trash")) == []


def _worker(root, index, rounds, queue):
    try:
        svc = VolumeService(root)
        for i in range(rounds):
            name = "v%d-%d" % (index, i)
            svc.create(name)
            svc.create("shared")
            svc.acquire("shared", "%064x" % index)
            anon = svc.create()["Name"]
            svc.remove(name)
            svc.remove(anon)
            svc.release("shared", "%064x" % index)
        queue.put(None)
    except BaseException as e:     # reported to the parent
        queue.put(repr(e))


def test_several_processes_at_once(volumes):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(volumes.root, i, 15, queue)) for i in range(6)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert results == [None] * len(procs)
    assert [v["Name"] for v in volumes.list()["Volumes"]] == ["shared"]
    assert volumes.references("shared") == []
    volumes.remove("shared")
    assert sorted(os.listdir(volumes.root)) == [".meta", ".trash"]
    assert os.listdir(os.path.join(volumes.root, ".trash")) == []


def test_tmpfs_volume_mounted_by_first_user_only(volumes, mount_targets):
    volumes.create("tv", driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=64k"})
    mp = volumes.mountpoint("tv")
    assert volumes.mount("tv", CID) == mp
    volumes.mount("tv", "d" * 64)
    assert mount_targets().count(mp) == 1
    with open("/proc/self/mountinfo") as f:
        line = [x for x in f if x.split()[4] == mp][0]
    assert " - tmpfs tmpfs " in line and "size=64k" in line
    volumes.unmount("tv", CID)
    assert mp in mount_targets()
    volumes.release("tv", "d" * 64)     # a remove releases the mount too
    assert mp not in mount_targets()
    volumes.remove("tv")


def test_bind_volume_with_driver_options(volumes, tmp_path, mount_targets):
    """``type=none,device=/path,o=bind``: docker's way to name a host directory."""
    host = tmp_path / "hostdir"
    host.mkdir()
    (host / "f").write_text("x")
    volumes.create("bv", driver_opts={"type": "none", "device": str(host), "o": "bind,ro"})
    mp = volumes.mount("bv", CID)
    assert os.listdir(mp) == ["f"]
    with pytest.raises(OSError):
        open(os.path.join(mp, "g"), "w")
    volumes.unmount("bv", CID)
    assert mp not in mount_targets()
    volumes.remove("bv")
    assert (host / "f").read_text() == "x"        # removing the volume leaves the device


def test_driver_mount_failure_is_reported(volumes):
    volumes.create("bad", driver_opts={"type": "nosuchfs", "device": "x", "o": ""})
    with pytest.raises(Exception) as e:
        volumes.mount("bad", CID)
    assert "error while mounting volume 'bad'" in str(e.value)
    assert volumes.inspect("bad")["Name"] == "bad"
    volumes.remove("bad")
