"""``pydocker``: global options, the command table, dispatch and docker's error reporting.

Only the module of the command asked for is imported (``pydocker ps`` loads
``pyrunc.cli.commands.container`` and nothing of the others).
"""
from __future__ import annotations

import os
import sys

from .flags import (PROG, ArgsError, Command, CommandError, Flag, UsageError, flag_usages,
                    help_width, print_err)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from .client import Client
    from .flags import Options
    from .tls import TLSConfig

# top-level name -> (module, subcommand of its group or None for the group itself, help text)
COMMON = [
    ("run", "container", "run", "Create and run a new container from an image"),
    ("exec", "container", "exec", "Execute a command in a running container"),
    ("ps", "container", "ls", "List containers"),
    ("build", "image", "build", "Build an image from a Dockerfile"),
    ("pull", "image", "pull", "Download an image from a registry"),
    ("push", "image", "push", "Upload an image to a registry"),
    ("images", "image", "ls", "List images"),
    ("login", "system", "login", "Authenticate to a registry"),
    ("logout", "system", "logout", "Log out from a registry"),
    ("version", "system", "version", "Show the Docker version information"),
    ("info", "system", "info", "Display system-wide information"),
]
MANAGEMENT = [
    ("container", "container", None, "Manage containers"),
    ("context", "context", None, "Manage contexts"),
    ("image", "image", None, "Manage images"),
    ("network", "network", None, "Manage networks"),
    ("system", "system", None, "Manage Docker"),
    ("volume", "volume", None, "Manage volumes"),
]
OTHER = [
    ("attach", "container", "attach",
     "Attach local standard input, output, and error streams to a running container"),
    ("commit", "container", "commit", "Create a new image from a container's changes"),
    ("cp", "container", "cp", "Copy files/folders between a container and the local filesystem"),
    ("create", "container", "create", "Create a new container"),
    ("diff", "container", "diff",
     "Inspect changes to files or directories on a container's filesystem"),
    ("events", "system", "events", "Get real time events from the server"),
    ("export", "container", "export", "Export a container's filesystem as a tar archive"),
    ("history", "image", "history", "Show the history of an image"),
    ("import", "image", "import",
     "Import the contents from a tarball to create a filesystem image"),
    ("inspect", "system", "inspect", "Return low-level information on Docker objects"),
    ("kill", "container", "kill", "Kill one or more running containers"),
    ("load", "image", "load", "Load an image from a tar archive or STDIN"),
    ("logs", "container", "logs", "Fetch the logs of a container"),
    ("pause", "container", "pause", "Pause all processes within one or more containers"),
    ("port", "container", "port",
     "List port mappings or a specific mapping for the container"),
    ("rename", "container", "rename", "Rename a container"),
    ("restart", "container", "restart", "Restart one or more containers"),
    ("rm", "container", "rm", "Remove one or more containers"),
    ("rmi", "image", "rm", "Remove one or more images"),
    ("save", "image", "save",
     "Save one or more images to a tar archive (streamed to STDOUT by default)"),
    ("start", "container", "start", "Start one or more stopped containers"),
    ("stats", "container", "stats",
     "Display a live stream of container(s) resource usage statistics"),
    ("stop", "container", "stop", "Stop one or more running containers"),
    ("tag", "image", "tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"),
    ("top", "container", "top", "Display the running processes of a container"),
    ("unpause", "container", "unpause", "Unpause all processes within one or more containers"),
    ("update", "container", "update", "Update configuration of one or more containers"),
    ("wait", "container", "wait",
     "Block until one or more containers stop, then print their exit codes"),
]
TABLE = {row[0]: row for row in COMMON + MANAGEMENT + OTHER}

HOME = os.path.expanduser("~")
# where --tlscacert, --tlscert and --tlskey look by default (docker's: the config directory of
# the environment, not --config's)
CERT_PATH = (os.environ.get("DOCKER_CERT_PATH") or os.environ.get("DOCKER_CONFIG")
             or os.path.join(HOME, ".docker"))
