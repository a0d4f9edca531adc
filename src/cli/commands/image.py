"""``pydocker image``: ls, pull, push, rm, tag, inspect, history, save, load, import, prune."""
from __future__ import annotations

import sys

from ..client import DaemonError, json_lines
from ..flags import Command, CommandError, Flag, print_err
from ..jsonio import loads
from ..reference import parse
from ..template import render_list
from ..units import ago, go_time, human_size
from .container import FILTER, FORMAT_HELP, load_config_format, parse_filters, \
    registry_auth_header

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..flags import Options
    from ..main import Context

HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "ID": "IMAGE ID",
           "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
           "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE",
           "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE"}


def _familiar(ref: str) -> tuple[str, str, str] | None:
    try:
        r = parse(ref)
    except ValueError:
        return None
    return r.familiar_name(), r.tag, r.digest


def image_rows(images: list[dict[str, Any]], digests: bool, trunc: bool
               ) -> list[dict[str, Any]]:
    """One row per (repository, tag[, digest]) of each image, as docker's image formatter."""
    rows = []
    for img in images:
        tags: dict[str, list[str]] = {}
        dgs: dict[str, list[str]] = {}
        for ref in img.get("RepoTags") or []:
            f = _familiar(ref)
            if f and f[1]:
                tags.setdefault(f[0], []).append(f[1])
        for ref in img.get("RepoDigests") or []:
            f = _familiar(ref)
            if f and f[2]:
                dgs.setdefault(f[0], []).append(f[2])
        pairs: list[tuple[str, str, str]] = []
        for repo, tlist in tags.items():
            dlist = dgs.pop(repo, [])
            if not digests:
                dlist = []
            for tag in tlist:
                if not dlist:
                    pairs.append((repo, tag, "<none>"))
                for d in dlist:
                    pairs.append((repo, tag, d))
        for repo, dlist in dgs.items():
            if digests:
                pairs += [(repo, "<none>", d) for d in dlist]
            else:
                pairs.append((repo, "<none>", "<none>"))
        if not tags and not dgs:
            pairs.append(("<none>", "<none>", "<none>"))
        iid = img.get("Id", "")
        for repo, tag, dg in pairs:
            rows.append({
                "Containers": "N/A" if img.get("Containers", -1) == -1 else
                str(img["Containers"]),
                "CreatedAt": go_time(img.get("Created", 0)),
                "CreatedSince": ago(img.get("Created", 0)),
                "Digest": dg, "ID": iid.split(":", 1)[-1][:12] if trunc else iid,
                "Repository": repo, "SharedSize": "N/A", "Size": human_size(img.get("Size", 0)),
                "Tag": tag, "UniqueSize": "N/A",
                "VirtualSize": human_size(img.get("VirtualSize", img.get("Size", 0))),
            })
    return rows


def ls(ctx: Context, opts: Options, args: list[str]) -> int:
    filters = list(opts["filter"])
    if args:
        filters.append("reference=" + args[0])
    images = ctx.api.get_json("/images/json", {"all": opts["all"] or None,
                                               "filters": parse_filters(filters),
                                               "digests": 1 if opts["digests"] else None})
    if opts["quiet"]:
        ids = [r["ID"] for r in image_rows(images, False, not opts["no-trunc"])]
        sys.stdout.write("".join(i + "\n" for i in ids))
        return 0
    fmt = opts["format"] or load_config_format(ctx, "imagesFormat") or "table"
    if fmt == "table":
        fmt = "table {{.Repository}}\t{{.Tag}}\t" + ("{{.Digest}}\t" if opts["digests"] else "") \
            + "{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    show_digests = opts["digests"] or "{{.Digest}}" in fmt
    sys.stdout.write(render_list(fmt, image_rows(images, show_digests, not opts["no-trunc"]),
                                 HEADERS))
    return 0


