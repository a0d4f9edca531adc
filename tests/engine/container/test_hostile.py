"""Bad input and failed starts: one clear error of the right category, nothing left behind."""
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pyrunc import errors
from pyrunc.engine.container import names


DOCKER_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
       | st.from_regex(DOCKER_NAME, fullmatch=True))
def test_name_rule_is_dockers_regex(name):
    assert names.valid_name(name) == bool(DOCKER_NAME.fullmatch(name))


def test_random_names_are_valid_and_adjective_surname():
    for retry in (0, 1):
        name = names.random_name(retry)
        assert names.valid_name(name)
        adjective, surname = name.split("_", 1)
        assert adjective in names.ADJECTIVES
        assert surname.rstrip("0123456789") in names.SURNAMES


def _snapshot_keys(engine):
    return {i.name for i in engine.images.snapshotter.walk()}


def _container_dirs(engine):
    return {n for n in os.listdir(engine.containers.store.root) if len(n) == 64}


def _volume_names(engine):
    return {v["Name"] for v in engine.volumes.list()["Volumes"]}


@pytest.fixture
def nothing_left(engine):
    """Asserts at the end that the test left no container, snapshot, name or volume."""
    before = (_container_dirs(engine), _snapshot_keys(engine), _volume_names(engine))
    yield
    after = (_container_dirs(engine), _snapshot_keys(engine), _volume_names(engine))
    assert after == before


@pytest.mark.parametrize("name", ["", "/", "a", "-x", ".x", "_x", "x y", "x/y", "x:y", "é1",
                                  "x\0y", "x" * 3 + "\n"])
def test_invalid_names(engine, nothing_left, name):
    if name == "":
        return          # empty means "make one up", as docker's API does
    with pytest.raises(errors.InvalidArgument) as e:
        engine.containers.create({"Image": "busybox", "Cmd": ["true"]}, name=name)
    assert str(e.value) == ("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are "
                            "allowed" % name)


def test_name_in_use(engine):
    cs = engine.containers
    first = cs.create({"Image": "busybox", "Cmd": ["true"]}, name="dup")["Id"]
    dirs, snaps = _container_dirs(engine), _snapshot_keys(engine)
    for name in ("dup", "/dup"):
        with pytest.raises(errors.Conflict) as e:
            cs.create({"Image": "busybox", "Cmd": ["true"]}, name=name)
        assert str(e.value) == (
            'Conflict. The container name "/dup" is already in use by container "%s". You '
            'have to remove (or rename) that container to be able to reuse that name.' % first)
    assert (_container_dirs(engine), _snapshot_keys(engine)) == (dirs, snaps)
    second = cs.create({"Image": "busybox", "Cmd": ["true"]}, name="other")["Id"]
    with pytest.raises(errors.Conflict, match='"/dup" is already in use'):
        cs.rename(second, "dup")
    cs.remove(first)
    cs.rename(second, "dup")
    assert cs.inspect("dup")["Id"] == second
    assert cs.inspect("/dup")["Name"] == "/dup"
    with pytest.raises(errors.NotFound, match="No such container: other"):
        cs.inspect("other")


@pytest.mark.parametrize("ref", ["nosuchimage", "busybox:nosuchtag", "library/none:1",
                                 "sha256:" + "0" * 64])
def test_unknown_image(engine, nothing_left, ref):
    with pytest.raises(errors.NotFound) as e:
        engine.containers.create({"Image": ref, "Cmd": ["true"]}, name="never")
    assert str(e.value) == "No such image: %s" % ref
    assert engine.containers.store.name_owner("/never") is None


@pytest.mark.parametrize("ref", ["UPPER:case", "bad ref", "x@sha256:zz", ":", "a" * 300 + "/",
                                 "\0"])
def test_bad_image_reference(engine, nothing_left, ref):
    with pytest.raises((errors.InvalidArgument, errors.NotFound)):
        engine.containers.create({"Image": ref, "Cmd": ["true"]})


