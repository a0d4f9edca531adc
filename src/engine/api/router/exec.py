"""Exec routes (moby's router/container, exec half): create, start, inspect, resize.

An attached start hijacks the connection, then runs the process (its output is held by the shim
from its first byte) and streams, as the container router's attach does. A process that
cannot start is reported as dockerd does: the error's text on the stream, the exit code
(126/127) in the exec's inspect.
"""
from __future__ import annotations

import time

from pyrunc.engine.api import httputils
from pyrunc.engine.api.router.containers import (DEFAULT_DETACH_KEYS, EXIT, STDOUT,
                                                 AttachSession,
                                                 _dimension, frame, parse_detach_keys,
                                                 stream_type)
from pyrunc.engine.api.server import Route
from pyrunc.errors import Conflict, InvalidArgument, PyruncError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyrunc.engine.daemon import Engine

# How long a finished exec's attach waits for its exit code to be recorded before it closes
# the stream (the client asks for the code as soon as the stream ends).
EXIT_RECORD_TIMEOUT = 10.0
# How long a resize waits for its exec to start (dockerd's wait).
RESIZE_WAIT = 10.0


class Execs:
    """The handlers, over ``engine.containers``' exec calls."""

    def __init__(self, engine: Engine) -> None:
        self.service = engine.containers

    # POST /containers/{name}/exec
    def create(self, req: httputils.Request) -> httputils.Response:
        config = req.json_object(required=True)
        keys = config.get("DetachKeys")
        if keys:
            if not isinstance(keys, str):
                raise InvalidArgument("exec config: DetachKeys must be a string")
            parse_detach_keys(keys)
        exec_id = self.service.exec_create(req.params["name"], config)
        return httputils.json_response({"Id": exec_id}, 201)

    def inspect(self, req: httputils.Request) -> httputils.Response:
        return httputils.json_response(self.service.exec_inspect(req.params["id"]))

    def resize(self, req: httputils.Request) -> httputils.Response:
        """Size the exec's terminal; as dockerd, an exec not started yet is waited for (the
        client resizes as soon as its start request is answered)."""
        h, w = _dimension(req, "h"), _dimension(req, "w")
        exec_id = req.params["id"]
        deadline = time.monotonic() + RESIZE_WAIT
        while True:
            try:
                self.service.exec_resize(exec_id, h, w)
                return httputils.no_content(200)
            except Conflict:
                info = self.service.exec_inspect(exec_id)
                if info["ExitCode"] is not None or time.monotonic() > deadline:
                    raise
            time.sleep(0.02)

    # POST /exec/{id}/start
    def start(self, req: httputils.Request) -> httputils.Response | None:
        body = req.json_object()
        detach, tty = body.get("Detach", False), body.get("Tty", False)
        if not isinstance(detach, bool) or not isinstance(tty, bool):
            raise InvalidArgument("exec start: Detach and Tty must be booleans")
        size = body.get("ConsoleSize")
        if size is not None and (not isinstance(size, list) or len(size) != 2 or not all(
                isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 65535
                for v in size)):
            raise InvalidArgument("exec start: ConsoleSize must be [height, width]")
        exec_id = req.params["id"]
        info = self.service.exec_inspect(exec_id)      # 404 before anything is started
        tty = tty or bool(info["ProcessConfig"]["tty"])
        if detach:
            self.service.exec_start(exec_id, detach=True, tty=tty)
            return httputils.no_content(200)
        keys = parse_detach_keys(info["DetachKeys"] or DEFAULT_DETACH_KEYS)
        # dockerd's order: the client has the upgrade before the process runs (a client may
        # read the response's head in a buffer; output sent with it would be lost there)
        conn = req.hijack(stream_type(req, tty))
        try:
            proc = self.service.exec_start(exec_id, detach=False, tty=tty)
        except PyruncError as e:        # dockerd: the reason on the stream, 126/127 in inspect
            text = e.message.encode(errors="replace") + b"\r\n"
            try:
                conn.sendall(text if tty else frame(STDOUT, text))
            except OSError:
                pass
            conn.close_write()
            return None
        if size is not None and tty and size != [0, 0]:
            try:
                self.service.exec_resize(exec_id, size[0], size[1])
            except PyruncError:
                pass                    # exited already
        assert proc.attachment is not None
        session = AttachSession(conn, tty=tty, stdout=bool(info["OpenStdout"]),
                                stderr=bool(info["OpenStderr"]), stdin=bool(info["OpenStdin"]),
                                close_stdin=True, detach_keys=keys)
        try:
            session.run(_RecordedExit(proc, self.service, exec_id))
        finally:
            session.finish()
        return None


class _RecordedExit:
    """An exec's attachment whose end waits until the exit code is recorded, so the client's
    inspect right after the stream ends sees it."""

    def __init__(self, proc: Any, service: Any, exec_id: str) -> None:
        self.proc = proc
        self.attachment = proc.attachment
        self.sock = self.attachment.sock
        self.service = service
        self.exec_id = exec_id

    def read(self) -> tuple[Any, ...]:
        stream, data = self.attachment.read()
        if stream == EXIT:
            try:
                self.service.execs.wait(self.exec_id, EXIT_RECORD_TIMEOUT)
            except (PyruncError, TimeoutError):
                pass
        return stream, data

    def write(self, data: bytes) -> None:
        self.attachment.write(data)

    def close_stdin(self) -> None:
        self.attachment.close_stdin()

    def close(self) -> None:
        self.attachment.close()


def routes(engine: Engine) -> list[Route]:
    """The exec routes."""
    e = Execs(engine)
    return [
        Route("POST", "/containers/{name}/exec", e.create),
        Route("POST", "/exec/{id}/start", e.start),
        Route("POST", "/exec/{id}/resize", e.resize),
        Route("GET", "/exec/{id}/json", e.inspect),
    ]
