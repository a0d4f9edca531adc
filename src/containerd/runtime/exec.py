"""``pyrunc exec``: run a process in a running container, with runc's flags.

The process is ``--process FILE`` (a runtime-spec ``process`` object, flags other than the
runtime's own ignored, as runc does), or the container's own config.json process with the
command after the id and the flags laid over it (``--env`` appended, ``--cap`` added to the
bounding, effective and permitted sets, ``--user``, ``--cwd``, ``--additional-gids``,
``--no-new-privs``, ``--tty``).

In the foreground the exec'd process is our child: signals are forwarded to it, with ``--tty``
and no ``--console-socket`` its pty is proxied to our terminal, and its exit status is ours.
With ``--detach`` the command returns once the process runs.
"""
from __future__ import annotations

import os

from pyrunc.containerd.runtime.flags import Flag
from pyrunc.errors import InvalidArgument, NotFound, SystemFailure, Unavailable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

UNSET = "unset"

EXEC_FLAGS = [
    Flag("console-socket", help="path to an AF_UNIX socket which will receive the pty master"),
    Flag("cwd", help="current working directory in the container"),
    Flag("env,e", kind=list, help="set environment variables (repeatable)"),
    Flag("tty,t", kind=bool, help="allocate a pseudo-TTY"),
    Flag("user,u", help="UID (format: <uid>[:<gid>])"),
    Flag("additional-gids,g", kind=list, help="additional gids (repeatable)"),
    Flag("process,p", help="path to the process.json"),
    Flag("detach,d", kind=bool, help="detach from the container's process"),
    Flag("pid-file", help="specify the file to write the process id to"),
    Flag("process-label", help="set the asm process label for the process commonly used "
                               "with selinux"),
    Flag("apparmor", help="set the apparmor profile for the process"),
    Flag("no-new-privs", kind=bool, default=UNSET,
         help="set the no new privileges value for the process"),
    Flag("cap,c", kind=list, help="add a capability to the bounding set for the process "
                                 "(repeatable)"),
    Flag("preserve-fds", kind=int, default=0,
         help="pass N additional file descriptors to the container"),
    Flag("ignore-paused", kind=bool, help="allow exec in a paused container"),
]


def run(ctx: Any, flags: Any, args: Any, preserve_fds: Any) -> Any:
    """The exec command; returns pyrunc's exit code."""
    if not args:
        raise InvalidArgument('exec: "exec" requires a container id and a command')
    container = ctx.load(args[0])
    if flags["process"]:
        process, source, path = _read_process_file(flags["process"]), "process.json", ""
    else:
        if len(args) < 2:
            raise InvalidArgument("exec: process args cannot be empty")
        process = process_from_flags(container.config.get("process") or {}, args[1:], flags)
        source, path = "config.json", "process"
    pid_file = flags["pid_file"] and os.path.abspath(flags["pid_file"])
    options = dict(pid_file=pid_file, preserve_fds=preserve_fds,
                   ignore_paused=flags["ignore_paused"], source=source, json_path=path)
    if flags["detach"]:
        container.exec(process, console_socket=flags["console_socket"], **options)
        return 0

    from pyrunc.containerd.runtime import foreground
    console = None
    if process.get("terminal") is True and not flags["console_socket"]:
        console = foreground.ConsoleReceiver()
    with foreground.Signals() as signals:
        try:
            pid = container.exec(process, console_socket=console.path if console
                                 else flags["console_socket"], **options)
            master = console.receive() if console else None
        finally:
            if console:
                console.close()
        return foreground.supervise(signals, pid, master)


def _read_process_file(path):
    from pyrunc.libcontainer.ocispec.load import decode, read_limited
    try:
        data = read_limited(path, "process.json")
    except FileNotFoundError:
        raise NotFound("--process %s: no such file" % path) from None
    except OSError as e:
        raise SystemFailure("read %s" % path, e.errno) from None
    doc = decode(data, "process.json")    # bounded in size and depth, one-line errors
    if not isinstance(doc, dict):
        raise InvalidArgument("process.json: must be a JSON object")
    return doc


def process_from_flags(base: Any, args: Any, flags: Any) -> Any:
    """The container's process ``base`` (a dict) with ``args`` and the flags laid over it."""
    from pyrunc.libcontainer import jsoncodec
    p = jsoncodec.loads(jsoncodec.dumps(base))   # a deep copy
    p["args"] = list(args)
    p.pop("consoleSize", None)
    if flags["cwd"]:
        if not flags["cwd"].startswith("/"):
            raise InvalidArgument("--cwd %s: must be an absolute path" % flags["cwd"])
        p["cwd"] = flags["cwd"]
    # pyrunc applies no LSM profile or label: refused on every host (docs/unsupported.md).
    if flags["apparmor"]:
        raise Unavailable("--apparmor: not supported by pyrunc")
    if flags["process_label"]:
        raise Unavailable("--process-label: not supported by pyrunc")
    if flags["cap"]:
        sets = p.setdefault("capabilities", {})
        for name in ("bounding", "effective", "permitted"):
            sets[name] = list(sets.get(name) or []) + list(flags["cap"])
    for entry in flags["env"]:
        if "=" not in entry or entry.startswith("="):
            raise InvalidArgument("--env %s: must be NAME=value" % entry)
    p["env"] = list(p.get("env") or []) + list(flags["env"])
    p["terminal"] = bool(flags["tty"])
    if flags["no_new_privs"] != UNSET:
        p["noNewPrivileges"] = flags["no_new_privs"]
    user = p.setdefault("user", {"uid": 0, "gid": 0})
    if flags["user"]:
        uid, sep, gid = flags["user"].partition(":")
        user["uid"] = _id("--user", "uid", uid)
        if sep:
            user["gid"] = _id("--user", "gid", gid)
    for text in flags["additional_gids"]:
        gids = user.setdefault("additionalGids", [])
        gids.append(_id("--additional-gids", "gid", text))
    return p


def _id(flag, what, text):
    if not (text.isascii() and text.isdigit()) or int(text) >= 1 << 32:
        raise InvalidArgument("%s: %s %r: must be a number from 0 to 4294967295"
                              % (flag, what, text))
    return int(text)
