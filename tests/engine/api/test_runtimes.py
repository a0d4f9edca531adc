"""Containers on the runtime they name: ``HostConfig.Runtime``, ``--add-runtime``, daemon.json's
``runtimes`` (with ``runtimeArgs``) and ``--default-runtime``, through the Engine library, the
docker CLI and the docker SDK against pydockerd.

The oracle is each runtime's own view: ``runc``/``crun`` ``--root ROOT state ID`` (run by the
test, not by pyrunc) shows the container under the state root of the runtime it was given, in
the status and with the pid docker reports; the log file a runtime opens only when the
configured runtimeArgs reach it proves the arguments are passed. runc and crun are each used as
an added runtime (``peer``); one that cannot run a container on this host is skipped, naming it.
"""
import argparse
import json
import os
import subprocess

import pytest
from hypothesis import given, settings, strategies as st

from pyrunc import errors
from pyrunc.engine import Engine, dockerd, runtimes
from support import need

pytestmark = [pytest.mark.usefixtures("private_mount_ns"), pytest.mark.peer]

UNKNOWN = "unknown or invalid runtime name: %s"
_PROBED = {}


@pytest.fixture(params=["runc", "crun"])
def peer(request, tmp_path_factory):
    """(name, path) of a peer runtime that can run a container here: skipped, naming the
    binary and its reason, when it is not installed or refuses this host (crun and hybrid
    cgroup hosts). Probed once per session by running a busybox bundle with it directly."""
    name = request.param
    binary = need(name)
    if name not in _PROBED:
        from pyrunc.engine.busybox import make_bundle
        work = tmp_path_factory.mktemp("probe-" + name)
        make_bundle(str(work / "bundle"), args=["true"])
        r = subprocess.run([binary, "--root", str(work / "state"), "run", "-b",
                            str(work / "bundle"), "probe-%d" % os.getpid()],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        _PROBED[name] = None if r.returncode == 0 else (
            r.stderr.strip() or "exit %d" % r.returncode)[-300:]
    if _PROBED[name]:
        pytest.skip("%s (%s) cannot run a container on this host: %s"
                    % (name, binary, _PROBED[name]))
    return name, binary


def runtime_state(binary, root, cid):
    """The runtime's own state of ``cid`` under ``root`` (None when it has no such
    container)."""
    r = subprocess.run([binary, "--root", root, "state", cid], capture_output=True, text=True,
                       timeout=30)
    return json.loads(r.stdout) if r.returncode == 0 else None


def runtime_ids(binary, root):
    """The IDs the runtime lists under ``root``."""
    if not os.path.isdir(root):
        return []
    r = subprocess.run([binary, "--root", root, "list", "--format", "json"],
                       capture_output=True, text=True, timeout=30, check=True)
    return [c["id"] for c in json.loads(r.stdout or "[]") or []]


# ---------------------------------------------------------------------------- the library

def test_engine_runs_each_container_on_its_runtime(engine_root, exec_root, tmp_path, peer,
                                                   leftovers):
    name, binary = peer
    runc = need("runc")
    log = str(tmp_path / "runtime.log")
    added = "added-" + name
    # the library may say where a stock runtime is (a daemon may not redefine it)
    eng = Engine(engine_root, exec_root=exec_root, runtimes={
        "runc": runc, name + "-plain": binary,
        added: {"path": binary, "runtimeArgs": ["--log", log]}})
    assert eng.tasks.runtime_path("runc") == runc
    made = []
    try:
        for runtime, path in (("runc", runc), (name + "-plain", binary), (added, binary)):
            cid = eng.containers.create({"Image": "busybox", "Cmd": ["sleep", "60"]},
                                        {"Runtime": runtime})["Id"]
            made.append(cid)
            eng.containers.start(cid)
            root = os.path.join(exec_root, "runtime", runtime)
            state = runtime_state(path, root, cid)
            assert state is not None and state["status"] == "running", runtime
            assert state["pid"] == eng.containers.inspect(cid)["State"]["Pid"]
            assert eng.containers.inspect(cid)["HostConfig"]["Runtime"] == runtime
            if runtime == added:
                assert os.path.exists(log)     # the runtime opened the log it was told to
            else:
                assert not os.path.exists(log)
        # without a Runtime the container gets the default's name (pyrunc)
        cid = eng.containers.create({"Image": "busybox", "Cmd": ["true"]})["Id"]
        made.append(cid)
        assert eng.containers.inspect(cid)["HostConfig"]["Runtime"] == "pyrunc"
        for cid, (runtime, path) in zip(made, (("runc", runc), (name + "-plain", binary),
                                               (added, binary))):
            eng.containers.remove(cid, force=True)
            root = os.path.join(exec_root, "runtime", runtime)
            assert cid not in runtime_ids(path, root)
            assert leftovers(eng, cid) == []
    finally:
        for cid in made:
            try:
                eng.containers.remove(cid, force=True)
            except errors.NotFound:
                pass


@pytest.mark.parametrize("runtime", ["nope", "crun", "../../bin/sh", "/usr/bin/crun", "ls",
                                     "runc\n", 7, ["runc"]])
def test_engine_unknown_runtime_is_refused(engine, runtime):
    """Only stock and configured names: a program on PATH (crun, ls) is not a runtime until
    configured, a path never is."""
    with pytest.raises(errors.InvalidArgument) as e:
        engine.containers.create({"Image": "busybox", "Cmd": ["true"]}, {"Runtime": runtime})
    assert str(e.value) == UNKNOWN % (runtime,)
    assert engine.containers.list(all=True) == []


def test_engine_runtime_missing_at_start(engine_root, exec_root, leftovers):
    """A stopped container whose runtime a later engine does not configure cannot start
    (dockerd's 400), and nothing of the attempt is left; the first engine still starts it."""
    runc = need("runc")
    first = Engine(engine_root, exec_root=exec_root, runtimes={"other": runc})
    cid = first.containers.create({"Image": "busybox", "Cmd": ["true"]},
                                  {"Runtime": "other"})["Id"]
    try:
        later = Engine(engine_root, exec_root=exec_root)
        with pytest.raises(errors.InvalidArgument, match="^%s$" % (UNKNOWN % "other")):
            later.containers.start(cid)
        assert later.containers.inspect(cid)["State"]["Status"] == "created"
        assert not os.path.exists(os.path.join(exec_root, "tasks", cid))
        first.containers.start(cid)
        assert first.containers.wait(cid, timeout=30)["StatusCode"] == 0
    finally:
        first.containers.remove(cid, force=True)
    assert leftovers(first, cid) == []


@pytest.mark.parametrize("runtimes, default, message", [
    ({}, "crun", "specified default runtime 'crun' does not exist"),
    ({"a/b": "/bin/true"}, "pyrunc", "invalid runtime name 'a/b'"),
    ({"..": "/bin/true"}, "pyrunc", "invalid runtime name '..'"),
    ({"x": ""}, "pyrunc", "runtime x: path must be a non-empty string"),
    ({"x": {"path": "/bin/true", "runtimeArgs": "--debug"}}, "pyrunc",
     "runtime x: runtimeArgs must be a list of strings"),
    ({"x": {"path": "/bin/true", "runtimeType": "io.containerd.runc.v2"}}, "pyrunc",
     "runtime x: unknown key runtimeType"),
    ({"x": {"runtimeArgs": []}}, "pyrunc", "runtime x: path must be a non-empty string"),
    ({"x": ["/bin/true"]}, "pyrunc", "runtime x: must be a path or an object with a path"),
])
def test_engine_bad_runtime_config(tmp_path, runtimes, default, message):
    with pytest.raises(errors.InvalidArgument) as e:
        Engine(str(tmp_path / "root"), exec_root=str(tmp_path / "exec"), runtime=default,
               runtimes=runtimes)
    assert str(e.value).startswith(message)
    assert not os.path.exists(tmp_path / "exec" / "runtimes")


def test_runtime_args_script_quotes_hostile_words(tmp_path):
    """runtimeArgs reach the runtime word for word, shell metacharacters included: the
    script runs a stand-in runtime that records its argv."""
    record = tmp_path / "argv"
    fake = tmp_path / "fake-runtime"
    fake.write_text("#!/bin/sh\nfor a in \"$@\"; do printf '%%s\\n' \"$a\" >> %s; done\n"
                    % record)
    fake.chmod(0o755)
    words = ["--x=$(touch %s)" % (tmp_path / "pwned"), "a b", "`id`", "'q'", "\\", "*", ""]
    eng = Engine(str(tmp_path / "root"), exec_root=str(tmp_path / "exec"),
                 runtimes={"odd": {"path": str(fake), "runtimeArgs": words}})
    script = eng.tasks.runtime_path("odd")
    assert script == str(tmp_path / "exec" / "runtimes" / "odd")
    subprocess.run([script, "state", "x y"], check=True, cwd=str(tmp_path))
    assert record.read_text().split("\n")[:-1] == words + ["state", "x y"]
    assert not (tmp_path / "pwned").exists()


# ---------------------------------------------------------------------------- pydockerd

def _docker_run(d, *args):
    return d.docker("run", "-d", *args).stdout.strip()


def test_docker_run_runtime_flags_and_info(start_daemon, tmp_path, peer):
    name, binary = peer
    runc = need("runc")
    d = start_daemon(tmp_path / "d", "--add-runtime", "Added=%s" % binary,
                     "--default-runtime", "added")
    roots = {rt: os.path.join(d.exec_root, "runtime", rt) for rt in ("runc", "added")}
    info = json.loads(d.docker("info", "--format", "{{json .}}").stdout)
    assert info["DefaultRuntime"] == "added"
    assert info["Runtimes"]["added"] == {"path": binary}
    d.docker("pull", "busybox")
    ids = {}
    for runtime, path in (("runc", runc), ("added", binary), (None, binary)):
        flags = ["--runtime=%s" % runtime] if runtime else []
        cid = _docker_run(d, *flags, "busybox", "sleep", "60")
        rt = runtime or "added"            # the default runtime's
        ids[runtime] = cid
        assert d.docker("inspect", "--format", "{{.HostConfig.Runtime}}", cid).stdout \
            .strip() == rt
        state = runtime_state(path, roots[rt], cid)
        assert state is not None and state["status"] == "running", runtime
        assert state["pid"] == int(d.docker("inspect", "--format", "{{.State.Pid}}",
                                            cid).stdout)
    # an unknown runtime is the CLI's daemon error, and no container is made
    before = sorted(d.docker("ps", "-aq", "--no-trunc").stdout.split())
    r = d.docker("run", "--runtime=nope", "busybox", "true", check=False)
    assert r.returncode == 125
    assert "Error response from daemon: %s" % (UNKNOWN % "nope") in r.stderr
    for bad in ("ls", binary):      # a program on PATH, a path: not runtimes by name
        r = d.docker("create", "--runtime=" + bad, "busybox", "true", check=False)
        assert r.returncode != 0 and UNKNOWN % bad in r.stderr
    assert sorted(d.docker("ps", "-aq", "--no-trunc").stdout.split()) == before
    # the SDK names a runtime too; an unknown one is docker's 400
    import docker
    client = d.client()
    try:
        c = client.containers.run("busybox", ["sleep", "60"], runtime="added", detach=True)
        c.reload()
        assert c.attrs["HostConfig"]["Runtime"] == "added"
        assert runtime_state(binary, roots["added"], c.id)["status"] == "running"
        c.remove(force=True)
        assert c.id not in runtime_ids(binary, roots["added"])
        with pytest.raises(docker.errors.APIError) as e:
            client.containers.create("busybox", ["true"], runtime="nope")
        assert e.value.status_code == 400 and UNKNOWN % "nope" in str(e.value)
    finally:
        client.close()
    d.docker("rm", "-f", *ids.values())
    assert runtime_ids(runc, roots["runc"]) == []
    assert runtime_ids(binary, roots["added"]) == []


def test_runtime_kept_across_daemon_restarts(start_daemon, tmp_path, peer):
    """After a restart, exec/pause/restart/stop/start/kill/rm reach the container's own
    runtime (its state says so); a daemon that no longer configures the runtime still runs
    those on the container that runs, and refuses only to start one."""
    name, binary = peer
    log = str(tmp_path / "runtime-log")
    config = {"runtimes": {"mine": {"path": binary, "runtimeArgs": ["--log", log]}}}
    d = start_daemon(tmp_path / "d", config=config)
    root = os.path.join(d.exec_root, "runtime", "mine")
    d.docker("pull", "busybox")
    assert json.loads(d.docker("info", "--format", "{{json .Runtimes}}").stdout)["mine"] == \
        {"path": binary, "runtimeArgs": ["--log", log]}
    cid = _docker_run(d, "--runtime", "mine", "busybox", "sleep", "600")
    stopped = d.docker("create", "--runtime", "mine", "busybox", "true").stdout.strip()
    assert os.path.exists(log)          # the runtime was given the configured --log
    assert d.stop() == 0
    d.start()

    def status():
        st = runtime_state(binary, root, cid)
        return st and st["status"]
    assert status() == "running"
    assert d.docker("exec", cid, "echo", "in-" + name).stdout == "in-%s\n" % name
    d.docker("pause", cid)
    assert status() == "paused"
    d.docker("unpause", cid)
    assert status() == "running"
    old_pid = runtime_state(binary, root, cid)["pid"]
    d.docker("restart", "-t", "1", cid)
    assert status() == "running" and runtime_state(binary, root, cid)["pid"] != old_pid
    d.docker("stop", "-t", "1", cid)
    assert status() in (None, "stopped")
    d.docker("start", cid)
    assert status() == "running"
    # a daemon without the runtime: the running container is still the runtime's
    assert d.stop() == 0
    with open(d.config_file, "w") as f:
        json.dump({"registry-mirrors": [d.mirror_url]}, f)
    d.start()
    assert d.docker("exec", cid, "echo", "still").stdout == "still\n"
    assert status() == "running"
    d.docker("kill", "-s", "KILL", cid)
    assert d.docker("wait", cid).stdout.strip() == "137"
    for ref in (stopped, cid):
        r = d.docker("start", ref, check=False)
        assert r.returncode != 0 and UNKNOWN % "mine" in r.stderr
    d.docker("rm", "-f", cid, stopped)
    assert runtime_ids(binary, root) == []


@pytest.mark.parametrize("flags, config, message", [
    (["--add-runtime", "runc=/usr/sbin/runc"], None, "runtime name 'runc' is reserved"),
    ([], {"runtimes": {"pyrunc": {"path": "/bin/true"}}}, "runtime name 'pyrunc' is reserved"),
    (["--add-runtime", "x=/bin/true", "--add-runtime", "X=/bin/false"], None,
     "runtime 'x' was already defined"),
    (["--default-runtime", "nope"], None, "specified default runtime 'nope' does not exist"),
    ([], {"runtimes": {"x": {"path": "/bin/true", "runtimeArgs": [1]}}},
     "runtime x: runtimeArgs must be a list of strings"),
])
def test_daemon_refuses_bad_runtime_flags(start_daemon, tmp_path, flags, config, message):
    d = start_daemon(tmp_path / "d", *flags, config=config, wait=False)
    assert d.proc.wait(60) == 1
    assert message in d.output()
    assert not os.path.exists(d.sock)
    assert not os.path.exists(d.pidfile)


# ---------------------------------------------------------------------------- the parsers

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=12), inner, max_size=3), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(name=st.one_of(st.text(max_size=140), _json),
       spec=st.one_of(st.text(max_size=40), _json,
                      st.fixed_dictionaries({"path": st.text(max_size=40)},
                                            optional={"runtimeArgs": _json})))
def test_runtime_config_parser_over_generated_input(name, spec):
    """daemon.json's runtimes: accepted ones are safe file names with a path and a list of
    argument strings; everything else is one line of InvalidArgument naming the runtime."""
    try:
        path, args = runtimes.parse(name, spec)
    except errors.InvalidArgument as e:
        assert "\n" not in str(e).replace(repr(name), "")
        assert str(e).startswith(("invalid runtime name", "runtime name", "runtime "))
        return
    assert isinstance(name, str) and "/" not in name and name not in (".", "..")
    assert os.path.basename(name) == name
    assert isinstance(path, str) and path and "\0" not in path
    assert isinstance(args, list) and all(isinstance(a, str) for a in args)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_add_runtime_flag_over_generated_input(value):
    """``--add-runtime``: NAME=PATH with both non-empty (the name lowercased, spaces trimmed),
    anything else argparse's error."""
    try:
        name, path = dockerd._runtime(value)
    except argparse.ArgumentTypeError:
        left, sep, right = value.partition("=")
        assert not sep or not left.strip() or not right.strip()
        return
    assert name == value.partition("=")[0].strip().lower() and name
    assert path == value.partition("=")[2].strip() and path
