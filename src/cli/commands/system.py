"""``pydocker system``: df, info, events, prune; and version, login, logout, inspect."""
from __future__ import annotations

import os
import sys

from ..client import CLIENT_API_VERSION, DaemonError
from ..flags import Command, CommandError, Flag, print_err
from ..jsonio import dumps
from ..units import bytes_size, human_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..flags import Options
    from ..main import Context
    from ..template import GoTypes, Template


def _client_version() -> str:
    try:
        from importlib.metadata import version
        return version("pyrunc")
    except Exception:          # not installed as a distribution (running from a checkout)
        return "0.1.0"


def print_short_version() -> int:
    print("pydocker version %s, API %s" % (_client_version(), CLIENT_API_VERSION))
    return 0


def _kv(indent: int, key: str, value: Any) -> str:
    return (" " * indent + key + ":").ljust(20) + str(value) + "\n"


def _ansic(text: str) -> str:
    """An RFC 3339 build time as docker shows it (Go's ANSIC layout, local time); other text
    as it is."""
    import datetime
    from ..units import parse_timestamp
    try:
        secs = parse_timestamp(text)
    except ValueError:
        return text
    return datetime.datetime.fromtimestamp(int(secs)).strftime("%a %b %e %H:%M:%S %Y")


def version(ctx: Context, opts: Options, args: list[str]) -> int:
    if opts["format"]:
        from ..template import Template
        doc: dict[str, Any] = {"Client": _client_doc(ctx), "Server": None}
        try:
            doc["Server"] = ctx.api.get_json("/version")
        except DaemonError:
            pass
        for part in (doc["Client"], doc["Server"]):
            if isinstance(part, dict) and "ApiVersion" in part:
                part["APIVersion"] = part["ApiVersion"]   # the Go field's name, for templates
        _formatted(Template(opts["format"], "version"), doc, _version_types())
        return 0
    client = _client_doc(ctx)
    out = "Client:\n"
    out += _kv(1, "Version", client["Version"])
    out += _kv(1, "API version", client["ApiVersion"])
    out += _kv(1, "Python version", client["PythonVersion"])
    out += _kv(1, "OS/Arch", client["Os"] + "/" + client["Arch"])
    out += _kv(1, "Context", client["Context"])
    sys.stdout.write(out)
    sys.stdout.flush()
    server = ctx.api.get_json("/version")
    name = (server.get("Platform") or {}).get("Name", "")
    text = "\nServer:%s\n" % (" " + name if name else "")
    for comp in server.get("Components") or [{"Name": "Engine", "Version": server.get(
            "Version", ""), "Details": {}}]:
        details = comp.get("Details") or {}
        text += " %s:\n" % comp.get("Name", "")
        text += _kv(2, "Version", comp.get("Version", ""))
        if comp.get("Name") == "Engine":
            text += _kv(2, "API version", "%s (minimum version %s)" % (
                server.get("ApiVersion", details.get("ApiVersion", "")),
                server.get("MinAPIVersion", details.get("MinAPIVersion", ""))))
            text += _kv(2, "Go version", server.get("GoVersion", details.get("GoVersion", "")))
            text += _kv(2, "Git commit", server.get("GitCommit", details.get("GitCommit", "")))
            text += _kv(2, "Built", _ansic(server.get("BuildTime", details.get("BuildTime", ""))))
            text += _kv(2, "OS/Arch", "%s/%s" % (server.get("Os", ""), server.get("Arch", "")))
            text += _kv(2, "Experimental", str(bool(server.get("Experimental"))).lower())
        else:
            text += _kv(2, "GitCommit", details.get("GitCommit", ""))
    sys.stdout.write(text)
    return 0


def _formatted(tmpl: Template, doc: Any, go: GoTypes) -> None:
    """version/info --format: the text, or (as docker's) an empty line and Go's error."""
    from ..flags import TemplateError
    try:
        text = tmpl.render(doc, None, go)
    except TemplateError:
        print()
        raise
    print(text)