def pull(ctx: Context, opts: Options, args: list[str]) -> int:
    from ..streams import display_json_messages
    try:
        ref = parse(args[0])
    except ValueError as e:
        raise CommandError(str(e)) from None
    if opts["all-tags"] and (ref.tag or ref.digest):
        raise CommandError("tag can't be used with --all-tags/-a")
    if not ref.tag and not ref.digest and not opts["all-tags"]:
        if not opts["quiet"]:
            print("Using default tag: latest")
        ref = ref.with_default_tag()
    query = {"fromImage": ref.name, "tag": ref.digest or ref.tag or None,
             "platform": opts["platform"] or None}
    r = ctx.api.stream("POST", "/images/create", query,
                       headers=registry_auth_header(ctx, ref.domain))
    if opts["quiet"]:
        for jm in json_lines(r):
            if jm.get("error"):
                raise CommandError(jm["error"])
    else:
        display_json_messages(json_lines(r), sys.stdout, sys.stdout.isatty())
    print(str(ref))
    return 0


def push(ctx: Context, opts: Options, args: list[str]) -> int:
    from ..streams import display_json_messages
    try:
        ref = parse(args[0])
    except ValueError as e:
        raise CommandError(str(e)) from None
    if not ref.tag and not opts["all-tags"]:
        if not opts["quiet"]:
            print("Using default tag: latest")
        ref = ref.with_default_tag()
    headers = registry_auth_header(ctx, ref.domain) or {"X-Registry-Auth": "e30="}
    r = ctx.api.stream("POST", "/images/%s/push" % ref.familiar_name(),
                       {"tag": ref.tag or None}, headers=headers)
    if opts["quiet"]:
        for jm in json_lines(r):
            if jm.get("error"):
                raise CommandError(jm["error"])
        print(str(ref))
    else:
        display_json_messages(json_lines(r), sys.stdout, sys.stdout.isatty())
    return 0


def rm(ctx: Context, opts: Options, args: list[str]) -> int:
    failed = []
    for name in args:
        try:
            doc = loads(ctx.api.call("DELETE", "/images/" + name,
                                          {"force": opts["force"] or None,
                                           "noprune": opts["no-prune"] or None}) or b"[]")
        except DaemonError as e:
            failed.append(e.message)
            continue
        for item in doc or []:
            for k, v in item.items():
                print("%s: %s" % (k, v))
    for msg in failed:
        print_err("Error response from daemon: " + msg)
    return 1 if failed else 0


def tag(ctx: Context, opts: Options, args: list[str]) -> int:
    try:
        ref = parse(args[1])
    except ValueError as e:
        raise CommandError("Error parsing reference: \"%s\" is not a valid repository/tag: %s"
                           % (args[1], e)) from None
    if ref.digest:
        raise CommandError("refusing to create a tag with a digest reference")
    ctx.api.call("POST", "/images/%s/tag" % args[0],
                 {"repo": ref.name, "tag": ref.tag or "latest"})
    return 0


def inspect(ctx: Context, opts: Options, args: list[str]) -> int:
    from .system import print_inspect
    return print_inspect(ctx, args, opts["format"], "image", False)


def history(ctx: Context, opts: Options, args: list[str]) -> int:
    items = ctx.api.get_json("/images/%s/history" % args[0])
    trunc = not opts["no-trunc"]
    if opts["quiet"]:
        for h in items:
            hid = h.get("Id", "")
            print(hid.split(":", 1)[-1][:12] if trunc and hid.startswith("sha256:") else hid)
        return 0
    rows = []
    for h in items:
        hid = h.get("Id", "")
        by = h.get("CreatedBy", "")
        rows.append({
            "ID": (hid.split(":", 1)[-1][:12] if trunc and hid.startswith("sha256:") else hid),
            "CreatedSince": ago(h.get("Created", 0)) if opts["human"] else
            go_time(h.get("Created", 0)),
            "CreatedAt": go_time(h.get("Created", 0)),
            "CreatedBy": (by[:44] + "…" if trunc and len(by) > 45 else by),
            "Size": human_size(h.get("Size", 0)) if opts["human"] else str(h.get("Size", 0)),
            "Comment": h.get("Comment", "")})
    fmt = opts["format"] or ("table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t"
                             "{{.Comment}}")
    sys.stdout.write(render_list(fmt, rows, {"ID": "IMAGE", "CreatedSince": "CREATED",
                                             "CreatedAt": "CREATED AT",
                                             "CreatedBy": "CREATED BY", "Size": "SIZE",
                                             "Comment": "COMMENT"}))
    return 0


