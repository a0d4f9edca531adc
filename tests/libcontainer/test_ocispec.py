"""The config model: attribute mapping, absent values, and one-line errors naming the path."""
import copy
import keyword
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc import errors
from pyrunc.containerd.runtime import spec as runtime_spec
from pyrunc.libcontainer import ocispec
from pyrunc.libcontainer.ocispec import fields


def full_doc():
    """The example spec with one value in most sections the model knows."""
    doc = runtime_spec.example_spec(args=["sh", "-c", "true"])
    doc["ociVersion"] = "1.2.0"
    doc["process"]["user"].update({"umask": 18, "additionalGids": [5, 6], "username": "root"})
    doc["process"]["consoleSize"] = {"height": 24, "width": 80}
    doc["process"]["oomScoreAdj"] = -500
    doc["process"]["scheduler"] = {"policy": "SCHED_OTHER", "nice": 5}
    doc["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 4}
    doc["process"]["execCPUAffinity"] = {"initial": "0", "final": "0-1"}
    doc["hooks"] = {"createRuntime": [{"path": "/bin/true", "args": ["true"], "timeout": 5}],
                    "poststop": [{"path": "/bin/false"}]}
    doc["annotations"] = {"org.example": "x"}
    doc["domainname"] = "example.org"
    linux = doc["linux"]
    linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    linux["timeOffsets"] = {"monotonic": {"secs": 10, "nanosecs": 5}}
    linux["sysctl"] = {"net.ipv4.ip_forward": "1"}
    linux["rootfsPropagation"] = "slave"
    linux["cgroupsPath"] = "/pyrunc/test"
    linux["devices"] = [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229,
                         "fileMode": 0o666, "uid": 0, "gid": 0}]
    linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                      "errnoRet": 1}]}
    linux["personality"] = {"domain": "LINUX"}
    linux["intelRdt"] = {"closID": "x"}
    linux["netDevices"] = {"eth1": {"name": "ctr1"}}
    linux["resources"]["memory"] = {"limit": 1 << 30, "swappiness": 10}
    linux["resources"]["pids"] = {"limit": 100}
    return doc


def test_every_key_is_a_snake_case_attribute():
    spec = ocispec.from_dict(full_doc())
    assert spec.oci_version == "1.2.0"
    assert spec.root.path == "rootfs" and spec.root.readonly is True
    assert spec.mounts[0].destination == "/proc" and spec.mounts[0].type == "proc"
    assert spec.mounts[1].options[0] == "nosuid"
    p = spec.process
    assert p.args == ["sh", "-c", "true"] and p.cwd == "/" and p.terminal is True
    assert p.user.uid == 0 and p.user.umask == 18 and p.user.additional_gids == [5, 6]
    assert p.console_size.height == 24
    assert p.capabilities.bounding == runtime_spec.DEFAULT_CAPS
    assert p.capabilities.inheritable == []
    assert p.rlimits[0].type == "RLIMIT_NOFILE" and p.rlimits[0].soft == 1024
    assert p.no_new_privileges is True and p.oom_score_adj == -500
    assert p.scheduler.policy == "SCHED_OTHER" and p.scheduler.nice == 5
    assert p.io_priority.class_ == "IOPRIO_CLASS_BE" and p.io_priority.priority == 4
    assert p.exec_cpu_affinity.final == "0-1"
    assert spec.hooks.create_runtime[0].path == "/bin/true"
    assert spec.hooks.create_runtime[0].timeout == 5
    assert spec.hooks.poststop[0].args == [] and spec.hooks.prestart == []
    assert spec.annotations == {"org.example": "x"}
    linux = spec.linux
    assert linux.uid_mappings[0].container_id == 0 and linux.uid_mappings[0].host_id == 100000
    assert linux.gid_mappings[0].size == 65536
    assert linux.time_offsets["monotonic"].secs == 10
    assert linux.sysctl == {"net.ipv4.ip_forward": "1"}
    assert linux.rootfs_propagation == "slave"
    assert linux.cgroups_path == "/pyrunc/test"
    assert [n.type for n in linux.namespaces] == ["pid", "network", "ipc", "uts", "mount"]
    assert linux.namespaces[0].path is None
    assert linux.devices[0].file_mode == 0o666 and linux.devices[0].major == 10
    assert linux.masked_paths[0] == "/proc/acpi" and "/proc/sys" in linux.readonly_paths
    assert linux.net_devices["eth1"].name == "ctr1"


