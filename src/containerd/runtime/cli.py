"""``pyrunc``: runc's command line over pyrunc.libcontainer.

Engines (containerd's runc shim, the pyrunc shim, pydockerd) call this many times per container,
so each command imports only what it needs. Errors print one line, ``pyrunc: <reason>``, go to
the ``--log`` file in runc's text or json format, and exit with the category's code (see
docs/cli.md).
"""
from __future__ import annotations

import os
import sys

from pyrunc.containerd.runtime.exec import EXEC_FLAGS
from pyrunc.containerd.runtime.flags import Flag, parse
from pyrunc.errors import InvalidArgument, NotFound, PyruncError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

VERSION = "0.1.0"
SPEC_VERSION = "1.2.0"
DEFAULT_ROOT = "/run/pyrunc"

GLOBAL_FLAGS = [
    Flag("root", default=DEFAULT_ROOT,
         help="root directory for storage of container state (default: %s)" % DEFAULT_ROOT),
    Flag("log", help="set the log file to write pyrunc logs to (default: stderr only)"),
    Flag("log-format", default="text", help="set the log format ('text' (default), or 'json')"),
    Flag("debug", kind=bool, help="enable debug logging"),
    Flag("systemd-cgroup", kind=bool,
         help='use the systemd cgroup driver; cgroupsPath is "slice:prefix:name"'),
    Flag("criu", default="criu", help="path to the criu binary used for checkpoint and restore"),
    Flag("rootless", default="auto", help="ignore cgroup permission errors (accepted for runc "
                                          "compatibility; pyrunc runs as root)"),
    Flag("help,h", kind=bool, help="show help"),
    Flag("version,v", kind=bool, help="print the version"),
]

CREATE_FLAGS = [
    Flag("bundle,b", default=".", help="path to the root of the bundle directory "
                                       "(default: the current directory)"),
    Flag("console-socket", help="path to an AF_UNIX socket which will receive the pty master"),
    Flag("pid-file", help="specify the file to write the process id to"),
    Flag("no-pivot", kind=bool, help="do not use pivot_root to jail the process inside rootfs"),
    Flag("no-new-keyring", kind=bool, help="do not create a new session keyring"),
    Flag("preserve-fds", kind=int, default=0,
         help="pass N additional file descriptors to the container"),
]
RUN_FLAGS = CREATE_FLAGS + [
    Flag("detach,d", kind=bool, help="detach from the container's process"),
    Flag("keep", kind=bool, help="do not delete the container after it exits"),
]


class Context:
    """What every command gets: the global flags and the log."""

    def __init__(self, gflags: Any, log: Any) -> None:
        self.root = os.path.abspath(gflags["root"])
        self.systemd_cgroup = gflags["systemd_cgroup"]
        self.log = log
        self.criu = gflags["criu"]

    def factory(self) -> Any:
        from pyrunc.libcontainer.container import Factory
        return Factory(root=self.root, systemd_cgroup=self.systemd_cgroup)

    def load(self, container_id: str) -> Any:
        return self.factory().load(container_id)


def _one_id(args, cmd, extra=0):
    if len(args) < 1 or (extra == 0 and len(args) > 1):
        raise InvalidArgument('%s: "%s" requires exactly 1 argument (container id)' % (cmd, cmd))
    return args[0]


def _preserve_fds(flags):
    n = flags["preserve_fds"]
    if n < 0:
        raise InvalidArgument("--preserve-fds: must not be negative")
    listen = os.environ.get("LISTEN_FDS")
    if listen and listen.isascii() and listen.isdigit():
        n += int(listen)
    return n


def _create(ctx, flags, container_id, console_socket=None):
    return ctx.factory().create(
        container_id, os.path.abspath(flags["bundle"]),
        console_socket=console_socket or flags["console_socket"],
        pid_file=flags["pid_file"] and os.path.abspath(flags["pid_file"]),
        no_pivot=flags["no_pivot"], no_new_keyring=flags["no_new_keyring"],
        preserve_fds=_preserve_fds(flags))


# -- commands ---------------------------------------------------------------------------------

def cmd_create(ctx: Any, flags: Any, args: Any) -> int:
    """create a container"""
    _create(ctx, flags, _one_id(args, "create"))
    return 0


def cmd_start(ctx: Any, flags: Any, args: Any) -> int:
    """executes the user defined process in a created container"""
    ctx.load(_one_id(args, "start")).start()
    return 0


def cmd_run(ctx: Any, flags: Any, args: Any) -> Any:
    """create and run a container"""
    from pyrunc.containerd.runtime import foreground
    return foreground.run(ctx, flags, _one_id(args, "run"), _create)


