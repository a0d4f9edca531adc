"""``pydocker container``: ls/ps, run, create, start, stop, restart, kill, rm, logs, exec,
inspect, top, wait, rename, pause, unpause, port, diff, export, commit, cp, stats, attach,
prune, update."""
from __future__ import annotations

import os
import sys
import time

from ..client import DaemonError
from ..flags import PROG, Command, CommandError, Flag, print_err
from ..jsonio import dumps, loads, quote
from ..template import render_list
from ..units import ago, go_time, human_size, parse_timestamp

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..flags import Options
    from ..main import Context

FORMAT_HELP = ("Format output using a custom template:\n"
               "'table':            Print output in table format with column headers "
               "(default)\n"
               "'table TEMPLATE':   Print output in table format using the given Go template\n"
               "'json':             Print in JSON format\n"
               "'TEMPLATE':         Print output using the given Go template.\n"
               "Refer to https://docs.docker.com/go/formatting/ for more information about "
               "formatting output with templates")

PS_TABLE = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
              "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
              "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES",
              "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
              "LocalVolumes": "LOCAL VOLUMES", "Platform": "PLATFORM"}


def ellipsis(s: str, n: int) -> str:
    return s if len(s) <= n else s[:n - 1] + "…"


def go_quote(s: str) -> str:
    return quote(s).replace("\\u007f", "\\x7f")


def display_ports(ports: list[dict[str, Any]]) -> str:
    """docker's DisplayablePorts: "127.0.0.1:8089->80/tcp", consecutive ports as ranges."""
    groups: dict[str, list[int]] = {}
    order: list[str] = []
    for p in sorted(ports or [], key=lambda p: (p.get("Type", ""), p.get("PrivatePort", 0),
                                                 p.get("IP", ""), p.get("PublicPort", 0))):
        proto = p.get("Type", "tcp")
        if p.get("IP") is not None and p.get("PublicPort"):
            ip = p["IP"]
            host = ("[%s]" % ip) if ":" in ip else ip
            key = "%s:%d->%d/%s" % (host, p["PublicPort"], p["PrivatePort"], proto)
        else:
            key = "%d/%s" % (p.get("PrivatePort", 0), proto)
        if key not in groups:
            groups[key] = []
            order.append(key)
    return ", ".join(order)


def container_fields(c: dict[str, Any], trunc: bool) -> dict[str, Any]:
    cid = c.get("Id", "")
    names = [n.lstrip("/") for n in c.get("Names") or []]
    if trunc:
        names = [n for n in names if "/" not in n][:1] or names[:1]
    command = c.get("Command", "")
    image = c.get("Image", "")
    if trunc:
        if image.startswith("sha256:"):
            image = image[7:19]
        command = ellipsis(command, 20)
    size = human_size(c.get("SizeRw") or 0)
    if c.get("SizeRootFs"):
        size += " (virtual %s)" % human_size(c["SizeRootFs"])
    mounts = []
    for m in c.get("Mounts") or []:
        name = m.get("Name") or m.get("Source", "")
        mounts.append(ellipsis(name, 15) if trunc else name)
    labels = c.get("Labels") or {}
    nets = sorted(((c.get("NetworkSettings") or {}).get("Networks") or {}).keys())
    return {
        "Command": go_quote(command),
        "CreatedAt": go_time(c.get("Created", 0)),
        "ID": cid[:12] if trunc else cid,
        "Image": image,
        "Labels": ",".join("%s=%s" % (k, labels[k]) for k in sorted(labels)),
        "LocalVolumes": str(sum(1 for m in c.get("Mounts") or [] if m.get("Driver") == "local")),
        "Mounts": ",".join(mounts),
        "Names": ",".join(names),
        "Networks": ",".join(nets),
        "Platform": None,
        "Ports": display_ports(c.get("Ports") or []),
        "RunningFor": ago(c.get("Created", 0)),
        "Size": size,
        "State": c.get("State", ""),
        "Status": c.get("Status", ""),
    }


def parse_filters(values: list[str]) -> str | None:
    out: dict[str, dict[str, bool]] = {}
    for v in values:
        if "=" not in v:
            raise CommandError('invalid argument "%s" for "-f, --filter" flag: bad format of '
                               'filter (expected name=value)' % v, 125)
        k, _, val = v.partition("=")
        out.setdefault(k.strip().lower(), {})[val] = True
    return dumps(out) if out else None


def load_config_format(ctx: Context, key: str) -> str:
    from ..config import load
    try:
        return str(load(ctx.config_dir).get(key) or "")
    except ValueError:
        return ""


def ls(ctx: Context, opts: Options, args: list[str]) -> int:
    fmt = opts["format"] or load_config_format(ctx, "psFormat") or "table"
    size = opts["size"] or ".Size" in fmt or "json ." in fmt
    query: dict[str, Any] = {"all": opts["all"] or None, "size": size or None,
                             "filters": parse_filters(opts["filter"])}
    if opts["latest"]:
        query["limit"] = 1
    elif opts["last"] != -1:
        query["limit"] = opts["last"]
    if query.get("limit") is not None:
        query["all"] = True
    containers = ctx.api.get_json("/containers/json", query)
    if opts["quiet"] and not opts["format"]:
        sys.stdout.write("".join((c["Id"] if opts["no-trunc"] else c["Id"][:12]) + "\n"
                                 for c in containers))
        return 0
    if fmt == "table":
        fmt = PS_TABLE + ("\t{{.Size}}" if opts["size"] else "")
    if opts["quiet"]:
        fmt = "{{.ID}}"
    items = [container_fields(c, not opts["no-trunc"]) for c in containers]

    def methods(item: dict[str, Any]) -> dict[str, Any]:
        labels = dict(kv.split("=", 1) for kv in item["Labels"].split(",") if "=" in kv)
        return {"Label": lambda k: labels.get(k, "")}
    sys.stdout.write(render_list(fmt, items, PS_HEADERS, methods))
    return 0


# -- create / run ---------------------------------------------------------------------------

def _env_file(path: str) -> list[str]:
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                if "=" not in line:
                    value = os.environ.get(line)
                    if value is None:
                        continue
                    line = "%s=%s" % (line, value)
                out.append(line)
    except OSError as e:
        raise CommandError("open %s: %s" % (path, (e.strerror or str(e)).lower()), 125) \
            from None
    return out


def _env(values: list[str]) -> list[str]:
    out = []
    for v in values:
        if "=" in v:
            out.append(v)
        elif v in os.environ:
            out.append("%s=%s" % (v, os.environ[v]))
    return out


