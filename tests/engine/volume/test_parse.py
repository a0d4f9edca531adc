"""Parsing of -v, --mount, --tmpfs and the image's Volumes: docker's rules and texts (from its
documentation and its messages), hypothesis for the bind-spec parser, nothing left on error."""
import json
import os

import pytest
from hypothesis import given, settings, strategies as st

from pyrunc.engine.volume import (MountPoint, merge_tmpfs_options, parse_bind, parse_mount,
                                  parse_mounts, resolve_mounts)
from pyrunc.errors import InvalidArgument

CID = "c" * 64
RW = ["rw", "ro", "ro-non-recursive", "ro-force-recursive", "rro"]
LABEL = ["z", "Z"]
PROP = ["private", "rprivate", "shared", "rshared", "slave", "rslave"]
CONSISTENCY = ["consistent", "cached", "delegated"]

segment = st.text(alphabet=st.sampled_from("abcXYZ019_.- @é"), min_size=1, max_size=6).filter(
    lambda s: s not in (".", ".."))
abs_path = st.lists(segment, min_size=1, max_size=4).map(lambda p: "/" + "/".join(p))
vol_name = st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{1,20}", fullmatch=True)


@st.composite
def modes(draw, bind):
    words = []
    for table in (RW, LABEL, PROP if bind else [], CONSISTENCY):
        if table and draw(st.booleans()):
            words.append(draw(st.sampled_from(table)))
    if not bind and draw(st.booleans()):
        words.append("nocopy")
    return draw(st.permutations(words))


@settings(max_examples=300, deadline=None)
@given(source=abs_path, target=abs_path, words=modes(bind=True))
def test_bind_specs(source, target, words):
    mode = ",".join(words)
    raw = "%s:%s" % (source, target) + (":" + mode if mode else "")
    mp = parse_bind(raw)
    assert (mp.type, mp.source, mp.destination) == ("bind", os.path.normpath(source),
                                                     os.path.normpath(target))
    assert mp.mode == mode
    readonly = [w for w in words if w in RW and w != "rw"]
    assert mp.rw == (not readonly)
    prop = [w for w in words if w in PROP]
    assert mp.propagation == (prop[0] if prop else "rprivate")
    oci = mp.to_oci()
    assert oci["type"] == "bind" and oci["source"] == mp.source
    assert oci["options"][0] == "rbind"
    assert ("ro" in oci["options"]) == bool(readonly)
    assert ("rro" in oci["options"]) == (bool(readonly) and readonly != ["ro-non-recursive"])
    assert oci["options"][-1] == mp.propagation
    assert mp.inspect() == {"Type": "bind", "Source": mp.source, "Destination": mp.destination,
                            "Mode": mode, "RW": mp.rw, "Propagation": mp.propagation}


@settings(max_examples=300, deadline=None)
@given(name=vol_name, target=abs_path, words=modes(bind=False), anonymous=st.booleans())
def test_volume_specs(name, target, words, anonymous):
    mode = ",".join(words)
    if anonymous:
        raw = target
        if mode:
            return
    else:
        raw = "%s:%s" % (name, target) + (":" + mode if mode else "")
    mp = parse_bind(raw)
    assert mp.type == "volume"
    assert mp.name == ("" if anonymous else name)
    assert mp.copy_data == ("nocopy" not in words)
    assert mp.mode == (mode or "z")
    assert mp.propagation == ""
    assert mp.to_oci()["options"][-1] in ("rbind", "ro", "rro")


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from("/:,abrowzZ.\0\n -"), max_size=30))
def test_any_text_is_a_mount_or_one_line_error(raw):
    try:
        mp = parse_bind(raw)
    except InvalidArgument as e:
        assert "\n" not in str(e) and "\0" not in str(e) and str(e)
        return
    assert mp.destination.startswith("/") and mp.destination != "/"
    assert "\0" not in mp.source + mp.destination + mp.name


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                        st.sampled_from(["Type", "Source", "Target", "ReadOnly", "BindOptions",
                                         "VolumeOptions", "TmpfsOptions", "Propagation",
                                         "SizeBytes", "Mode", "Options", "NoCopy", "x"]),
                        inner, max_size=5), max_leaves=12))
