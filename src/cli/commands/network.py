"""``pydocker network``: connect, create, disconnect, inspect, ls, prune, rm."""
from __future__ import annotations

import sys

from ..client import DaemonError
from ..flags import Command, Flag, print_err
from ..template import render_list
from ..units import go_time, parse_timestamp
from .container import FILTER, parse_filters

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..flags import Options
    from ..main import Context


def create(ctx: Context, opts: Options, args: list[str]) -> int:
    ipam = []
    for i, subnet in enumerate(opts["subnet"]):
        entry = {"Subnet": subnet}
        if i < len(opts["gateway"]):
            entry["Gateway"] = opts["gateway"][i]
        if i < len(opts["ip-range"]):
            entry["IPRange"] = opts["ip-range"][i]
        ipam.append(entry)
    body: dict[str, Any] = {
        "Name": args[0], "Driver": opts["driver"], "Internal": opts["internal"],
        "Attachable": opts["attachable"], "EnableIPv6": opts["ipv6"],
        "Options": dict(o.split("=", 1) for o in opts["opt"] if "=" in o),
        "Labels": dict((kv.split("=", 1) + [""])[:2] for kv in opts["label"]),
        "IPAM": {"Driver": "default", "Config": ipam}, "CheckDuplicate": True}
    doc = ctx.api.post_json("/networks/create", None, body)
    print(doc["Id"])
    return 0


def ls(ctx: Context, opts: Options, args: list[str]) -> int:
    nets = ctx.api.get_json("/networks", {"filters": parse_filters(opts["filter"])})
    trunc = not opts["no-trunc"]
    if opts["quiet"]:
        sys.stdout.write("".join((n["Id"][:12] if trunc else n["Id"]) + "\n" for n in nets))
        return 0
    items = [{"ID": n["Id"][:12] if trunc else n["Id"], "Name": n.get("Name", ""),
              "Driver": n.get("Driver", ""), "Scope": n.get("Scope", ""),
              "IPv6": str(bool(n.get("EnableIPv6"))).lower(),
              "Internal": str(bool(n.get("Internal"))).lower(),
              "Labels": ",".join("%s=%s" % kv for kv in sorted((n.get("Labels") or {}).items())),
              "CreatedAt": go_time(parse_timestamp(n.get("Created", "")))}
             for n in sorted(nets, key=lambda n: n.get("Name", ""))]
    fmt = opts["format"] or "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
    sys.stdout.write(render_list(fmt, items, {"ID": "NETWORK ID", "Name": "NAME",
                                              "Driver": "DRIVER", "Scope": "SCOPE",
                                              "IPv6": "IPV6", "Internal": "INTERNAL",
                                              "Labels": "LABELS", "CreatedAt": "CREATED AT"}))
    return 0


def inspect(ctx: Context, opts: Options, args: list[str]) -> int:
    from .system import print_inspect
    return print_inspect(ctx, args, opts["format"], "network", False)


def rm(ctx: Context, opts: Options, args: list[str]) -> int:
    failed = []
    for name in args:
        try:
            ctx.api.call("DELETE", "/networks/" + name)
            print(name)
        except DaemonError as e:
            if not (opts["force"] and e.status == 404):
                failed.append(e.message)
    for msg in failed:
        print_err("Error response from daemon: " + msg)
    return 1 if failed else 0


def connect(ctx: Context, opts: Options, args: list[str]) -> int:
    endpoint: dict[str, Any] = {"Aliases": opts["alias"] or None}
    if opts["ip"] or opts["ip6"]:
        endpoint["IPAMConfig"] = {"IPv4Address": opts["ip"], "IPv6Address": opts["ip6"]}
    ctx.api.call("POST", "/networks/%s/connect" % args[0], None,
                 {"Container": args[1], "EndpointConfig": endpoint})
    return 0


def disconnect(ctx: Context, opts: Options, args: list[str]) -> int:
    ctx.api.call("POST", "/networks/%s/disconnect" % args[0], None,
                 {"Container": args[1], "Force": opts["force"]})
    return 0


def prune(ctx: Context, opts: Options, args: list[str]) -> int:
    if not opts["force"]:
        sys.stdout.write("WARNING! This will remove all custom networks not used by at least "
                         "one container.\nAre you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    doc = ctx.api.post_json("/networks/prune", {"filters": parse_filters(opts["filter"])})
    deleted = doc.get("NetworksDeleted") or []
    if deleted:
        print("Deleted Networks:")
        print("\n".join(deleted))
    return 0


def group() -> Command:
    subs = [
        Command("connect", "[OPTIONS] NETWORK CONTAINER", "Connect a container to a network",
                connect, [Flag("alias", "", "strings", "Add network-scoped alias for the "
                               "container", multi=True),
                          Flag("ip", "", "string", "IPv4 address (e.g., \"172.30.100.104\")"),
                          Flag("ip6", "", "string", "IPv6 address (e.g., \"2001:db8::33\")")],
                args="exact", nargs=2),
        Command("create", "[OPTIONS] NETWORK", "Create a network", create,
                [Flag("attachable", "", "", "Enable manual container attachment"),
                 Flag("driver", "d", "string", "Driver to manage the Network",
                      default="bridge"),
                 Flag("gateway", "", "strings", "IPv4 or IPv6 Gateway for the master subnet",
                      multi=True),
                 Flag("internal", "", "", "Restrict external access to the network"),
                 Flag("ip-range", "", "strings", "Allocate container ip from a sub-range",
                      multi=True),
                 Flag("ipv6", "", "", "Enable or disable IPv6 networking"),
                 Flag("label", "", "list", "Set metadata on a network", multi=True),
                 Flag("opt", "o", "map", "Set driver specific options", multi=True),
                 Flag("subnet", "", "strings",
                      "Subnet in CIDR format that represents a network segment", multi=True)],
                args="exact", nargs=1),
        Command("disconnect", "[OPTIONS] NETWORK CONTAINER",
                "Disconnect a container from a network", disconnect,
                [Flag("force", "f", "", "Force the container to disconnect from a network")],
                args="exact", nargs=2),
        Command("inspect", "[OPTIONS] NETWORK [NETWORK...]",
                "Display detailed information on one or more networks", inspect,
                [Flag("format", "f", "string", "Format output using a custom template"),
                 Flag("verbose", "v", "", "Verbose output for diagnostics")],
                args="min", nargs=1),
        Command("ls", "[OPTIONS]", "List networks", ls,
                [FILTER, Flag("format", "", "string", "Format output using a custom template"),
                 Flag("no-trunc", "", "", "Do not truncate the output"),
                 Flag("quiet", "q", "", "Only display network IDs")],
                ["pydocker network ls", "pydocker network list"], args="none"),
        Command("prune", "[OPTIONS]", "Remove all unused networks", prune,
                [Flag("filter", "", "filter", 'Provide filter values (e.g. "until=<timestamp>")',
                      multi=True),
                 Flag("force", "f", "", "Do not prompt for confirmation")], args="none"),
        Command("rm", "NETWORK [NETWORK...]", "Remove one or more networks", rm,
                [Flag("force", "f", "", "Do not error if the network does not exist")],
                ["pydocker network rm", "pydocker network remove"], args="min", nargs=1),
    ]
    subs[4].alt_names = ("list",)  # type: ignore[attr-defined]
    subs[6].alt_names = ("remove",)  # type: ignore[attr-defined]
    return Command("network", "", "Manage networks", subcommands=subs)
