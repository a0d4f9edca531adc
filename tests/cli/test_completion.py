"""The bash completion file, run by bash: commands, subcommands, flags from --help, and
container names asked of the daemon."""
import os
import shutil
import subprocess
import sys

import pytest

COMPLETION = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "src", "cli", "completion.bash")


def complete(words, env, tmp_path):
    if not shutil.which("bash"):
        pytest.skip("bash is not installed")
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    wrapper = bindir / "pydocker"
    wrapper.write_text('#!/bin/sh\nexec %s -m pyrunc.cli "$@"\n' % sys.executable)
    wrapper.chmod(0o755)
    script = ('source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _pydocker; '
              'printf "%%s\\n" "${COMPREPLY[@]}"'
              % (COMPLETION, " ".join("'%s'" % w for w in words), len(words) - 1))
    env = dict(env, PATH="%s:%s" % (bindir, os.environ["PATH"]))
    r = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return sorted(r.stdout.split())


def test_commands_and_flags(tmp_path):
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent.sock")
    assert complete(["pydocker", "im"], env, tmp_path) == ["image", "images", "import"]
    assert complete(["pydocker", "volume", "c"], env, tmp_path) == ["create"]
    assert complete(["pydocker", "ps", "--no"], env, tmp_path) == ["--no-trunc"]
    assert "--entrypoint" in complete(["pydocker", "run", "--e"], env, tmp_path)


def test_container_names(pyd, tmp_path):
    assert pyd.pydocker("run", "-d", "--name", "comp-one", "busybox", "sleep", "30").code == 0
    assert complete(["pydocker", "stop", "comp"], pyd.env, tmp_path) == ["comp-one"]
    assert "busybox:latest" in complete(["pydocker", "run", "bu"], pyd.env, tmp_path)