def cmd_state(ctx: Any, flags: Any, args: Any) -> int:
    """output the state of a container"""
    from pyrunc.libcontainer import jsoncodec
    state = ctx.load(_one_id(args, "state")).state()
    sys.stdout.write(jsoncodec.dumps(state, indent=2) + "\n")
    return 0


def cmd_kill(ctx: Any, flags: Any, args: Any) -> int:
    """kill sends the specified signal (default: SIGTERM) to the container's init process"""
    if not 1 <= len(args) <= 2:
        raise InvalidArgument('kill: "kill" requires a container id and an optional signal')
    from pyrunc.containerd.runtime.signals import parse_signal
    sig = parse_signal(args[1] if len(args) == 2 else "SIGTERM")
    ctx.load(args[0]).signal(sig, all=flags["all"])
    return 0


def cmd_delete(ctx: Any, flags: Any, args: Any) -> int:
    """delete any resources held by the container often used with detached container"""
    container_id = _one_id(args, "delete")
    try:
        container = ctx.load(container_id)
    except NotFound:
        # runc: with --force a container that does not exist is no error (exit 0, nothing
        # printed); containerd's shim relies on it. A malformed id is still InvalidArgument.
        if not ctx.factory().remove_unwritten(container_id) and not flags["force"]:
            raise
        return 0
    container.destroy(force=flags["force"])
    return 0