def save(ctx: Context, opts: Options, args: list[str]) -> int:
    from .container import _write_stream
    if not opts["output"] and sys.stdout.isatty():
        raise CommandError("cowardly refusing to save to a terminal. Use the -o flag or "
                           "redirect")
    import urllib.parse
    r = ctx.api.stream("GET", "/images/get?" + urllib.parse.urlencode([("names", n)
                                                                       for n in args]))
    _write_stream(r, opts["output"])
    return 0


def load(ctx: Context, opts: Options, args: list[str]) -> int:
    from ..streams import display_json_messages
    f: Any
    if opts["input"]:
        try:
            f = open(opts["input"], "rb")
        except OSError as e:
            raise CommandError("open %s: %s" % (opts["input"], (e.strerror or "").lower())) \
                from None
    else:
        if sys.stdin.isatty():
            raise CommandError("requested load from stdin, but stdin is empty")
        f = sys.stdin.buffer
    data = f.read()
    r = ctx.api.stream("POST", "/images/load", {"quiet": 1 if opts["quiet"] else None}, data,
                       {"Content-Type": "application/x-tar"})
    display_json_messages(json_lines(r), sys.stdout, False)
    return 0


def import_(ctx: Context, opts: Options, args: list[str]) -> int:
    source = args[0]
    query: dict[str, Any] = {"message": opts["message"] or None,
                             "platform": opts["platform"] or None}
    if len(args) > 1:
        ref = parse(args[1])
        query["repo"] = ref.familiar_name()
        query["tag"] = ref.tag or None
    if opts["change"]:
        query["changes"] = opts["change"]
    body: bytes | None = None
    if source == "-":
        query["fromSrc"] = "-"
        body = sys.stdin.buffer.read()
    elif source.startswith(("http://", "https://")):
        query["fromSrc"] = source
    else:
        query["fromSrc"] = "-"
        with open(source, "rb") as f:
            body = f.read()
    r = ctx.api.stream("POST", "/images/create", query, body,
                       {"Content-Type": "application/x-tar"})
    for jm in json_lines(r):
        if jm.get("error"):
            raise CommandError(jm["error"])
        if jm.get("status"):
            print(jm["status"])
    return 0


def prune(ctx: Context, opts: Options, args: list[str]) -> int:
    if not opts["force"]:
        sys.stdout.write("WARNING! This will remove all %s.\nAre you sure you want to "
                         "continue? [y/N] " % ("images without at least one container "
                                               "associated to them" if opts["all"]
                                               else "dangling images"))
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    filters = list(opts["filter"])
    filters.append("dangling=%s" % ("false" if opts["all"] else "true"))
    doc = ctx.api.post_json("/images/prune", {"filters": parse_filters(filters)})
    deleted = doc.get("ImagesDeleted") or []
    if deleted:
        print("Deleted Images:")
        for item in deleted:
            for k, v in item.items():
                print("%s: %s" % (k.lower(), v))
        print()
    print("Total reclaimed space: %s" % human_size(doc.get("SpaceReclaimed") or 0))
    return 0


def _cmd(name: str, use: str, short: str, fn: Any, flags: list[Flag], args: str, nargs: int = 0,
         alt: tuple[str, ...] = (), shortcut: str | None = None) -> Command:
    aliases = []
    if alt or shortcut:
        aliases = ["pydocker image %s" % n for n in (name,) + alt]
        if shortcut:
            aliases.append("pydocker " + shortcut)
    c = Command(name, use, short, fn, flags, aliases, args, nargs)
    c.alt_names = alt  # type: ignore[attr-defined]
    return c


