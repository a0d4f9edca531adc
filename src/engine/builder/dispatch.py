"""One Dockerfile instruction at a time, as moby's classic builder dispatches them.

Each handler updates the stage's state (its image, the Config being built, the ARGs it
declared) and commits a new image: metadata-only steps (CMD, ENV, LABEL...) as a history entry
with ``empty_layer``, through a container created and removed for the step as docker's (never
started); RUN through a container of the engine; COPY/ADD/WORKDIR through a snapshot of the
parent written to directly, their changes becoming the step's layer.
History ``created_by`` and the ContainerConfig are the classic builder's
(``/bin/sh -c #(nop)  CMD ["sh"]``, ``|1 A=b /bin/sh -c ...``).
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import uuid

from pyrunc.engine.builder.cache import step_key
from pyrunc.engine.builder.dockerfile.words import expand
from pyrunc.engine.builder.context import find_sources, is_archive, resolve_in_root
from pyrunc.engine.container.archive_fs import ContainerFS
from pyrunc.engine.container.commit import write_layer
from pyrunc.engine.images.importer import ingest_layer
from pyrunc.engine.images.service import rfc3339_now
from pyrunc.engine.snapshots.mount import mount_all, unmount
from pyrunc.errors import InvalidArgument, NotFound, PyruncError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Callable, Generator, Iterator

DEFAULT_SHELL = ["/bin/sh", "-c"]
# docker's predefined args: usable without a declaration, kept out of the history unless declared
PROXY_ARGS = frozenset(["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
                        "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"])
EMPTY_TAR = b"\0" * 1024
MAX_URL_SIZE = 1 << 30          # bytes ADD fetches from one URL
RUN_OUTPUT_POLL = 0.01          # seconds between reads of a RUN's log once it is caught up
# the Config fields in the order docker writes them (_OMIT_EMPTY: left out when empty)
_CONFIG_KEYS = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
                "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck",
                "ArgsEscaped", "Image", "Volumes", "WorkingDir", "Entrypoint", "OnBuild",
                "Labels", "StopSignal", "Shell")
_OMIT_EMPTY = ("ExposedPorts", "Healthcheck", "ArgsEscaped", "StopSignal", "Shell")


class StepFailed(PyruncError):
    """A RUN whose command exited non-zero (``code``: its exit status)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def docker_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with docker's Config fields, in docker's order."""
    out: dict[str, Any] = {}
    for key in _CONFIG_KEYS:
        value = config.get(key)
        if key in ("Hostname", "Domainname", "User", "WorkingDir", "Image"):
            out[key] = value or ""
        elif key in ("AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin",
                     "StdinOnce"):
            out[key] = bool(value)
        elif key in ("ExposedPorts", "Volumes", "Labels") and value:
            out[key] = dict(sorted(value.items()))    # Go writes a map's keys sorted
        elif key in _OMIT_EMPTY:
            if value:
                out[key] = value
        else:
            out[key] = value if value else None
    return out


def go_quote(text: str) -> str:
    """Go's strconv.Quote for the strings Dockerfiles hold."""
    out = ['"']
    for ch in text:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                        "\t": "\\t", "\v": "\\v"}[ch])
        elif o < 0x20 or o == 0x7f:
            out.append("\\x%02x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_quote_list(items: list[str]) -> str:
    """Go's %q of a []string: ``["a" "b"]``."""
    return "[" + " ".join(go_quote(i) for i in items) + "]"


def go_duration(ns: int) -> str:
    """Go's time.Duration.String."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1000:
        return "%s%dns" % (sign, ns)
    if ns < 1000000:
        return sign + _trim("%d.%03d" % divmod(ns, 1000)) + "µs"
    if ns < 1000000000:
        return sign + _trim("%d.%06d" % divmod(ns, 1000000)) + "ms"
    secs, frac = divmod(ns, 1000000000)
    hours, secs = divmod(secs, 3600)
    minutes, secs = divmod(secs, 60)
    text = _trim("%d.%09d" % (secs, frac)) + "s"
    if hours:
        return "%s%dh%dm%s" % (sign, hours, minutes, text)
    if minutes:
        return "%s%dm%s" % (sign, minutes, text)
    return sign + text


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def parse_flags(inst: Any, allowed: tuple[str, ...]) -> dict[str, str]:
    """The instruction's ``--name=value`` flags, refusing unknown ones as docker does."""
    out: dict[str, str] = {}
    for flag in inst.flags:
        name, eq, value = flag.lstrip("-").partition("=")
        if name not in allowed:
            raise InvalidArgument("Unknown flag: %s" % name)
        out[name] = value if eq else "true"
    return out


class Stage:
    """The state of one build stage: its current image, Config and declared ARGs."""

    def __init__(self, index: int, name: str | None) -> None:
        self.index = index
        self.name = name
        self.image: Any = None                  # the images.Image the stage is at (None: scratch)
        self.image_id = ""
        self.doc: dict[str, Any] = {}           # the full image config document
        self.config: dict[str, Any] = {}        # its "config" section, being changed
        self.args: dict[str, str | None] = {}
        self.cmd_set = False                    # a CMD of this stage (ENTRYPOINT keeps it)

    @property
    def shell(self) -> list[str]:
        return list(self.config.get("Shell") or DEFAULT_SHELL)


class Dispatcher:
    """Runs instructions for one build (``builder``: the Builder; ``options``: BuildOptions)."""

    def __init__(self, builder: Any, options: Any, context_root: str, workdir: str,
                 escape: str) -> None:
        self.builder = builder
        self.engine = builder.engine
        self.images = builder.engine.images
        self.options = options
        self.context_root = context_root
        self.workdir = workdir
        self.escape = escape
        self.used_args: set[str] = set()

    # ------------------------------------------------------------------ words and env
    def env_map(self, st: Stage) -> dict[str, str]:
        env: dict[str, str] = {}
        for name, value in st.args.items():
            if value is not None:
                env[name] = value
        for e in st.config.get("Env") or []:
            k, _, v = e.partition("=")
            env[k] = v
        return env

    def expand(self, st: Stage, word: str) -> str:
        return expand(word, self.env_map(st), self.escape)

    def build_arg_env(self, st: Stage) -> list[str]:
        """The declared ARGs (with values, not overridden by ENV) as K=V, sorted: what RUN
        gets and what its history shows."""
        env_names = {e.partition("=")[0] for e in st.config.get("Env") or []}
        out = []
        for name, value in st.args.items():
            if value is not None and name not in env_names:
                out.append("%s=%s" % (name, value))
        return sorted(out)

    def proxy_env(self, st: Stage) -> list[str]:
        out = []
        for name in sorted(PROXY_ARGS):
            value = self.options.build_args.get(name)
            if value is not None and name not in st.args:
                self.used_args.add(name)
                out.append("%s=%s" % (name, value))
        return out

    # ------------------------------------------------------------------ commits
    def _history_base(self, st: Stage) -> tuple[dict[str, Any], list[Any], list[Any]]:
        doc = st.doc
        history = list(doc.get("history") or [])
        layers = list(st.image.manifest.get("layers") or []) if st.image is not None else []
        return doc, history, layers

    def commit(self, st: Stage, created_by: str, container_cmd: list[str],
               layer: Any = None, empty: bool = True, container_id: str = "",
               cache_key: str | None = None) -> str:
        """Record the stage's Config as a new image over its current one (with ``layer``, a
        (descriptor, diff_id) pair, on top when given); returns the image ID."""
        doc, history, layers = self._history_base(st)
        created = rfc3339_now()
        entry: dict[str, Any] = {"created": created, "created_by": created_by}
        if empty:
            entry["empty_layer"] = True
        history.append(entry)
        diff_ids = list((doc.get("rootfs") or {}).get("diff_ids") or [])
        if layer is not None:
            layers.append(layer[0])
            diff_ids.append(layer[1])
        config = docker_config(dict(st.config, Image=st.image_id))
        container_config = docker_config(dict(st.config, Image=st.image_id,
                                              Cmd=container_cmd,
                                              Hostname=container_id[:12]))
        if not doc:
            from pyrunc.engine.platforms import host_platform
            platform = host_platform()
            base = {"architecture": platform.architecture, "os": platform.os}
            if getattr(platform, "variant", None):
                base["variant"] = platform.variant
        else:
            base = {k: v for k, v in doc.items()
                    if k not in ("created", "author", "config", "container", "container_config",
                                 "history", "rootfs", "docker_version", "comment")}
            if doc.get("author"):
                base["author"] = doc["author"]
        new_doc = dict(base, config=config, container=container_id,
                       container_config=container_config, created=created, history=history,
                       rootfs={"type": "layers", "diff_ids": diff_ids})
        parent = st.image_id or None    # dockerd records the step's image as its parent
        if cache_key is None:
            image_id = self.images.put_image(new_doc, layers, parent=parent)
        else:
            # a build that made the same step meanwhile wins: its image is taken, so builds
            # at once converge on one chain of images (and a rebuild finds all of it)
            with self.builder.cache.claim(cache_key):
                found = self.cached(st, cache_key)
                if found:
                    return found
                image_id = self.images.put_image(new_doc, layers, parent=parent)
                self.builder.cache.put(cache_key, image_id)
        self.set_image(st, image_id)
        return image_id

    def set_image(self, st: Stage, image_id: str) -> None:
        img = self.images.get(image_id)
        st.image = img
        st.image_id = img.id
        st.doc = img.config
        st.config = copy.deepcopy(img.config.get("config") or {})

    def cached(self, st: Stage, key: str) -> str | None:
        """The image a cached step made, when caching applies and it is still there."""
        if self.options.no_cache:
            return None
        image_id = self.builder.cache.get(key)
        if not image_id:
            return None
        try:
            self.set_image(st, image_id)
        except NotFound:
            return None
        return image_id

    def metadata(self, st: Stage, comment: str) -> Iterator[dict]:
        """Commit a metadata-only step (the classic builder's ``#(nop)`` commit)."""
        cmd = st.shell + ["#(nop) ", comment]
        created_by = " ".join(cmd)
        key = step_key(st.image_id, st.config, created_by)
        if self.cached(st, key):
            yield self.out(" ---> Using cache\n")
        else:
            yield from self.through_container(st, cmd, lambda cid: self.commit(
                st, created_by, cmd, container_id=cid, cache_key=key))
        yield self.out(" ---> %s\n" % short(st.image_id))

    def through_container(self, st: Stage, cmd: list[str],
                          commit: Callable[[str], Any]) -> Iterator[dict]:
        """``commit(container ID)`` with a container of the step, as the classic builder commits
        a metadata step: created (not started) over the stage's image with the step's ``cmd``,
        then removed as RUN's is. A stage with no image yet (FROM scratch) commits without one:
        the engine's containers need an image."""
        if not st.image_id:
            commit("")
            return
        containers = self.engine.containers
        cid = containers.create(self._step_config(st, cmd, list(st.config.get("Env") or [])),
                                self._host_config())["Id"]
        keep = not self.options.rm and not self.options.force_rm
        try:
            yield self.out(" ---> Running in %s\n" % short(cid))
            commit(cid)
        finally:
            if not keep:
                self._discard(cid)
        if not keep:
            yield self.out("Removing intermediate container %s\n" % short(cid))

    def _discard(self, cid: str) -> None:
        """Remove a step's container (one gone already is fine)."""
        try:
            self.engine.containers.remove(cid, force=True, volumes=True)
        except NotFound:
            pass

    def _step_config(self, st: Stage, cmd: list[str], env: list[str]) -> dict[str, Any]:
        """The Config of a step's container: the stage's image, ``cmd`` and ``env``."""
        return {"Image": st.image_id, "Cmd": cmd, "Entrypoint": [], "Env": env,
                "WorkingDir": st.config.get("WorkingDir") or "",
                "User": st.config.get("User") or "", "Labels": {},
                "Healthcheck": {"Test": ["NONE"]}}

    def _host_config(self) -> dict[str, Any]:
        """The HostConfig of a step's container: the build's network, hosts and limits."""
        host_config: dict[str, Any] = {"NetworkMode": self.options.network_mode or "default"}
        if self.options.extra_hosts:
            host_config["ExtraHosts"] = list(self.options.extra_hosts)
        host_config.update(self.options.resources or {})
        return host_config

    def out(self, text: str) -> dict[str, Any]:
        return {"stream": text}

    # ------------------------------------------------------------------ metadata instructions
    def do_env(self, st: Stage, inst: Any) -> Iterator[dict]:
        parse_flags(inst, ())
        if not inst.args or len(inst.args) % 2:
            raise InvalidArgument("ENV requires at least one argument" if not inst.args
                                  else "ENV: bad arguments")
        parts = []
        env = list(st.config.get("Env") or [])
        values = self.env_map(st)        # every word sees the values before the instruction
        for i in range(0, len(inst.args), 2):
            name = expand(inst.args[i], values, self.escape)
            value = expand(inst.args[i + 1], values, self.escape)
            if not name:
                raise InvalidArgument("ENV names can not be blank")
            pair = "%s=%s" % (name, value)
            parts.append(pair)
            # docker replaces a variable where it is, or appends a new one
            for j, e in enumerate(env):
                if e.partition("=")[0] == name:
                    env[j] = pair
                    break
            else:
                env.append(pair)
        st.config["Env"] = env
        yield from self.metadata(st, "ENV " + " ".join(parts))

    def do_label(self, st: Stage, inst: Any) -> Iterator[dict]:
        parse_flags(inst, ())
        if not inst.args or len(inst.args) % 2:
            raise InvalidArgument("LABEL requires at least one argument" if not inst.args
                                  else "LABEL: bad arguments")
        labels = dict(st.config.get("Labels") or {})
        parts = []
        for i in range(0, len(inst.args), 2):
            name = self.expand(st, inst.args[i])
            value = self.expand(st, inst.args[i + 1])
            if not name:
                raise InvalidArgument("LABEL names can not be blank")
            labels[name] = value
            parts.append("%s=%s" % (name, value))
        st.config["Labels"] = labels
        yield from self.metadata(st, "LABEL " + " ".join(parts))

    def apply_label(self, st: Stage, name: str, value: str) -> Iterator[dict]:
        """A ``--label`` of the build: a LABEL step docker appends to the Dockerfile."""
        st.config["Labels"] = dict(st.config.get("Labels") or {}, **{name: value})
        yield from self.metadata(st, "LABEL %s=%s" % (name, value))

    def do_maintainer(self, st: Stage, inst: Any) -> Iterator[dict]:
        parse_flags(inst, ())
        name = " ".join(inst.args)
        st.doc = dict(st.doc, author=name)
        yield from self.metadata(st, "MAINTAINER " + name)

    def _command(self, st: Stage, inst: Any) -> list[str]:
        if inst.json:
            return list(inst.args)
        return st.shell + [" ".join(inst.args)]

    def do_cmd(self, st: Stage, inst: Any) -> Iterator[dict]:
        parse_flags(inst, ())
        cmd = self._command(st, inst)
        st.config["Cmd"] = cmd
        st.cmd_set = True
        yield from self.metadata(st, "CMD " + go_quote_list(cmd))

    def do_entrypoint(self, st: Stage, inst: Any) -> Iterator[dict]:
        parse_flags(inst, ())
        if inst.json:
            entry = list(inst.args)
        elif inst.args and inst.args[0].strip():
            entry = self._command(st, inst)
        else:
            entry = []
        st.config["Entrypoint"] = entry or None
        if not st.cmd_set:
            st.config["Cmd"] = None      # docker: ENTRYPOINT resets a CMD from the base image
        yield from self.metadata(st, "ENTRYPOINT " + go_quote_list(entry))

    def do_expose(self, st: Stage, inst: Any) -> Iterator[dict]:
        parse_flags(inst, ())
        if not inst.args:
            raise InvalidArgument("EXPOSE requires at least one argument")
        ports = dict(st.config.get("ExposedPorts") or {})
        words = [self.expand(st, a) for a in inst.args]
        for word in words:
            port, _, proto = word.partition("/")
            proto = proto or "tcp"
            start, _, end = port.partition("-")
            if not start.isdigit() or (end and not end.isdigit()) or proto not in (
                    "tcp", "udp", "sctp"):
                raise InvalidArgument("invalid containerPort: %s" % word if not start.isdigit()
                                      or (end and not end.isdigit())
                                      else "invalid proto: %s" % proto)
            if end:
                for p in range(int(start), int(end) + 1):
                    ports["%d/%s" % (p, proto)] = {}
            else:
                ports["%d/%s" % (int(start), proto)] = {}
        st.config["ExposedPorts"] = ports
        yield from self.metadata(st, "EXPOSE " + " ".join(sorted(words)))   # docker sorts

    def do_user(self, st: Stage, inst: Any) -> Iterator[dict]:
        parse_flags(inst, ())
        if len(inst.args) != 1:
            raise InvalidArgument("USER requires exactly one argument")
        st.config["User"] = self.expand(st, inst.args[0])
        yield from self.metadata(st, "USER " + st.config["User"])

    def do_volume(self, st: Stage, inst: Any) -> Iterator[dict]:
        parse_flags(inst, ())
        if not inst.args:
            raise InvalidArgument("VOLUME requires at least one argument")
        vols = dict(st.config.get("Volumes") or {})
        words = [self.expand(st, a) for a in inst.args]
        for v in words:
            if not v.strip():
                raise InvalidArgument("VOLUME specified can not be an empty string")
            vols[v] = {}
        st.config["Volumes"] = vols
        yield from self.metadata(st, "VOLUME [" + " ".join(words) + "]")

    def do_stopsignal(self, st: Stage, inst: Any) -> Iterator[dict]:
        parse_flags(inst, ())
        if len(inst.args) != 1:
            raise InvalidArgument("STOPSIGNAL requires exactly one argument")
        sig = self.expand(st, inst.args[0])
        from pyrunc.engine.container.service import parse_signal
        try:
            parse_signal(sig)
        except PyruncError:
            raise InvalidArgument("Invalid signal: %s" % sig) from None
        st.config["StopSignal"] = sig
        yield from self.metadata(st, "STOPSIGNAL " + sig)

    def do_healthcheck(self, st: Stage, inst: Any) -> Iterator[dict]:
        from pyrunc.engine.builder.dockerfile import parse_duration
        flags = parse_flags(inst, ("interval", "timeout", "start-period", "retries"))
        kind = inst.args[0].upper() if inst.args else ""
        check: dict[str, Any]
        if kind == "NONE":
            check = {"Test": ["NONE"]}
        elif kind == "CMD" and len(inst.args) > 1:
            rest = list(inst.args[1:])
            check = {"Test": ["CMD"] + rest if inst.json else ["CMD-SHELL", " ".join(rest)]}
            for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                              ("start-period", "StartPeriod")):
                if flags.get(flag):
                    value = parse_duration(flags[flag])
                    if value:
                        check[key] = value
            if flags.get("retries"):
                check["Retries"] = int(flags["retries"])
        else:
            raise InvalidArgument("HEALTHCHECK: unknown type %s (try CMD)" % kind)
        st.config["Healthcheck"] = check
        shown = "&{%s %s %s %s '\\x%02x'}" % (
            go_quote_list(check["Test"]), go_quote(go_duration(check.get("Interval", 0))),
            go_quote(go_duration(check.get("Timeout", 0))),
            go_quote(go_duration(check.get("StartPeriod", 0))), check.get("Retries", 0) % 256)
        yield from self.metadata(st, "HEALTHCHECK " + shown)

    def do_shell(self, st: Stage, inst: Any) -> Iterator[dict]:
        parse_flags(inst, ())
        if not inst.json:
            raise InvalidArgument("SHELL requires the arguments to be in JSON form")
        if not inst.args:
            raise InvalidArgument("SHELL requires at least one argument")
        st.config["Shell"] = list(inst.args)
        yield from self.metadata(st, "SHELL [" + " ".join(inst.args) + "]")

    def do_onbuild(self, st: Stage, inst: Any) -> Iterator[dict]:
        parse_flags(inst, ())
        text = inst.expression
        st.config["OnBuild"] = list(st.config.get("OnBuild") or []) + [text]
        yield from self.metadata(st, "ONBUILD " + text)

    def do_arg(self, st: Stage, inst: Any, meta: dict[str, str | None]) -> Iterator[dict]:
        parse_flags(inst, ())
        if not inst.args:
            raise InvalidArgument("ARG requires exactly one argument")
        shown = []
        for raw in inst.args:
            name, eq, default = raw.partition("=")
            if not name:
                raise InvalidArgument("ARG names can not be blank")
            value: str | None = self.expand(st, default) if eq else None
            if not eq and name in meta:
                value = meta[name]
            given = self.options.build_args.get(name)
            if name in self.options.build_args:
                self.used_args.add(name)
                if given is not None:
                    value = given
            st.args[name] = value
            shown.append(raw if not eq else "%s=%s" % (name, default))
        yield from self.metadata(st, "ARG " + " ".join(shown))

    # ------------------------------------------------------------------ RUN
    def do_run(self, st: Stage, inst: Any) -> Iterator[dict]:
        parse_flags(inst, ())     # the classic builder's RUN takes none (--network is BuildKit's)
        argv = self._command(st, inst)
        args_env = self.build_arg_env(st)
        for a in args_env:
            self.used_args.add(a.partition("=")[0])
        save_cmd = list(argv)
        if args_env:
            save_cmd = ["|%d" % len(args_env)] + args_env + save_cmd
        created_by = " ".join(save_cmd)
        network = self.options.network_mode or "default"
        key = step_key(st.image_id, st.config, created_by,
                       json.dumps(self.proxy_env(st) + [network], separators=(",", ":")))
        if self.cached(st, key):
            yield self.out(" ---> Using cache\n")
            yield self.out(" ---> %s\n" % short(st.image_id))
            return
        if not st.image_id:
            raise InvalidArgument("Please provide a source image with `from` prior to run")
        env = list(st.config.get("Env") or []) + args_env + self.proxy_env(st)
        containers = self.engine.containers
        cid = containers.create(self._step_config(st, argv, env), self._host_config())["Id"]
        # kept afterwards: a container whose command failed, without force_rm (docker's
        # rm covers the steps that succeed); an interrupted or broken step's goes in any case
        keep = not self.options.rm and not self.options.force_rm
        try:
            yield self.out(" ---> Running in %s\n" % short(cid))
            containers.start(cid)
            for msg in containers.logs(cid, follow=True, poll=RUN_OUTPUT_POLL):
                if not self.options.quiet:
                    yield self.out(msg.line.decode("utf-8", errors="replace"))
            code = containers.wait(cid)["StatusCode"]
            if code != 0:
                keep = not self.options.force_rm
                raise StepFailed("The command '%s' returned a non-zero code: %d"
                                 % (" ".join(argv), code), code)
            layer = self.container_layer(cid)
            self.commit(st, created_by, save_cmd, layer=layer, empty=False, container_id=cid,
                        cache_key=key)
        finally:
            if not keep:
                self._discard(cid)
        if not keep:
            yield self.out("Removing intermediate container %s\n" % short(cid))
        yield self.out(" ---> %s\n" % short(st.image_id))

    def container_layer(self, key: str) -> tuple[Any, str]:
        """The changes of the snapshot ``key`` as a stored layer (an empty tar when none, as
        docker commits one)."""
        snapshotter = self.images.snapshotter
        with tempfile.TemporaryFile(dir=self.workdir) as f:
            if not write_layer(snapshotter, key, f, self.images.idmap):
                f.write(EMPTY_TAR)
            f.seek(0)
            desc, diff_id, _size = ingest_layer(self.images.content, f)
        return desc, diff_id

    # ------------------------------------------------------------------ snapshot steps
    def _with_snapshot(self, st: Stage, work: Any) -> tuple[Any, str]:
        """Run ``work(fs)`` on a writable snapshot over the stage's image (a ContainerFS of
        its root), then take its changes as a layer; nothing stays afterwards."""
        images = self.images
        key = scratch_key(self.workdir)
        with images.holding_gc():
            if st.image is not None:
                top = images.unpack(st.image.manifest, st.image.config)
            else:
                top = None
            mounts = images.snapshotter.prepare(key, top)
            try:
                scratch = tempfile.mkdtemp(prefix="rootfs-", dir=self.workdir)
                try:
                    mount_all(mounts, scratch)
                    try:
                        with ContainerFS(scratch, name="build") as fs:
                            work(fs)
                    finally:
                        unmount(scratch)
                finally:
                    os.rmdir(scratch)
                return self.container_layer(key)
            finally:
                images.snapshotter.remove(key)

    def do_workdir(self, st: Stage, inst: Any) -> Iterator[dict]:
        parse_flags(inst, ())
        if len(inst.args) != 1:
            raise InvalidArgument("WORKDIR requires exactly one argument")
        path = self.expand(st, inst.args[0])
        st.config["WorkingDir"] = posixpath.normpath(
            posixpath.join("/", st.config.get("WorkingDir") or "/", path))
        comment = "WORKDIR " + st.config["WorkingDir"]
        cmd = st.shell + ["#(nop) " + comment]
        created_by = " ".join(cmd)
        key = step_key(st.image_id, st.config, created_by)
        if self.cached(st, key):
            yield self.out(" ---> Using cache\n")
        else:
            workdir = st.config["WorkingDir"]
            user = self._owner(st, None)

            def commit(cid: str) -> None:
                layer = self._with_snapshot(st, lambda fs: make_dirs(fs, workdir, user))
                self.commit(st, created_by, cmd, layer=layer, empty=False, container_id=cid,
                            cache_key=key)
            yield from self.through_container(st, cmd, commit)
        yield self.out(" ---> %s\n" % short(st.image_id))

    def _owner(self, st: Stage, chown: str | None) -> tuple[int, int]:
        """``--chown``'s ids: ``user[:group]``, the group named as the user when left out (as
        docker reads it), names looked up in the image."""
        if not chown:
            return (0, 0)
        name, _, group = chown.partition(":")
        group = group or name
        if name.isdigit() and group.isdigit():
            return int(name), int(group)
        return self._lookup_owner(st, name + ":" + group)

    def _lookup_owner(self, st: Stage, chown: str) -> tuple[int, int]:
        """``user[:group]`` names resolved in the stage image's /etc/passwd and /etc/group."""
        from pyrunc.engine.oci.user import resolve_user
        result: list[tuple[int, int]] = []
        key = scratch_key(self.workdir)
        images = self.images
        with images.holding_gc():
            top = images.unpack(st.image.manifest, st.image.config) if st.image else None
            mounts = images.snapshotter.view(key, top)
            try:
                scratch = tempfile.mkdtemp(prefix="rootfs-", dir=self.workdir)
                try:
                    mount_all(mounts, scratch)
                    try:
                        try:
                            u = resolve_user(scratch, chown)
                        except PyruncError as e:
                            raise InvalidArgument("unable to convert uid/gid chown string to "
                                                  "host mapping: %s" % e) from None
                        result.append((u.uid, u.gid))
                    finally:
                        unmount(scratch)
                finally:
                    os.rmdir(scratch)
            finally:
                images.snapshotter.remove(key)
        return result[0]

    def do_copy(self, st: Stage, inst: Any, stages: list[Stage]) -> Iterator[dict]:
        yield from self._copy(st, inst, stages, add=False)

    def do_add(self, st: Stage, inst: Any, stages: list[Stage]) -> Iterator[dict]:
        yield from self._copy(st, inst, stages, add=True)

    def _copy(self, st: Stage, inst: Any, stages: list[Stage], add: bool) -> Iterator[dict]:
        name = "ADD" if add else "COPY"
        flags = parse_flags(inst, ("chown", "chmod") + (() if add else ("from",)))
        words = [self.expand(st, a) for a in inst.args]
        if len(words) < 2:
            raise InvalidArgument("%s requires at least two arguments" % name)
        *sources, dest = words
        chmod = None
        if flags.get("chmod"):
            try:
                chmod = int(flags["chmod"], 8)
            except ValueError:
                chmod = -1
            if not 0 <= chmod <= 0o7777:
                raise InvalidArgument("invalid chmod parameter: %s" % flags["chmod"])
        owner = self._owner(st, self.expand(st, flags["chown"]) if flags.get("chown") else None)
        source_image = None
        if flags.get("from"):
            source_image = yield from self._source_image(self.expand(st, flags["from"]), stages)
        with contextlib.ExitStack() as stack:
            root = self.context_root
            if flags.get("from"):
                root = stack.enter_context(_ImageRoot(self.images, source_image, self.workdir))
            plan = CopyPlan(root, self.workdir, owner, chmod)
            stack.callback(plan.close)
            for src in sources:
                if add and src.startswith(("http://", "https://")):
                    plan.add_url(src)
                    continue
                if add and "://" in src:
                    raise InvalidArgument("%s: only http and https URLs can be added" % src)
                for rel in find_sources_for(root, src, name):
                    plan.add_local(rel, extract=add and rel != "." and
                                   os.path.isfile(resolve_in_root(root, rel)) and
                                   is_archive(resolve_in_root(root, rel)))
            multi = len(plan.entries) > 1
            dest_path = dest if dest.startswith("/") else posixpath.join(
                st.config.get("WorkingDir") or "/", dest)
            as_dir = dest.endswith("/") or dest.endswith("/.") or dest in (".", "")
            if multi and not as_dir:
                raise InvalidArgument("When using %s with more than one source file, the "
                                      "destination must be a directory and end with a /"
                                      % name)
            created_by_src = plan.summary()
            # docker writes the --chown flag glued to the source hash
            chown_shown = "--chown=%s" % flags["chown"] if flags.get("chown") else ""
            comment = "%s %s%s in %s " % (name, chown_shown, created_by_src, dest)
            cmd = st.shell + ["#(nop) " + comment]
            created_by = " ".join(cmd)
            # --chmod is not in docker's history line: the key holds it
            key = step_key(st.image_id, st.config, created_by,
                           "" if chmod is None else "%o" % chmod)
            if self.cached(st, key):
                yield self.out(" ---> Using cache\n")
            else:
                layer = self._with_snapshot(
                    st, lambda fs: plan.apply(fs, dest_path, as_dir))
                self.commit(st, created_by, cmd, layer=layer, empty=False, cache_key=key)
        yield self.out(" ---> %s\n" % short(st.image_id))

    def _source_image(self, ref: str, stages: list[Stage]
                      ) -> Generator[dict[str, Any], None, Any]:
        """The image ``--from`` names: a stage (by name or index) or an image (pulled as a
        FROM pulls it); None for a stage still at scratch."""
        for s in stages:
            if (s.name and s.name == ref.lower()) or (ref.isdigit() and s.index == int(ref)):
                return s.image
        if ref.isdigit():
            raise InvalidArgument("invalid from flag value %s: %s" % (
                ref, "refers to current build stage" if int(ref) == len(stages)
                else "index out of bounds"))
        image = yield from self.builder.base_image(ref, self.options)
        return image