def test_raw_sections_stay_dicts_and_raw_is_the_document():
    doc = full_doc()
    spec = ocispec.from_dict(doc)
    assert spec.raw is doc
    assert spec.linux.resources is doc["linux"]["resources"]
    assert spec.linux.seccomp["syscalls"][0]["names"] == ["mkdir"]
    assert spec.linux.personality == {"domain": "LINUX"}
    assert spec.linux.intel_rdt == {"closID": "x"}


def test_absent_values():
    spec = ocispec.from_dict({"ociVersion": "1.0.0"})
    assert spec.root is None and spec.process is None and spec.linux is None
    assert spec.hooks is None and spec.hostname is None
    assert spec.mounts == [] and spec.annotations == {}
    spec = ocispec.from_dict({"ociVersion": "1.0.0", "process": {"cwd": "/", "args": ["x"],
                                                                 "user": {"uid": 1, "gid": 2}},
                              "linux": {}})
    assert spec.process.terminal is False and spec.process.env == []
    assert spec.process.user.additional_gids == [] and spec.process.user.umask is None
    assert spec.process.capabilities is None and spec.process.oom_score_adj is None
    assert spec.linux.resources is None and spec.linux.seccomp is None
    assert spec.linux.sysctl == {} and spec.linux.namespaces == []


@pytest.mark.parametrize("version", ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.0", "1.0.0-rc5",
                                     "0.5.0", "anything"])
def test_oci_versions_runc_accepts(version):
    # runc 1.1 reads ociVersion as an opaque string and never compares it.
    assert ocispec.from_dict(dict(full_doc(), ociVersion=version)).oci_version == version


def _error(doc):
    with pytest.raises(errors.InvalidArgument) as e:
        ocispec.from_dict(doc)
    assert "\n" not in str(e.value)
    assert not ocispec.validate_schema(doc) == []
    return str(e.value)


@pytest.mark.parametrize("change, message", [
    (lambda d: d["process"].update(args=[]),
     "config.json: process.args: must be a non-empty array"),
    (lambda d: d["process"].pop("args"), "config.json: process.args: is required"),
    (lambda d: d["process"].update(cwd="tmp"), 'config.json: process.cwd: "tmp" does not match ^/'),
    (lambda d: d["process"]["user"].update(uid=-1),
     "config.json: process.user.uid: must be an integer from 0 to 4294967295"),
    (lambda d: d["process"]["user"].update(uid=True),
     "config.json: process.user.uid: must be an integer"),
    (lambda d: d["process"]["user"].update(additionalGids=[1, "2"]),
     "config.json: process.user.additionalGids[1]: must be an integer"),
    (lambda d: d.pop("ociVersion"), "config.json: ociVersion: is required"),
    (lambda d: d.update(mounts={}), "config.json: mounts: must be an array"),
    (lambda d: d["mounts"][2].pop("destination"),
     "config.json: mounts[2].destination: is required"),
    (lambda d: d["linux"]["namespaces"].append({"type": "pidx"}),
     'config.json: linux.namespaces[5].type: "pidx" is not one of pid, network, mount, ipc, uts, '
     'user, cgroup, time'),
    (lambda d: d["linux"]["sysctl"].update({"net.core.somaxconn": 5}),
     'config.json: linux.sysctl["net.core.somaxconn"]: must be a string'),
    (lambda d: d["linux"]["resources"]["memory"].update(limit="1G"),
     "config.json: linux.resources.memory.limit: must be an integer"),
    (lambda d: d["linux"]["seccomp"]["syscalls"][0].update(action="SCMP_ACT_NOPE"),
     'config.json: linux.seccomp.syscalls[0].action: "SCMP_ACT_NOPE" is not one of'),
    (lambda d: d["hooks"]["createRuntime"][0].update(timeout=0),
     "config.json: hooks.createRuntime[0].timeout: must be an integer from 1 to"),
    (lambda d: d["root"].update(readonly="yes"), "config.json: root.readonly: must be a boolean"),
    (lambda d: d.update(linux=None), "config.json: linux: must be an object"),
])
def test_errors_name_file_path_and_reason(change, message):
    doc = full_doc()
    change(doc)
    assert _error(doc).startswith(message)


