"""``docker import``: a rootfs tarball (file or stdin, plain or compressed) becomes an image,
with ``--change`` lines (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER,
VOLUME, WORKDIR) applied to its config. Also ``ingest_layer``: any tar stream into the content
store as a gzip layer, with its diffID computed on the way."""
from __future__ import annotations

import gzip
import hashlib
import posixpath
import uuid
import zlib

from pyrunc.engine import imagespec
from pyrunc.engine.images.service import rfc3339_now
from pyrunc.engine.layers import LayerTooLarge, decompressed
from pyrunc.engine.platforms import Platform, host_platform
from pyrunc.errors import InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from pyrunc.engine.content.store import ContentStore
    from pyrunc.engine.images.service import ImageService
    from pyrunc.engine.images.unpack import LayerLimits

LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
CHANGE_COMMANDS = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL",
                   "USER", "VOLUME", "WORKDIR")


class _ToWriter:
    def __init__(self, w):
        self._w = w

    def write(self, b):
        return self._w.write(bytes(b))

    def flush(self):
        pass


class _Counting:
    """A readable that counts the bytes read through it (the compressed input)."""

    def __init__(self, f: Any) -> None:
        self._f = f
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self.count += len(data)
        return data

    def readable(self) -> bool:
        return True


def ingest_layer(content: ContentStore, stream: Any,
                 limits: LayerLimits | None = None) -> tuple[Any, ...]:
    """Store the tar read from ``stream`` (plain or compressed) as a gzip layer; returns
    (descriptor, diff_id, uncompressed size). With ``limits``, the input may expand to at
    most ``limits.for_layer(compressed bytes read)`` (so a bomb stops at the floor or the
    cap, long before it is stored)."""
    counted = _Counting(stream)
    plain = decompressed(counted)
    diff = hashlib.sha256()
    size = 0
    w = content.writer("layer-" + uuid.uuid4().hex)
    try:
        gz = gzip.GzipFile(fileobj=_ToWriter(w), mode="wb", compresslevel=6, mtime=0)
        while True:
            chunk = plain.read(1 << 20)
            if not chunk:
                break
            diff.update(chunk)
            size += len(chunk)
            if limits is not None and size > limits.for_layer(counted.count):
                raise LayerTooLarge("import: refused: the archive expands past %d bytes, the "
                                    "limit for its %d compressed bytes"
                                    % (limits.for_layer(counted.count), counted.count))
            gz.write(chunk)
        gz.close()
        if size == 0:
            raise InvalidArgument("import: the archive is empty")
        compressed = w.offset
        digest = w.commit()
    except (EOFError, zlib.error) as e:
        w.abort()
        raise InvalidArgument("import: truncated or corrupt archive: %s"
                              % (e or "unexpected end")) from None
    except OSError as e:
        w.abort()
        if e.errno is not None:
            raise
        raise InvalidArgument("import: corrupt compressed archive: %s" % e) from None
    except BaseException as e:
        w.abort()
        if type(e).__name__ in ("ZstdError", "LZMAError"):
            raise InvalidArgument("import: corrupt compressed archive: %s" % e) from None
        raise
    return ({"mediaType": LAYER_GZIP, "digest": digest, "size": compressed},
            "sha256:" + diff.hexdigest(), size)


