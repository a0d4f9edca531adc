"""A corrupt metadata document (names.json, images.json, volumes.json, metadata.json): a
one-line error naming the file and the reason, the file left as it was; through pydockerd an
HTTP 500 whose message is that line."""
import http.client
import json
import os
import socket
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc import errors
from pyrunc.engine.metadata import locked_document

pytestmark = pytest.mark.usefixtures("private_mount_ns")

CORRUPT = [
    (b"", "Expecting value"),
    (b'{"images": {', "Expecting"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    (b"[]", "a JSON array, not object"),
    (b"null", "a JSON null, not object"),
    (b'{"a": 1}{"b": 2}', "Extra data"),
]


@pytest.mark.parametrize("data, reason", CORRUPT, ids=[r for _, r in CORRUPT])
@pytest.mark.parametrize("write", [True, False])
def test_corrupt_document_is_one_line_naming_file_and_reason(tmp_path, data, reason, write):
    path = tmp_path / "names.json"
    path.write_bytes(data)
    with pytest.raises(errors.SystemFailure) as e:
        with locked_document(str(tmp_path), "names.json", dict, write=write) as doc:
            doc["x"] = 1
    text = str(e.value)
    assert "\n" not in text
    assert text.startswith("read %s: corrupt document: " % path)
    assert reason in text
    assert path.read_bytes() == data            # nothing written over it
    assert not os.path.exists(str(path) + ".tmp")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_read_as_a_document_or_refused_in_one_line(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("meta")
    (root / "doc.json").write_bytes(data)
    try:
        with locked_document(str(root), "doc.json", dict, write=False) as doc:
            assert isinstance(doc, dict)
            assert doc == json.loads(data)
    except errors.SystemFailure as e:
        assert "\n" not in str(e) and str(root / "doc.json") in str(e)


def _request(sock, path):
    class Conn(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.settimeout(30)
            self.sock.connect(sock)
    c = Conn("localhost", timeout=30)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def test_pydockerd_answers_500_with_the_line(tmp_path):
    root, sock = str(tmp_path / "root"), str(tmp_path / "d.sock")
    log = open(tmp_path / "log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "pyrunc.engine.dockerd", "-H", "unix://" + sock,
                             "--data-root", root, "--exec-root", str(tmp_path / "exec"),
                             "--pidfile", str(tmp_path / "pid"), "--bridge=none"], stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "log").read_text()
            try:
                if _request(sock, "/_ping")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "pydockerd did not answer"
            time.sleep(0.05)
        assert _request(sock, "/images/json")[0] == 200
        path = os.path.join(root, "image", "images", "images.json")
        with open(path, "wb") as f:
            f.write(b'{"images": {"sha256:')
        status, body = _request(sock, "/images/json")
        assert status == 500
        message = json.loads(body)["message"]
        assert message.startswith("read %s: corrupt document: " % path)
        assert "\n" not in message
        assert _request(sock, "/_ping")[0] == 200       # the daemon goes on serving
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def test_names_lost_with_the_unsynced_index_are_put_back_at_start(fresh_engine):
    """names.json is written without fsync: an operating-system crash may lose its last writes
    (or leave it empty, which a deleted file stands for here). The next engine on the root puts
    every container's name back from the records, so the name stays taken (docker's 409 text)
    and resolves."""
    from pyrunc.engine import Engine
    fresh_engine.load_builtin("busybox")
    cid = fresh_engine.containers.create({"Image": "busybox", "Cmd": ["true"]},
                                         name="kept")["Id"]
    index = os.path.join(fresh_engine.containers.store.root, "names.json")
    os.unlink(index)
    with pytest.raises(errors.NotFound):
        fresh_engine.containers.get("kept")             # lost: the failure the restore prevents
    again = Engine(fresh_engine.root)
    assert json.load(open(index)) == {"/kept": cid}
    assert again.containers.get("kept").id == cid
    with pytest.raises(errors.Conflict) as e:
        again.containers.create({"Image": "busybox", "Cmd": ["true"]}, name="kept")
    assert str(e.value) == ('Conflict. The container name "/kept" is already in use by container '
                            '"%s". You have to remove (or rename) that container to be able to '
                            'reuse that name.' % cid)
