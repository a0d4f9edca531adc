"""``stats``: the live view in a real pseudo-terminal, frame by frame as docker 28 draws it on
the same daemon (the cursor home and the table, then each line of that again ended by a space
and erase-to-end-of-line, then erase-below, every 500 ms), and ``--no-stream``."""
import os
import pty
import re
import select
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from .conftest import DOCKER28


def _pty_for(target, argv, seconds, cols=150):
    """What ``argv`` writes on a terminal ``cols`` wide in ``seconds`` (or until it ends);
    then it is killed (by PID) if still there."""
    import fcntl
    import struct
    import termios
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(target.env)
        os.execv(argv[0], argv)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, cols, 0, 0))
    out = b""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
    return out


def _frames(out):
    """The complete frames of a live stats output, each checked against docker's drawing; the
    tables they carry."""
    text = out.decode().replace("\r\n", "\n")
    parts = text.split("\x1b[J")
    tables = []
    for frame in parts[:-1]:                 # the last part may be cut
        assert frame.startswith("\x1b[H"), frame
        first, sep, again = frame[3:].partition("\x1b[H")
        assert sep, frame
        table = first
        assert again == "".join(line + " \x1b[K\n" for line in
                                ("\x1b[H" + table).split("\n"))[3:], frame
        tables.append(table)
    return tables


def _running(target, *names):
    for name in names:
        r = target.pydocker("run", "-d", "--name", name, "busybox", "sleep", "300")
        assert r.code == 0, r


def test_live_stats_redrawn_as_docker(pyd):
    if not os.path.exists(DOCKER28):
        pytest.skip("docker 28 CLI (%s) is not installed" % DOCKER28)
    _running(pyd, "st1", "st2")
    mine = _frames(_pty_for(pyd, [sys.executable, "-m", "pyrunc.cli", "stats", "st1", "st2"],
                            4))
    theirs = _frames(_pty_for(pyd, [DOCKER28, "stats", "st1", "st2"], 4))
    assert len(mine) >= 3 and len(theirs) >= 3, (mine, theirs)   # redrawn, every 500 ms
    for tables in (mine, theirs):
        for table in tables:
            lines = table.splitlines()
            assert lines[0] == theirs[0].splitlines()[0]          # docker's header
            assert [x.split()[1] for x in lines[1:]] == ["st1", "st2"], table
            for line in lines[1:]:
                assert re.fullmatch(r"[0-9a-f]{12} +st[12] +\d+\.\d\d% +\S+ / \S+ +\d+\.\d\d% "
                                    r"+\S+ / \S+ +\S+ / \S+ +\d+", line), line


def test_live_stats_follow_new_containers_and_no_stream(pyd):
    _running(pyd, "st3")
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(pyd.env)
        os.execv(sys.executable, [sys.executable, "-m", "pyrunc.cli", "stats"])
    out = b""
    try:
        deadline = time.monotonic() + 30
        started = False
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                out += os.read(fd, 65536)
            if not started and b" st3 " in out:
                _running(pyd, "st4")
                started = True
                mark = len(out)
            if started and b" st4 " in out[mark:] and out.endswith(b"\x1b[J"):
                break
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
    tables = _frames(out)
    assert any("st4" in t and "st3" in t for t in tables), out
    mine = pyd.pydocker("stats", "--no-stream", "st3", "st4")
    assert mine.code == 0 and "\x1b" not in mine.out, mine
    lines = mine.out.splitlines()
    assert lines[0].startswith("CONTAINER ID   NAME      CPU %"), lines
    assert [x.split()[1] for x in lines[1:]] == ["st3", "st4"], lines
    if os.path.exists(DOCKER28):
        theirs = pyd.docker("stats", "--no-stream", "st3", "st4")
        assert theirs.out.splitlines()[0] == lines[0], (mine, theirs)
    r = pyd.pydocker("stats", "--no-stream", "nosuch")
    assert (r.code, r.err) == (1, "Error response from daemon: No such container: nosuch\n"), r
    r = pyd.pydocker("stats", "nosuch")
    assert (r.code, r.err) == (1, "Error response from daemon: No such container: nosuch\n"), r


def test_stats_format_and_config_stats_format(pyd):
    if not os.path.exists(DOCKER28):
        pytest.skip("docker 28 CLI (%s) is not installed" % DOCKER28)
    _running(pyd, "st5", "st6")

    def masked(text):       # memory and I/O figures move between two reads
        return re.sub(r"\d+(\.\d+)?([kKMG]i?)?B", "N", re.sub(r"\d+\.\d\d%", "P%", text))
    formats = ("json", "{{.Container}}:{{.Name}} {{.PIDs}}", "table {{.Container}}\t{{.PIDs}}",
               "table {{.ID}}\t{{.MemUsage}}\t{{.NetIO}}")
    # each --no-stream waits for a second CPU sample (about a second): the eight clients run
    # at once
    with ThreadPoolExecutor(2 * len(formats)) as pool:
        runs = [(fmt, pool.submit(pyd.pydocker, "stats", "--no-stream", "--format", fmt, "st5",
                                  "st6"),
                 pool.submit(pyd.docker, "stats", "--no-stream", "--format", fmt, "st5", "st6"))
                for fmt in formats]
        for fmt, mine_run, theirs_run in runs:
            mine, theirs = mine_run.result(), theirs_run.result()
            assert mine.code == theirs.code == 0, (mine, theirs)
            assert masked(mine.out) == masked(theirs.out), (fmt, mine, theirs)
    with open(os.path.join(pyd.config_dir, "config.json"), "w") as f:
        f.write('{"statsFormat": "{{.Name}}={{.PIDs}}"}')
    r = pyd.pydocker("stats", "--no-stream", "st5")
    assert (r.code, r.out) == (0, "st5=1\n"), r
