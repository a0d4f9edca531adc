"""The HTTP layer of pydockerd: docker's ping, version negotiation, error bodies and statuses,
and what a hostile or slow client sends (raw sockets, so nothing smooths the bytes)."""
import json
import os
import socket
import threading
import time

import pytest


def raw(daemon, data, timeout=10, shut=True):
    """Send ``data`` on a new connection; everything the daemon answers until it closes."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(daemon.sock)
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                piece = s.recv(65536)
            except socket.timeout:
                break
            if not piece:
                break
            out += piece
        return out
    finally:
        s.close()


def status_of(response):
    return int(response.split(b" ", 2)[1])


def body_of(response):
    return response.split(b"\r\n\r\n", 1)[1]


def test_ping_as_docker(dockerd):
    status, headers, body = dockerd.request("GET", "/_ping")
    assert (status, body) == (200, b"OK")
    assert headers["api-version"] == "1.43"
    assert headers["ostype"] == "linux"
    assert headers["docker-experimental"] == "false"
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["server"].startswith("Docker/") and headers["server"].endswith("(linux)")
    assert "no-cache" in headers["cache-control"]
    status, headers, body = dockerd.request("HEAD", "/_ping")
    assert (status, body, headers["content-length"]) == (200, b"", "0")
    assert headers["api-version"] == "1.43"


def test_version_prefixes(dockerd):
    for path in ("/version", "/v1.24/version", "/v1.41/version", "/v1.43/version"):
        status, _, body = dockerd.request("GET", path)
        assert status == 200, path
        doc = json.loads(body)
        assert doc["ApiVersion"] == "1.43" and doc["MinAPIVersion"] == "1.24"
        assert [c["Name"] for c in doc["Components"]][0] == "Engine"
    status, _, body = dockerd.request("GET", "/v1.99/version")
    assert status == 400
    assert json.loads(body) == {"message": "client version 1.99 is too new. Maximum supported "
                                           "API version is 1.43"}
    status, _, body = dockerd.request("GET", "/v1.12/version")
    assert status == 400
    assert json.loads(body)["message"].startswith("client version 1.12 is too old. Minimum "
                                                  "supported API version is 1.24")
    for bad in ("/vx.y/version", "/v/version", "/v1.2.3.4/version", "/v-1/version"):
        status, _, body = dockerd.request("GET", bad)
        assert status in (400, 404), bad
        assert "message" in json.loads(body)


def test_cli_negotiates_down(dockerd, cli):
    r = dockerd.docker("version", "--format", "{{.Client.APIVersion}} {{.Server.APIVersion}} "
                       "{{.Server.MinAPIVersion}}", cli=cli)
    client_api, server_api, min_api = r.stdout.split()
    assert (server_api, min_api) == ("1.43", "1.24")
    assert tuple(map(int, client_api.split("."))) <= (1, 43)


def test_sdk_negotiates(dockerd):
    client = dockerd.client()
    try:
        assert client.api.api_version == "1.43"
        assert client.ping() is True
        assert client.version()["ApiVersion"] == "1.43"
    finally:
        client.close()


def test_unknown_route_and_method(dockerd):
    for method, path in (("GET", "/nope"), ("POST", "/_ping"), ("PUT", "/version"),
                         ("GET", "/v1.43/images/x/nonsense")):
        status, headers, body = dockerd.request(method, path)
        assert status == 404, (method, path)
        assert headers["content-type"] == "application/json"
        assert json.loads(body) == {"message": "page not found"}


def test_not_found_error_is_docker_shaped(dockerd):
    status, _, body = dockerd.request("GET", "/images/nosuchimage/json")
    assert status == 404
    assert "nosuchimage" in json.loads(body)["message"]


def test_bad_json_body(dockerd):
    status, _, body = dockerd.request("POST", "/volumes/create", body=b"{not json",
                                      headers={"Content-Type": "application/json"})
    assert status == 400
    assert json.loads(body)["message"].startswith("invalid JSON in request body")
    status, _, body = dockerd.request("POST", "/volumes/create", body=b"[1, 2]")
    assert status == 400
    status, _, body = dockerd.request("POST", "/volumes/create",
                                      body=json.dumps({"Name": 5}).encode())
    assert (status, json.loads(body)) == (400, {"message": "Name must be a string"})


def test_huge_json_body_refused_without_reading_it_all(dockerd):
    size = 64 << 20
    head = (b"POST /volumes/create HTTP/1.1\r\nHost: d\r\nContent-Length: %d\r\n"
            b"Content-Type: application/json\r\n\r\n" % size)
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(dockerd.sock)
    try:
        s.sendall(head)
        chunk = b" " * (1 << 20)
        sent = 0
        try:
            while sent < size:
                s.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = s.recv(65536)
    finally:
        s.close()
    assert status_of(answer) == 413
    assert b"larger than" in body_of(answer)
    # and the daemon still serves
    assert dockerd.request("GET", "/_ping")[0] == 200


def test_malformed_requests(dockerd):
    for data in (b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                 b"POST /volumes/create HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                 b"POST /volumes/create HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                 b"POST /volumes/create HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                 b"GET /_ping HTTP/1.1\r\n" + b"X: " + b"a" * 70000 + b"\r\n\r\n",
                 b"GET /images/json?filters=%ZZ HTTP/1.1\r\n\r\n",
                 b"GET /images/json?filters={bad HTTP/1.1\r\n\r\n",
                 b"GET /images/json?" + b"&".join(b"a%d=1" % i for i in range(3000)) +
                 b" HTTP/1.1\r\n\r\n",
                 b"GET /_ping HTTP/1.1\r\n" + b"".join(b"X%d: y\r\n" % i for i in range(200))
                 + b"\r\n"):
        answer = raw(dockerd, data)
        # a client error, or 505 for a version of HTTP that does not exist
        assert 400 <= status_of(answer) < 500 or status_of(answer) == 505, \
            (data[:60], answer[:200])
        assert "message" in json.loads(body_of(answer)), answer[:200]
    assert dockerd.request("GET", "/_ping")[0] == 200


def test_chunked_body_and_keep_alive(dockerd):
    body = json.dumps({"Name": "chunky"}).encode()
    req = (b"POST /volumes/create HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n"
           + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
           + b"GET /volumes/chunky HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
    answer = raw(dockerd, req, shut=False)
    first, second = answer.split(b"HTTP/1.1 ", 2)[1:]
    assert first.startswith(b"201 ") and second.startswith(b"200 ")
    assert json.loads(second.split(b"\r\n\r\n", 1)[1])["Name"] == "chunky"


def test_path_traversal_in_names(dockerd):
    for path in ("/volumes/..%2f..%2fetc", "/volumes/%2e%2e", "/images/..%2f..%2fetc%2fpasswd/json",
                 "/volumes/a%00b"):
        status, _, body = dockerd.request("GET", path)
        assert status in (400, 404), path
        assert "message" in json.loads(body)
    status, _, body = dockerd.request("POST", "/volumes/create",
                                      body=json.dumps({"Name": "../../etc"}).encode())
    assert status == 400
    assert dockerd.request("DELETE", "/volumes/..%2F..")[0] in (400, 404)


def test_slow_client_blocks_nobody(dockerd):
    """A client that sends half a request line and stalls, and one that sends a body
    byte by byte, hold only their own connections."""
    stalled = []
    for _ in range(20):
        s = socket.socket(socket.AF_UNIX)
        s.connect(dockerd.sock)
        s.sendall(b"GET /_pi")
        stalled.append(s)
    slow = socket.socket(socket.AF_UNIX)
    slow.connect(dockerd.sock)
    slow.sendall(b"POST /volumes/create HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
    stop = threading.Event()

    def dribble():
        while not stop.wait(0.2):
            try:
                slow.sendall(b" ")
            except OSError:
                return
    t = threading.Thread(target=dribble)
    t.start()
    try:
        t0 = time.monotonic()
        for _ in range(20):
            assert dockerd.request("GET", "/_ping", timeout=5)[0] == 200
        assert time.monotonic() - t0 < 5
        assert dockerd.docker("version").returncode == 0
    finally:
        stop.set()
        t.join()
        slow.close()
        for s in stalled:
            s.close()


def test_events_stream_does_not_block_others(dockerd):
    """A follower of /events keeps its connection while other requests are served, and
    sees an event they cause."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(15)
    s.connect(dockerd.sock)
    s.sendall(b'GET /events?filters={"type":["volume"]} HTTP/1.1\r\nHost: d\r\n\r\n')
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    assert b"Transfer-Encoding: chunked" in head
    dockerd.docker("volume", "create", "evvol")
    data = head.split(b"\r\n\r\n", 1)[1]
    deadline = time.monotonic() + 10
    while b"evvol" not in data and time.monotonic() < deadline:
        data += s.recv(4096)
    s.close()
    line = [x for x in data.split(b"\r\n") if x.startswith(b"{")][0]
    event = json.loads(line)
    assert (event["Type"], event["Action"], event["Actor"]["ID"]) == ("volume", "create",
                                                                      "evvol")


