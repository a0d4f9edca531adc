"""pydocker under test, next to the real docker CLI, against the same daemon.

``pydocker(*args, host=..., input=...)`` runs ``python -m pyrunc.cli`` as a user runs the
command (a new process, its exit code and both streams). ``daemon`` is a started pydockerd
with the loopback registry mirror (the Engine API tests' fixtures, loaded from their
conftest); ``debian_dockerd`` is Debian's dockerd in its own namespaces (tests/dockerd_peer.py)
with the built-in busybox and hello-world loaded.
"""
import importlib.util
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
# Real docker output (docker 28 and dockerd 20.10) recorded for these flows: the oracle the
# CLI's help texts, tables and messages are compared with.
REFERENCE = os.environ.get("PYRUNC_DOCKER_CLI_REFERENCE", os.path.join(HERE, "reference"))
DOCKER28 = "/usr/local/bin/docker"


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_api = _load("engine_api_fixtures_for_cli", os.path.join(TESTS, "engine", "api", "conftest.py"))
mirror = _api.mirror
start_daemon = _api.start_daemon


class Result:
    def __init__(self, proc):
        self.out = proc.stdout
        self.err = proc.stderr
        self.code = proc.returncode

    def __repr__(self):
        return "exit %d\n--- stdout\n%s--- stderr\n%s" % (self.code, self.out, self.err)


def run_cli(argv, env, input=None, timeout=120):
    return Result(subprocess.run(argv, env=env, input=input, capture_output=True, text=True,
                                 timeout=timeout))


class Target:
    """One daemon and the two clients pointed at it."""

    def __init__(self, host, config_dir, mirror_domain=None):
        self.host = host
        self.config_dir = config_dir
        os.makedirs(config_dir, exist_ok=True)
        self.mirror_domain = mirror_domain
        self.env = dict(os.environ, DOCKER_HOST=host, DOCKER_CONFIG=config_dir,
                        DOCKER_CLI_HINTS="false")

    def pydocker(self, *args, input=None, timeout=120):
        return run_cli([sys.executable, "-m", "pyrunc.cli"] + [str(a) for a in args],
                       self.env, input, timeout)

    def docker(self, *args, input=None, timeout=120):
        return run_cli([DOCKER28] + [str(a) for a in args], self.env, input, timeout)


@pytest.fixture
def pyd(start_daemon, tmp_path):
    d = start_daemon(tmp_path / "d")
    t = Target(d.host, str(tmp_path / "client"))
    t.daemon = d
    t.pydocker("pull", "busybox")
    yield t
    for name in t.pydocker("ps", "-aq", "--no-trunc").out.split():
        t.pydocker("rm", "-f", name)


@pytest.fixture(scope="module")
def debian_dockerd(tmp_path_factory):
    sys.path.insert(0, TESTS)
    import dockerd_peer
    if not os.path.exists(dockerd_peer.DOCKERD):
        pytest.skip("Debian's dockerd (%s, package docker.io) is not installed"
                    % dockerd_peer.DOCKERD)
    work = tmp_path_factory.mktemp("dockerd")
    d = dockerd_peer.Dockerd(str(work))
    d.start()
    try:
        d.load_builtin("busybox", "hello-world")
        t = Target(d.host, str(work / "client"))
        t.peer = d
        yield t
        for name in t.docker("ps", "-aq").out.split():
            t.docker("rm", "-f", name)
    finally:
        d.stop()


def reference(name):
    """The text of a file of the docker CLI reference outputs."""
    path = os.path.join(REFERENCE, name)
    if not os.path.exists(path):
        pytest.fail("docker CLI reference output %s is missing" % path)
    with open(path, encoding="utf-8") as f:
        return f.read()
