"""The ``pyrunc`` command's hot paths import only what they need.

Engines run ``pyrunc create/start/state/kill/delete`` several times per container, and imports
are most of such a command's time: ``json``, ``signal`` and what they pull in (``re``, ``enum``,
``collections``, ``functools``) cost more than the work. The runtime uses their C cores
(``_json`` through ``jsoncodec``, ``_signal``) instead. These tests run the real ``pyrunc``
script under ``python -X importtime`` on a real container and read every module it imports.

The interpreter runs with ``-S``: an editable install's site hook imports ``re`` and friends
before ``pyrunc`` starts, which would hide the command's own imports of them; ``pyrunc`` and the
cffi backend are put on the path by hand. The ``pyrunc`` command itself is a static launcher
that runs the script ``pyrunc-python`` beside it (and imports nothing): the trace runs that
script.
"""
import _signal
import os
import signal
import sys

import pytest

from support import unique_id, wait_for_status

from .conftest import Runtime

HEAVY = {"re", "enum", "json", "signal", "collections", "functools", "struct", "keyword",
         "dataclasses", "socket", "tempfile", "subprocess", "contextlib", "shutil", "pathlib",
         "typing", "ctypes", "argparse", "jsonschema", "requests", "pyroute2"}


class Traced(Runtime):
    """The pyrunc script run by ``python -S -X importtime``; ``imported`` collects the modules
    of every command so far."""

    def __init__(self, binary, root, path):
        super().__init__("pyrunc", os.path.join(os.path.dirname(binary), "pyrunc-python"), root)
        self.path = path
        self.imported = {}

    def cmd(self, *args):
        return [sys.executable, "-S", "-X", "importtime", self.binary, "--root", self.root,
                *args]

    def __call__(self, *args, **kw):
        env = dict(os.environ, PYTHONPATH=self.path)
        r = super().__call__(*args, env=env, **kw)
        lines = r.stderr.splitlines()
        for line in lines:
            if line.startswith("import time:") and "|" in line:
                self.imported.setdefault(line.rsplit("|", 1)[1].strip(), args[0])
        r.stderr = "\n".join(line for line in lines if not line.startswith("import time:"))
        return r


@pytest.fixture
def traced(tmp_path, private_mount_ns, pyrunc_bin):
    import _cffi_backend

    import pyrunc
    path = tmp_path / "path"
    path.mkdir()
    (path / "pyrunc").symlink_to(pyrunc.__path__[0])
    rt = Traced(pyrunc_bin, str(tmp_path / "state"),
                os.pathsep.join([str(path), os.path.dirname(_cffi_backend.__file__)]))
    yield rt
    rt.cleanup()


def heavy(imported):
    return {m: cmd for m, cmd in imported.items() if m in HEAVY}


def test_state_kill_delete_start_exec_import_nothing_heavy(traced, make_bundle):
    r = traced("state", "nope", check=False)
    assert r.returncode == 3 and r.stderr == 'pyrunc: container "nope" does not exist'
    assert "pyrunc.libcontainer.state" in traced.imported   # the trace is read
    assert heavy(traced.imported) == {}

    bundle = make_bundle(["sleep", "100"])
    cid = unique_id()
    traced("create", "--bundle", bundle, cid)
    create = traced.imported
    traced.imported = {}
    traced("start", cid)
    assert traced("exec", cid, "true").returncode == 0
    traced("state", cid)
    traced("kill", cid, "KILL")
    wait_for_status(traced, cid, "stopped")
    traced("delete", cid)
    assert heavy(traced.imported) == {}
    assert heavy(create) == {}


def test_run_imports_nothing_heavy(traced, make_bundle):
    bundle = make_bundle(["true"])
    assert traced("run", "--bundle", bundle, unique_id()).returncode == 0
    assert heavy(traced.imported) == {}


def test_state_output_is_jsons(traced, make_bundle):
    """``state`` prints what ``json.dumps(state, indent=2)`` prints, as runc does."""
    import json
    bundle = make_bundle(["true"])
    cid = unique_id()
    traced("run", "--bundle", bundle, "--keep", cid)
    out = traced("state", cid).stdout
    assert out == json.dumps(json.loads(out), indent=2) + "\n"
    traced("delete", cid)


def test_kill_knows_the_signal_modules_names():
    """``kill`` takes the names of ``signal.Signals`` (aliases too), and ``run`` forwards
    every signal of it but SIGKILL, SIGSTOP, SIGCHLD and SIGWINCH."""
    from pyrunc.containerd.runtime import foreground
    from pyrunc.containerd.runtime.signals import NUMBERS, parse_signal
    assert NUMBERS == {name: int(sig) for name, sig in signal.Signals.__members__.items()}
    for name, sig in signal.Signals.__members__.items():
        assert parse_signal(name) == parse_signal(name[3:].lower()) == int(sig)
    assert foreground.FORWARDED == sorted(
        int(s) for s in signal.Signals
        if s not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGWINCH))
    assert all(hasattr(_signal, f) for f in ("signal", "set_wakeup_fd", "SIGRTMIN", "SIGRTMAX"))


def test_output_lost_to_a_closed_pipe_is_an_error(traced):
    """The command leaves with os._exit after flushing stdout: a flush that fails is reported,
    not dropped. (Unbuffered, the write itself fails, inside the command: also exit status 1.)"""
    import subprocess
    r, w = os.pipe()
    os.close(r)
    env = dict(os.environ, PYTHONPATH=traced.path)
    env.pop("PYTHONUNBUFFERED", None)
    proc = subprocess.run(traced.cmd("--version"), stdout=w, stderr=subprocess.PIPE, env=env,
                          text=True, timeout=30)
    os.close(w)
    assert proc.returncode == 1
    assert "pyrunc: write stdout: broken pipe" in proc.stderr