@pytest.mark.parametrize("config, host_config", [
    ("not a dict", None),
    ({"Cmd": ["true"]}, None),
    ({"Image": "busybox", "Cmd": ["true"]}, {"Runtime": "no-such-runtime"}),
    ({"Image": "busybox", "Cmd": ["true"]}, {"Runtime": "../../bin/sh"}),
    ({"Image": "busybox", "Cmd": ["true"]}, {"RestartPolicy": {"Name": "sometimes"}}),
    ({"Image": "busybox", "Cmd": ["true"]}, {"RestartPolicy": {"Name": "always",
                                                               "MaximumRetryCount": 3}}),
    ({"Image": "busybox", "Cmd": ["true"]}, {"AutoRemove": True,
                                             "RestartPolicy": {"Name": "always"}}),
    ({"Image": "busybox", "Cmd": ["true"]}, {"Memory": "lots"}),
    ({"Image": "busybox", "Cmd": ["true"]}, {"LogConfig": {"Type": "syslog"}}),
    ({"Image": "busybox", "Cmd": ["true"]}, {"Binds": ["/tmp:not-absolute"]}),
    ({"Image": "busybox", "Cmd": ["true"]}, {"ExtraHosts": ["no-address"]}),
    ({"Image": "busybox", "Cmd": ["true"]}, "not a dict"),
])
def test_bad_options_leave_nothing(engine, nothing_left, config, host_config):
    with pytest.raises(errors.InvalidArgument):
        engine.containers.create(config, host_config, name="never")
    assert engine.containers.store.name_owner("/never") is None


@pytest.mark.parametrize("ref", ["", "nope", "/nope", "0" * 64, "zz", "../x", "\0", "a" * 5000])
def test_unknown_container_refs(engine, ref):
    cs = engine.containers
    for op in (cs.inspect, cs.start, cs.remove, cs.pause, cs.top, cs.get):
        with pytest.raises(errors.NotFound) as e:
            op(ref)
        assert str(e.value) == "No such container: %s" % ref


def test_ambiguous_prefix(engine):
    cs = engine.containers
    ids = [cs.create({"Image": "busybox", "Cmd": ["true"]})["Id"] for _ in range(20)]
    by_first = {}
    for cid in ids:
        by_first.setdefault(cid[0], []).append(cid)
    shared = next(p for p, group in by_first.items() if len(group) > 1)
    with pytest.raises(errors.InvalidArgument, match="multiple IDs found with provided prefix"):
        cs.inspect(shared)
    for cid in ids:
        assert cs.inspect(cid[:12])["Id"] == cid


@pytest.mark.parametrize("cmd, code, reason", [
    (["nosuchcmd"], 127, "executable file not found in $PATH"),
    (["/nonexistent"], 127, "no such file or directory"),
    (["/etc/passwd"], 126, "permission denied"),
])
def test_process_that_cannot_start(engine, runtime, leftovers, cmd, code, reason):
    cs = engine.containers
    cid = cs.create({"Image": "busybox", "Cmd": cmd}, {"Runtime": runtime})["Id"]
    with pytest.raises(errors.InvalidArgument) as e:
        cs.start(cid)
    assert reason in str(e.value) and cmd[0] in str(e.value)
    st = cs.inspect(cid)["State"]
    assert (st["Status"], st["ExitCode"], st["Running"]) == ("created", code, False)
    assert reason in st["Error"]
    # no mount, no cgroup, no task; the container and its snapshot stay until removed
    assert [x for x in leftovers(engine, cid)
            if not x.startswith(("snapshot", "dir"))] == []
    cs.remove(cid)
    assert leftovers(engine, cid) == []


def test_create_killed_part_way_is_cleaned_by_the_next_engine(engine):
    """A create that died after reserving its name and snapshot (no record written)."""
    from pyrunc.engine import Engine
    store = engine.containers.store
    cid = store.new_id()
    os.mkdir(os.path.join(store.root, cid))
    store.reserve_name("/half-made", cid)
    engine.images.prepare_rootfs(cid, "busybox")
    with pytest.raises(errors.NotFound):
        engine.containers.inspect("half-made")
    Engine(engine.root)
    assert cid not in _container_dirs(engine)
    assert cid not in _snapshot_keys(engine)
    assert store.name_owner("/half-made") is None
    engine.containers.create({"Image": "busybox", "Cmd": ["true"]}, name="half-made")