def test_top_level_must_be_an_object():
    assert _error([]) == "config.json: must be an object"


def test_integral_floats_count_as_integers():
    doc = full_doc()
    doc["process"]["user"]["uid"] = 7.0
    spec = ocispec.from_dict(doc)
    assert spec.process.user.uid == 7 and type(spec.process.user.uid) is int
    assert ocispec.validate_schema(doc) == []
    doc["process"]["user"]["uid"] = 7.5
    assert _error(doc) == "config.json: process.user.uid: must be an integer"


def test_integral_floats_in_raw_sections_become_ints():
    doc = full_doc()
    doc["linux"]["seccomp"]["syscalls"][0]["errnoRet"] = 1.0
    doc["linux"]["resources"]["pids"]["limit"] = 100.0
    spec = ocispec.from_dict(doc)
    assert type(spec.linux.seccomp["syscalls"][0]["errnoRet"]) is int
    assert spec.linux.resources["pids"] == {"limit": 100}
    assert type(spec.linux.resources["pids"]["limit"]) is int
    assert spec.linux.resources["memory"] is doc["linux"]["resources"]["memory"]


def test_unknown_keys_are_ignored():
    doc = full_doc()
    doc["windows"] = {"layerFolders": []}
    doc["process"]["x-extension"] = 1
    assert ocispec.from_dict(doc).process.args == ["sh", "-c", "true"]
    assert ocispec.validate_schema(doc) == []


def test_load_reads_the_bundle(tmp_path):
    runtime_spec.write_spec(str(tmp_path), full_doc())
    spec = ocispec.load(str(tmp_path))
    assert spec.process.args == ["sh", "-c", "true"] and spec.raw == full_doc()


def test_load_without_config_is_not_found(tmp_path):
    with pytest.raises(errors.NotFound) as e:
        ocispec.load(str(tmp_path))
    assert str(e.value) == "config.json: not found in bundle %s" % tmp_path


@pytest.mark.parametrize("text, message", [
    ('{\n  "ociVersion": "1.0.0",\n    x\n}', "config.json: invalid JSON at line 3 column 5: "),
    ('', "config.json: invalid JSON at line 1 column 1: Expecting value"),
    ('{"ociVersion": "1", "process": {"oomScoreAdj": NaN}}',
     "config.json: invalid JSON: NaN is not a JSON number"),
    (b'{"ociVersion": "\xff"}', "config.json: invalid JSON: not UTF-8 text"),
    ("[" * 100000 + "]" * 100000, "config.json: invalid JSON: nested too deeply"),
])
def test_invalid_json(tmp_path, text, message):
    path = tmp_path / "config.json"
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    with pytest.raises(errors.InvalidArgument) as e:
        ocispec.load(str(tmp_path))
    assert str(e.value).startswith(message)


def test_spec_equality_and_repr():
    a = ocispec.from_dict(full_doc())
    b = ocispec.from_dict(copy.deepcopy(full_doc()))
    assert a == b
    b.process.user.uid = 5
    assert a != b
    assert "uid=5" in repr(b.process.user)
    assert ocispec.User(uid=1, gid=2).additional_gids == []