GLOBAL_FLAGS = [
    Flag("config", "", "string", "Location of client config files",
         default=os.path.join(HOME, ".docker")),
    Flag("context", "c", "string", "Name of the context to use to connect to the daemon "
         "(overrides DOCKER_HOST env var and default context set with \"docker context use\")"),
    Flag("debug", "D", "", "Enable debug mode"),
    Flag("host", "H", "list", "Daemon socket to connect to", multi=True),
    Flag("log-level", "l", "string", 'Set the logging level ("debug", "info", "warn", '
         '"error", "fatal")', default="info"),
    Flag("tls", "", "", "Use TLS; implied by --tlsverify"),
    Flag("tlscacert", "", "string", "Trust certs signed only by this CA",
         default=os.path.join(CERT_PATH, "ca.pem")),
    Flag("tlscert", "", "string", "Path to TLS certificate file",
         default=os.path.join(CERT_PATH, "cert.pem")),
    Flag("tlskey", "", "string", "Path to TLS key file",
         default=os.path.join(CERT_PATH, "key.pem")),
    Flag("tlsverify", "", "", "Use TLS and verify the remote"),
    Flag("version", "v", "", "Print version information and quit"),
]


class Context:
    """What every command gets: the global options and a lazily made API client."""

    def __init__(self, host: str | None, config_dir: str, tls: TLSConfig | None = None) -> None:
        self.host = host
        self.config_dir = config_dir
        self.tls = tls
        self._client: Client | None = None

    @property
    def api(self) -> Client:
        if self._client is None:
            from .client import Client
            self._client = Client.from_env(self.host, self.tls)
        return self._client


def top_help() -> str:
    def section(title: str, rows: Sequence[tuple[str, str, str | None, str]]) -> str:
        return title + ":\n" + "".join("  %-11s %s\n" % (r[0], r[3]) for r in rows) + "\n"
    return ("Usage:  %s [OPTIONS] COMMAND\n\nA self-sufficient runtime for containers\n\n"
            % PROG + section("Common Commands", COMMON)
            + section("Management Commands", MANAGEMENT)
            + section("Commands", sorted(OTHER))
            + "Global Options:\n" + flag_usages(GLOBAL_FLAGS, help_width())
            + "\nRun '%s COMMAND --help' for more information on a command.\n" % PROG)


def _split_global(argv: Sequence[str]) -> tuple[Options, list[str]]:
    root = Command("", "", "", flags=GLOBAL_FLAGS, interspersed=False)
    root.path = PROG
    opts, rest = root.parse(argv)
    return opts, rest


def group(module_name: str) -> Command:
    module = __import__("pyrunc.cli.commands." + module_name, fromlist=["group"])
    cmd: Command = module.group()
    return cmd


def find(cmd: Command, name: str) -> Command | None:
    for sub in cmd.subcommands + getattr(cmd, "hidden_subcommands", []):
        if sub.name == name or name in getattr(sub, "alt_names", ()):
            return sub
    return None


def run_command(cmd: Command, argv: Sequence[str], ctx: Context) -> int:
    try:
        opts, args = cmd.parse(argv)
    except UsageError as e:
        print_err(cmd.usage_error(e))
        return e.exit_code
    if opts["help"]:
        sys.stdout.write(cmd.help_text())
        return 0
    try:
        cmd.check_args(args)
    except ArgsError as e:
        print_err(cmd.usage_error(e))
        return e.exit_code
    assert cmd.run is not None
    return cmd.run(ctx, opts, args) or 0


def dispatch(argv: Sequence[str]) -> int:
    try:
        gopts, rest = _split_global(argv)
    except UsageError as e:
        print_err("%s\n\nUsage:  %s [OPTIONS] COMMAND\n\nRun '%s --help' for more information"
                  % (e, PROG, PROG))
        return 125
    if gopts["version"]:
        from .commands import system
        return system.print_short_version()
    if gopts["help"] or not rest:
        sys.stdout.write(top_help())
        return 0
    hosts = gopts["host"]
    if len(hosts) > 1:
        print_err("Specify only one -H")
        return 1
    config_dir = (os.environ.get("DOCKER_CONFIG") if "config" not in gopts.changed else None
                  ) or gopts["config"]
    endpoint = None if hosts else _context_endpoint(gopts["context"], config_dir)
    if endpoint is None:
        ctx = Context(hosts[0] if hosts else None, config_dir, _flags_tls(gopts))
    else:
        host, material, skip_verify = endpoint
        tls = None
        if material or skip_verify:
            from .tls import TLSConfig
            tls = TLSConfig(material.get("ca"), material.get("cert"), material.get("key"),
                            not skip_verify)
        ctx = Context(host, config_dir, tls)
    if ctx.tls is not None:
        from .tls import SetupError
        try:
            ctx.tls.load()
        except OSError as e:
            raise CommandError("Failed to initialize: unable to resolve docker endpoint: open "
                               "%s: %s" % (e.filename, (e.strerror or str(e)).lower())) from None
        except SetupError as e:
            raise CommandError("Failed to initialize: %s" % e) from None
    name, args = rest[0], rest[1:]
    row = TABLE.get(name)
    if row is None:
        print_err("%s: unknown command: %s %s\n\nRun '%s --help' for more information"
                  % (PROG, PROG, name, PROG))
        return 1
    grp = group(row[1])
    if row[2] is None:                        # a management command
        grp.path = "%s %s" % (PROG, name)
        sub_name = next((a for a in args if not a.startswith("-")), None)
        if sub_name is None:
            if args and args[0] in ("--help", "-h") or not args:
                sys.stdout.write(grp.help_text())
                return 0
            return run_command(grp, args, ctx)
        sub = find(grp, sub_name)
        if sub is None:
            print_err("%s: unknown command: %s %s\n\nUsage:  %s\n\nRun '%s --help' for more "
                      "information" % (PROG, grp.path, sub_name, grp.path, grp.path))
            return 1
        i = args.index(sub_name)
        sub.path = "%s %s" % (grp.path, sub_name)
        return run_command(sub, list(args[:i]) + list(args[i + 1:]), ctx)
    sub = find(grp, row[2])
    assert sub is not None
    sub.path = "%s %s" % (PROG, name)
    return run_command(sub, args, ctx)