def cmd_list(ctx: Any, flags: Any, args: Any) -> int:
    """lists containers started by pyrunc with the given root"""
    states = [c.state() for c in ctx.factory().list()]
    if flags["quiet"]:
        out = "".join(s["id"] + "\n" for s in states)
    elif flags["format"] == "json":
        from pyrunc.libcontainer import jsoncodec
        out = jsoncodec.dumps(states, separators=(",", ":")) + "\n"
    elif flags["format"] == "table":
        out = _table(["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
                     [[s["id"], str(s.get("pid", 0)), s["status"], s["bundle"], s["created"],
                       s.get("owner") or "root"] for s in states])
    else:
        raise InvalidArgument('list: invalid format option %r: must be "table" or "json"'
                              % flags["format"])
    sys.stdout.write(out)
    return 0


def _table(header, rows):
    """Columns laid out like Go's tabwriter(minwidth 12, padding 3), as runc prints them."""
    widths = [max([12] + [len(r[i]) + 3 for r in [header] + rows]) for i in range(len(header))]
    lines = []
    for row in [header] + rows:
        cells = [c.ljust(w) for c, w in zip(row[:-1], widths)] + [row[-1]]
        lines.append("".join(cells) + "\n")
    return "".join(lines)


def cmd_spec(ctx: Any, flags: Any, args: Any) -> int:
    """create a new specification file"""
    from pyrunc.containerd.runtime.spec import example_spec
    path = os.path.join(flags["bundle"] or ".", "config.json")
    if os.path.exists(path):
        raise InvalidArgument("File config.json exists. Remove it first")
    from pyrunc.libcontainer import jsoncodec
    spec = example_spec(rootless=flags["rootless"])
    with open(path, "w") as f:
        f.write(jsoncodec.dumps(spec, indent="\t"))
    return 0


def cmd_features(ctx: Any, flags: Any, args: Any) -> int:
    """show the enabled features"""
    from pyrunc.libcontainer import jsoncodec
    from pyrunc.libcontainer.features import features
    sys.stdout.write(jsoncodec.dumps(features(), indent="    ") + "\n")
    return 0


def cmd_pause(ctx: Any, flags: Any, args: Any) -> int:
    """pause suspends all processes inside the container"""
    ctx.load(_one_id(args, "pause")).pause()
    return 0


def cmd_resume(ctx: Any, flags: Any, args: Any) -> int:
    """resumes all processes that have been previously paused"""
    ctx.load(_one_id(args, "resume")).resume()
    return 0


def cmd_ps(ctx: Any, flags: Any, args: Any) -> int:
    """ps displays the processes running inside a container"""
    if not args:
        raise InvalidArgument('ps: "ps" requires a container id')
    from pyrunc.containerd.runtime import observe
    observe.ps(ctx.load(args[0]), flags["format"], args[1:])
    return 0


def cmd_events(ctx: Any, flags: Any, args: Any) -> int:
    """display container events such as OOM notifications and usage statistics"""
    from pyrunc.containerd.runtime import observe
    observe.events(ctx.load(_one_id(args, "events")), flags["stats"], flags["interval"])
    return 0


def cmd_exec(ctx: Any, flags: Any, args: Any) -> Any:
    """execute new process inside the container"""
    from pyrunc.containerd.runtime import exec as exec_command
    return exec_command.run(ctx, flags, args, _preserve_fds(flags))


def cmd_update(ctx: Any, flags: Any, args: Any) -> int:
    """update container resource constraints"""
    from pyrunc.containerd.runtime import observe
    observe.update(ctx.load(_one_id(args, "update")), flags)
    return 0


UPDATE_FLAGS = [
    Flag("resources,r", help="path to a file with the resources to update (linux.resources "
                             "JSON), or '-' for stdin; other options are then ignored"),
    Flag("blkio-weight", help="per cgroup weight, 10 to 1000"),
    Flag("cpu-period", help="CPU CFS period (usecs)"),
    Flag("cpu-quota", help="CPU CFS hardcap limit (usecs) per period"),
    Flag("cpu-share", help="CPU shares (relative weight)"),
    Flag("cpu-rt-period", help="CPU realtime period (usecs)"),
    Flag("cpu-rt-runtime", help="CPU realtime hardcap limit (usecs)"),
    Flag("cpuset-cpus", help="CPU(s) to use"),
    Flag("cpuset-mems", help="memory node(s) to use"),
    Flag("memory", help="memory limit (bytes, or with k/m/g)"),
    Flag("memory-reservation", help="memory soft limit"),
    Flag("memory-swap", help="memory + swap limit; -1 for unlimited swap"),
    Flag("pids-limit", help="maximum number of pids"),
]


def cmd_checkpoint(ctx: Any, flags: Any, args: Any) -> int:
    """checkpoint a running container (through CRIU)"""
    from pyrunc.containerd.runtime import checkpoint
    checkpoint.checkpoint(ctx, flags, _one_id(args, "checkpoint"))
    return 0


def cmd_restore(ctx: Any, flags: Any, args: Any) -> Any:
    """restore a container from a previous checkpoint (through CRIU)"""
    from pyrunc.containerd.runtime import checkpoint
    return checkpoint.restore(ctx, flags, _one_id(args, "restore"))


def _criu_flags(values, switches):
    """runc's checkpoint/restore flags (see containerd/runtime/checkpoint.py)."""
    return ([Flag(n, help="as runc's") for n in values.split()] +
            [Flag(n, kind=bool, help="as runc's") for n in switches.split()])


CHECKPOINT_FLAGS = _criu_flags(
    "image-path work-path parent-path status-fd page-server manage-cgroups-mode empty-ns",
    "leave-running tcp-established ext-unix-sk shell-job lazy-pages file-locks pre-dump "
    "auto-dedup")
RESTORE_FLAGS = _criu_flags(
    "console-socket image-path work-path manage-cgroups-mode bundle,b pid-file empty-ns "
    "lsm-profile lsm-mount-context",
    "tcp-established ext-unix-sk shell-job file-locks detach,d no-subreaper no-pivot "
    "auto-dedup lazy-pages")


# Commands whose arguments after the container id belong to another program.
TRAILING_ARGS = {"ps", "exec"}

COMMANDS = {
    "create": (cmd_create, CREATE_FLAGS, "<container-id>"),
    "start": (cmd_start, [], "<container-id>"),
    "run": (cmd_run, RUN_FLAGS, "<container-id>"),
    "state": (cmd_state, [], "<container-id>"),
    "kill": (cmd_kill, [Flag("all,a", kind=bool,
                             help="send the signal to all processes in the container")],
             "<container-id> [signal]"),
    "delete": (cmd_delete, [Flag("force,f", kind=bool,
                                 help="delete the container even if it is running (SIGKILL)")],
               "<container-id>"),
    "list": (cmd_list, [Flag("format,f", default="table", help="select one of: table or json"),
                        Flag("quiet,q", kind=bool, help="display only container IDs")], ""),
    "spec": (cmd_spec, [Flag("bundle,b", help="path to the root of the bundle directory"),
                        Flag("rootless", kind=bool,
                             help="generate a configuration for a rootless container")], ""),
    "features": (cmd_features, [], ""),
    "pause": (cmd_pause, [], "<container-id>"),
    "resume": (cmd_resume, [], "<container-id>"),
    "ps": (cmd_ps, [Flag("format,f", default="table", help="select one of: table or json")],
           "<container-id> [ps options]"),
    "events": (cmd_events, [Flag("interval", default="5s",
                                 help="set the stats collection interval (default: 5s)"),
                            Flag("stats", kind=bool,
                                 help="display the container's stats then exit")],
               "<container-id>"),
    "checkpoint": (cmd_checkpoint, CHECKPOINT_FLAGS, "<container-id>"),
    "restore": (cmd_restore, RESTORE_FLAGS, "<container-id>"),
    "update": (cmd_update, UPDATE_FLAGS, "<container-id>"),
    "exec": (cmd_exec, EXEC_FLAGS, "<container-id> <command> [command options]  ||  "
                             "-p process.json <container-id>"),
}


# -- help and main ----------------------------------------------------------------------------

def _usage():
    lines = ["NAME:", "   pyrunc - an OCI container runtime with runc's command line", "",
             "USAGE:", "   pyrunc [global options] command [command options] [arguments...]", "",
             "VERSION:", "   %s (spec %s)" % (VERSION, SPEC_VERSION), "", "COMMANDS:"]
    for name, (fn, _, _) in COMMANDS.items():
        lines.append("   %-10s  %s" % (name, fn.__doc__))
    lines += ["", "GLOBAL OPTIONS:"] + ["   %-22s  %s" % (f.spelling(), f.help)
                                      for f in GLOBAL_FLAGS]
    return "\n".join(lines) + "\n"


def _command_usage(name):
    fn, flags, argspec = COMMANDS[name]
    lines = ["NAME:", "   pyrunc %s - %s" % (name, fn.__doc__), "", "USAGE:",
             "   pyrunc %s [command options] %s" % (name, argspec)]
    if flags:
        lines += ["", "OPTIONS:"] + ["   %-28s  %s" % (f.spelling(), f.help) for f in flags]
    return "\n".join(lines) + "\n"


def main(argv: Any = None) -> Any:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["create-server"]:     # internal: the lifecycle manager's warm create path
        from pyrunc.containerd.shim import warm
        return _internal(warm.serve, argv[1:])
    from pyrunc.containerd.runtime.log import Log
    log = Log()
    try:
        # Global flags come before the command, as with runc.
        gflags, rest = parse(GLOBAL_FLAGS, argv, "pyrunc", interleave=False)
        log = Log(gflags["log"], gflags["log_format"], gflags["debug"])
        if gflags["log_format"] not in ("text", "json"):
            raise InvalidArgument("--log-format: unknown format %r (text or json)"
                                  % gflags["log_format"])
        if gflags["version"]:
            sys.stdout.write("pyrunc version %s\nspec: %s\n" % (VERSION, SPEC_VERSION))
            return 0
        if gflags["help"] or not rest or rest[0] in ("help", "h"):
            if len(rest) > 1 and rest[1] in COMMANDS:
                sys.stdout.write(_command_usage(rest[1]))
            else:
                sys.stdout.write(_usage())
            return 0
        name, cargs = rest[0], rest[1:]
        if name not in COMMANDS:
            raise InvalidArgument("No help topic for %r: unknown command" % name)
        fn, cflags, _ = COMMANDS[name]
        own = cargs
        if name in TRAILING_ARGS:   # "exec ID ls -h": that -h is the command's
            own = cargs[:next((i for i, a in enumerate(cargs) if not a.startswith("-")),
                              len(cargs))]
        if "--help" in own or "-h" in own:
            sys.stdout.write(_command_usage(name))
            return 0
        values, positional = parse(cflags, cargs, name, interleave=name not in TRAILING_ARGS)
        from pyrunc.errors import set_warning_sink
        set_warning_sink(log.warning)
        return fn(Context(gflags, log), values, positional)
    except PyruncError as e:
        log.error(str(e))
        if getattr(e, "hint", None):
            sys.stderr.write("pyrunc: hint: %s\n" % e.hint)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # an unexpected failure is still one line unless --debug
        if log.debug_enabled:
            raise
        log.error("internal error: %s: %s" % (type(e).__name__, e))
        return 1


def _internal(command, args):
    """An internal command (not runc's, not in the help): its errors as the commands'."""
    from pyrunc.containerd.runtime.log import Log
    try:
        return command(args)
    except PyruncError as e:
        Log().error(str(e))
        return e.exit_code


def entry() -> None:
    """The ``pyrunc`` program: ``main``, then an exit without the interpreter's finalization.

    Finalization costs each command 3-5 ms and does nothing a command needs: the commands close
    what they open, and the log is written line by line with os.write. Only stdio's buffers
    are left, and they are flushed here; output that cannot be written (a closed pipe) is an
    error of the command, as it would be at the interpreter's exit."""
    code = main()
    try:
        sys.stdout.flush()
    except OSError as e:
        _report_lost_output(e)
        code = code or 1
    try:
        sys.stderr.flush()
    except OSError:
        pass
    os._exit(code)


def _report_lost_output(error):
    try:
        os.write(2, ("pyrunc: write stdout: %s\n" % os.strerror(error.errno).lower()).encode())
    except OSError:
        pass


if __name__ == "__main__":
    entry()