def test_any_mount_object_is_a_mount_or_one_line_error(obj):
    try:
        parse_mount(obj)
    except InvalidArgument as e:
        assert "\n" not in str(e) and str(e)


@pytest.mark.parametrize("raw, message", [
    ("", "invalid volume specification: ''"),
    (":/x", "invalid volume specification: ':/x'"),
    ("/x:rw", "invalid volume specification: '/x:rw'"),
    ("/a:/b:ro:x", "invalid volume specification: '/a:/b:ro:x'"),
    ("/a:/b:rx", "invalid mode: rx"),
    ("/a:/b:ro,rw", "invalid mode: ro,rw"),
    ("/a:/b:z,Z", "invalid mode: z,Z"),
    ("/a:/b:shared,slave", "invalid mode: shared,slave"),
    ("/a:/", "invalid volume specification: '/a:/': invalid mount config for type \"bind\": "
             "invalid specification: destination can't be '/'"),
    ("/a:/b/..", "destination can't be '/'"),
    ("/a:rel", "invalid volume specification: '/a:rel': invalid mount config for type "
               "\"bind\": invalid mount path: 'rel' mount path must be absolute"),
    ("v:rel", "invalid mount path: 'rel' mount path must be absolute"),
    ("rel", "invalid mount path: 'rel' mount path must be absolute"),
    ("/a:/b:nocopy", "field VolumeOptions must not be specified"),
    ("v:/b:rslave", "invalid mount config for type \"volume\": field BindOptions must not be "
                    "specified"),
    ("/a\0:/b", "contains a NUL byte"),
])
def test_bind_errors_are_dockers(raw, message):
    with pytest.raises(InvalidArgument) as e:
        parse_bind(raw)
    assert message in str(e.value)


def test_mount_objects(tmp_path):
    mp = parse_mount({"Type": "bind", "Source": str(tmp_path), "Target": "/x",
                      "ReadOnly": True, "BindOptions": {"Propagation": "rslave",
                                                        "NonRecursive": True}})
    assert mp.to_oci() == {"destination": "/x", "type": "bind", "source": str(tmp_path),
                           "options": ["bind", "ro", "rro", "rslave"]}
    mp = parse_mount({"Type": "volume", "Source": "v1", "Target": "/v",
                      "VolumeOptions": {"NoCopy": True}})
    assert (mp.name, mp.copy_data, mp.mode) == ("v1", False, "z")
    mp = parse_mount({"Type": "tmpfs", "Target": "/t", "ReadOnly": True,
                      "TmpfsOptions": {"SizeBytes": 3 << 20, "Mode": 0o700,
                                       "Options": [["exec"]]}})
    assert mp.to_oci()["options"] == ["nosuid", "nodev", "rprivate", "ro", "mode=700",
                                      "size=3m", "exec"]
    assert parse_mount({"Type": "tmpfs", "Target": "/t",
                        "TmpfsOptions": {"SizeBytes": 1000}}).to_oci()["options"][-1] == \
        "size=1000"


@pytest.mark.parametrize("spec, message", [
    ({"Type": "bind", "Source": "/no/such/path", "Target": "/x"},
     'invalid mount config for type "bind": bind mount source path does not exist: '
     '/no/such/path'),
    ({"Type": "bind", "Target": "/x"}, "field Source must not be empty"),
    ({"Type": "bind", "Source": "rel", "Target": "/x"},
     "invalid mount path: 'rel' mount path must be absolute"),
    ({"Type": "bind", "Source": "/", "Target": "/x", "BindOptions": {"Propagation": "up"}},
     "invalid propagation mode: up"),
    ({"Type": "bind", "Source": "/", "Target": "/x", "VolumeOptions": {}},
     "field VolumeOptions must not be specified"),
    ({"Type": "volume", "Target": "/x", "ReadOnly": True},
     "must not set ReadOnly mode when using anonymous volumes"),
    ({"Type": "volume", "Source": "v", "Target": "/x", "BindOptions": {}},
     "field BindOptions must not be specified"),
    ({"Type": "tmpfs", "Source": "x", "Target": "/x"}, "field Source must not be specified"),
    ({"Type": "tmpfs", "Target": "/x", "TmpfsOptions": {"Options": [["suid"]]}},
     "invalid option: suid"),
    ({"Type": "tmpfs", "Target": "/x", "TmpfsOptions": {"SizeBytes": -1}}, "negative"),
    ({"Type": "npipe", "Target": "/x"}, 'invalid mount config for type "npipe": mount type '
                                        'unknown'),
    ({"Type": "bind", "Source": "/", "Target": ""}, "field Target must not be empty"),
    ({"Type": "volume", "Source": "v", "Target": "rel"}, "mount path must be absolute"),
    ({"Type": "volume", "Target": "/x", "VolumeOptions": {"Subpath": "a"}}, "Subpath"),
    ({"Type": "volume", "Target": "/x", "Bogus": 1}, "unknown field Bogus"),
    ({"Type": "bind", "Source": "/", "Target": "/x", "ReadOnly": "yes"}, "wrong type"),
])
def test_mount_errors(spec, message):
    with pytest.raises(InvalidArgument) as e:
        parse_mount(spec)
    assert message in str(e.value)