def find_sources_for(root: str, src: str, name: str) -> list[str]:
    """COPY/ADD's sources inside ``root`` with docker's messages: a relative path climbing
    above the context is refused; anything else is resolved inside it."""
    if not src.startswith("/") and posixpath.normpath(src).split("/")[0] == "..":
        raise InvalidArgument("%s failed: forbidden path outside the build context: %s ()"
                              % (name, src))
    try:
        return find_sources(root, src)
    except NotFound:
        raise NotFound("%s failed: file not found in build context or excluded by "
                       ".dockerignore: stat %s: file does not exist" % (name, src)) from None


class _ImageRoot:
    """A read-only view of an image's root filesystem, mounted on a scratch directory."""

    def __init__(self, images: Any, image: Any, workdir: str) -> None:
        self.images = images
        self.image = image
        self.workdir = workdir
        self.key = scratch_key(workdir)
        self.scratch = ""

    def __enter__(self) -> str:
        images = self.images
        with images.holding_gc():
            top = images.unpack(self.image.manifest, self.image.config) if self.image else None
            mounts = images.snapshotter.view(self.key, top)
        try:
            self.scratch = tempfile.mkdtemp(prefix="from-", dir=self.workdir)
            try:
                mount_all(mounts, self.scratch)
            except BaseException:
                os.rmdir(self.scratch)
                raise
        except BaseException:
            images.snapshotter.remove(self.key)
            raise
        return self.scratch

    def __exit__(self, *exc: Any) -> None:
        try:
            unmount(self.scratch)
            os.rmdir(self.scratch)
        finally:
            self.images.snapshotter.remove(self.key)