def _version_types() -> GoTypes:
    from ..template import GoTypes
    server = ("Server",)
    return GoTypes(
        {(): "system.versionInfo", ("Client",): "system.clientVersion",
         ("Client", "Platform"): "*system.platformInfo", server: "*types.Version",
         server + ("Platform",): "struct { Name string }",
         server + ("Components",): "[]types.ComponentVersion",
         server + ("Components", "[]"): "types.ComponentVersion",
         server + ("Experimental",): "bool"},
        {("Client",): frozenset(("Platform", "DefaultAPIVersion", "GitCommit", "GoVersion",
                                 "BuildTime")),
         server: frozenset(("Platform", "Components", "Version", "APIVersion", "MinAPIVersion",
                            "GitCommit", "GoVersion", "Os", "Arch", "KernelVersion",
                            "Experimental", "BuildTime")),
         server + ("Components", "[]"): frozenset(("Details",)),
         ("Client", "Platform"): frozenset(("Name",)),
         server + ("Platform",): frozenset(("Name",))})


# system.Info's fields a daemon may leave out (omitempty, or newer than the daemon)
INFO_OPTIONAL = frozenset((
    "Containerd", "FirewallBackend", "DiscoveredDevices", "DefaultAddressPools",
    "ProductLicense", "ServerErrors", "ClientErrors", "Warnings", "CDISpecDirs", "Isolation",
    "CgroupVersion", "HttpProxy", "HttpsProxy", "NoProxy", "InitBinary", "GenericResources",
    "ExperimentalBuild", "SystemTime", "LiveRestoreEnabled", "PidsLimit", "CPUSet",
    "CPUShares", "CpuCfsPeriod", "CpuCfsQuota", "OomKillDisable", "SwapLimit", "MemoryLimit",
    "IPv4Forwarding", "OSVersion", "DefaultRuntime", "Runtimes", "SecurityOptions",
    "RegistryConfig", "Swarm", "Plugins", "ContainerdCommit", "RuncCommit", "InitCommit",
    "DriverStatus", "Labels", "Name", "ID", "IndexServerAddress", "NEventsListener"))


def _info_types(doc: Any) -> GoTypes:
    from ..template import GoTypes
    commits: dict[tuple[str, ...], str] = {(name,): "system.Commit" for name in ("ContainerdCommit", "RuncCommit",
                                                     "InitCommit")}
    return GoTypes(
        {(): "system.dockerInfo", ("Plugins",): "system.PluginsInfo",
         ("ClientInfo",): "*system.clientInfo", ("Swarm",): "swarm.Info",
         ("RegistryConfig",): "*registry.ServiceConfig", **commits},
        {(): INFO_OPTIONAL, ("Plugins",): frozenset(("Volume", "Network", "Authorization",
                                                     "Log")),
         ("ClientInfo",): frozenset(("DefaultAPIVersion", "GitCommit", "GoVersion", "Os",
                                     "Arch", "BuildTime")),
         ("Swarm",): frozenset(("NodeID", "NodeAddr", "LocalNodeState", "ControlAvailable",
                                "Error", "RemoteManagers", "Nodes", "Managers", "Cluster",
                                "Warnings")),
         ("RegistryConfig",): frozenset(("InsecureRegistryCIDRs", "IndexConfigs", "Mirrors")),
         **{path: frozenset(("ID", "Expected")) for path in commits}})


def _client_doc(ctx: Context) -> dict[str, Any]:
    api = CLIENT_API_VERSION
    try:
        negotiated = ctx.api.negotiate()
        if negotiated != CLIENT_API_VERSION:
            api = "%s (downgraded from %s)" % (negotiated, CLIENT_API_VERSION)
    except Exception:        # the Client block is printed even with no daemon, as docker's
        pass
    return {"Version": _client_version(), "ApiVersion": api,
            "PythonVersion": "%d.%d.%d" % sys.version_info[:3], "Os": "linux",
            "Arch": {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine,
                                                               os.uname().machine),
            "Context": os.environ.get("DOCKER_CONTEXT") or "default"}