def test_tmpfs_merge():
    assert merge_tmpfs_options(["noexec", "nosuid", "nodev", "rprivate", "exec", "size=1m",
                                "size=2m", "rshared", "defaults"]) == \
        ["nosuid", "nodev", "exec", "size=2m", "rshared"]
    with pytest.raises(InvalidArgument) as e:
        merge_tmpfs_options(["bogus"])
    assert str(e.value) == 'invalid tmpfs option ["bogus"]'
    with pytest.raises(InvalidArgument):
        merge_tmpfs_options(["x=1"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev",
                                 "shared", "rprivate", "size=1m", "size=2k", "mode=700",
                                 "uid=1", "defaults"]), max_size=10))
def test_tmpfs_merge_last_wins(words):
    merged = merge_tmpfs_options(words)
    groups = [{"ro", "rw"}, {"exec", "noexec"}, {"suid", "nosuid"}, {"dev", "nodev"},
              {"shared", "rprivate"}, {"size=1m", "size=2k"}, {"mode=700"}, {"uid=1"}]
    for group in groups:
        present = [w for w in words if w in group]
        chosen = [w for w in merged if w in group]
        assert chosen == present[-1:]
    assert "defaults" not in merged
    assert merged == [w for w in merged if w in words]


def test_duplicates_and_covering():
    for hc in ({"Binds": ["/a:/x", "v:/x/"]},
               {"Binds": ["/a:/x"], "Mounts": [{"Type": "tmpfs", "Target": "/x"}]},
               {"Binds": ["/a:/x"], "Tmpfs": {"/x": ""}},
               {"Mounts": [{"Type": "tmpfs", "Target": "/x"}, {"Type": "volume",
                                                               "Target": "/x"}]}):
        with pytest.raises(InvalidArgument) as e:
            parse_mounts(hc)
        assert str(e.value) == "Duplicate mount point: /x"
    points = parse_mounts({"Binds": ["/h:/data"], "Tmpfs": {"/run": ""}},
                          {"/data": {}, "/run": {}, "/other/": {}})
    # the Tmpfs map covers /run but is no mount point (the spec builder adds it, as docker)
    assert [(p.type, p.destination) for p in points] == [("bind", "/data"), ("volume", "/other")]
    with pytest.raises(InvalidArgument) as e:
        parse_mounts({}, {"relative": {}})
    assert "mount path must be absolute" in str(e.value)
    with pytest.raises(InvalidArgument):
        parse_mounts({"Tmpfs": {"run": ""}})
    with pytest.raises(InvalidArgument) as e:
        parse_mounts({"Tmpfs": {"/run": "size=1m,bogus"}})
    assert str(e.value) == 'invalid tmpfs option ["bogus"]'
    with pytest.raises(InvalidArgument):
        parse_mounts({"Tmpfs": {"/": ""}})


def test_parents_before_children():
    points = parse_mounts({"Binds": ["/h:/a/b/c", "/h:/a", "/h:/a/b"]})
    assert [p.destination for p in points] == ["/a", "/a/b", "/a/b/c"]