def make_dirs(fs: ContainerFS, path: str, owner: tuple[int, int]) -> str:
    """``mkdir -p path`` inside the container root ``fs`` (symlinks followed in its scope;
    created directories 0755 owned by ``owner``); returns the path."""
    parts = [p for p in path.split("/") if p]
    for i in range(len(parts)):
        sub = "/" + "/".join(parts[:i + 1])
        try:
            node = fs.resolve(sub, follow_last=True)
        except NotFound:
            parent = fs.resolve("/" + "/".join(parts[:i]), follow_last=True)
            try:
                os.mkdir(parts[i], 0o755, dir_fd=parent.fd)
                os.chmod(parts[i], 0o755, dir_fd=parent.fd, follow_symlinks=False)
                os.chown(parts[i], owner[0], owner[1], dir_fd=parent.fd,
                         follow_symlinks=False)
            finally:
                parent.close()
            continue
        try:
            if not stat.S_ISDIR(node.st.st_mode):
                raise InvalidArgument("%s: not a directory" % sub)
        finally:
            node.close()
    return path or "/"


class CopyPlan:
    """The sources of one COPY/ADD gathered into a tar (owners and modes as the step sets
    them), hashed for the cache, then extracted into the destination."""

    def __init__(self, root: str, workdir: str, owner: tuple[int, int],
                 chmod: int | None) -> None:
        self.root = root
        self.workdir = workdir
        self.owner = owner
        self.chmod = chmod
        self.entries: list[tuple[str, str, bool]] = []   # (kind, host path, extract)
        self.hash = hashlib.sha256()
        self.kinds: list[str] = []
        self.dirs: list[str] = []              # scratch directories of fetched URLs

    def close(self) -> None:
        for path in self.dirs:
            shutil.rmtree(path, ignore_errors=True)

    def add_local(self, rel: str, extract: bool) -> None:
        host = resolve_in_root(self.root, rel)
        st = os.lstat(host)
        kind = "dir" if stat.S_ISDIR(st.st_mode) else "file"
        self.entries.append((kind, host, extract))
        self.kinds.append(kind)
        self._hash_tree(host, rel)

    def add_url(self, url: str) -> None:
        import requests
        from email.utils import parsedate_to_datetime
        name = posixpath.basename(url.split("?", 1)[0].split("#", 1)[0].rstrip("/"))
        if name in ("", ".", ".."):
            raise InvalidArgument("cannot determine filename from url: %s" % url)
        where = tempfile.mkdtemp(prefix="url-", dir=self.workdir)
        self.dirs.append(where)
        path = os.path.join(where, name)
        try:
            with requests.get(url, stream=True, timeout=60, allow_redirects=True) as r:
                if r.status_code >= 400:
                    raise InvalidArgument("ADD failed: failed to GET %s with status %d %s"
                                          % (url, r.status_code, r.reason))
                size = 0
                with open(path, "xb") as f:
                    for chunk in r.iter_content(1 << 16):
                        size += len(chunk)
                        if size > MAX_URL_SIZE:
                            raise InvalidArgument("ADD failed: %s: larger than %d bytes"
                                                  % (url, MAX_URL_SIZE))
                        f.write(chunk)
                modified = r.headers.get("Last-Modified")
        except requests.RequestException as e:
            raise InvalidArgument("ADD failed: %s" % e) from None
        os.chmod(path, 0o600)
        if modified:
            try:
                t = parsedate_to_datetime(modified).timestamp()
                os.utime(path, (t, t))
            except (TypeError, ValueError, OverflowError):
                pass
        self.entries.append(("file", path, False))
        self.kinds.append("file")
        self._hash_tree(path, name)

    def _hash_tree(self, host: str, rel: str) -> None:
        for path, arc in _walk(host, ""):
            st = os.lstat(path)
            self.hash.update(json.dumps([rel, arc, st.st_mode, st.st_size,
                                         os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""])
                             .encode())
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    while True:
                        chunk = f.read(1 << 20)
                        if not chunk:
                            break
                        self.hash.update(chunk)

    def summary(self) -> str:
        kind = self.kinds[0] if len(self.kinds) == 1 else "multi"
        return "%s:%s" % (kind, self.hash.hexdigest())

    def _tar(self, out: Any, host: str, name: str | None) -> None:
        """Write ``host`` into the tar ``out``: a directory's contents (name None) or a file
        under ``name``."""
        for path, arc in _walk(host, name or ""):
            if not arc:
                continue
            ti = out.gettarinfo(path, arc)
            if ti is None or not (ti.isreg() or ti.isdir() or ti.issym() or ti.isfifo()):
                continue
            ti.uid, ti.gid = self.owner
            ti.uname = ti.gname = ""
            if self.chmod is not None and not ti.issym():
                ti.mode = self.chmod
            if ti.isreg():
                with open(path, "rb") as f:
                    out.addfile(ti, f)
            else:
                out.addfile(ti)

    def apply(self, fs: ContainerFS, dest: str, as_dir: bool) -> None:
        """Copy the sources to ``dest`` in the container root ``fs``."""
        single_file = len(self.entries) == 1 and self.entries[0][0] == "file" \
            and not self.entries[0][2]
        target_dir, target_name = dest, None
        if single_file and not as_dir:
            try:
                node = fs.resolve(dest, follow_last=True)
                is_dir = stat.S_ISDIR(node.st.st_mode)
                node.close()
            except NotFound:
                is_dir = False
            if not is_dir:
                target_dir, target_name = posixpath.dirname(dest) or "/", posixpath.basename(dest)
        make_dirs(fs, target_dir, self.owner)
        with tempfile.TemporaryFile(dir=self.workdir) as f:
            with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as out:
                for kind, host, extract in self.entries:
                    if extract:
                        continue
                    if kind == "dir":
                        self._tar(out, host, None)
                    else:
                        self._tar(out, host, target_name or os.path.basename(host))
            f.seek(0)
            fs.extract(target_dir, f)
        for kind, host, extract in self.entries:
            if extract:
                with open(host, "rb") as f:
                    fs.extract(target_dir, f)


def _walk(host: str, arc: str) -> Iterator[tuple[str, str]]:
    """``host`` and everything under it (not following symlinks), with names under ``arc``,
    parents first, sorted."""
    yield host, arc
    if os.path.isdir(host) and not os.path.islink(host):
        for name in sorted(os.listdir(host)):
            yield from _walk(os.path.join(host, name), (arc + "/" if arc else "") + name)


def scratch_key(workdir: str) -> str:
    """A key for a snapshot a step mounts, named after the build's directory (so a sweep
    finds what a build that died left)."""
    return "%s-%s" % (os.path.basename(workdir), uuid.uuid4().hex)


def short(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]
