"""``pydocker build`` (also ``pydocker image build``): the classic builder's client, as docker's
``DOCKER_BUILDKIT=0 docker build``.

The context is made here, as the docker CLI makes it: a directory becomes a tar archive with
``.dockerignore`` applied (the Dockerfile and ``.dockerignore`` are always sent), owned by
0:0; ``-`` reads a tar archive (plain or compressed) or a Dockerfile alone from stdin; a
Dockerfile given with ``-f`` outside the context, or on stdin (``-f -``), is added to the
archive under a random ``.dockerfile.*`` name that the sent ``.dockerignore`` lists. The
daemon's messages are shown as docker shows them; a failure prints its error line and exits
with the code the daemon gave (a failing RUN's exit status), 1 when it gave none.
"""
from __future__ import annotations

import os
import sys

from ..flags import Command, CommandError, Flag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..flags import Options
    from ..main import Context

DEFAULT_DOCKERFILE = "Dockerfile"
SENDING = "Sending build context to Docker daemon"
# magic numbers of the compressions docker accepts for a context on stdin
_COMPRESSED = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


class BuildContext:
    """The tar archive to send and the Dockerfile's name inside it."""

    def __init__(self, data: bytes, dockerfile: str) -> None:
        self.data = data
        self.dockerfile = dockerfile