def _context_endpoint(name: str, config_dir: str
                      ) -> tuple[str | None, dict[str, str], bool] | None:
    """The endpoint of a context (``--context``, DOCKER_CONTEXT, config.json's currentContext):
    its host and TLS material; None for "default" (-H/DOCKER_HOST and the --tls flags)."""
    from .config import context_endpoint
    return context_endpoint(name or os.environ.get("DOCKER_CONTEXT") or "", config_dir)


def _flags_tls(gopts: Options) -> TLSConfig | None:
    """TLS as docker's flags ask for it: on with --tls or DOCKER_TLS, --tlsverify (any value)
    or DOCKER_TLS_VERIFY; the CA file always read, the client's certificate and key only if given
    or present (the defaults under DOCKER_CERT_PATH, else the config directory)."""
    verify = (gopts["tlsverify"] if "tlsverify" in gopts.changed
              else bool(os.environ.get("DOCKER_TLS_VERIFY")))
    tls = gopts["tls"] if "tls" in gopts.changed else bool(os.environ.get("DOCKER_TLS"))
    if not (tls or verify or "tlsverify" in gopts.changed):
        return None
    from .tls import TLSConfig
    files = {}
    for name in ("tlscacert", "tlscert", "tlskey"):
        path = gopts[name]
        if name != "tlscacert" and name not in gopts.changed and not os.path.exists(path):
            path = ""
        files[name] = path or None
    return TLSConfig(files["tlscacert"], files["tlscert"], files["tlskey"], bool(verify))


def main(argv: Sequence[str] | None = None) -> int:
    from .flags import ConnectError, DaemonError, ProtocolError, TemplateError, TransportError
    try:
        return dispatch(sys.argv[1:] if argv is None else argv)
    except ConnectError as e:
        print_err("%s\n(pydocker talks to pydockerd: start it with `pydockerd &`, or point "
                  "DOCKER_HOST or -H at a running daemon)" % e)
        return 1
    except DaemonError as e:
        print_err("Error response from daemon: %s" % e.message)
        return 1
    except TemplateError as e:
        print_err(str(e))
        return 1 if "executing" in str(e) else 125
    except TransportError as e:
        print_err(str(e))
        return 1
    except ProtocolError as e:
        print_err("%s: error during connect: %s" % (PROG, e))
        return 1
    except BrokenPipeError:
        return 1
    except KeyboardInterrupt:
        return 130
    except CommandError as e:
        print_err(str(e))
        return e.exit_code
    except (ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as e:
        # a daemon (or a file) that answered something else than the Engine API's shapes:
        # one line, the traceback with -D
        if os.environ.get("DEBUG") or "-D" in (argv or sys.argv) or "--debug" in (
                argv or sys.argv):
            raise
        print_err("%s: unexpected answer: %s: %s" % (PROG, type(e).__name__,
                                                     str(e).splitlines()[0] if str(e) else ""))
        return 1


def entry() -> None:
    """The ``pydocker`` program: ``main``, then an exit without the interpreter's finalization
    (as the ``pyrunc`` command: docs/architecture.md, "Hot paths"). The commands close what
    they open and wait for what they start; stdio's buffers are flushed here, and output that
    cannot be written (a closed pipe) makes the exit status 1, as at the interpreter's exit."""
    code = main()
    try:
        sys.stdout.flush()
    except OSError:
        code = code or 1
    try:
        sys.stderr.flush()
    except OSError:
        pass
    os._exit(code)


if __name__ == "__main__":
    entry()
