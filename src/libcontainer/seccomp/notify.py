"""The seccomp agent protocol: hand the notify fd to the listener at ``listenerPath``.

As runc does, the runtime connects to the unix socket ``listenerPath`` and sends, in one
message, the JSON of the container process state (runtime-spec ``ContainerProcessState``) with
the listener fd attached as SCM_RIGHTS; ``fds`` names that fd ``seccompFd``.
"""
from __future__ import annotations

from pyrunc.errors import SystemFailure
from pyrunc.libcontainer import jsoncodec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SECCOMP_FD_NAME = "seccompFd"
OCI_VERSION = "1.2.0"


def process_state(state: Any, metadata: str = "", pid: int | None = None) -> Any:
    """The ``ContainerProcessState`` document for the container ``state`` (runtime-spec State,
    as a dict or its JSON text)."""
    if isinstance(state, (bytes, str)):
        state = jsoncodec.loads(state)
    doc = {"ociVersion": state.get("ociVersion", OCI_VERSION), "fds": [SECCOMP_FD_NAME],
           "pid": state.get("pid", 0) if pid is None else pid, "state": state}
    if metadata:
        doc["metadata"] = metadata
    return doc


def send_to_listener(listener_path: Any, notify_fd: Any, state: Any, metadata: str = "",
                     pid: int | None = None) -> None:
    """Connect to ``listener_path`` and send the process state with ``notify_fd`` attached.

    ``state`` is the container's runtime-spec state (ociVersion, id, status, pid, bundle,
    annotations), a dict or its JSON text as given to hooks; ``pid`` is the process the filter
    belongs to (default: ``state["pid"]``). The caller keeps ``notify_fd`` and closes it.
    """
    import array
    import socket
    payload = jsoncodec.dumps(process_state(state, metadata, pid), separators=(",", ":")).encode()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        try:
            sock.connect(listener_path)
        except OSError as e:
            raise SystemFailure("seccomp: connect to the listener %s" % listener_path, e.errno,
                                hint="is the seccomp agent running?") from None
        fds = array.array("i", [notify_fd])
        try:
            sent = sock.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        except OSError as e:
            raise SystemFailure("seccomp: send the notify fd to %s" % listener_path,
                                e.errno) from None
        if sent != len(payload):
            raise SystemFailure("seccomp: send the notify fd to %s" % listener_path, 0,
                                "short write")
    finally:
        sock.close()