def test_build_cache_prune_deletes_nothing(dockerd):
    status, _, body = dockerd.request("POST", "/build/prune")
    assert (status, json.loads(body)) == (200, {"CachesDeleted": None, "SpaceReclaimed": 0})
    status, _, body = dockerd.request("POST", "/build/prune?filters=%7Bbad")
    assert status == 400 and "invalid filter" in json.loads(body)["message"]


def _threads(daemon):
    with open(daemon.pidfile) as f:
        return len(os.listdir("/proc/%d/task" % int(f.read())))


def test_quiet_event_followers_that_leave_free_their_threads(dockerd):
    """Followers of /events that see no event and hang up: their threads end (the stream
    notices the closed connection without having to write to it)."""
    base = _threads(dockerd)
    followers = []
    for _ in range(20):
        s = socket.socket(socket.AF_UNIX)
        s.connect(dockerd.sock)
        s.sendall(b'GET /events?filters={"type":["network"]} HTTP/1.1\r\nHost: d\r\n\r\n')
        followers.append(s)
    for s in followers:
        assert s.recv(12) == b"HTTP/1.1 200"
    assert _threads(dockerd) >= base + 18     # one thread each (base may hold a passing one)
    for s in followers:
        s.close()
    deadline = time.monotonic() + 15
    while _threads(dockerd) > base + 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _threads(dockerd) <= base + 2