def test_import_is_cheap_and_skips_jsonschema():
    code = ("import sys; from pyrunc.libcontainer import ocispec;"
            "from pyrunc.containerd.runtime.spec import example_spec;"
            "ocispec.from_dict(example_spec());"
            "bad = [m for m in ('jsonschema', 'requests', 'pyroute2', 'dataclasses',"
            " 'pyrunc._seccomp', 'pyrunc.libcontainer.seccomp') if m in sys.modules];"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("tool, args", [("runc", ["spec"]), ("runc", ["spec", "--rootless"]),
                                        ("crun", ["spec"]), ("crun", ["spec", "--rootless"])])
def test_peer_generated_specs_load_and_validate(tmp_path, tool, args):
    from support import need
    subprocess.run([need(tool)] + args, cwd=str(tmp_path), check=True)
    spec = ocispec.load(str(tmp_path))
    assert spec.process.args == ["sh"] and spec.root.path == "rootfs"
    assert ocispec.validate_schema(spec.raw) == []


@pytest.mark.peer
def test_umoci_unpacked_bundle_loads(tmp_path):
    from support import need
    umoci = need("umoci")
    layout = str(tmp_path / "layout")

    def run(*args):
        subprocess.run([umoci] + list(args), check=True, capture_output=True)
    run("init", "--layout", layout)
    run("new", "--image", layout + ":t")
    run("config", "--image", layout + ":t", "--config.env", "FOO=bar", "--config.user",
        "1000:1000", "--config.workingdir", "/srv", "--config.cmd", "sh")
    run("unpack", "--rootless", "--image", layout + ":t", str(tmp_path / "bundle"))
    spec = ocispec.load(str(tmp_path / "bundle"))
    assert (spec.process.user.uid, spec.process.user.gid) == (1000, 1000)
    assert spec.process.cwd == "/srv" and "FOO=bar" in spec.process.env
    assert ocispec.validate_schema(spec.raw) == []


def test_check_command(tmp_path):
    def check():
        return subprocess.run([sys.executable, "-m", "pyrunc.libcontainer.ocispec",
                               str(tmp_path)], capture_output=True, text=True)
    r = check()
    assert r.returncode == 3 and "config.json: not found in bundle" in r.stderr
    doc = full_doc()
    runtime_spec.write_spec(str(tmp_path), doc)
    r = check()
    assert (r.returncode, r.stdout) == (0, "config.json: valid (ociVersion 1.2.0)\n")
    doc["process"]["args"] = []
    doc["process"]["user"]["uid"] = -1
    runtime_spec.write_spec(str(tmp_path), doc)
    r = check()
    lines = r.stderr.splitlines()
    assert r.returncode == 2
    assert lines[0] == "config.json: process.args: must be a non-empty array"
    assert "config.json: process.args: [] should be non-empty" in lines
    assert any(line.startswith("config.json: process.user.uid: -1 is less than") for line in lines)
    (tmp_path / "config.json").write_text("{")
    r = check()
    assert r.returncode == 2 and r.stderr.startswith("config.json: invalid JSON at line 1")


def patterned_kinds():
    """(model, key, Str kind) for every string field with a pattern."""
    out, todo = [], [ocispec.Spec]
    seen = set()
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for key, _attr, kind in model._table:
            while isinstance(kind, (fields.Array, fields.Map)):
                kind = kind.item if isinstance(kind, fields.Array) else kind.value
            if isinstance(kind, fields.Object):
                todo.append(kind.model)
            elif isinstance(kind, fields.Str) and kind.pattern:
                out.append((model.__name__, key, kind))
    return sorted(out, key=lambda t: t[:2])


PATTERNED = patterned_kinds()


def test_the_patterned_fields():
    assert [(m, k, kind.pattern) for m, k, kind in PATTERNED] == [
        ("DeviceRule", "access", "^[rwm]*$"), ("HugepageLimit", "pageSize", "^[1-9][0-9]*[KMG]B$"),
        ("Process", "cwd", "^/"), ("Rlimit", "type", "^RLIMIT_[A-Z]+$")]


def near(pattern):
    """Strings around ``pattern``'s: matches, matches with a character changed, inserted or
    removed, a newline or two at either end, and short texts of the characters that matter."""
    alphabet = "RLIMT_AZaz09158KMGBrwm/\n é\x00"

    @st.composite
    def edited(draw):
        text = draw(st.from_regex(pattern, fullmatch=True))
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 2))
        return text[:at] + draw(st.text(alphabet, max_size=2)) + text[at + cut:]

    return st.one_of(st.from_regex(pattern), st.from_regex(pattern, fullmatch=True),
                     edited(), st.text(alphabet, max_size=8),
                     st.tuples(st.sampled_from(["", "\n", "\n\n", "x"]),
                               st.from_regex(pattern, fullmatch=True),
                               st.sampled_from(["", "\n", "\n\n", "x", "\r"])).map("".join))


@pytest.mark.parametrize("model, key, kind", PATTERNED, ids=[m + "." + k for m, k, _ in PATTERNED])
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_pattern_predicates_are_the_regular_expressions(model, key, kind, data):
    """The loader's plain predicate accepts exactly what ``re.search(pattern)`` (jsonschema's
    check) accepts, ``$`` before a final newline included."""
    text = data.draw(near(kind.pattern))
    assert kind.matches(text) == (re.search(kind.pattern, text) is not None), text


def test_keywords_are_pythons():
    assert fields.KEYWORDS == frozenset(keyword.kwlist)