def info(ctx: Context, opts: Options, args: list[str]) -> int:
    doc = ctx.api.get_json("/info")
    if opts["format"]:
        from ..template import Template
        if isinstance(doc, dict):
            doc["ClientInfo"] = {"Debug": False, "Version": _client_version(),
                                 "Context": os.environ.get("DOCKER_CONTEXT") or "default",
                                 "Plugins": [], "Warnings": None}
        _formatted(Template(opts["format"]), doc, _info_types(doc))
        return 0
    out = ["Client:", " Version:    " + _client_version(),
           " Context:    " + (os.environ.get("DOCKER_CONTEXT") or "default"),
           " Debug Mode: false", "", "Server:"]
    g = doc.get
    out += [" Containers: %s" % g("Containers", 0), "  Running: %s" % g("ContainersRunning", 0),
            "  Paused: %s" % g("ContainersPaused", 0),
            "  Stopped: %s" % g("ContainersStopped", 0), " Images: %s" % g("Images", 0),
            " Server Version: %s" % g("ServerVersion", ""),
            " Storage Driver: %s" % g("Driver", "")]
    for pair in g("DriverStatus") or []:
        out.append("  %s: %s" % (pair[0], pair[1]))
    out += [" Logging Driver: %s" % g("LoggingDriver", ""),
            " Cgroup Driver: %s" % g("CgroupDriver", ""),
            " Cgroup Version: %s" % g("CgroupVersion", ""), " Plugins:"]
    plugins = g("Plugins") or {}
    for kind in ("Volume", "Network", "Log"):
        if plugins.get(kind):
            out.append("  %s: %s" % (kind, " ".join(plugins[kind])))
    out.append(" Swarm: %s" % ((g("Swarm") or {}).get("LocalNodeState") or "inactive"))
    out.append(" Runtimes: %s" % " ".join(sorted(g("Runtimes") or {})))
    out.append(" Default Runtime: %s" % g("DefaultRuntime", ""))
    out.append(" Init Binary: %s" % g("InitBinary", ""))
    out.append(" containerd version: %s" % (g("ContainerdCommit") or {}).get("ID", ""))
    out.append(" runc version: %s" % (g("RuncCommit") or {}).get("ID", ""))
    out.append(" init version: %s" % (g("InitCommit") or {}).get("ID", ""))
    sec = g("SecurityOptions") or []
    if sec:
        out.append(" Security Options:")
        for opt in sec:
            fields = dict(f.split("=", 1) for f in opt.split(",") if "=" in f)
            out.append("  " + fields.get("name", opt))
            for k, v in fields.items():
                if k != "name":
                    out.append("   %s: %s" % (k.title(), v))
    out += [" Kernel Version: %s" % g("KernelVersion", ""),
            " Operating System: %s" % g("OperatingSystem", ""),
            " OSType: %s" % g("OSType", ""), " Architecture: %s" % g("Architecture", ""),
            " CPUs: %s" % g("NCPU", 0), " Total Memory: %s" % bytes_size(g("MemTotal", 0)),
            " Name: %s" % g("Name", ""), " ID: %s" % g("ID", ""),
            " Docker Root Dir: %s" % g("DockerRootDir", ""),
            " Debug Mode: %s" % str(bool(g("Debug"))).lower(),
            " Experimental: %s" % str(bool(g("ExperimentalBuild"))).lower()]
    reg = g("RegistryConfig") or {}
    insecure = [k for k in sorted((reg.get("IndexConfigs") or {}))
                if not reg["IndexConfigs"][k].get("Secure", True)] + \
        list(reg.get("InsecureRegistryCIDRs") or [])
    if insecure:
        out.append(" Insecure Registries:")
        out += ["  " + r for r in insecure]
    mirrors = reg.get("Mirrors") or []
    if mirrors:
        out.append(" Registry Mirrors:")
        out += ["  " + m for m in mirrors]
    out.append(" Live Restore Enabled: %s" % str(bool(g("LiveRestoreEnabled"))).lower())
    out.append("")
    sys.stdout.write("\n".join(out) + "\n")
    for w in g("Warnings") or []:
        print_err(w)
    return 0