def test_hostile_names_never_500(dockerd):
    """Random and crafted names in every name-taking image and volume route: a 4xx with one
    line of docker's JSON, never a server error."""
    import random
    import urllib.parse
    rng = random.Random(1313)
    alphabet = "abcAZ09._-/:@%\\\n\t\x00 ..~$#?&=+*é\u202e"
    names = ["..", "../..", "/etc/passwd", "a" * 5000, "sha256:" + "0" * 64, "sha256:zz",
             "busybox@sha256:" + "1" * 64, "UPPER", "a//b", ":tag", "@", "-", "\x00"]
    names += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
              for _ in range(150)]
    for name in names:
        q = urllib.parse.quote(name, safe="")
        for method, path in (("GET", "/images/%s/json" % q), ("GET", "/images/%s/history" % q),
                             ("DELETE", "/images/%s" % q),
                             ("POST", "/images/busybox/tag?repo=%s" % q),
                             ("POST", "/images/%s/tag?repo=x" % q),
                             ("GET", "/images/%s/get" % q),
                             ("GET", "/volumes/%s" % q), ("DELETE", "/volumes/%s" % q),
                             ("POST", "/images/create?fromImage=%s&tag=%s" % (q, q))):
            status, _, body = dockerd.request(method, path)
            assert status in (200, 201, 400, 404, 409), (method, path, status, body[:300])
            if status >= 400:
                message = json.loads(body)["message"]
                assert "\n" not in message.strip(), (method, path, message)
    assert dockerd.request("GET", "/_ping")[0] == 200
    assert "Traceback" not in dockerd.output()