def test_resolve_rolls_back_on_error(volumes):
    volumes.create("existing")
    with pytest.raises(InvalidArgument) as e:
        resolve_mounts({"Binds": ["existing:/a", "fresh:/b", "bad name:/c"]}, {"/d": {}},
                       container_id=CID, volumes=volumes)
    assert str(e.value).startswith('create bad name: "bad name" includes invalid characters')
    assert [v["Name"] for v in volumes.list()["Volumes"]] == ["existing"]
    assert volumes.references("existing") == []
    assert sorted(os.listdir(volumes.root)) == [".meta", ".trash", "existing"]


def test_resolve_volume_options_and_record_roundtrip(volumes):
    points = resolve_mounts(
        {"Mounts": [{"Type": "volume", "Source": "lab", "Target": "/l",
                     "VolumeOptions": {"Labels": {"k": "v"}, "DriverConfig": {
                         "Name": "local", "Options": {"type": "tmpfs", "device": "tmpfs"}}}}]},
        None, container_id=CID, volumes=volumes)
    v = volumes.inspect("lab")
    assert v["Labels"] == {"k": "v"} and v["Options"] == {"type": "tmpfs", "device": "tmpfs"}
    assert volumes.references("lab") == [CID]
    back = [MountPoint.from_dict(json.loads(json.dumps(p.to_dict()))) for p in points]
    assert [b.to_dict() for b in back] == [p.to_dict() for p in points]
    assert back[0].inspect() == {"Type": "volume", "Name": "lab", "Source": v["Mountpoint"],
                                 "Destination": "/l", "Driver": "local", "Mode": "z",
                                 "RW": True, "Propagation": ""}


def test_volumes_from_and_bad_host_config():
    with pytest.raises(InvalidArgument):
        parse_mounts({"VolumesFrom": ["other"]})
    for hc in ({"Binds": "/a:/b"}, {"Mounts": {"a": 1}}, {"Tmpfs": ["/x"]}, {"Binds": [1]}):
        with pytest.raises(InvalidArgument):
            parse_mounts(hc)


@pytest.mark.parametrize("hc", [
    {"Mounts": [{"Type": "volume", "Source": "../../etc", "Target": "/x"}]},
    {"Mounts": [{"Type": "volume", "Source": "a/../../b", "Target": "/x"}]},
    {"Binds": ["..:/x"]},
    {"Binds": ["../x:/x"]},
    {"Binds": ["./x:/x"]},
])
def test_volume_names_that_climb_are_refused(volumes, hc):
    with pytest.raises(InvalidArgument) as e:
        resolve_mounts(hc, None, container_id=CID, volumes=volumes)
    assert "includes invalid characters for a local volume name" in str(e.value)
    assert sorted(os.listdir(volumes.root)) == [".meta", ".trash"]


def test_binds_of_the_engine_root_are_rslave(volumes, tmp_path):
    engine = os.path.dirname(volumes.root)
    inside = os.path.join(engine, "containers")
    os.makedirs(inside)
    points = resolve_mounts(
        {"Binds": ["%s:/a" % engine, "/:/b", "%s:/c:rshared" % inside, "%s:/d" % (tmp_path /
                                                                            "elsewhere")],
         "Mounts": [{"Type": "bind", "Source": inside, "Target": "/e"}]},
        None, container_id=CID, volumes=volumes)
    assert {p.destination: p.propagation for p in points} == {
        "/a": "rslave", "/b": "rslave", "/c": "rshared", "/d": "rprivate", "/e": "rslave"}
    for hc in ({"Binds": ["%s:/a:rprivate" % inside]},
               {"Mounts": [{"Type": "bind", "Source": engine, "Target": "/a",
                            "BindOptions": {"Propagation": "private"}}]}):
        with pytest.raises(InvalidArgument) as e:
            resolve_mounts(hc, None, container_id=CID, volumes=volumes)
        assert str(e.value).startswith('invalid mount config: must use either propagation mode '
                                       '"rslave" or "rshared" when mount source is within the '
                                       'daemon root')
    # a sibling whose name only starts like the root is not inside it
    assert parse_bind("%s2:/x" % engine, engine_root=engine).propagation == "rprivate"