def _parse_port_spec(spec: str) -> tuple[str, list[dict[str, str]]]:
    """-p [ip:][hostPort:]containerPort[/proto] (ranges not split here: the daemon checks)."""
    proto = "tcp"
    if "/" in spec:
        spec, proto = spec.rsplit("/", 1)
    ip = host = ""
    if spec.startswith("["):
        end = spec.find("]")
        ip, spec = spec[1:end], spec[end + 2:]
        parts = spec.split(":")
        host, cport = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
    else:
        parts = spec.split(":")
        if len(parts) == 1:
            cport = parts[0]
        elif len(parts) == 2:
            host, cport = parts
        elif len(parts) == 3:
            ip, host, cport = parts
        else:
            raise CommandError("invalid argument \"%s\" for \"-p, --publish\" flag: Invalid "
                               "hostPort: %s" % (spec, spec), 125)
    if not cport or not all(x.isdigit() for x in cport.split("-")):
        raise CommandError('invalid argument "%s" for "-p, --publish" flag: invalid '
                           'containerPort: %s' % (spec, cport), 125)
    if host and not all(x.isdigit() for x in host.split("-")):
        raise CommandError('invalid argument "%s" for "-p, --publish" flag: invalid hostPort: '
                           '%s' % (spec, host), 125)
    return "%s/%s" % (cport, proto.lower()), [{"HostIp": ip, "HostPort": host}]


def _mount(spec: str) -> dict[str, Any]:
    m: dict[str, Any] = {"Type": "volume"}
    for field in spec.split(","):
        k, eq, v = field.partition("=")
        k = k.strip().lower()
        if k in ("type",):
            m["Type"] = v
        elif k in ("source", "src"):
            m["Source"] = v
        elif k in ("target", "destination", "dst"):
            m["Target"] = v
        elif k in ("readonly", "ro"):
            m["ReadOnly"] = (not eq) or v.lower() in ("1", "true")
        elif k == "bind-propagation":
            m.setdefault("BindOptions", {})["Propagation"] = v
        elif k == "volume-nocopy":
            m.setdefault("VolumeOptions", {})["NoCopy"] = (not eq) or v.lower() == "true"
        elif k == "tmpfs-size":
            m.setdefault("TmpfsOptions", {})["SizeBytes"] = _bytes(v, "--mount")
        elif k == "tmpfs-mode":
            m.setdefault("TmpfsOptions", {})["Mode"] = int(v, 8)
        else:
            raise CommandError('invalid argument "%s" for "--mount" flag: unexpected key \'%s\''
                               ' in \'%s\'' % (spec, k, field), 125)
    if "Target" not in m:
        raise CommandError('invalid argument "%s" for "--mount" flag: target is required'
                           % spec, 125)
    return m


