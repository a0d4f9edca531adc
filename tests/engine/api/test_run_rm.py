"""``docker run --rm`` and wait through pydockerd, many times, with both docker CLIs and the
SDK: the exit code the shell inside gave, every time; nothing left; no hang when the process
cannot start. Extra waiters and readers race the daemon's own collection of the exit.
"""
import os
import threading

import pytest

from .test_containers import daemon_for_module

pytestmark = pytest.mark.usefixtures("private_mount_ns")

ROUNDS = 10


@pytest.fixture(scope="module")
def d(mirror, tmp_path_factory):
    with daemon_for_module(tmp_path_factory.mktemp("runrm"), mirror) as daemon:
        daemon.docker("pull", "busybox")
        yield daemon


def _containers_left(d):
    root = os.path.join(d.root, "containers")
    return [n for n in os.listdir(root) if len(n) == 64]


def _mounts_left(d):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if d.root in line.split()[4]]


def test_run_rm_exit_code_every_time(d, cli):
    for n in range(ROUNDS):
        code = 1 + n % 7
        r = d.docker("run", "--rm", "busybox", "sh", "-c", "exit %d" % code, cli=cli,
                     check=False, timeout=60)
        assert r.returncode == code, "round %d: %r" % (n, r)
    assert d.docker("ps", "-aq").stdout == ""
    assert _containers_left(d) == []


def test_run_rm_exit_code_with_readers_racing(d, cli):
    """While the CLIs run --rm containers, other clients list and inspect everything (each
    read may collect an exit and remove the container first): the codes stay right."""
    stop = threading.Event()

    def reader():
        client = d.client()
        try:
            while not stop.is_set():
                for c in client.api.containers(all=True):
                    try:
                        client.api.inspect_container(c["Id"])
                    except Exception:       # removed meanwhile: that is the race
                        pass
        finally:
            client.close()
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        for n in range(ROUNDS):
            code = 3 + n % 4
            r = d.docker("run", "--rm", "busybox", "sh", "-c", "exit %d" % code, cli=cli,
                         check=False, timeout=60)
            assert r.returncode == code, "round %d: %r" % (n, r)
    finally:
        stop.set()
        for t in readers:
            t.join(30)
    assert _containers_left(d) == []


def test_sdk_waiters_of_removal_get_the_code(d):
    """Several SDK clients wait for the removal (and one for the next exit, as the CLI
    without --rm) of one --rm container: all get the shell's code, every round. (The half
    second before the exit lets every wait request in before the container goes.)"""
    import docker
    client = d.client()
    try:
        for n in range(ROUNDS):
            code = 2 + n % 6
            cid = client.api.create_container(
                "busybox", ["sh", "-c", "sleep 0.5; exit %d" % code],
                host_config=client.api.create_host_config(auto_remove=True))["Id"]
            results = {}

            def wait(i, condition):
                c = docker.DockerClient(base_url=d.host, version="auto", timeout=60)
                try:
                    results[i] = c.api.wait(cid, condition=condition)["StatusCode"]
                except Exception as e:      # reported below
                    results[i] = e
                finally:
                    c.close()
            conditions = ["removed", "removed", "removed", "next-exit"]
            threads = [threading.Thread(target=wait, args=(i, cond))
                       for i, cond in enumerate(conditions)]
            for t in threads:
                t.start()
            client.api.start(cid)
            for t in threads:
                t.join(60)
            assert [results.get(i) for i in range(4)] == [code] * 4, "round %d" % n
        with pytest.raises(docker.errors.ContainerError) as e:
            client.containers.run("busybox", ["sh", "-c", "exit 9"], remove=True)
        assert e.value.exit_status == 9
    finally:
        client.close()
    assert _containers_left(d) == []


def test_run_rm_command_not_found(d, cli):
    """A command that is not in PATH: docker's 127, the CLI returns (no hang) and the
    container is gone with its mounts."""
    for _ in range(3):
        r = d.docker("run", "--rm", "busybox", "nosuchcmd", cli=cli, check=False, timeout=30)
        assert r.returncode == 127, r
        assert "nosuchcmd" in r.stderr
        assert r.stderr.startswith("docker: Error response from daemon: "), r.stderr
    assert d.docker("ps", "-aq").stdout == ""
    assert _containers_left(d) == []
    assert _mounts_left(d) == []