def apply_changes(config: dict[Any, Any], changes: Any) -> Any:
    """Apply Dockerfile-style ``changes`` to an image's ``config`` section (a dict): each line
    read by the Dockerfile parser, its words expanded with the config's environment, as docker
    does for ``commit --change`` and ``import --change``."""
    # here, not at the top: the builder's package imports the container code, which imports this
    from pyrunc.engine.builder.dockerfile import ParseError, expand, parse_instruction
    for line in changes:
        if not line.strip() or line.strip().startswith("#"):
            continue
        cmd = line.split()[0].upper()
        if cmd not in CHANGE_COMMANDS:
            raise InvalidArgument("%s is not a valid change command" % line.split()[0])
        try:
            ins = parse_instruction(line)
        except ParseError as e:
            raise InvalidArgument(e.reason) from None
        # docker counts the words before it reads the flags: "CMD --" has one (an empty
        # shell form), "CMD" none
        if not ins.args and not ins.json and not (cmd in ("CMD", "ENTRYPOINT")
                                                  and len(line.split()) > 1):
            raise InvalidArgument("%s requires at least one argument" % cmd)
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in config.get("Env") or [])

        def word(w: str) -> str:
            return expand(w, env)

        if cmd in ("CMD", "ENTRYPOINT"):
            value = ins.args if ins.json else ["/bin/sh", "-c"] + ins.args[:1]
            # docker: an empty exec-form ENTRYPOINT is no entrypoint, an empty CMD stays [];
            # an empty shell form ("--" alone) is no entrypoint, and a CMD of the shell alone
            if cmd == "CMD":
                config["Cmd"] = value
            else:
                config["Entrypoint"] = value if value and (ins.json or ins.args) else None
        elif cmd == "ENV":
            pairs = [(word(k), word(v)) for k, v in zip(ins.args[::2], ins.args[1::2])]
            env_list = [e for e in config.get("Env") or []]
            for k, v in pairs:
                env_list = [e for e in env_list if e.split("=", 1)[0] != k] + ["%s=%s" % (k, v)]
            config["Env"] = env_list
        elif cmd == "LABEL":
            labels = dict(config.get("Labels") or {})
            labels.update((word(k), word(v)) for k, v in zip(ins.args[::2], ins.args[1::2]))
            config["Labels"] = labels
        elif cmd == "EXPOSE":
            ports = dict(config.get("ExposedPorts") or {})
            for p in ins.args:
                port, _, proto = word(p).partition("/")
                if not port.split("-")[0].isdigit():
                    raise InvalidArgument("invalid containerPort: %s" % port)
                ports["%s/%s" % (port, proto or "tcp")] = {}
            config["ExposedPorts"] = ports
        elif cmd == "VOLUME":
            vols = dict(config.get("Volumes") or {})
            for v in ins.args:
                vols[word(v)] = {}
            config["Volumes"] = vols
        elif cmd == "WORKDIR":
            config["WorkingDir"] = posixpath.normpath(
                posixpath.join(config.get("WorkingDir") or "/", word(ins.args[0])))
        elif cmd == "USER":
            config["User"] = word(ins.args[0])
        elif cmd == "STOPSIGNAL":
            config["StopSignal"] = word(ins.args[0])
        elif cmd == "ONBUILD":
            config["OnBuild"] = (config.get("OnBuild") or []) + [ins.expression]
    return config


def import_image(service: ImageService, stream: Any, ref: str | None = None, changes: Any = (),
                 message: str = "", source: str = "-", platform: Any = None) -> str:
    """Import the rootfs tarball read from ``stream`` (a binary file, or a path); returns the
    image ID."""
    config_section = apply_changes({}, changes)
    with service.holding_gc():
        if isinstance(stream, str):
            try:
                with open(stream, "rb") as f:
                    descriptor, diff_id, _ = ingest_layer(service.content, f,
                                                          service.layer_limits)
            except FileNotFoundError:
                raise NotFound("import: %s: no such file" % stream) from None
        else:
            descriptor, diff_id, _ = ingest_layer(service.content, stream,
                                                  service.layer_limits)
        return _record(service, descriptor, diff_id, ref, config_section, message, source,
                       platform)


def _record(service, descriptor, diff_id, ref, config_section, message, source, platform):
    created = rfc3339_now()
    msg = message or "Imported from %s" % source
    platform = platform or host_platform()
    plat = platform.to_json() if isinstance(platform, Platform) else dict(platform)
    config = {"architecture": plat["architecture"], "os": plat["os"], "created": created,
              "comment": msg, "config": config_section,
              "rootfs": {"type": "layers", "diff_ids": [diff_id]},
              "history": [{"created": created, "comment": msg}]}
    if plat.get("variant"):
        config["variant"] = plat["variant"]
    imagespec.validate("config", config, "import: image config")
    return service.put_image(config, [descriptor], [ref] if ref else [])
