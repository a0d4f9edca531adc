"""Pull progress on a terminal for what a daemon may send in ``progressDetail`` (a start time,
``units``, ``hidecounts``, a current past the total): pydocker and docker 28 read the same
messages from a stand-in daemon in a pseudo-terminal; docker's drawing is the oracle (the
time left differs only by the second the two runs are apart)."""
import json
import os
import re
import socket
import threading
import time

import pytest

from .conftest import DOCKER28, Target
from .test_stats import _pty_for


class StandIn:
    """A unix-socket daemon answering /_ping, and any other request with ``body``."""

    def __init__(self, path, body):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(path)
        self.sock.listen(8)
        self.body = body
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    request += chunk
                head = b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: " \
                       b"application/json\r\nConnection: close\r\n"
                if request.startswith((b"HEAD", b"GET /_ping")):
                    c.sendall(head + b"Content-Length: 2\r\n\r\n" +
                              (b"" if request.startswith(b"HEAD") else b"OK"))
                else:
                    c.sendall(head + b"Content-Length: %d\r\n\r\n" % len(self.body) + self.body)
            except OSError:
                pass
            c.close()

    def close(self):
        self.sock.close()


def _messages(start):
    layer = {"a": "aaaaaaaaaaaa", "b": "bbbbbbbbbbbb", "c": "cccccccccccc", "d": "dddddddddddd",
             "e": "eeeeeeeeeeee", "f": "ffffffffffff"}
    msgs = [{"status": "Pulling from library/standin", "id": "latest"}]
    msgs += [{"status": "Pulling fs layer", "id": i, "progressDetail": {}} for i in layer.values()]
    msgs += [
        {"status": "Downloading", "id": layer["a"],
         "progressDetail": {"current": 1000000, "total": 10000000, "start": start}},
        {"status": "Extracting", "id": layer["b"],
         "progressDetail": {"current": 5, "total": 10, "units": "files"}},
        {"status": "Extracting", "id": layer["c"],
         "progressDetail": {"current": 20, "total": 10, "units": "files"}},
        {"status": "Waiting", "id": layer["d"],
         "progressDetail": {"current": 3, "total": 10, "hidecounts": True}},
        {"status": "Downloading", "id": layer["e"],
         "progressDetail": {"current": 3000000, "total": 1000}},
        {"status": "Downloading", "id": layer["f"],
         "progressDetail": {"current": 7, "units": "steps"}},
        {"status": "Downloading", "id": layer["a"],
         "progressDetail": {"current": 9000000, "total": 10000000, "start": start}},
        {"status": "Digest: sha256:" + "0" * 64},
        {"status": "Status: Downloaded newer image for standin:latest"},
    ]
    return "".join(json.dumps(m) + "\r\n" for m in msgs).encode()


@pytest.mark.parametrize("cols", [150, 80])
def test_progress_details_drawn_as_docker(tmp_path, cols):
    if not os.path.exists(DOCKER28):
        pytest.skip("docker 28 CLI (%s) is not installed" % DOCKER28)
    path = str(tmp_path / "d.sock")
    daemon = StandIn(path, _messages(int(time.time()) - 10))
    try:
        t = Target("unix://" + path, str(tmp_path / "cfg"))
        mine = _pty_for(t, [os.sys.executable, "-m", "pyrunc.cli", "pull", "standin"], 6,
                        cols=cols)
        theirs = _pty_for(t, [DOCKER28, "pull", "standin"], 6, cols=cols)
    finally:
        daemon.close()

    def shape(out):
        return re.sub(rb" (\d+h)?(\d+m)?\d+s\r", b" T\r", out)
    assert b"docker.io/library/standin:latest" in mine, mine
    if cols > 110:                                          # the bar, and the time left
        assert re.search(rb"\] +1MB/10MB 1m\d+s\r", mine), mine
    assert shape(mine) == shape(theirs), (mine, theirs)