def test_remove_killed_part_way_is_finished_by_the_next_engine(engine, runtime, leftovers):
    """A removal that died after marking the container "removing" (its task killed, nothing
    else done yet) is shown as such, and finished when the next Engine opens the root."""
    from pyrunc.engine import Engine
    cs = engine.containers
    cid = cs.create({"Image": "busybox", "Cmd": ["sleep", "60"]}, {"Runtime": runtime},
                    name="half-removed")["Id"]
    cs.start(cid)
    c = cs.get(cid)
    with c.lock():
        c.task().delete(force=True)
        c.state["Status"] = "removing"
        c.save_state()
    summary = cs.list(all=True, filters={"name": ["half-removed"]})[0]
    assert (summary["State"], summary["Status"]) == ("removing", "Removal In Progress")
    Engine(engine.root)
    assert leftovers(engine, cid) == []
    assert engine.containers.store.name_owner("/half-removed") is None


host_config_keys = st.sampled_from(sorted(__import__(
    "pyrunc.engine.container.view", fromlist=["x"]).HOST_CONFIG_DEFAULTS) + ["Bogus"])
# the keys the container service itself reads (the spec builder checks the rest at start)
host_config_keys = host_config_keys | st.sampled_from(
    ["Dns", "DnsSearch", "DnsOptions", "ExtraHosts", "LogConfig", "RestartPolicy", "Runtime",
     "Binds", "Mounts", "Tmpfs", "PidsLimit", "NetworkMode", "AutoRemove"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=6),
    lambda children: st.lists(children, max_size=2)
    | st.dictionaries(st.text(max_size=6), children, max_size=2), max_leaves=5)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(host_config_keys, json_values, max_size=4),
       st.dictionaries(st.sampled_from(["Env", "Cmd", "User", "Labels", "WorkingDir",
                                        "Entrypoint", "Volumes", "Hostname", "Domainname",
                                        "StopSignal", "Tty", "ExposedPorts"]),
                       json_values, max_size=3))
def test_arbitrary_create_requests(engine, host_config, config):
    """Whatever a client sends, create either makes a container or refuses with one of the
    project's errors, leaving nothing (the engine is the same for every example: each one
    removes what it made)."""
    before = (_container_dirs(engine), _snapshot_keys(engine))
    try:
        cid = engine.containers.create(dict(config, Image="busybox"), host_config)["Id"]
    except errors.PyruncError:
        assert (_container_dirs(engine), _snapshot_keys(engine)) == before
        return
    engine.containers.remove(cid, volumes=True)
    assert (_container_dirs(engine), _snapshot_keys(engine)) == before


@pytest.mark.parametrize("config", [{"Hostname": "a\nb"}, {"Hostname": "../../etc"},
                                    {"Hostname": "-x"}, {"Hostname": "x" * 65},
                                    {"Hostname": [1]}, {"Domainname": 3},
                                    {"Domainname": "bad domain"}])
def test_bad_hostnames(engine, nothing_left, config):
    with pytest.raises(errors.InvalidArgument):
        engine.containers.create(dict(config, Image="busybox", Cmd=["true"]))


@pytest.mark.parametrize("key", ["Dns", "DnsSearch", "DnsOptions", "ExtraHosts"])
def test_dns_options_must_be_lists(engine, nothing_left, key):
    for value in ("1.1.1.1", [1]):
        with pytest.raises(errors.InvalidArgument, match="must be a list of strings"):
            engine.containers.create({"Image": "busybox", "Cmd": ["true"]}, {key: value})


def test_bad_call_arguments(engine):
    cs = engine.containers
    cid = cs.create({"Image": "busybox", "Cmd": ["sleep", "60"]})["Id"]
    cs.start(cid)
    for call in (lambda: cs.list(limit="3"), lambda: cs.stop(cid, timeout="1"),
                 lambda: cs.wait(cid, timeout="soon"), lambda: cs.wait(cid, timeout=-1),
                 lambda: cs.update(cid, {"PidsLimit": "x"}), lambda: cs.update(cid, "x"),
                 lambda: cs.rename(cid, "bad name"), lambda: cs.top(cid, "-o pid\0x"),
                 lambda: cs.exec_create(cid, {"Cmd": "true"}),
                 lambda: cs.exec_create(cid, {"Cmd": ["true"], "Env": ["NOEQUALS"]})):
        with pytest.raises(errors.InvalidArgument):
            call()
    assert cs.inspect(cid)["State"]["Running"]
