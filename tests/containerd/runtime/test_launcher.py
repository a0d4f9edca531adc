"""The installed ``pyrunc`` command is a static launcher (native/programs/pyrunc-launch.c): it
runs ``pyrunc-python`` of its own directory as the kernel runs a script, with the interpreter
of its "#!" line executed from a read-only detached clone of its mount, or (where cloning a
mount is not allowed, as in a user namespace that does not own the mount namespace) from a
sealed memfd copy. These tests give it a stand-in script and inspect the process it starts.
The container attack itself is in test_exe_protection.py."""
import os
import shutil
import subprocess
import sys

import pytest

from support import need

EROFS, EPERM, ETXTBSY = 30, 1, 26

PROBE = """
import os, sys, time
print(sys.executable, repr(sys.argv[1:]), os.readlink("/proc/self/exe"), sep="|", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def launcher(tmp_path, pyrunc_bin):
    """A copy of the pyrunc command beside a probe script run by a copy of our interpreter."""
    d = tmp_path / "bin"
    d.mkdir()
    shutil.copy2(pyrunc_bin, d / "pyrunc")
    python = d / "python3"
    shutil.copy2(os.path.realpath(sys.executable), python)
    script = d / "pyrunc-python"
    script.write_text("#!%s -S\n%s" % (python, PROBE))
    script.chmod(0o755)
    return d


def run_probe(cmd, python):
    """Start the probe; open its exe while it runs; after it exits, open that for writing.
    Returns (the probe's line, errno of the open for writing while busy, and after)."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        exe = os.open("/proc/%d/exe" % proc.pid, os.O_RDONLY)
    finally:
        proc.communicate("\n", timeout=30)

    def reopen():
        try:
            fd = os.open("/proc/self/fd/%d" % exe, os.O_WRONLY | os.O_APPEND)
        except OSError as e:
            return e.errno
        try:
            os.write(fd, b"x")
        except OSError as e:
            return e.errno
        finally:
            os.close(fd)
        return 0
    try:
        assert os.fstat(exe).st_size == os.stat(python).st_size
        return line.rstrip("\n").split("|"), reopen()
    finally:
        os.close(exe)


def test_runs_the_script_from_a_read_only_clone(launcher, private_mount_ns):
    python = launcher / "python3"
    before = python.read_bytes()
    (executable, argv, exe), err = run_probe([str(launcher / "pyrunc"), "a", "b c"],
                                                      python)
    # argv[0] is the "#!" path (so a virtual environment applies); the arguments follow the
    # script; the process's exe is the clone's root, not a path anywhere
    assert executable == str(python)
    assert argv == repr(["a", "b c"])
    assert exe == "/"
    assert err == EROFS
    assert python.read_bytes() == before


def test_falls_back_to_a_sealed_memfd(launcher, private_mount_ns):
    need("unshare")
    python = launcher / "python3"
    before = python.read_bytes()
    (executable, _, exe), err = run_probe(
        ["unshare", "--user", "--map-root-user", str(launcher / "pyrunc")], python)
    assert executable == str(python)
    assert exe.startswith("/memfd:")
    assert err == EPERM
    assert python.read_bytes() == before


def test_control_the_plain_script_leaves_the_interpreter_writable(launcher, private_mount_ns):
    """What the launcher prevents: the kernel runs the script with the interpreter file
    itself, which is writable once the process is gone."""
    python = launcher / "python3"
    (executable, _, exe), err = run_probe([str(launcher / "pyrunc-python")], python)
    assert exe == str(python)
    assert err == 0
    assert python.read_bytes().endswith(b"x")


@pytest.mark.parametrize("first_line, message", [
    (None, "pyrunc: open {script}: No such file or directory"),
    ("import os", 'pyrunc: no "#!interpreter" line in {script}'),
    ("#!python3", "pyrunc: interpreter is not an absolute path in {script}"),
    ("#!/nonexistent/python3", "pyrunc: clone the mount of /nonexistent/python3: "
                               "No such file or directory"),
])
def test_bad_scripts_are_one_line_errors(launcher, first_line, message):
    script = launcher / "pyrunc-python"
    if first_line is None:
        script.unlink()
    else:
        script.write_text(first_line + "\npass\n")
    r = subprocess.run([str(launcher / "pyrunc"), "--version"], capture_output=True, text=True,
                       timeout=30)
    assert (r.returncode, r.stdout, r.stderr) == (1, "", message.format(script=script) + "\n")
