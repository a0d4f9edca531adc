"""``pydocker volume``: create, inspect, ls, prune, rm."""
from __future__ import annotations

import sys

from ..flags import Command, Flag, print_err
from ..template import render_list
from ..units import human_size
from .container import FILTER, for_each, parse_filters

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..flags import Options
    from ..main import Context


def create(ctx: Context, opts: Options, args: list[str]) -> int:
    body: dict[str, Any] = {"Name": args[0] if args else opts["name"],
                            "Driver": opts["driver"],
                            "DriverOpts": dict(o.split("=", 1) for o in opts["opt"] if "=" in o),
                            "Labels": dict((kv.split("=", 1) + [""])[:2]
                                           for kv in opts["label"])}
    doc = ctx.api.post_json("/volumes/create", None, body)
    print(doc["Name"])
    return 0


def ls(ctx: Context, opts: Options, args: list[str]) -> int:
    doc = ctx.api.get_json("/volumes", {"filters": parse_filters(opts["filter"])})
    vols = doc.get("Volumes") or []
    for w in doc.get("Warnings") or []:
        print_err(w)
    if opts["quiet"]:
        sys.stdout.write("".join(v["Name"] + "\n" for v in vols))
        return 0
    items = [{"Driver": v.get("Driver", ""), "Name": v.get("Name", ""),
              "Mountpoint": v.get("Mountpoint", ""), "Scope": v.get("Scope", ""),
              "Labels": ",".join("%s=%s" % kv for kv in sorted((v.get("Labels") or {}).items())),
              "Links": "N/A", "Size": "N/A", "Availability": "N/A", "Group": "N/A"}
             for v in vols]
    fmt = opts["format"] or "table {{.Driver}}\t{{.Name}}"
    sys.stdout.write(render_list(fmt, items, {"Driver": "DRIVER", "Name": "VOLUME NAME",
                                              "Mountpoint": "MOUNTPOINT", "Scope": "SCOPE",
                                              "Labels": "LABELS", "Links": "LINKS",
                                              "Size": "SIZE"}))
    return 0


def inspect(ctx: Context, opts: Options, args: list[str]) -> int:
    from .system import print_inspect
    return print_inspect(ctx, args, opts["format"], "volume", False)


def rm(ctx: Context, opts: Options, args: list[str]) -> int:
    return for_each(ctx, args, "DELETE", "/volumes/%s", {"force": opts["force"] or None})


def prune(ctx: Context, opts: Options, args: list[str]) -> int:
    if not opts["force"]:
        sys.stdout.write("WARNING! This will remove anonymous local volumes not used by at "
                         "least one container.\nAre you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    filters = list(opts["filter"])
    if opts["all"]:
        filters.append("all=true")
    doc = ctx.api.post_json("/volumes/prune", {"filters": parse_filters(filters)})
    deleted = doc.get("VolumesDeleted") or []
    if deleted:
        print("Deleted Volumes:")
        print("\n".join(deleted) + "\n")
    print("Total reclaimed space: %s" % human_size(doc.get("SpaceReclaimed") or 0))
    return 0


def group() -> Command:
    fmt_inspect = Flag("format", "f", "string", "Format output using a custom template")
    subs = [
        Command("create", "[OPTIONS] [VOLUME]", "Create a volume", create,
                [Flag("driver", "d", "string", "Specify volume driver name", default="local"),
                 Flag("label", "", "list", "Set metadata for a volume", multi=True),
                 Flag("name", "", "string", "Specify volume name", hidden=True),
                 Flag("opt", "o", "map", "Set driver specific options", multi=True)],
                args="max", nargs=1),
        Command("inspect", "[OPTIONS] VOLUME [VOLUME...]",
                "Display detailed information on one or more volumes", inspect, [fmt_inspect],
                args="min", nargs=1),
        Command("ls", "[OPTIONS]", "List volumes", ls,
                [FILTER, Flag("format", "", "string", "Format output using a custom template"),
                 Flag("quiet", "q", "", "Only display volume names")],
                ["pydocker volume ls", "pydocker volume list"], args="none"),
        Command("prune", "[OPTIONS]", "Remove unused local volumes", prune,
                [Flag("all", "a", "", "Remove all unused volumes, not just anonymous ones"),
                 Flag("filter", "", "filter", 'Provide filter values (e.g. "label=<label>")',
                      multi=True),
                 Flag("force", "f", "", "Do not prompt for confirmation")], args="none"),
        Command("rm", "[OPTIONS] VOLUME [VOLUME...]", "Remove one or more volumes", rm,
                [Flag("force", "f", "", "Force the removal of one or more volumes")],
                ["pydocker volume rm", "pydocker volume remove"], args="min", nargs=1),
    ]
    subs[2].alt_names = ("list",)  # type: ignore[attr-defined]
    subs[4].alt_names = ("remove",)  # type: ignore[attr-defined]
    return Command("volume", "", "Manage volumes", subcommands=subs)