def group() -> Command:
    from .build import command as build_command
    platform = Flag("platform", "", "string", "Set platform if server is multi-platform capable")
    subs = [
        build_command(),
        _cmd("history", "[OPTIONS] IMAGE", "Show the history of an image", history,
             [Flag("format", "", "string", FORMAT_HELP),
              Flag("human", "H", "", "Print sizes and dates in human readable format",
                   default=True),
              Flag("no-trunc", "", "", "Don't truncate output"),
              Flag("quiet", "q", "", "Only show image IDs")], "exact", 1, shortcut="history"),
        _cmd("import", "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
             "Import the contents from a tarball to create a filesystem image", import_,
             [Flag("change", "c", "list", "Apply Dockerfile instruction to the created image",
                   multi=True),
              Flag("message", "m", "string", "Set commit message for imported image"),
              platform], "min", 1, shortcut="import"),
        _cmd("inspect", "[OPTIONS] IMAGE [IMAGE...]",
             "Display detailed information on one or more images", inspect,
             [Flag("format", "f", "string", "Format output using a custom template:\n"
                   "'json':             Print in JSON format\n"
                   "'TEMPLATE':         Print output using the given Go template.\n"
                   "Refer to https://docs.docker.com/go/formatting/ for more information "
                   "about formatting output with templates")], "min", 1),
        _cmd("load", "[OPTIONS]", "Load an image from a tar archive or STDIN", load,
             [Flag("input", "i", "string", "Read from tar archive file, instead of STDIN"),
              Flag("quiet", "q", "", "Suppress the load output")], "none", shortcut="load"),
        _cmd("ls", "[OPTIONS] [REPOSITORY[:TAG]]", "List images", ls,
             [Flag("all", "a", "", "Show all images (default hides intermediate images)"),
              Flag("digests", "", "", "Show digests"), FILTER,
              Flag("format", "", "string", FORMAT_HELP),
              Flag("no-trunc", "", "", "Don't truncate output"),
              Flag("quiet", "q", "", "Only show image IDs")], "max", 1,
             alt=("images", "list"), shortcut="images"),
        _cmd("prune", "[OPTIONS]", "Remove unused images", prune,
             [Flag("all", "a", "", "Remove all unused images, not just dangling ones"),
              Flag("filter", "", "filter", 'Provide filter values (e.g. "until=<timestamp>")',
                   multi=True),
              Flag("force", "f", "", "Do not prompt for confirmation")], "none"),
        _cmd("pull", "[OPTIONS] NAME[:TAG|@DIGEST]", "Download an image from a registry", pull,
             [Flag("all-tags", "a", "", "Download all tagged images in the repository"),
              platform, Flag("quiet", "q", "", "Suppress verbose output")], "exact", 1,
             shortcut="pull"),
        _cmd("push", "[OPTIONS] NAME[:TAG]", "Upload an image to a registry", push,
             [Flag("all-tags", "a", "", "Push all tags of an image to the repository"),
              Flag("quiet", "q", "", "Suppress verbose output")], "exact", 1, shortcut="push"),
        _cmd("rm", "[OPTIONS] IMAGE [IMAGE...]", "Remove one or more images", rm,
             [Flag("force", "f", "", "Force removal of the image"),
              Flag("no-prune", "", "", "Do not delete untagged parents")], "min", 1,
             alt=("remove", "rmi"), shortcut="rmi"),
        _cmd("save", "[OPTIONS] IMAGE [IMAGE...]",
             "Save one or more images to a tar archive (streamed to STDOUT by default)", save,
             [Flag("output", "o", "string", "Write to a file, instead of STDOUT")], "min", 1,
             shortcut="save"),
        _cmd("tag", "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
             "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", tag, [], "exact", 2,
             shortcut="tag"),
    ]
    return Command("image", "", "Manage images", subcommands=subs)