def _duration_ns(text: str) -> int:
    import re
    total = 0.0
    pos = 0
    units = {"ns": 1, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        if text == "0":
            return 0
        raise CommandError('invalid argument "%s": time: invalid duration "%s"' % (text, text),
                           125)
    return int(total)


def _bytes(text: str, flag: str) -> int:
    from ..units import parse_bytes
    try:
        return parse_bytes(text)
    except ValueError as e:
        raise CommandError('invalid argument "%s" for "%s" flag: %s' % (text, flag, e), 125) \
            from None


def _ulimit(spec: str) -> dict[str, Any]:
    name, _, rng = spec.partition("=")
    soft, _, hard = rng.partition(":")
    try:
        s = int(soft)
        h = int(hard) if hard else s
    except ValueError:
        raise CommandError('invalid argument "%s" for "--ulimit" flag: invalid ulimit argument'
                           ': %s' % (spec, spec), 125) from None
    return {"Name": name, "Soft": s, "Hard": h}


def build_config(opts: Options, args: list[str]) -> tuple[dict[str, Any], str]:
    """The body of POST /containers/create for run/create's flags, and the platform."""
    image, cmd = args[0], args[1:]
    env: list[str] = []
    for path in opts["env-file"]:
        env += _env_file(path)
    env += _env(opts["env"])
    labels: dict[str, str] = {}
    for kv in opts["label"]:
        k, _, v = kv.partition("=")
        labels[k] = v
    exposed: dict[str, dict[str, Any]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in opts["publish"]:
        port, b = _parse_port_spec(spec)
        exposed[port] = {}
        bindings.setdefault(port, []).extend(b)
    for spec in opts["expose"]:
        exposed[spec if "/" in spec else spec + "/tcp"] = {}
    binds: list[str] = []
    volumes: dict[str, dict[str, Any]] = {}
    for v in opts["volume"]:
        if ":" in v and not v.startswith(":"):
            binds.append(v)
        else:
            volumes[v] = {}
    tmpfs = {}
    for t in opts["tmpfs"]:
        path, _, topts = t.partition(":")
        tmpfs[path] = topts
    host: dict[str, Any] = {
        "Binds": binds or None, "AutoRemove": opts["rm"], "Privileged": opts["privileged"],
        "ReadonlyRootfs": opts["read-only"], "PublishAllPorts": opts["publish-all"],
        "PortBindings": bindings, "CapAdd": opts["cap-add"] or None,
        "CapDrop": opts["cap-drop"] or None, "SecurityOpt": opts["security-opt"] or None,
        "NetworkMode": opts["network"] or "default", "Mounts": [_mount(m) for m in opts["mount"]],
        "Tmpfs": tmpfs or None, "Ulimits": [_ulimit(u) for u in opts["ulimit"]] or None,
        "Dns": opts["dns"], "DnsSearch": opts["dns-search"], "DnsOptions": opts["dns-option"],
        "ExtraHosts": opts["add-host"] or None, "GroupAdd": opts["group-add"] or None,
        "VolumesFrom": opts["volumes-from"] or None, "LogConfig": {"Type": opts["log-driver"],
                                                                   "Config": dict(
            o.split("=", 1) for o in opts["log-opt"] if "=" in o)},
        "Sysctls": dict(s.split("=", 1) for s in opts["sysctl"] if "=" in s) or None,
        "ShmSize": _bytes(opts["shm-size"], "--shm-size") if opts["shm-size"] else 0,
    }
    if opts["init"]:
        host["Init"] = True
    if opts["runtime"]:
        host["Runtime"] = opts["runtime"]
    if opts["memory"]:
        host["Memory"] = _bytes(opts["memory"], "-m, --memory")
    if opts["cpus"]:
        try:
            host["NanoCpus"] = int(round(float(opts["cpus"]) * 1e9))
        except ValueError:
            raise CommandError('invalid argument "%s" for "--cpus" flag: failed to parse %s as '
                               'a rational number' % (opts["cpus"], opts["cpus"]), 125) from None
    if opts["cpu-shares"]:
        host["CpuShares"] = opts["cpu-shares"]
    if "pids-limit" in opts.changed:
        host["PidsLimit"] = opts["pids-limit"]
    for name in ("pid", "ipc", "uts", "userns", "cgroupns", "cgroup-parent"):
        if opts[name]:
            key = {"pid": "PidMode", "ipc": "IpcMode", "uts": "UTSMode", "userns": "UsernsMode",
                   "cgroupns": "CgroupnsMode", "cgroup-parent": "CgroupParent"}[name]
            host[key] = opts[name]
    restart = opts["restart"] or "no"
    rname, _, count = restart.partition(":")
    if rname not in ("no", "always", "on-failure", "unless-stopped"):
        raise CommandError("invalid restart policy: %s" % restart, 125)
    host["RestartPolicy"] = {"Name": rname, "MaximumRetryCount": int(count) if count else 0}
    if opts["rm"] and rname != "no":
        raise CommandError("Conflicting options: --restart and --rm", 125)
    config: dict[str, Any] = {
        "Image": image, "Cmd": cmd or None, "Env": env, "Labels": labels,
        "Tty": opts["tty"], "OpenStdin": opts["interactive"],
        "StdinOnce": opts["interactive"] and not opts.get("detach", False),
        "AttachStdin": opts["interactive"], "AttachStdout": True, "AttachStderr": True,
        "WorkingDir": opts["workdir"], "User": opts["user"], "Hostname": opts["hostname"],
        "Domainname": opts["domainname"], "ExposedPorts": exposed, "Volumes": volumes or None,
        "HostConfig": host,
    }
    if opts.get("detach"):
        config["AttachStdin"] = config["AttachStdout"] = config["AttachStderr"] = False
    if "entrypoint" in opts.changed:
        config["Entrypoint"] = [opts["entrypoint"]] if opts["entrypoint"] else [""]
    if opts["stop-signal"]:
        config["StopSignal"] = opts["stop-signal"]
    if opts["stop-timeout"]:
        config["StopTimeout"] = opts["stop-timeout"]
    health: dict[str, Any] = {}
    if opts["no-healthcheck"]:
        health["Test"] = ["NONE"]
    elif opts["health-cmd"]:
        health["Test"] = ["CMD-SHELL", opts["health-cmd"]]
    for flag, key in (("health-interval", "Interval"), ("health-timeout", "Timeout"),
                      ("health-start-period", "StartPeriod")):
        if opts[flag]:
            health[key] = _duration_ns(opts[flag])
    if opts["health-retries"]:
        health["Retries"] = opts["health-retries"]
    if health:
        config["Healthcheck"] = health
    if opts["network"] and opts["network-alias"]:
        config["NetworkingConfig"] = {"EndpointsConfig": {opts["network"]: {
            "Aliases": opts["network-alias"]}}}
    return config, opts["platform"]


def pull_image(ctx: Context, image: str, platform: str, quiet: bool, out: Any) -> None:
    from ..client import json_lines
    from ..reference import parse
    from ..streams import display_json_messages
    ref = parse(image).with_default_tag()
    query = {"fromImage": ref.name if not ref.tag else ref.name, "tag": ref.digest or ref.tag,
             "platform": platform or None}
    headers = registry_auth_header(ctx, ref.domain)
    r = ctx.api.stream("POST", "/images/create", query, headers=headers)
    messages = json_lines(r)
    if quiet:
        for jm in messages:
            if jm.get("error"):
                raise CommandError(jm["error"])
        return
    display_json_messages(messages, out, out.isatty())


def registry_auth_header(ctx: Context, domain: str) -> dict[str, str]:
    """X-Registry-Auth for a request to registry ``domain``: what config.json or its
    credential helper keeps for that registry alone; {} when nothing, or when the helper
    fails (docker's pull then goes anonymous too, saying nothing)."""
    import base64
    from ..config import load
    from ..credentials import HelperError, get, registry_key
    try:
        conf = load(ctx.config_dir)
        doc = get(conf, registry_key(domain))
    except (ValueError, HelperError):
        return {}
    if not doc:
        return {}
    return {"X-Registry-Auth": base64.urlsafe_b64encode(dumps(doc).encode()).decode()}


def create_container(ctx: Context, opts: Options, args: list[str]) -> str:
    from ..reference import parse
    config, platform = build_config(opts, args)
    query = {"name": opts["name"] or None, "platform": platform or None}
    try:
        parse(args[0])
    except ValueError as e:
        raise CommandError("%s: %s\n\nRun '%s run --help' for more information"
                           % (PROG, e, PROG), 125) from None
    pull = opts["pull"] or "missing"
    if pull not in ("always", "missing", "never"):
        raise CommandError('invalid pull option: \'%s\': must be one of "always", "missing" or '
                           '"never"' % pull, 125)
    if pull == "always":
        pull_image(ctx, args[0], platform, opts["quiet"], sys.stderr)
    try:
        resp = ctx.api.post_json("/containers/create", query, config)
    except DaemonError as e:
        if e.status != 404 or pull == "never" or "No such image" not in e.message:
            raise
        ref = parse(args[0]).with_default_tag()
        print_err("Unable to find image '%s' locally" % ref.familiar())
        pull_image(ctx, args[0], platform, opts["quiet"], sys.stderr)
        resp = ctx.api.post_json("/containers/create", query, config)
    for w in resp.get("Warnings") or []:
        print_err("WARNING: " + w)
    if opts["cidfile"]:
        with open(opts["cidfile"], "x") as f:
            f.write(resp["Id"])
    return str(resp["Id"])


def _run_error(e: DaemonError, path: str) -> CommandError:
    msg = e.message
    code = 125
    if "executable file not found" in msg or "no such file or directory" in msg:
        code = 127
    elif "permission denied" in msg or "cannot execute" in msg:
        code = 126
    return CommandError("%s: Error response from daemon: %s\n\nRun '%s --help' for more "
                        "information" % (PROG, msg, path), code)


def create(ctx: Context, opts: Options, args: list[str]) -> int:
    try:
        cid = create_container(ctx, opts, args)
    except DaemonError as e:
        raise _run_error(e, "pydocker create") from None
    print(cid)
    return 0


def run(ctx: Context, opts: Options, args: list[str]) -> int:
    from ..client import ConnectError
    path = "pydocker run"
    if opts["tty"] and opts["interactive"] and not opts["detach"] and not sys.stdin.isatty():
        raise CommandError("the input device is not a TTY")
    try:
        cid = create_container(ctx, opts, args)
    except DaemonError as e:
        raise _run_error(e, path) from None
    if opts["detach"]:
        try:
            ctx.api.call("POST", "/containers/%s/start" % cid)
        except DaemonError as e:
            raise _run_error(e, path) from None
        print(cid)
        return 0
    condition = "removed" if opts["rm"] else "next-exit"
    waiter = ctx.api.stream("POST", "/containers/%s/wait" % cid, {"condition": condition})
    if opts["interactive"] and opts["tty"] and sys.stdin.isatty():
        from .. import tty

        def start() -> None:
            try:
                ctx.api.call("POST", "/containers/%s/start" % cid)
            except DaemonError as e:
                raise _run_error(e, path) from None
        if tty.interactive(ctx.api, cid, opts["detach-keys"], start):
            return 0
    else:
        stream = _attach_stream(ctx, cid, opts["interactive"])
        try:
            ctx.api.call("POST", "/containers/%s/start" % cid)
        except DaemonError as e:
            stream.close()
            if opts["rm"]:
                try:
                    ctx.api.call("DELETE", "/containers/" + cid, {"force": True})
                except (DaemonError, ConnectError):
                    pass
            raise _run_error(e, path) from None
        _pump(stream, opts["tty"], opts["interactive"])
    doc = loads(waiter.read() or b"{}")
    if doc.get("Error") and doc["Error"].get("Message"):
        print_err(doc["Error"]["Message"])
    return int(doc.get("StatusCode", 0))


def _attach_stream(ctx: Context, cid: str, stdin: bool) -> Any:
    from ..streams import hijack
    return hijack(ctx.api, "/containers/%s/attach" % cid,
                  {"stream": 1, "stdout": 1, "stderr": 1, "stdin": 1 if stdin else None})


def _pump(stream: Any, tty: bool, stdin: bool) -> None:
    import threading
    if stdin:
        def feed() -> None:
            try:
                while True:
                    data = os.read(0, 65536)
                    if not data:
                        break
                    stream.sock.sendall(data)
            except OSError:
                pass
            stream.close_write()
        threading.Thread(target=feed, daemon=True).start()
    out = sys.stdout.buffer
    if tty:
        while True:
            data = stream.read()
            if not data:
                break
            out.write(data)
            out.flush()
    else:
        from ..streams import demux
        demux(stream, out, sys.stderr.buffer)
    stream.close()


# -- simple verbs ---------------------------------------------------------------------------

def for_each(ctx: Context, names: list[str], method: str, path: str,
          query: dict[str, Any] | None = None, echo: bool = True) -> int:
    failed = []
    for name in names:
        try:
            ctx.api.call(method, path % name, query)
            if echo:
                print(name)
        except DaemonError as e:
            failed.append(e.message)
    for msg in failed:
        print_err("Error response from daemon: " + msg)
    return 1 if failed else 0


def start(ctx: Context, opts: Options, args: list[str]) -> int:
    if opts["attach"] or opts["interactive"]:
        if len(args) > 1:
            raise CommandError("you cannot start and attach multiple containers at once")
        cid = args[0]
        info = ctx.api.get_json("/containers/%s/json" % cid)
        waiter = ctx.api.stream("POST", "/containers/%s/wait" % cid,
                                {"condition": "next-exit"})
        stream = _attach_stream(ctx, cid, opts["interactive"])
        try:
            ctx.api.call("POST", "/containers/%s/start" % cid)
        except DaemonError as e:
            stream.close()
            raise _run_error(e, "pydocker start") from None
        _pump(stream, info["Config"].get("Tty", False), opts["interactive"])
        doc = loads(waiter.read() or b"{}")
        return int(doc.get("StatusCode", 0))
    return for_each(ctx, args, "POST", "/containers/%s/start")


def _stop_timeout(opts: Options) -> int | None:
    for name in ("timeout", "time"):
        if name in opts.changed:
            return int(opts[name])
    return None


def stop(ctx: Context, opts: Options, args: list[str]) -> int:
    q = {"t": _stop_timeout(opts), "signal": opts["signal"] or None}
    return for_each(ctx, args, "POST", "/containers/%s/stop", q)


def restart(ctx: Context, opts: Options, args: list[str]) -> int:
    q = {"t": _stop_timeout(opts), "signal": opts["signal"] or None}
    return for_each(ctx, args, "POST", "/containers/%s/restart", q)


def kill(ctx: Context, opts: Options, args: list[str]) -> int:
    return for_each(ctx, args, "POST", "/containers/%s/kill", {"signal": opts["signal"] or None})


def rm(ctx: Context, opts: Options, args: list[str]) -> int:
    return for_each(ctx, args, "DELETE", "/containers/%s",
                 {"force": opts["force"] or None, "v": opts["volumes"] or None,
                  "link": opts["link"] or None})


def pause(ctx: Context, opts: Options, args: list[str]) -> int:
    return for_each(ctx, args, "POST", "/containers/%s/pause")


def unpause(ctx: Context, opts: Options, args: list[str]) -> int:
    return for_each(ctx, args, "POST", "/containers/%s/unpause")


def rename(ctx: Context, opts: Options, args: list[str]) -> int:
    old, new = args[0].strip(), args[1].strip().lstrip("/")
    if not old or not new:
        raise CommandError("Error: Neither old nor new names may be empty")
    ctx.api.call("POST", "/containers/%s/rename" % old, {"name": new})
    return 0


def wait(ctx: Context, opts: Options, args: list[str]) -> int:
    failed = 0
    for name in args:
        try:
            doc = ctx.api.post_json("/containers/%s/wait" % name)
            print(doc.get("StatusCode", 0))
        except DaemonError as e:
            print_err("Error response from daemon: " + e.message)
            failed = 1
    return failed


def logs(ctx: Context, opts: Options, args: list[str]) -> int:
    info = ctx.api.get_json("/containers/%s/json" % args[0])
    q = {"stdout": 1, "stderr": 1, "follow": opts["follow"] or None,
         "timestamps": opts["timestamps"] or None, "tail": opts["tail"] or None,
         "since": _time_arg(opts["since"]), "until": _time_arg(opts["until"]),
         "details": opts["details"] or None}
    r = ctx.api.stream("GET", "/containers/%s/logs" % info["Id"], q)
    if info.get("Config", {}).get("Tty"):
        while True:
            data = r.read1(65536)
            if not data:
                break
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
    else:
        from ..streams import demux
        demux(r, sys.stdout.buffer, sys.stderr.buffer)
    return 0


def _time_arg(text: str) -> str | None:
    """docker's GetTimestamp: a duration ("10m") before now, a date, or unix seconds."""
    if not text:
        return None
    if text.replace(".", "", 1).isdigit():
        return text
    import re
    if re.match(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$", text):
        return "%.9f" % (time.time() - _duration_ns(text) / 1e9)
    try:
        return "%.9f" % parse_timestamp(text if "T" in text or len(text) > 10
                                        else text + "T00:00:00Z")
    except ValueError:
        raise CommandError('invalid value for "since": failed to parse value as time or '
                           'duration: "%s"' % text, 125) from None


def exec_(ctx: Context, opts: Options, args: list[str]) -> int:
    body = {"AttachStdin": opts["interactive"] and not opts["detach"],
            "AttachStdout": not opts["detach"], "AttachStderr": not opts["detach"],
            "Tty": opts["tty"], "Cmd": args[1:], "Env": _env(opts["env"]),
            "User": opts["user"], "WorkingDir": opts["workdir"],
            "Privileged": opts["privileged"]}
    if opts["env-file"]:
        body["Env"] = sum((_env_file(p) for p in opts["env-file"]), []) + body["Env"]
    try:
        eid = ctx.api.post_json("/containers/%s/exec" % args[0], None, body)["Id"]
    except DaemonError as e:
        raise CommandError("Error response from daemon: " + e.message) from None
    if opts["detach"]:
        ctx.api.call("POST", "/exec/%s/start" % eid, None, {"Detach": True, "Tty": opts["tty"]})
        return 0
    if opts["interactive"] and opts["tty"] and sys.stdin.isatty():
        from .. import tty
        tty.interactive_exec(ctx.api, eid, opts["detach-keys"])
    else:
        from ..streams import hijack
        stream = hijack(ctx.api, "/exec/%s/start" % eid, None,
                        {"Detach": False, "Tty": opts["tty"]})
        _pump(stream, opts["tty"], opts["interactive"])
    doc = ctx.api.get_json("/exec/%s/json" % eid)
    code = doc.get("ExitCode")
    return int(code) if code is not None else 0


def inspect(ctx: Context, opts: Options, args: list[str]) -> int:
    from .system import print_inspect
    return print_inspect(ctx, args, opts["format"], "container", opts["size"])


def top(ctx: Context, opts: Options, args: list[str]) -> int:
    q = {"ps_args": " ".join(args[1:])} if len(args) > 1 else None
    doc = ctx.api.get_json("/containers/%s/top" % args[0], q)
    rows = [doc.get("Titles") or []] + (doc.get("Processes") or [])
    width = 20
    for row in rows:
        sys.stdout.write("".join(c.ljust(width) if len(c) < width - 1 else c + " "
                                 for c in row[:-1]) + (row[-1] if row else "") + "\n")
    return 0


def port(ctx: Context, opts: Options, args: list[str]) -> int:
    info = ctx.api.get_json("/containers/%s/json" % args[0])
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    want = None
    if len(args) > 1:
        want = args[1] if "/" in args[1] else args[1] + "/tcp"
    lines = []
    for key in sorted(ports, key=lambda k: (int(k.split("/")[0]) if k.split("/")[0].isdigit()
                                            else 0, k)):
        if want and key != want:
            continue
        for b in ports[key] or []:
            ip = b.get("HostIp") or "0.0.0.0"
            host = "[%s]" % ip if ":" in ip else ip
            lines.append("%s -> %s:%s" % (key, host, b.get("HostPort")) if not want
                         else "%s:%s" % (host, b.get("HostPort")))
    if want and not lines:
        raise CommandError("Error: No public port '%s' published for %s" % (args[1], args[0]))
    sys.stdout.write("".join(line + "\n" for line in lines))
    return 0


def diff(ctx: Context, opts: Options, args: list[str]) -> int:
    changes = ctx.api.get_json("/containers/%s/changes" % args[0]) or []
    kinds = {0: "C", 1: "A", 2: "D"}
    for ch in changes:
        print("%s %s" % (kinds.get(ch.get("Kind"), "?"), ch.get("Path")))
    return 0


def _write_stream(r: Any, output: str) -> None:
    if not output and sys.stdout.isatty():
        raise CommandError("cowardly refusing to save to a terminal. Use the -o flag or "
                           "redirect")
    target = open(output, "wb") if output else sys.stdout.buffer
    try:
        while True:
            data = r.read1(1 << 20)
            if not data:
                break
            target.write(data)
    finally:
        if output:
            target.close()


def export(ctx: Context, opts: Options, args: list[str]) -> int:
    r = ctx.api.stream("GET", "/containers/%s/export" % args[0])
    _write_stream(r, opts["output"])
    return 0


def commit(ctx: Context, opts: Options, args: list[str]) -> int:
    from ..reference import parse
    q: dict[str, Any] = {"container": args[0], "comment": opts["message"] or None,
                         "author": opts["author"] or None, "pause": opts["pause"]}
    if len(args) > 1:
        ref = parse(args[1])
        q["repo"] = ref.familiar_name()
        q["tag"] = ref.tag or None
    if opts["change"]:
        q["changes"] = "\n".join(opts["change"])
    doc = ctx.api.post_json("/commit", q)
    print(doc["Id"])
    return 0


def cp(ctx: Context, opts: Options, args: list[str]) -> int:
    import io
    import tarfile
    src, dst = args

    def split(s: str) -> tuple[str, str] | None:
        if ":" in s and not s.startswith("/") and not s.startswith("."):
            c, _, p = s.partition(":")
            return c, p
        return None
    s, d = split(src), split(dst)
    if bool(s) == bool(d):
        raise CommandError("copying between containers is not supported" if s else
                           "must specify at least one container source", 1)
    if s:
        container, path = s
        r = ctx.api.stream("GET", "/containers/%s/archive" % container, {"path": path})
        if dst == "-":
            _write_stream(r, "")
            return 0
        data = r.read()
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            members = tar.getmembers()
            root = members[0].name.split("/")[0] if members else ""
            target = dst
            if os.path.isdir(dst):
                target = os.path.join(dst, root)
            for m in members:
                rel = m.name[len(root):].lstrip("/")
                out = os.path.join(target, rel) if rel else target
                if ".." in m.name.split("/") or m.name.startswith("/"):
                    raise CommandError("invalid path in archive: %s" % m.name)
                if m.isdir():
                    os.makedirs(out, exist_ok=True)
                elif m.isfile():
                    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
                    f = tar.extractfile(m)
                    with open(out, "wb") as w:
                        w.write(f.read() if f else b"")
                    os.chmod(out, m.mode & 0o7777)
                elif m.issym():
                    os.symlink(m.linkname, out)
        return 0
    assert d is not None
    container, path = d
    if src == "-":
        body = sys.stdin.buffer.read()
        target_dir = path
    else:
        if not os.path.exists(src):
            raise CommandError("lstat %s: no such file or directory" % os.path.abspath(src))
        buf = io.BytesIO()
        try:
            st = ctx.api.call("HEAD", "/containers/%s/archive" % container, {"path": path})
            del st
            is_dir = True
        except DaemonError as e:
            if e.status != 404:
                raise
            is_dir = False
        name = os.path.basename(src.rstrip("/")) if is_dir else os.path.basename(path)
        target_dir = path if is_dir else (os.path.dirname(path) or "/")
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(src, arcname=name)
        body = buf.getvalue()
    ctx.api.call("PUT", "/containers/%s/archive" % container, {"path": target_dir}, body,
                 {"Content-Type": "application/x-tar"})
    return 0


def _stats_row(s: dict[str, Any], name: str, no_trunc: bool) -> dict[str, str]:
    """One container's line of ``stats`` as docker's template fields (keys in the order
    docker's ``{{json .}}`` gives them)."""
    from ..units import bytes_size
    cpu = s.get("cpu_stats") or {}
    pre = s.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - \
        (pre.get("cpu_usage") or {}).get("total_usage", 0)
    sys_delta = (cpu.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
    ncpu = cpu.get("online_cpus") or 1
    cpu_pct = cpu_delta / sys_delta * ncpu * 100.0 if sys_delta > 0 and cpu_delta > 0 else 0.0
    mem = s.get("memory_stats") or {}
    usage = mem.get("usage", 0) - ((mem.get("stats") or {}).get("inactive_file", 0))
    limit = mem.get("limit", 0)
    rx = tx = 0
    for n in (s.get("networks") or {}).values():
        rx += n.get("rx_bytes", 0)
        tx += n.get("tx_bytes", 0)
    rd = wr = 0
    for e in (s.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        if e.get("op", "").lower() == "read":
            rd += e.get("value", 0)
        elif e.get("op", "").lower() == "write":
            wr += e.get("value", 0)
    cid = s.get("id", name)
    return {"BlockIO": "%s / %s" % (human_size(rd), human_size(wr)),
            "CPUPerc": "%.2f%%" % cpu_pct, "Container": name,
            "ID": cid if no_trunc else cid[:12],
            "MemPerc": "%.2f%%" % (usage / limit * 100.0 if limit else 0.0),
            "MemUsage": "%s / %s" % (bytes_size(usage), bytes_size(limit)),
            "Name": s.get("name", "").lstrip("/"),
            "NetIO": "%s / %s" % (human_size(rx), human_size(tx)),
            "PIDs": str((s.get("pids_stats") or {}).get("current", 0))}


STATS_HEADERS = {"BlockIO": "BLOCK I/O", "CPUPerc": "CPU %", "Container": "CONTAINER",
                 "ID": "CONTAINER ID", "MemPerc": "MEM %", "MemUsage": "MEM USAGE / LIMIT",
                 "Name": "NAME", "NetIO": "NET I/O", "PIDs": "PIDS"}
STATS_FORMAT = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t"
                "{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}")


def stats(ctx: Context, opts: Options, args: list[str]) -> int:
    """docker stats: one table with --no-stream; else a stream of stats per container (a
    thread each), the table redrawn in place every 500 ms (``live_frame``). Without names,
    the running containers (all with -a) are listed again at each redraw, so containers that
    start join and those that go leave, as docker's. ``--format``, else config.json's
    ``statsFormat``, else docker's table."""
    fmt = opts["format"]
    if not fmt:
        from ..config import load
        fmt = str(load(ctx.config_dir).get("statsFormat") or "") or STATS_FORMAT

    def table(items: list[dict[str, str]]) -> str:
        return render_list(fmt, items, STATS_HEADERS)

    def listed() -> list[str]:
        return [c["Id"] for c in ctx.api.get_json("/containers/json",
                                                   {"all": opts["all"] or None})]
    if opts["no-stream"]:
        items = [_stats_row(ctx.api.get_json("/containers/%s/stats" % name, {"stream": False}),
                            name, opts["no-trunc"]) for name in args or listed()]
        sys.stdout.write(table(items))
        return 0
    import threading
    latest: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    first = threading.Condition()

    def follow(name: str) -> None:
        from ..client import json_lines
        try:
            for doc in json_lines(ctx.api.stream("GET", "/containers/%s/stats" % name,
                                                 {"stream": True})):
                with first:
                    latest[name] = doc
                    first.notify_all()
        except DaemonError as e:
            with first:
                errors[name] = "Error response from daemon: " + e.message
                first.notify_all()
        except (OSError, ValueError) as e:
            with first:
                errors[name] = str(e)
                first.notify_all()

    names: list[str] = []

    def watch(wanted: list[str]) -> None:
        for name in wanted:
            if name not in names:
                names.append(name)
                threading.Thread(target=follow, args=(name,), daemon=True).start()
        with first:                      # every container's first sample, or its error
            first.wait_for(lambda: all(n in latest or n in errors for n in wanted), 30)
        names[:] = [n for n in names if n in wanted]

    watch(args or listed())
    if args and any(n in errors for n in args):
        raise CommandError("\n".join(errors[n] for n in args if n in errors))
    while True:
        with first:
            items = [_stats_row(latest[n], n, opts["no-trunc"]) for n in names if n in latest]
        sys.stdout.write(live_frame(table(items)))
        sys.stdout.flush()
        time.sleep(0.5)
        if not args:
            watch(listed())


def live_frame(table: str) -> str:
    """One redraw of the live stats, as docker 28 writes it: the cursor home and the table,
    then again the cursor home and each line of that text (the home sequence included, and
    the empty line after the last) followed by a space and erase-to-end-of-line, then
    erase-below (rows of containers gone since the last frame)."""
    first = "\x1b[H" + table
    return first + "".join(line + " \x1b[K\n" for line in first.split("\n")) + "\x1b[J"


def attach(ctx: Context, opts: Options, args: list[str]) -> int:
    info = ctx.api.get_json("/containers/%s/json" % args[0])
    if not info["State"].get("Running"):
        raise CommandError("You cannot attach to a stopped container, start it first")
    cid = info["Id"]
    tty_mode = info["Config"].get("Tty", False)
    stdin = not opts["no-stdin"] and info["Config"].get("OpenStdin", False)
    if tty_mode and stdin and sys.stdin.isatty():
        from .. import tty
        if tty.interactive(ctx.api, cid, opts["detach-keys"]):
            return 0
    else:
        waiter = ctx.api.stream("POST", "/containers/%s/wait" % cid)
        _pump(_attach_stream(ctx, cid, stdin), tty_mode, stdin)
        return int(loads(waiter.read() or b"{}").get("StatusCode", 0))
    doc = ctx.api.post_json("/containers/%s/wait" % cid)
    return int(doc.get("StatusCode", 0))


def prune(ctx: Context, opts: Options, args: list[str]) -> int:
    if not opts["force"]:
        sys.stdout.write("WARNING! This will remove all stopped containers.\n"
                         "Are you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    doc = ctx.api.post_json("/containers/prune", {"filters": parse_filters(opts["filter"])})
    deleted = doc.get("ContainersDeleted") or []
    if deleted:
        print("Deleted Containers:")
        for c in deleted:
            print(c)
        print()
    print("Total reclaimed space: %s" % human_size(doc.get("SpaceReclaimed") or 0))
    return 0


def update(ctx: Context, opts: Options, args: list[str]) -> int:
    body: dict[str, Any] = {}
    if opts["memory"]:
        body["Memory"] = _bytes(opts["memory"], "-m, --memory")
    if opts["cpus"]:
        body["NanoCpus"] = int(round(float(opts["cpus"]) * 1e9))
    if "pids-limit" in opts.changed:
        body["PidsLimit"] = opts["pids-limit"]
    if opts["restart"]:
        name, _, count = opts["restart"].partition(":")
        body["RestartPolicy"] = {"Name": name, "MaximumRetryCount": int(count or 0)}
    if not body:
        raise CommandError("you must provide one or more flags when using this command", 1)
    failed = 0
    for name in args:
        try:
            doc = ctx.api.post_json("/containers/%s/update" % name, None, body)
            for w in (doc or {}).get("Warnings") or []:
                print_err(w)
            print(name)
        except DaemonError as e:
            print_err("Error response from daemon: " + e.message)
            failed = 1
    return failed


# -- the command table ---------------------------------------------------------------------

def _run_flags(detach: bool) -> list[Flag]:
    f = [
        Flag("add-host", "", "list", "Add a custom host-to-IP mapping (host:ip)", multi=True),
        Flag("cap-add", "", "list", "Add Linux capabilities", multi=True),
        Flag("cap-drop", "", "list", "Drop Linux capabilities", multi=True),
        Flag("cgroup-parent", "", "string", "Optional parent cgroup for the container"),
        Flag("cgroupns", "", "string", "Cgroup namespace to use (host|private)\n"
             "'host':    Run the container in the Docker host's cgroup namespace\n"
             "'private': Run the container in its own private cgroup namespace\n"
             "'':        Use the cgroup namespace as configured by the\n"
             "           default-cgroupns-mode option on the daemon (default)"),
        Flag("cidfile", "", "string", "Write the container ID to the file"),
        Flag("cpu-shares", "c", "int", "CPU shares (relative weight)"),
        Flag("cpus", "", "decimal", "Number of CPUs"),
        Flag("dns", "", "list", "Set custom DNS servers", multi=True),
        Flag("dns-option", "", "list", "Set DNS options", multi=True),
        Flag("dns-search", "", "list", "Set custom DNS search domains", multi=True),
        Flag("domainname", "", "string", "Container NIS domain name"),
        Flag("entrypoint", "", "string", "Overwrite the default ENTRYPOINT of the image"),
        Flag("env", "e", "list", "Set environment variables", multi=True),
        Flag("env-file", "", "list", "Read in a file of environment variables", multi=True),
        Flag("expose", "", "list", "Expose a port or a range of ports", multi=True),
        Flag("group-add", "", "list", "Add additional groups to join", multi=True),
        Flag("health-cmd", "", "string", "Command to run to check health"),
        Flag("health-interval", "", "duration",
             "Time between running the check (ms|s|m|h) (default 0s)"),
        Flag("health-retries", "", "int", "Consecutive failures needed to report unhealthy"),
        Flag("health-start-period", "", "duration", "Start period for the container to "
             "initialize before starting health-retries countdown (ms|s|m|h) (default 0s)"),
        Flag("health-timeout", "", "duration",
             "Maximum time to allow one check to run (ms|s|m|h) (default 0s)"),
        Flag("hostname", "h", "string", "Container host name"),
        Flag("init", "", "", "Run an init inside the container that forwards signals and "
             "reaps processes"),
        Flag("interactive", "i", "", "Keep STDIN open even if not attached"),
        Flag("ipc", "", "string", "IPC mode to use"),
        Flag("label", "l", "list", "Set meta data on a container", multi=True),
        Flag("log-driver", "", "string", "Logging driver for the container"),
        Flag("log-opt", "", "list", "Log driver options", multi=True),
        Flag("memory", "m", "bytes", "Memory limit"),
        Flag("mount", "", "mount", "Attach a filesystem mount to the container", multi=True),
        Flag("name", "", "string", "Assign a name to the container"),
        Flag("network", "", "network", "Connect a container to a network"),
        Flag("network-alias", "", "list", "Add network-scoped alias for the container",
             multi=True),
        Flag("no-healthcheck", "", "", "Disable any container-specified HEALTHCHECK"),
        Flag("pid", "", "string", "PID namespace to use"),
        Flag("pids-limit", "", "int", "Tune container pids limit (set -1 for unlimited)"),
        Flag("platform", "", "string", "Set platform if server is multi-platform capable"),
        Flag("privileged", "", "", "Give extended privileges to this container"),
        Flag("publish", "p", "list", "Publish a container's port(s) to the host", multi=True),
        Flag("publish-all", "P", "", "Publish all exposed ports to random ports"),
        Flag("pull", "", "string", 'Pull image before running ("always", "missing", "never")',
             default="missing"),
        Flag("quiet", "q", "", "Suppress the pull output"),
        Flag("read-only", "", "", "Mount the container's root filesystem as read only"),
        Flag("restart", "", "string", "Restart policy to apply when a container exits",
             default="no"),
        Flag("rm", "", "", "Automatically remove the container and its associated anonymous "
             "volumes when it exits"),
        Flag("runtime", "", "string", "Runtime to use for this container"),
        Flag("security-opt", "", "list", "Security Options", multi=True),
        Flag("shm-size", "", "bytes", "Size of /dev/shm"),
        Flag("stop-signal", "", "string", "Signal to stop the container"),
        Flag("stop-timeout", "", "int", "Timeout (in seconds) to stop a container"),
        Flag("sysctl", "", "map", "Sysctl options", multi=True, shown_default="map[]"),
        Flag("tmpfs", "", "list", "Mount a tmpfs directory", multi=True),
        Flag("tty", "t", "", "Allocate a pseudo-TTY"),
        Flag("ulimit", "", "ulimit", "Ulimit options", multi=True, shown_default="[]"),
        Flag("user", "u", "string", "Username or UID (format: <name|uid>[:<group|gid>])"),
        Flag("userns", "", "string", "User namespace to use"),
        Flag("uts", "", "string", "UTS namespace to use"),
        Flag("volume", "v", "list", "Bind mount a volume", multi=True),
        Flag("volumes-from", "", "list", "Mount volumes from the specified container(s)",
             multi=True),
        Flag("workdir", "w", "string", "Working directory inside the container"),
    ]
    if detach:
        f += [Flag("detach", "d", "", "Run container in background and print container ID"),
              Flag("detach-keys", "", "string",
                   "Override the key sequence for detaching a container")]
    return f


FILTER = Flag("filter", "f", "filter", "Filter output based on conditions provided", multi=True)
TIMEOUT = Flag("timeout", "t", "int", "Seconds to wait before killing the container")
TIME = Flag("time", "", "int", "Seconds to wait before killing the container", hidden=True)
SIGNAL_STOP = Flag("signal", "s", "string", "Signal to send to the container")
P = "pydocker"


def _cmd(name: str, use: str, short: str, fn: Any, flags: list[Flag] = (),  # type: ignore
         args: str = "any", nargs: int = 0, alt: tuple[str, ...] = (),
         shortcut: str | None = None, interspersed: bool = True) -> Command:
    aliases = []
    if alt or shortcut:
        aliases = ["%s container %s" % (P, n) for n in (name,) + alt]
        if shortcut:
            aliases.append("%s %s" % (P, shortcut))
    c = Command(name, use, short, fn, flags, aliases, args, nargs, interspersed)
    c.alt_names = alt  # type: ignore[attr-defined]
    return c


def group() -> Command:
    many = "CONTAINER [CONTAINER...]"
    subs = [
        _cmd("attach", "[OPTIONS] CONTAINER", "Attach local standard input, output, and error "
             "streams to a running container", attach,
             [Flag("detach-keys", "", "string", "Override the key sequence for detaching a "
                   "container"),
              Flag("no-stdin", "", "", "Do not attach STDIN"),
              Flag("sig-proxy", "", "", "Proxy all received signals to the process",
                   default=True)], "exact", 1, shortcut="attach"),
        _cmd("commit", "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
             "Create a new image from a container's changes", commit,
             [Flag("author", "a", "string",
                   'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")'),
              Flag("change", "c", "list", "Apply Dockerfile instruction to the created image",
                   multi=True),
              Flag("message", "m", "string", "Commit message"),
              Flag("pause", "p", "", "Pause container during commit", default=True)],
             "min", 1, shortcut="commit"),
        _cmd("cp", "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tpydocker cp [OPTIONS] SRC_PATH|- "
             "CONTAINER:DEST_PATH", "Copy files/folders between a container and the local "
             "filesystem", cp,
             [Flag("archive", "a", "", "Archive mode (copy all uid/gid information)"),
              Flag("follow-link", "L", "", "Always follow symbol link in SRC_PATH"),
              Flag("quiet", "q", "", "Suppress progress output during copy. Progress output "
                   "is automatically suppressed if no terminal is attached")],
             "exact", 2, shortcut="cp"),
        _cmd("create", "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Create a new container", create,
             _run_flags(False), "min", 1, shortcut="create", interspersed=False),
        _cmd("diff", "CONTAINER", "Inspect changes to files or directories on a container's "
             "filesystem", diff, [], "exact", 1, shortcut="diff"),
        _cmd("exec", "[OPTIONS] CONTAINER COMMAND [ARG...]",
             "Execute a command in a running container", exec_,
             [Flag("detach", "d", "", "Detached mode: run command in the background"),
              Flag("detach-keys", "", "string",
                   "Override the key sequence for detaching a container"),
              Flag("env", "e", "list", "Set environment variables", multi=True),
              Flag("env-file", "", "list", "Read in a file of environment variables",
                   multi=True),
              Flag("interactive", "i", "", "Keep STDIN open even if not attached"),
              Flag("privileged", "", "", "Give extended privileges to the command"),
              Flag("tty", "t", "", "Allocate a pseudo-TTY"),
              Flag("user", "u", "string",
                   "Username or UID (format: \"<name|uid>[:<group|gid>]\")"),
              Flag("workdir", "w", "string", "Working directory inside the container")],
             "min", 2, shortcut="exec", interspersed=False),
        _cmd("export", "[OPTIONS] CONTAINER", "Export a container's filesystem as a tar "
             "archive", export,
             [Flag("output", "o", "string", "Write to a file, instead of STDOUT")],
             "exact", 1, shortcut="export"),
        _cmd("inspect", "[OPTIONS] CONTAINER [CONTAINER...]",
             "Display detailed information on one or more containers", inspect,
             [Flag("format", "f", "string", FORMAT_HELP.replace(
                 "'table':            Print output in table format with column headers "
                 "(default)\n'table TEMPLATE':   Print output in table format using the given "
                 "Go template\n", "")),
              Flag("size", "s", "", "Display total file sizes")], "min", 1),
        _cmd("kill", "[OPTIONS] CONTAINER [CONTAINER...]", "Kill one or more running "
             "containers", kill, [Flag("signal", "s", "string",
                                       "Signal to send to the container")],
             "min", 1, shortcut="kill"),
        _cmd("logs", "[OPTIONS] CONTAINER", "Fetch the logs of a container", logs,
             [Flag("details", "", "", "Show extra details provided to logs"),
              Flag("follow", "f", "", "Follow log output"),
              Flag("since", "", "string", "Show logs since timestamp (e.g. "
                   "\"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)"),
              Flag("tail", "n", "string",
                   'Number of lines to show from the end of the logs', default="all"),
              Flag("timestamps", "t", "", "Show timestamps"),
              Flag("until", "", "string", "Show logs before a timestamp (e.g. "
                   "\"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)")],
             "exact", 1, shortcut="logs"),
        _cmd("ls", "[OPTIONS]", "List containers", ls,
             [Flag("all", "a", "", "Show all containers (default shows just running)"),
              FILTER, Flag("format", "", "string", FORMAT_HELP),
              Flag("last", "n", "int", "Show n last created containers (includes all states)",
                   default=-1),
              Flag("latest", "l", "", "Show the latest created container (includes all "
                   "states)"),
              Flag("no-trunc", "", "", "Don't truncate output"),
              Flag("quiet", "q", "", "Only display container IDs"),
              Flag("size", "s", "", "Display total file sizes")],
             "none", alt=("list", "ps"), shortcut="ps"),
        _cmd("pause", "CONTAINER [CONTAINER...]",
             "Pause all processes within one or more containers", pause, [], "min", 1,
             shortcut="pause"),
        _cmd("port", "CONTAINER [PRIVATE_PORT[/PROTO]]",
             "List port mappings or a specific mapping for the container", port, [], "min", 1,
             shortcut="port"),
        _cmd("prune", "[OPTIONS]", "Remove all stopped containers", prune,
             [Flag("filter", "", "filter", 'Provide filter values (e.g. "until=<timestamp>")',
                   multi=True),
              Flag("force", "f", "", "Do not prompt for confirmation")], "none"),
        _cmd("rename", "CONTAINER NEW_NAME", "Rename a container", rename, [], "exact", 2,
             shortcut="rename"),
        _cmd("restart", "[OPTIONS] " + many, "Restart one or more containers", restart,
             [SIGNAL_STOP, TIMEOUT, TIME], "min", 1, shortcut="restart"),
        _cmd("rm", "[OPTIONS] " + many, "Remove one or more containers", rm,
             [Flag("force", "f", "", "Force the removal of a running container (uses SIGKILL)"),
              Flag("link", "l", "", "Remove the specified link"),
              Flag("volumes", "v", "", "Remove anonymous volumes associated with the "
                   "container")], "min", 1, alt=("remove",), shortcut="rm"),
        _cmd("run", "[OPTIONS] IMAGE [COMMAND] [ARG...]",
             "Create and run a new container from an image", run, _run_flags(True), "min", 1,
             shortcut="run", interspersed=False),
        _cmd("start", "[OPTIONS] " + many, "Start one or more stopped containers", start,
             [Flag("attach", "a", "", "Attach STDOUT/STDERR and forward signals"),
              Flag("detach-keys", "", "string",
                   "Override the key sequence for detaching a container"),
              Flag("interactive", "i", "", "Attach container's STDIN")], "min", 1,
             shortcut="start"),
        _cmd("stats", "[OPTIONS] [CONTAINER...]",
             "Display a live stream of container(s) resource usage statistics", stats,
             [Flag("all", "a", "", "Show all containers (default shows just running)"),
              Flag("format", "", "string", FORMAT_HELP),
              Flag("no-stream", "", "", "Disable streaming stats and only pull the first "
                   "result"),
              Flag("no-trunc", "", "", "Do not truncate output")], shortcut="stats"),
        _cmd("stop", "[OPTIONS] " + many, "Stop one or more running containers", stop,
             [SIGNAL_STOP, TIMEOUT, TIME], "min", 1, shortcut="stop"),
        _cmd("top", "CONTAINER [ps OPTIONS]", "Display the running processes of a container",
             top, [], "min", 1, shortcut="top", interspersed=False),
        _cmd("unpause", "CONTAINER [CONTAINER...]",
             "Unpause all processes within one or more containers", unpause, [], "min", 1,
             shortcut="unpause"),
        _cmd("update", "[OPTIONS] " + many, "Update configuration of one or more containers",
             update, [Flag("cpus", "", "decimal", "Number of CPUs"),
                      Flag("memory", "m", "bytes", "Memory limit"),
                      Flag("pids-limit", "", "int",
                           "Tune container pids limit (set -1 for unlimited)"),
                      Flag("restart", "", "string",
                           "Restart policy to apply when a container exits")],
             "min", 1, shortcut="update"),
        _cmd("wait", many, "Block until one or more containers stop, then print their exit "
             "codes", wait, [], "min", 1, shortcut="wait"),
    ]
    return Command("container", "", "Manage containers", subcommands=subs)
