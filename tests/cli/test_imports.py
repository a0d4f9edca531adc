"""pydocker's everyday commands import only what they need.

Python's start-up is most of a short command's time (the benchmark in benchmarks/
cli_vs_docker.py compares it with the Go client): the command must not pay for
``http.client`` (``email.*``, ``ssl``), ``json`` and ``re`` (``enum``, ``functools``), or a
console_scripts wrapper. These tests run the installed script (bin/pydocker) under
``python -S -X importtime`` against a real pydockerd with a container running, and read every
module each command imported. ``-S`` keeps an editable install's site hook (which imports
``re``) out of the trace; the package is put on the path by hand.
"""
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "bin", "pydocker")

HEAVY = {"re", "enum", "json", "http", "http.client", "email", "email.parser", "ssl",
         "socket", "selectors", "urllib", "urllib.parse", "datetime", "collections",
         "functools", "typing", "importlib.metadata", "importlib.util", "platform",
         "threading", "subprocess", "tempfile", "base64", "hashlib", "locale", "calendar",
         "string", "struct", "contextlib", "warnings", "runpy"}


@pytest.fixture
def traced(pyd, tmp_path):
    import pyrunc
    path = tmp_path / "path"
    path.mkdir()
    (path / "pyrunc").symlink_to(pyrunc.__path__[0])
    env = dict(pyd.env, PYTHONPATH=str(path))

    def run(*args):
        r = subprocess.run([sys.executable, "-S", "-X", "importtime", SCRIPT, *args], env=env,
                           capture_output=True, text=True, timeout=60)
        imported = {line.rsplit("|", 1)[1].strip() for line in r.stderr.splitlines()
                    if line.startswith("import time:") and "|" in line}
        err = "".join(line + "\n" for line in r.stderr.splitlines()
                      if not line.startswith("import time:"))
        return r.returncode, r.stdout, err, imported
    return run


def test_ps_images_help_import_nothing_heavy(pyd, traced):
    cid = pyd.pydocker("run", "-d", "busybox", "sleep", "60").out.strip()
    assert len(cid) == 64, cid
    code, out, err, imported = traced("ps")
    assert code == 0, err
    assert out.startswith("CONTAINER ID   IMAGE") and cid[:12] in out, out
    assert "pyrunc.cli.commands.container" in imported      # the trace is read
    assert "_json" in imported and "_socket" in imported
    assert imported & HEAVY == set()

    code, out, err, imported = traced("images")
    assert code == 0 and out.startswith("REPOSITORY ") and "busybox" in out, (out, err)
    assert imported & HEAVY == set()

    code, out, err, imported = traced("--help")
    assert code == 0 and out.startswith("Usage:  pydocker [OPTIONS] COMMAND"), err
    assert "pyrunc.cli.client" not in imported
    assert imported & HEAVY == set()


def test_output_lost_to_a_closed_pipe_is_an_error(pyd, traced):
    """The command leaves with os._exit after flushing stdout: a flush that fails makes the
    exit status 1, as the interpreter's own exit would."""
    r, w = os.pipe()
    os.close(r)
    env = dict(pyd.env)
    env.pop("PYTHONUNBUFFERED", None)
    proc = subprocess.run([sys.executable, SCRIPT, "--help"], stdout=w, stderr=subprocess.PIPE,
                          env=env, timeout=60)
    os.close(w)
    assert proc.returncode == 1, proc.stderr