def is_archive(data: bytes) -> bool:
    """docker's DetectArchiveReader: a compressed stream, or a tar header (checksum
    right)."""
    if data.startswith(_COMPRESSED):
        return True
    if len(data) < 512:
        return False
    header = data[:512]
    try:
        stored = int(header[148:156].replace(b"\x00", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    computed = sum(header[:148]) + 8 * 32 + sum(header[156:])
    return stored == computed


def _patterns(context_dir: str) -> list[str]:
    path = os.path.join(context_dir, ".dockerignore")
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return []
    except OSError as e:
        raise CommandError("error reading .dockerignore: %s" % (e.strerror or e)) from None
    from pyrunc.patternmatcher import read_patterns
    return read_patterns(text)


def context_tar(context_dir: str, dockerfile: str | None,
                extra_dockerfile: bytes | None = None) -> BuildContext:
    """The context directory as docker's CLI sends it. ``dockerfile``: its path inside the
    context (None: ``Dockerfile``); ``extra_dockerfile``: the content of a Dockerfile from
    elsewhere (stdin, or a file outside the context), added under a random name."""
    import io
    import tarfile
    patterns = _patterns(context_dir)
    rel_dockerfile = dockerfile or DEFAULT_DOCKERFILE
    if patterns:
        from pyrunc.patternmatcher import Matcher
        probe = Matcher(patterns)
        if probe.excluded(".dockerignore"):
            patterns.append("!.dockerignore")
        if extra_dockerfile is None and probe.excluded(rel_dockerfile):
            patterns.append("!" + rel_dockerfile)
        matcher = Matcher(patterns)
    else:
        matcher = None
    exceptions = [p[1:].strip("/") for p in patterns if p.startswith("!")]
    random_name = ""
    if extra_dockerfile is not None:
        random_name = ".dockerfile." + os.urandom(10).hex()
    buf = io.BytesIO()
    tar = tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT)
    ignore_seen = False

    def add(path: str, rel: str) -> None:
        nonlocal ignore_seen
        info = tar.gettarinfo(path, rel)
        if info is None:            # a socket: docker's archive skips it too
            return
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = int(info.mtime)
        if rel == ".dockerignore" and random_name and info.isreg():
            ignore_seen = True
            with open(path, "rb") as f:
                content = f.read() + b"\n" + random_name.encode() + b"\n"
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        elif info.isreg():
            try:
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            except PermissionError:
                raise CommandError("error checking context: no permission to read from '%s'"
                                   % path) from None
        else:
            tar.addfile(info)

    def walk(directory: str, prefix: str) -> None:
        try:
            names = sorted(os.listdir(directory), key=os.fsencode)
        except OSError as e:
            raise CommandError("error checking context: can't stat '%s': %s"
                               % (directory, e.strerror)) from None
        for name in names:
            path = os.path.join(directory, name)
            rel = prefix + name
            is_dir = os.path.isdir(path) and not os.path.islink(path)
            if matcher is not None and matcher.excluded(rel):
                if not is_dir:
                    continue
                if not any((p + "/").startswith(rel + "/") for p in exceptions):
                    continue
                walk(path, rel + "/")   # an exception may match inside: look, don't send
                continue
            add(path, rel)
            if is_dir:
                walk(path, rel + "/")

    try:
        walk(context_dir, "")
        if random_name:
            assert extra_dockerfile is not None
            if not ignore_seen:
                content = ("\n" + random_name + "\n").encode()
                info = tarfile.TarInfo(".dockerignore")
                info.mode, info.size = 0o600, len(content)
                tar.addfile(info, io.BytesIO(content))
            info = tarfile.TarInfo(random_name)
            info.mode, info.size = 0o600, len(extra_dockerfile)
            tar.addfile(info, io.BytesIO(extra_dockerfile))
        end = tar.offset
    finally:
        tar.close()
    # two zero blocks end the archive; tarfile's padding to a 10 KiB record is not sent
    return BuildContext(buf.getvalue()[:end + 1024], random_name or rel_dockerfile)


def dockerfile_only(content: bytes) -> BuildContext:
    """A Dockerfile alone (``pydocker build - < Dockerfile``): an archive holding it."""
    import io
    import tarfile
    import time
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(DEFAULT_DOCKERFILE)
        info.mode, info.size, info.mtime = 0o600, len(content), int(time.time())
        tar.addfile(info, io.BytesIO(content))
        end = tar.offset
    return BuildContext(buf.getvalue()[:end + 1024], DEFAULT_DOCKERFILE)


def _read_stdin() -> bytes:
    data: bytes = sys.stdin.buffer.read()
    return data


def prepare_context(context: str, dockerfile: str) -> BuildContext:
    """The archive for PATH | - and -f, with docker CLI's checks and messages."""
    if context == "-":
        if dockerfile == "-":
            raise CommandError("invalid argument: can't use stdin for both build context and "
                               "dockerfile")
        data = _read_stdin()
        if is_archive(data):
            return BuildContext(data, dockerfile or DEFAULT_DOCKERFILE)
        return dockerfile_only(data)
    if "://" in context or context.startswith("git@") or context.startswith("github.com/"):
        raise CommandError("unable to prepare context: remote build contexts (%s) are not "
                           "supported: clone or download it and build from the directory"
                           % context)
    if not os.path.exists(context):
        raise CommandError("unable to prepare context: path %s not found"
                           % _go_quote(context))
    context_dir = os.path.realpath(context)
    if not os.path.isdir(context_dir):
        raise CommandError("unable to prepare context: context must be a directory: %s"
                           % context_dir)
    if dockerfile == "-":
        return context_tar(context_dir, None, _read_stdin())
    if dockerfile:
        given = os.path.abspath(dockerfile)     # -f is relative to the current directory
    else:
        given = os.path.join(context_dir, DEFAULT_DOCKERFILE)
        if not os.path.lexists(given) and os.path.lexists(os.path.join(context_dir,
                                                                       "dockerfile")):
            given = os.path.join(context_dir, "dockerfile")
    try:
        os.lstat(given)
        real = os.path.realpath(given, strict=True)
    except OSError as e:
        raise CommandError("unable to prepare context: unable to evaluate symlinks in "
                           "Dockerfile path: lstat %s: %s" % (e.filename or given,
                                                              (e.strerror or "").lower())) \
            from None
    if os.path.isdir(real):
        raise CommandError("unable to prepare context: cannot read Dockerfile %s: it is a "
                           "directory" % given)
    rel = os.path.relpath(real, context_dir)
    if rel == ".." or rel.startswith("../"):
        # outside the context: its content travels inside the archive, as docker's CLI does
        with open(real, "rb") as f:
            return context_tar(context_dir, None, f.read())
    return context_tar(context_dir, rel)


def _go_quote(text: str) -> str:
    from ..jsonio import dumps
    return dumps(text)


def _kv_map(items: list[str], with_nil: bool) -> dict[str, str | None]:
    """--build-arg / --label: ``K=V``; ``K`` alone is the environment's K for a build arg
    (null when unset), "" for a label."""
    out: dict[str, str | None] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if eq:
            out[key] = value
        elif with_nil:
            out[key] = os.environ.get(key)
        else:
            out[key] = ""
    return out


def registry_config(ctx: Context) -> str:
    """X-Registry-Config: every credential the client's config can give (credential helpers
    included), as docker sends them."""
    import base64

    from ..config import load
    from ..credentials import get_all
    from ..jsonio import dumps
    try:
        doc = get_all(load(ctx.config_dir))
    except (ValueError, CommandError):      # docker's build then sends none at all
        doc = {}
    return base64.urlsafe_b64encode(dumps(doc).encode()).decode()


def build_query(opts: Options, dockerfile: str) -> list[tuple[str, str]]:
    """The /build query of the classic builder for these flags."""
    from ..jsonio import dumps

    from .container import _bytes, _ulimit
    q: list[tuple[str, str]] = [("t", t) for t in opts["tag"]]
    q += [("extrahosts", h) for h in opts["add-host"]]
    single: dict[str, Any] = {
        "dockerfile": dockerfile,
        "buildargs": dumps(_kv_map(opts["build-arg"], True)) if opts["build-arg"] else None,
        "labels": dumps(_kv_map(opts["label"], False)) if opts["label"] else None,
        "nocache": "1" if opts["no-cache"] else None,
        "pull": "1" if opts["pull"] else None,
        "rm": None if opts["rm"] else "0",
        "forcerm": "1" if opts["force-rm"] else None,
        "q": "1" if opts["quiet"] else None,
        "target": opts["target"] or None,
        "networkmode": opts["network"] if opts["network"] != "default" else None,
        "platform": opts["platform"] or None,
        "memory": _bytes(opts["memory"], "-m, --memory") if opts["memory"] else None,
        "memswap": (-1 if opts["memory-swap"] == "-1" else
                    _bytes(opts["memory-swap"], "--memory-swap")) if opts["memory-swap"]
        else None,
        "cpushares": opts["cpu-shares"] or None,
        "cpuperiod": opts["cpu-period"] or None,
        "cpuquota": opts["cpu-quota"] or None,
        "cpusetcpus": opts["cpuset-cpus"] or None,
        "cpusetmems": opts["cpuset-mems"] or None,
        "cgroupparent": opts["cgroup-parent"] or None,
        "shmsize": _bytes(opts["shm-size"], "--shm-size") if opts["shm-size"] else None,
        "isolation": opts["isolation"] or None,
        "squash": "1" if opts["squash"] else None,
        "cachefrom": dumps(opts["cache-from"]) if opts["cache-from"] else None,
        "securityopt": opts["security-opt"][0] if opts["security-opt"] else None,
        "ulimits": dumps([_ulimit(u) for u in opts["ulimit"]]) if opts["ulimit"] else None,
        "version": "1",
    }
    q += [(k, str(v)) for k, v in single.items() if v is not None]
    return q


def check_tags(tags: list[str]) -> None:
    """docker's validation of -t: each a reference (a flag error, exit 125, before anything is
    read or sent)."""
    from ..flags import PROG
    from ..reference import parse
    for tag in tags:
        try:
            parse(tag)
        except ValueError as e:
            raise CommandError('invalid argument "%s" for "-t, --tag" flag: %s\n\nUsage:  %s '
                               'build [OPTIONS] PATH | URL | -\n\nRun \'%s build --help\' for '
                               'more information' % (tag, e, PROG, PROG), 125) from None


def run(ctx: Context, opts: Options, args: list[str]) -> int:
    from ..client import json_lines, urlencode
    from ..units import human_size
    check_tags(opts["tag"])
    context = prepare_context(args[0], opts["file"])
    query = build_query(opts, context.dockerfile)
    body = context.data
    if opts["compress"]:
        import gzip
        body = gzip.compress(body, 6, mtime=0)
    if opts["iidfile"]:
        try:
            os.remove(opts["iidfile"])
        except FileNotFoundError:
            pass
        except OSError as e:
            raise CommandError("Removing image ID file: %s" % e) from None
    out = sys.stdout
    # the upload's line, as docker writes it to a pipe; with -q it is held back with the
    # build's output and shown (on stderr) only when the build fails
    sending = "%s  %s\r\r\n" % (SENDING, human_size(len(body), 4))
    if not opts["quiet"]:
        out.write(sending)
        out.flush()
    r = ctx.api.stream("POST", "/build?" + urlencode(query), None, body,
                       {"Content-Type": "application/x-tar",
                        "X-Registry-Config": registry_config(ctx)})
    aux: list[dict[str, Any]] = []
    quiet_lines: list[str] = [sending]
    try:
        if opts["quiet"]:
            for jm in json_lines(r):
                if jm.get("error") or jm.get("errorDetail"):
                    _fail(jm, quiet_lines)
                if isinstance(jm.get("aux"), dict):
                    aux.append(jm["aux"])
                elif jm.get("stream"):
                    quiet_lines.append(jm["stream"])
        else:
            _display(json_lines(r), out, aux)
    finally:
        r.close()
    image_id = next((a["ID"] for a in reversed(aux) if isinstance(a.get("ID"), str)), "")
    if opts["quiet"]:
        if not image_id and len(quiet_lines) > 1:
            image_id = quiet_lines[-1].strip()
        out.write(image_id + "\n")
    if opts["iidfile"] and image_id:
        try:
            with open(opts["iidfile"], "w") as f:
                f.write(image_id)
        except OSError as e:
            raise CommandError("Failed to write image ID to file: %s" % e) from None
    return 0


def _display(messages: Any, out: Any, aux: list[dict[str, Any]]) -> None:
    """docker's display of the build's messages; an error ends it with the code the daemon
    gave."""
    from ..streams import display_json_messages
    last: list[dict[str, Any]] = []

    def watched() -> Any:
        for jm in messages:
            if jm.get("error") or jm.get("errorDetail"):
                last.append(jm)
            yield jm
    try:
        display_json_messages(watched(), out, out.isatty(), aux)
    except CommandError:
        _fail(last[-1] if last else {}, [])


def _fail(jm: dict[str, Any], held: list[str]) -> None:
    detail = jm.get("errorDetail") or {}
    message = jm.get("error") or detail.get("message") or "unknown error"
    code = detail.get("code") if isinstance(detail.get("code"), int) else 0
    if held:
        sys.stderr.write("".join(held))
    raise CommandError(str(message), code if code and 0 < code < 256 else 1)


def command(name: str = "build", aliases: tuple[str, ...] = ()) -> Command:
    """The build command with docker 28's flags of the classic builder."""
    flags = [
        Flag("add-host", "", "list", 'Add a custom host-to-IP mapping ("host:ip")', multi=True),
        Flag("build-arg", "", "list", "Set build-time variables", multi=True),
        Flag("cache-from", "", "strings", "Images to consider as cache sources", multi=True),
        Flag("cgroup-parent", "", "string",
             'Set the parent cgroup for the "RUN" instructions during build'),
        Flag("compress", "", "", "Compress the build context using gzip"),
        Flag("cpu-period", "", "int", "Limit the CPU CFS (Completely Fair Scheduler) period"),
        Flag("cpu-quota", "", "int", "Limit the CPU CFS (Completely Fair Scheduler) quota"),
        Flag("cpu-shares", "c", "int", "CPU shares (relative weight)"),
        Flag("cpuset-cpus", "", "string", "CPUs in which to allow execution (0-3, 0,1)"),
        Flag("cpuset-mems", "", "string", "MEMs in which to allow execution (0-3, 0,1)"),
        Flag("disable-content-trust", "", "", "Skip image verification", default=True),
        Flag("file", "f", "string", 'Name of the Dockerfile (Default is "PATH/Dockerfile")'),
        Flag("force-rm", "", "", "Always remove intermediate containers"),
        Flag("iidfile", "", "string", "Write the image ID to the file"),
        Flag("isolation", "", "string", "Container isolation technology"),
        Flag("label", "", "list", "Set metadata for an image", multi=True),
        Flag("memory", "m", "bytes", "Memory limit"),
        Flag("memory-swap", "", "bytes",
             "Swap limit equal to memory plus swap: -1 to enable unlimited swap"),
        Flag("network", "", "string",
             'Set the networking mode for the RUN instructions during build',
             default="default"),
        Flag("no-cache", "", "", "Do not use cache when building the image"),
        Flag("platform", "", "string", "Set platform if server is multi-platform capable"),
        Flag("pull", "", "", "Always attempt to pull a newer version of the image"),
        Flag("quiet", "q", "", "Suppress the build output and print image ID on success"),
        Flag("rm", "", "", "Remove intermediate containers after a successful build",
             default=True),
        Flag("security-opt", "", "strings", "Security options", multi=True),
        Flag("shm-size", "", "bytes", 'Size of "/dev/shm"'),
        Flag("squash", "", "", "Squash newly built layers into a single new layer",
             hidden=True),     # docker shows it only for an experimental daemon
        Flag("tag", "t", "list", 'Name and optionally a tag in the "name:tag" format',
             multi=True),
        Flag("target", "", "string", "Set the target build stage to build."),
        Flag("ulimit", "", "ulimit", "Ulimit options", multi=True, shown_default="[]"),
    ]
    aliases_shown = ["pydocker image build", "pydocker build"]
    cmd = Command(name, "[OPTIONS] PATH | URL | -", "Build an image from a Dockerfile", run,
                  flags, aliases_shown, "exact", 1)
    cmd.alt_names = aliases  # type: ignore[attr-defined]
    return cmd
