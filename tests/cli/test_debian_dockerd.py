"""pydocker against Debian's dockerd (API 1.41, the reference server), compared with the
docker 28 CLI on the same daemon: the same flows as against pydockerd."""
import os
import re

import pytest

from .conftest import DOCKER28
from .flows import container_flow, image_flow, same

pytestmark = pytest.mark.skipif(not os.path.exists(DOCKER28),
                                reason="docker 28 CLI (%s) is not installed" % DOCKER28)


def test_container_flow(debian_dockerd):
    container_flow(debian_dockerd, "busybox")


def test_image_flow(debian_dockerd):
    image_flow(debian_dockerd, "busybox")


def test_negotiates_api_141(debian_dockerd):
    r = debian_dockerd.pydocker("version")
    assert r.code == 0, r
    assert re.search(r"^ API version:\s+1\.41 \(downgraded from 1\.\d+\)$", r.out, re.M), r.out
    d = debian_dockerd.docker("version")
    assert r.out.split("\nServer:", 1)[1] == d.out.split("\nServer:", 1)[1]


def test_run_failures(debian_dockerd):
    for cmd, code in ((["nosuchcmd"], 127), (["/nonexistent"], 127), (["/etc/passwd"], 126)):
        r = same(debian_dockerd, "run", "--rm", "busybox", *cmd)
        assert r.code == code, r
    r = same(debian_dockerd, "run", "--rm", "busybox", "sh", "-c", "exit 3")
    assert r.code == 3


def test_files_flow(debian_dockerd, tmp_path):
    from .flows import files_flow
    files_flow(debian_dockerd, "busybox", tmp_path)


def test_ports(debian_dockerd):
    t = debian_dockerd
    assert t.pydocker("run", "-d", "--name", "p1", "-p", "127.0.0.1::80", "-p", "8089:81/udp",
                      "busybox", "sleep", "300").code == 0
    same(t, "port", "p1")
    same(t, "port", "p1", "80")
    same(t, "port", "p1", "99")
    same(t, "ps", table=True)
    t.pydocker("rm", "-f", "p1")
