"""restart of an AutoRemove container, failed starts, and the destroy event, against dockerd.

The oracle is Debian's dockerd (tests/dockerd_peer.py), driven with the docker CLI: the same
steps on both, then the container actions each one's event log recorded, the inspect State
fields, what is left. Crashes are real processes that die (os._exit) at a chosen step of a
removal or a restart; the Engine opened afterwards must finish what they left.
"""
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from pyrunc import errors
from pyrunc.engine import Engine

from dockerd_peer import DOCKERD, Dockerd

pytestmark = pytest.mark.usefixtures("private_mount_ns")


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory):
    if not os.path.exists(DOCKERD) or not shutil.which("unshare"):
        pytest.skip("Debian's dockerd (package docker.io) is not installed")
    with Dockerd(str(tmp_path_factory.mktemp("dockerd"))) as d:
        d.load_builtin("busybox")
        yield d


def docker_actions(d, name, since):
    out = d.docker("events", "--since", since, "--until", "%.9f" % time.time(),
                   "--filter", "type=container", "--filter", "container=" + name,
                   "--format", "{{.Action}}").stdout
    return out.split()


def our_actions(engine, cid, since):
    return [e["Action"] for e in engine.events.query(
        since=since, filters={"type": ["container"], "container": [cid]})]


def docker_state(d, name):
    import json
    return json.loads(d.docker("inspect", "-f", "{{json .State}}", name).stdout)


# 1. restart of a --rm container -------------------------------------------------------------
def test_restart_keeps_an_autoremove_container_as_dockerd(engine, dockerd, leftovers):
    since = "%.9f" % time.time()
    dockerd.docker("run", "-d", "--rm", "--name", "rst", "busybox", "sleep", "300")
    dockerd.docker("restart", "-t", "1", "rst")
    theirs = docker_state(dockerd, "rst")
    their_actions = docker_actions(dockerd, "rst", since)
    dockerd.docker("kill", "rst")
    for _ in range(100):        # dockerd removes it once its exit is handled
        if dockerd.docker("inspect", "rst", check=False).returncode != 0:
            break
        time.sleep(0.1)
    their_gone = dockerd.docker("inspect", "rst", check=False).returncode != 0

    since = "%.9f" % time.time()
    cid = engine.containers.create({"Image": "busybox", "Cmd": ["sleep", "300"]},
                                   {"AutoRemove": True})["Id"]
    engine.containers.start(cid)
    engine.containers.restart(cid, timeout=1)
    ours = engine.containers.inspect(cid)["State"]
    assert (ours["Status"], ours["Running"]) == (theirs["Status"], theirs["Running"]) \
        == ("running", True)
    # dockerd: create start kill(15) kill(9) die stop start restart, no destroy. Its count
    # of kill events varies on a loaded machine (a third one, after the restart, was seen
    # once in a full run): the kills are compared apart from the rest
    mine = our_actions(engine, cid, since)
    assert [a for a in mine if a != "kill"] == [a for a in their_actions if a != "kill"]
    assert 2 == mine.count("kill") <= their_actions.count("kill")
    assert "destroy" not in their_actions
    assert "Restarter" not in engine.containers.store.get(cid).record
    # still AutoRemove: its next exit removes it, as dockerd's
    engine.containers.kill(cid)
    with pytest.raises(errors.NotFound):
        engine.containers.get(cid)
    assert their_gone
    assert leftovers(engine, cid) == []