def _event_time(nanos: int) -> str:
    import datetime
    secs, frac = divmod(nanos, 1_000_000_000)
    dt = datetime.datetime.fromtimestamp(secs).astimezone()
    tz = dt.strftime("%z")
    tz = "Z" if tz == "+0000" else tz[:3] + ":" + tz[3:]
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%09d" % frac + tz


def events(ctx: Context, opts: Options, args: list[str]) -> int:
    from ..client import json_lines
    from .container import _time_arg, parse_filters
    query = {"since": _time_arg(opts["since"]), "until": _time_arg(opts["until"]),
             "filters": parse_filters(opts["filter"])}
    tmpl = None
    go = None
    if opts["format"]:
        from ..flags import TemplateError
        from ..template import GoTypes, Template
        go = GoTypes({(): "*events.Message", ("Actor",): "events.Actor"},
                     {(): frozenset(("Type", "Action", "Actor")),
                      ("Actor",): frozenset(("ID", "Attributes"))})
        try:
            tmpl = Template("{{json .}}" if opts["format"] == "json" else opts["format"])
            tmpl.render({}, _event_fields({}), go)    # as docker's: tried before any event
        except TemplateError as e:
            raise CommandError("Error parsing format: %s" % e, 64) from None
    r = ctx.api.stream("GET", "/events", query)
    for ev in json_lines(r):
        if tmpl is not None:
            line = tmpl.render(ev, _event_fields(ev), go)
        else:
            actor = ev.get("Actor") or {}
            line = ""
            if ev.get("timeNano"):
                line = _event_time(int(ev["timeNano"])) + " "
            line += "%s %s %s" % (ev.get("Type", ""), ev.get("Action", ""), actor.get("ID", ""))
            attrs = actor.get("Attributes") or {}
            if attrs:
                line += " (%s)" % ", ".join("%s=%s" % (k, attrs[k]) for k in sorted(attrs))
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    return 0


def _event_fields(ev: dict[str, Any]) -> dict[str, Any]:
    """events.Message's fields whose JSON names differ from the Go names templates use."""
    return {name: (lambda key=key, zero=zero: ev.get(key, zero)) for name, key, zero in (
        ("Status", "status", ""), ("ID", "id", ""), ("From", "from", ""),
        ("Scope", "scope", ""), ("Time", "time", 0), ("TimeNano", "timeNano", 0))}


def df(ctx: Context, opts: Options, args: list[str]) -> int:
    doc = ctx.api.get_json("/system/df")
    from ..template import tabwrite
    images = doc.get("Images") or []
    containers = doc.get("Containers") or []
    volumes = doc.get("Volumes") or []
    cache = doc.get("BuildCache") or []
    img_size = sum(i.get("Size", 0) for i in images)
    active_imgs = sum(1 for i in images if (i.get("Containers") or 0) > 0)
    img_used = sum(i.get("Size", 0) - i.get("SharedSize", 0) for i in images
                   if (i.get("Containers") or 0) > 0 and i.get("SharedSize", -1) != -1
                   and i.get("Size", -1) != -1)
    c_size = sum(c.get("SizeRw", 0) or 0 for c in containers)
    c_active = sum(1 for c in containers if c.get("State") == "running")
    c_unused = sum(c.get("SizeRw", 0) or 0 for c in containers if c.get("State") != "running")
    v_size = sum(max((v.get("UsageData") or {}).get("Size", 0), 0) for v in volumes)
    v_active = sum(1 for v in volumes if (v.get("UsageData") or {}).get("RefCount", 0) > 0)
    v_unused = sum(max((v.get("UsageData") or {}).get("Size", 0), 0) for v in volumes
                   if (v.get("UsageData") or {}).get("RefCount", 0) == 0)
    b_size = sum(b.get("Size", 0) for b in cache)
    b_unused = sum(b.get("Size", 0) for b in cache if not b.get("InUse"))

    def size(n: int) -> str:
        return human_size(n, 4)

    def pct(part: int, total: int) -> str:
        return "%s (%d%%)" % (size(part), int(round(part * 100 / total))) if total else \
            size(part)
    rows = [["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
            ["Images", str(len(images)), str(active_imgs), size(img_size),
             pct(img_size - img_used, img_size)],
            ["Containers", str(len(containers)), str(c_active), size(c_size),
             pct(c_unused, c_size)],
            ["Local Volumes", str(len(volumes)), str(v_active), size(v_size),
             pct(v_unused, v_size)],
            ["Build Cache", str(len(cache)), str(sum(1 for b in cache if b.get("InUse"))),
             size(b_size), size(b_unused)]]
    sys.stdout.write(tabwrite(rows))
    return 0


def prune(ctx: Context, opts: Options, args: list[str]) -> int:
    if not opts["force"]:
        sys.stdout.write(
            "WARNING! This will remove:\n  - all stopped containers\n"
            "  - all networks not used by at least one container\n"
            + ("  - all anonymous volumes not used by at least one container\n"
               if opts["volumes"] else "")
            + ("  - all images without at least one container associated to them\n"
               if opts["all"] else "  - all dangling images\n")
            + "  - unused build cache\n\nAre you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    total = 0
    c = ctx.api.post_json("/containers/prune")
    if c.get("ContainersDeleted"):
        print("Deleted Containers:")
        print("\n".join(c["ContainersDeleted"]) + "\n")
    total += c.get("SpaceReclaimed") or 0
    try:
        n = ctx.api.post_json("/networks/prune")
        if n.get("NetworksDeleted"):
            print("Deleted Networks:")
            print("\n".join(n["NetworksDeleted"]) + "\n")
    except DaemonError as e:
        if e.status != 404:
            raise
    if opts["volumes"]:
        v = ctx.api.post_json("/volumes/prune")
        if v.get("VolumesDeleted"):
            print("Deleted Volumes:")
            print("\n".join(v["VolumesDeleted"]) + "\n")
        total += v.get("SpaceReclaimed") or 0
    filters = dumps({"dangling": {"false" if opts["all"] else "true": True}})
    i = ctx.api.post_json("/images/prune", {"filters": filters})
    if i.get("ImagesDeleted"):
        print("Deleted Images:")
        for item in i["ImagesDeleted"]:
            for k, val in item.items():
                print("%s: %s" % (k.lower(), val))
        print()
    total += i.get("SpaceReclaimed") or 0
    print("Total reclaimed space: %s" % human_size(total))
    return 0


def print_inspect(ctx: Context, names: list[str], fmt: str, kind: str | None,
                  size: bool) -> int:
    """docker inspect: the objects as an indented JSON array, or the template per object.
    Not found: the daemon's message when ``kind`` is given, else "Error: No such object"."""
    from ..template import Template
    paths = {"container": ("/containers/%s/json", {"size": 1} if size else None),
             "image": ("/images/%s/json", None), "volume": ("/volumes/%s", None),
             "network": ("/networks/%s", None)}
    kinds = [kind] if kind else ["container", "image", "network", "volume"]
    docs = []
    errors = []
    for name in names:
        found = None
        missing = ""
        for k in kinds:
            path, q = paths[k]
            try:
                found = ctx.api.get_json(path % name, q)
                break
            except DaemonError as e:
                if e.status != 404:
                    raise
                missing = "Error response from daemon: " + e.message
        if found is None:
            errors.append(missing if kind else "Error: No such object: %s" % name)
        else:
            docs.append((k, found))
    if fmt and fmt != "json":
        from ..flags import TemplateError
        tmpl = Template(fmt)
        failed = 0
        for k, d in docs:
            try:
                sys.stdout.write(tmpl.render(d, None, _inspect_types(k)) + "\n")
            except TemplateError as e:
                errors.append("template parsing error: %s" % e)
                failed += 1
        if failed and failed == len(docs):      # docker's empty line
            sys.stdout.write("\n")
    else:
        import json
        sys.stdout.write(json.dumps([d for _, d in docs], indent=4, ensure_ascii=False).replace(
            "<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"
            if docs or not errors else "[]\n")
    for msg in errors:
        print_err(msg)
    return 1 if errors else 0


# the fields that are Go maps in the typed inspect structs (and LogConfig.Config): their
# missing keys print "<no value>" where the rest of the raw JSON fails as a map
INSPECT_MAPS = frozenset(("Labels", "ExposedPorts", "Volumes", "Ports", "Networks", "Sysctls",
                          "StorageOpt", "Tmpfs", "Data", "Options", "DriverOpts",
                          "Annotations", "Containers", "Status", "LogConfig.Config",
                          "Metadata", "RootFS.Layers"))


def _inspect_types(kind: str) -> GoTypes:
    """How docker 28's inspect runs a template on each kind: containers, images and networks
    fall back to the raw JSON (missingkey=error), volumes stay the typed struct."""
    from ..template import GoTypes
    if kind in ("container", "image", "network"):
        return GoTypes(raw=True, maps=INSPECT_MAPS)
    return GoTypes({(): "volume.Volume"}, {(): frozenset((
        "CreatedAt", "Status", "ClusterVolume", "UsageData", "Labels", "Options"))})


def inspect(ctx: Context, opts: Options, args: list[str]) -> int:
    kind = opts["type"] or None
    if kind and kind not in ("container", "image", "network", "volume"):
        raise CommandError('"%s" is not a valid value for --type' % kind)
    return print_inspect(ctx, args, opts["format"], kind, opts["size"])


def login(ctx: Context, opts: Options, args: list[str]) -> int:
    from ..credentials import HelperError, get, registry_key
    server = args[0] if args else "https://index.docker.io/v1/"
    user = opts["username"]
    password = opts["password"]
    if password:
        print_err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
    if opts["password-stdin"]:
        if password:
            raise CommandError("--password and --password-stdin are mutually exclusive")
        if not user:
            raise CommandError("Must provide --username with --password-stdin")
        password = sys.stdin.read()
        password = password[:-1] if password.endswith("\n") else password
        password = password[:-1] if password.endswith("\r") else password
    key = registry_key(server)
    stored_user = ""
    if not user and not password:
        # as docker's: the stored user name and password are tried first (an identity token
        # alone is not: the user is asked again)
        from ..config import load
        try:
            stored = get(load(ctx.config_dir), key)
        except (ValueError, HelperError):
            stored = {}
        stored_user = stored.get("username", "")
        if stored_user and stored.get("password"):
            print_err("Authenticating with existing credentials... [Username: %s]\n\n Info -> "
                      "To login with a different account, run 'docker logout' followed by "
                      "'docker login'\n\n\n" % stored_user)
            try:
                doc = ctx.api.post_json("/auth", None, {
                    "username": stored_user, "password": stored["password"],
                    "serveraddress": server})
            except DaemonError as e:
                print_err("Stored credentials invalid or expired" if e.status == 401 else
                          "Login did not succeed, error: Error response from daemon: %s"
                          % e.message)
            else:
                _keep(ctx, key, stored_user, stored["password"], doc)
                return 0
    if (not user or not password) and not os.isatty(0):
        raise CommandError("Error: Cannot perform an interactive login from a non TTY device")
    if not user:
        sys.stdout.write("Username (%s): " % stored_user if stored_user else "Username: ")
        sys.stdout.flush()
        user = sys.stdin.readline().strip() or stored_user
    if not password:
        import getpass
        password = getpass.getpass("Password: ")
    if not user or not password:
        raise CommandError("Error: Non-null Username Required" if not user
                           else "Error: Password Required")
    doc = ctx.api.post_json("/auth", None, {"username": user, "password": password,
                                            "serveraddress": server})
    _keep(ctx, key, user, password, doc)
    return 0


def _keep(ctx: Context, key: str, user: str, password: str, doc: Any) -> None:
    """Store a login the daemon accepted and print its status. As docker's: an identity
    token from the registry is kept (and sent later) instead of the password."""
    from ..config import load, save
    from ..credentials import HelperError, store
    token = str((doc or {}).get("IdentityToken") or "")
    conf = load(ctx.config_dir)
    try:
        kept = store(conf, key, user, "" if token else password, token)
    except HelperError as e:
        raise CommandError("Error saving credentials: %s" % e) from None
    if not kept and not token:      # docker warns only of a password kept in the file
        path = save(conf, ctx.config_dir)
        print_err("WARNING! Your credentials are stored unencrypted in '%s'.\nConfigure a "
                  "credential helper to remove this warning. See\n"
                  "https://docs.docker.com/go/credential-store/\n" % path)
    else:
        save(conf, ctx.config_dir)
    print((doc or {}).get("Status") or "Login Succeeded")


def logout(ctx: Context, opts: Options, args: list[str]) -> int:
    from ..config import load, save
    from ..credentials import INDEX_SERVER, erase, registry_key
    server = args[0] if args else INDEX_SERVER
    key = registry_key(server)
    conf = load(ctx.config_dir)
    if key not in (conf.get("auths") or {}):
        print("Not logged in to %s" % key)
        return 0
    print("Removing login credentials for %s" % key)
    # as docker's: every name the registry may have been logged in under; a warning only
    # when none could be erased
    names = [key] if key == INDEX_SERVER else [key, server, "http://" + key, "https://" + key]
    failures = [(name, erase(conf, name)) for name in names]
    save(conf, ctx.config_dir)
    if all(message for _, message in failures):
        print_err("WARNING: could not erase credentials:\n" + "\n".join(
            "%s: %s" % pair for pair in failures))
    return 0


def _cmd(name: str, use: str, short: str, fn: Any, flags: list[Flag], args: str = "any",
         nargs: int = 0, shortcut: str | None = None) -> Command:
    aliases = []
    if shortcut:
        aliases = ["pydocker system %s" % name, "pydocker %s" % shortcut]
    return Command(name, use, short, fn, flags, aliases, args, nargs)


def group() -> Command:
    fmt = Flag("format", "f", "string", "Format output using a custom template:\n"
               "'json':             Print in JSON format\n"
               "'TEMPLATE':         Print output using the given Go template.\n"
               "Refer to https://docs.docker.com/go/formatting/ for more information about "
               "formatting output with templates")
    subs = [
        _cmd("df", "[OPTIONS]", "Show docker disk usage", df,
             [Flag("format", "", "string", "Format output using a custom template"),
              Flag("verbose", "v", "", "Show detailed information on space usage")], "none"),
        _cmd("events", "[OPTIONS]", "Get real time events from the server", events,
             [Flag("filter", "f", "filter", "Filter output based on conditions provided",
                   multi=True),
              Flag("format", "", "string", "Format output using a custom template"),
              Flag("since", "", "string", "Show all events created since timestamp"),
              Flag("until", "", "string", "Stream events until this timestamp")], "none",
             shortcut="events"),
        _cmd("info", "[OPTIONS]", "Display system-wide information", info, [fmt], "none",
             shortcut="info"),
        _cmd("prune", "[OPTIONS]", "Remove unused data", prune,
             [Flag("all", "a", "", "Remove all unused images not just dangling ones"),
              Flag("filter", "", "filter", 'Provide filter values (e.g. "label=<key>=<value>")',
                   multi=True),
              Flag("force", "f", "", "Do not prompt for confirmation"),
              Flag("volumes", "", "", "Prune anonymous volumes")], "none"),
    ]
    hidden = [
        Command("version", "[OPTIONS]", "Show the Docker version information", version,
                [fmt], args="none"),
        Command("login", "[OPTIONS] [SERVER]", "Authenticate to a registry", login,
                [Flag("password", "p", "string", "Password or Personal Access Token (PAT)"),
                 Flag("password-stdin", "", "", "Take the Password or Personal Access Token "
                      "(PAT) from stdin"),
                 Flag("username", "u", "string", "Username")], args="max", nargs=1),
        Command("logout", "[SERVER]", "Log out from a registry", logout, args="max", nargs=1),
        Command("inspect", "[OPTIONS] NAME|ID [NAME|ID...]",
                "Return low-level information on Docker objects", inspect,
                [fmt, Flag("size", "s", "", "Display total file sizes if the type is "
                           "container"),
                 Flag("type", "", "string", "Only inspect objects of the given type")],
                args="min", nargs=1),
    ]
    g = Command("system", "", "Manage Docker", subcommands=subs)
    g.hidden_subcommands = hidden  # type: ignore[attr-defined]
    return g