def test_restart_whose_process_dies_after_the_stop_leaves_it_removable(engine, engine_root,
                                                                       exec_root, leftovers):
    """A process killed between the stop and the start of a restart: the container is not kept
    for ever (its marker names a dead process): the next read removes it, with one destroy."""
    cid = engine.containers.create({"Image": "busybox", "Cmd": ["sleep", "300"]},
                                   {"AutoRemove": True})["Id"]
    engine.containers.start(cid)
    since = "%.9f" % time.time()
    child = textwrap.dedent("""
        import os, sys
        from pyrunc.engine import Engine
        from pyrunc.engine.container.service import ContainerService
        stop = ContainerService.stop
        def stop_then_die(self, *a, **kw):
            stop(self, *a, **kw)
            os._exit(9)
        ContainerService.stop = stop_then_die
        Engine(sys.argv[1], exec_root=sys.argv[2]).containers.restart(sys.argv[3], timeout=0)
        os._exit(0)
    """)
    r = subprocess.run([sys.executable, "-c", child, engine_root, exec_root, cid],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 9, r.stderr
    with pytest.raises(errors.NotFound):
        Engine(engine_root, exec_root=exec_root).containers.get(cid)
    assert our_actions(engine, cid, since).count("destroy") == 1
    assert leftovers(engine, cid) == []


# 2. failed starts -------------------------------------------------------------------------------
START_FAILURES = [
    # (name, docker create arguments, the engine's Config, HostConfig)
    ("notfound", ["busybox", "nosuchcmd"], {"Cmd": ["nosuchcmd"]}, {}),
    ("noexec", ["busybox", "/etc/passwd"], {"Cmd": ["/etc/passwd"]}, {}),
    ("filedir", ["-v", "/etc/hostname:/bin", "busybox", "true"], {"Cmd": ["true"]},
     {"Binds": ["/etc/hostname:/bin"]}),
    ("nosource", ["-v", "/proc/nonexistent/x:/x", "busybox", "true"], {"Cmd": ["true"]},
     {"Binds": ["/proc/nonexistent/x:/x"]}),
]


@pytest.mark.parametrize("name, args, config, host_config", START_FAILURES,
                         ids=[c[0] for c in START_FAILURES])
def test_failed_start_state_and_events_as_dockerd(engine, dockerd, leftovers, name, args,
                                                   config, host_config):
    since = "%.9f" % time.time()
    dockerd.docker("create", "--name", name, *args)
    assert dockerd.docker("start", name, check=False).returncode != 0
    theirs = docker_state(dockerd, name)
    their_actions = docker_actions(dockerd, name, since)
    dockerd.docker("rm", name)

    since = "%.9f" % time.time()
    cid = engine.containers.create(dict(config, Image="busybox"), host_config)["Id"]
    with pytest.raises(errors.PyruncError) as failed:
        engine.containers.start(cid)
    ours = engine.containers.inspect(cid)["State"]
    for key in ("Status", "Running", "Pid", "ExitCode"):
        assert ours[key] == theirs[key], key
    assert theirs["Error"] and ours["Error"]
    assert str(failed.value).splitlines()[0].endswith(ours["Error"].splitlines()[0])
    if name == "nosource":
        mkdir = "error while creating mount source path '/proc/nonexistent/x'"
        assert theirs["Error"].startswith(mkdir) and ours["Error"].startswith(mkdir)
        assert ours["ExitCode"] == 128
    # dockerd emits no die (nor start) for a start that failed: create only
    assert our_actions(engine, cid, since) == their_actions == ["create"]
    engine.containers.remove(cid)
    assert leftovers(engine, cid) == []


@pytest.mark.parametrize("autoremove", [False, True])
def test_bind_source_gone_refuses_the_start_as_dockerd(engine, dockerd, tmp_path, leftovers,
                                                       autoremove):
    """A --mount bind whose source was removed after the create: dockerd refuses the start
    before anything (400, the state untouched, an AutoRemove container kept, no event)."""
    rm = ["--rm"] if autoremove else []
    source = tmp_path / "source"
    source.mkdir()
    since = "%.9f" % time.time()
    dockerd.docker("create", *rm, "--name", "gone-src", "--mount",
                   "type=bind,src=%s,dst=/x" % source, "busybox", "true")
    source.rmdir()
    r = dockerd.docker("start", "gone-src", check=False)
    theirs = docker_state(dockerd, "gone-src")
    their_actions = docker_actions(dockerd, "gone-src", since)
    dockerd.docker("rm", "gone-src")

    source.mkdir()
    since = "%.9f" % time.time()
    cid = engine.containers.create({"Image": "busybox", "Cmd": ["true"]}, {
        "Mounts": [{"Type": "bind", "Source": str(source), "Target": "/x"}],
        "AutoRemove": autoremove})["Id"]
    source.rmdir()
    with pytest.raises(errors.InvalidArgument) as e:
        engine.containers.start(cid)
    assert "Error response from daemon: %s\n" % e.value in r.stderr
    ours = engine.containers.inspect(cid)["State"]
    for key in ("Status", "Running", "ExitCode", "Error"):
        assert ours[key] == theirs[key], key
    assert (theirs["ExitCode"], theirs["Error"]) == (0, "")
    assert our_actions(engine, cid, since) == their_actions == ["create"]
    engine.containers.remove(cid)
    assert leftovers(engine, cid) == []


def test_failed_start_of_autoremove_before_the_process_as_dockerd(engine, dockerd, leftovers):
    since = "%.9f" % time.time()
    dockerd.docker("create", "--rm", "--name", "nosrc-rm", "-v", "/proc/nonexistent/x:/x",
                   "busybox", "true")
    assert dockerd.docker("start", "nosrc-rm", check=False).returncode != 0
    their_actions = docker_actions(dockerd, "nosrc-rm", since)
    assert dockerd.docker("inspect", "nosrc-rm", check=False).returncode != 0

    since = "%.9f" % time.time()
    cid = engine.containers.create({"Image": "busybox", "Cmd": ["true"]},
                                   {"Binds": ["/proc/nonexistent/x:/x"], "AutoRemove": True})["Id"]
    with pytest.raises(errors.PyruncError):
        engine.containers.start(cid)
    with pytest.raises(errors.NotFound):
        engine.containers.get(cid)
    assert our_actions(engine, cid, since) == their_actions == ["create", "destroy"]
    assert engine.containers.removed_exit(cid) == {"StatusCode": 128, "Error": None}
    assert leftovers(engine, cid) == []


# 3. destroy -------------------------------------------------------------------------------------
def _inspect_on_destroy(follow, inspect):
    """Start ``follow`` (yielding actions) in a thread; on the first destroy call
    ``inspect()`` and keep what it returned."""
    seen = {}
    ready = threading.Event()

    def run():
        for action in follow(ready):
            if action == "destroy":
                seen["inspect"] = inspect()
                return
    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(30)
    return t, seen


def test_destroy_is_seen_once_the_container_is_gone_as_dockerd(engine, dockerd):
    cid_theirs = dockerd.docker("create", "busybox", "true").stdout.strip()

    def follow_theirs(ready):
        p = subprocess.Popen(["docker", "events", "--filter", "container=" + cid_theirs,
                              "--format", "{{.Action}}"], env=dockerd.env,
                             stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)         # the CLI is subscribed once it has connected
            ready.set()
            for line in p.stdout:
                yield line.strip()
        finally:
            p.kill()
            p.wait()

    t, theirs = _inspect_on_destroy(
        follow_theirs, lambda: dockerd.docker("inspect", cid_theirs, check=False).returncode)
    dockerd.docker("rm", cid_theirs)
    t.join(30)
    assert theirs["inspect"] != 0       # dockerd: not found once destroy is seen

    cid = engine.containers.create({"Image": "busybox", "Cmd": ["true"]})["Id"]
    stop = threading.Event()

    def follow_ours(ready):
        events = engine.events.query(filters={"container": [cid]}, follow=True,
                                     stop=stop.is_set, poll=0.001)
        ready.set()
        for e in events:
            yield e["Action"]

    def inspect():
        try:
            engine.containers.inspect(cid)
            return "found"
        except errors.NotFound:
            return "not found"
    t, ours = _inspect_on_destroy(follow_ours, inspect)
    time.sleep(0.2)
    engine.containers.remove(cid)
    t.join(30)
    stop.set()
    assert ours["inspect"] == "not found"
    assert cid not in engine.containers.store.ids()


@pytest.mark.parametrize("when", ["before", "after"])
def test_destroy_emitted_once_when_the_remover_dies(engine, engine_root, exec_root, leftovers,
                                                    when):
    """A process removing a container dies just before (or just after) emitting its destroy
    event: the next Engine on the root emits it if it is missing, never twice."""
    cid = engine.containers.create({"Image": "busybox", "Cmd": ["true"]})["Id"]
    since = "%.9f" % time.time()
    child = textwrap.dedent("""
        import os, sys
        from pyrunc.engine import Engine
        from pyrunc.engine.events import EventService
        emit = EventService.emit
        def emit_or_die(self, type, action, *a, **kw):
            if action != "destroy":
                return emit(self, type, action, *a, **kw)
            if sys.argv[4] == "after":
                emit(self, type, action, *a, **kw)
            os._exit(9)
        EventService.emit = emit_or_die
        Engine(sys.argv[1], exec_root=sys.argv[2]).containers.remove(sys.argv[3])
        os._exit(0)
    """)
    r = subprocess.run([sys.executable, "-c", child, engine_root, exec_root, cid, when],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 9, r.stderr
    # gone from listings already; its directory waits for the next Engine
    assert cid not in engine.containers.store.ids()
    assert our_actions(engine, cid, since).count("destroy") == (1 if when == "after" else 0)
    Engine(engine_root, exec_root=exec_root)
    Engine(engine_root, exec_root=exec_root)
    assert our_actions(engine, cid, since).count("destroy") == 1
    assert leftovers(engine, cid) == []
