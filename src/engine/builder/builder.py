"""The build: a context and a Dockerfile in, an image and the classic builder's messages out.

    for message in engine.builder.build(tar_stream, BuildOptions(tags=["app:1"])):
        print(message)      # {"stream": "Step 1/3 : FROM busybox\\n"}, ... {"aux": {"ID": ...}}

Messages are the JSON objects ``/build`` streams. A failure ends the stream with
``{"errorDetail": {"message": M[, "code": N]}, "error": M}``: nothing raised. Intermediate
containers are removed as docker removes them (``rm``: after a step succeeds; ``force_rm``:
always); the context's directory and every snapshot a step mounted are gone in every case.
"""
from __future__ import annotations

import dataclasses
import fcntl
import os
import queue
import shutil
import tempfile
import threading

from pyrunc.engine.builder.cache import BuildCache
from pyrunc.engine.builder.context import Context
from pyrunc.engine.builder.dispatch import (PROXY_ARGS, Dispatcher, Stage, StepFailed,
                                            parse_flags, short)
from pyrunc.engine.snapshots.mount import unmount
from pyrunc.errors import InvalidArgument, NotFound, PyruncError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO
    from collections.abc import Generator, Iterator
    from pyrunc.engine.daemon import Engine

_METADATA = ("env", "label", "cmd", "entrypoint", "expose", "user", "volume", "stopsignal",
             "healthcheck", "shell", "onbuild", "maintainer")


@dataclasses.dataclass
class BuildOptions:
    """The build's options, one per ``/build`` query parameter. ``registries``: the
    RegistryService (with the request's credentials) a FROM pulls through; None: no pulls.
    ``resources``: HostConfig resource fields for the RUN containers (Memory, CpuShares...)."""
    dockerfile: str = "Dockerfile"
    tags: list[str] = dataclasses.field(default_factory=list)
    no_cache: bool = False
    pull: bool = False
    rm: bool = True
    force_rm: bool = False
    build_args: dict[str, str | None] = dataclasses.field(default_factory=dict)
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    target: str | None = None
    network_mode: str | None = None
    quiet: bool = False
    platform: str | None = None
    extra_hosts: list[str] = dataclasses.field(default_factory=list)
    resources: dict[str, Any] = dataclasses.field(default_factory=dict)
    registries: Any = None


class Builder:
    """Builds images on ``engine``; the cache and scratch space live in ENGINE_TREE/builder."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.root = os.path.join(os.path.dirname(engine.images.root), "builder")
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        self.cache = BuildCache(os.path.join(self.root, "cache"))
        self.tmp = os.path.join(self.root, "tmp")

    # ------------------------------------------------------------------ the public calls
    def build(self, context: BinaryIO, options: BuildOptions) -> Iterator[dict[str, Any]]:
        """Build from the ``/build`` body ``context``; yields ``/build``'s messages."""
        try:
            yield from self._build(context, options)
        except StepFailed as e:
            yield {"errorDetail": {"message": e.message, "code": e.code}, "error": e.message}
        except PyruncError as e:
            yield {"errorDetail": {"message": e.message}, "error": e.message}
        except OSError as e:        # the machine's (a full disk...): still the stream's end
            message = "build: %s" % (e.strerror or e)
            if e.filename:
                message += ": %s" % e.filename
            yield {"errorDetail": {"message": message}, "error": message}

    def prune(self) -> dict[str, Any]:
        """Forget the build cache and remove the images only it kept (untagged, used by no
        container); docker's /build/prune answer."""
        entries = self.cache.entries()
        images = self.engine.images
        deleted: list[str] = []
        reclaimed = 0
        keep: set[str] = set()
        for image_id in set(entries.values()):
            try:
                img = images.get(image_id)
            except NotFound:
                deleted.append(image_id)    # gone already, with a child deleted here
                continue
            if img.refs or images.containers(image_id):
                keep.add(image_id)
                continue
            if images.store.children(image_id):
                # an image's parent stays (dockerd never deletes one): its cache record goes,
                # the image itself with the last image built on it
                deleted.append(image_id)
                continue
            size = img.size
            try:
                images.remove(image_id)
            except PyruncError:
                keep.add(image_id)
                continue
            deleted.append(image_id)
            reclaimed += size
        self.cache.drop({k for k, v in entries.items() if v not in keep})
        return {"CachesDeleted": deleted, "SpaceReclaimed": reclaimed}

    # ------------------------------------------------------------------ the build
    def _build(self, body: BinaryIO, options: BuildOptions) -> Iterator[dict[str, Any]]:
        from pyrunc.engine.builder.dockerfile import parse
        from pyrunc.engine.images.store import parse_name
        for tag in options.tags:
            ref = parse_name(tag)
            if ref.digest:
                raise InvalidArgument("invalid reference format: %s" % tag)
        os.makedirs(self.tmp, mode=0o700, exist_ok=True)
        self.sweep()
        workdir = tempfile.mkdtemp(prefix="build-", dir=self.tmp)
        # held for the build: a directory whose lock is free is a dead build's (see sweep);
        # taken before the lock gets its name, so no sweep finds it free meanwhile
        lock = os.open(os.path.join(workdir, ".lock.new"),
                       os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        fcntl.flock(lock, fcntl.LOCK_EX)
        os.rename(os.path.join(workdir, ".lock.new"), os.path.join(workdir, ".lock"))
        try:
            ctx = Context.open(body, workdir)
            try:
                dockerfile = parse(ctx.read_dockerfile(options.dockerfile))
                ctx.apply_dockerignore()
                yield from self._run(dockerfile, ctx.root, workdir, options)
            finally:
                ctx.close()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            os.close(lock)

    def sweep(self) -> None:
        """Remove what builds that died left: their directories, the mounts under them and
        the snapshots named after them. A build holds its directory's lock while it runs."""
        try:
            names = os.listdir(self.tmp)
        except FileNotFoundError:
            return
        for name in names:
            path = os.path.join(self.tmp, name)
            try:
                fd = os.open(os.path.join(path, ".lock"), os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                continue        # being made (the lock comes first) or not a build's
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue    # a live build
                for target in _mounts_under(path):
                    unmount(target)
                snapshotter = self.engine.images.snapshotter
                for info in list(snapshotter.walk()):
                    if info.name.startswith(name + "-"):
                        snapshotter.remove(info.name)
                shutil.rmtree(path, ignore_errors=True)
            finally:
                os.close(fd)

    def _run(self, dockerfile: Any, context_root: str, workdir: str,
             options: BuildOptions) -> Iterator[dict[str, Any]]:
        instructions = list(dockerfile.instructions)
        if not any(i.cmd == "from" for i in instructions):
            raise InvalidArgument("No image was generated. Is your Dockerfile empty?"
                                  if not instructions else
                                  "Please provide a source image with `from` prior to %s"
                                  % instructions[0].cmd)
        if options.target:
            instructions = _up_to_target(instructions, options.target)
        quiet = options.quiet
        d = Dispatcher(self, options, context_root, workdir, dockerfile.escape)
        total = len(instructions) + len(options.labels)
        meta: dict[str, str | None] = {}
        meta_stage = Stage(-1, None)
        stages: list[Stage] = []
        st: Stage | None = None
        step = 0
        for inst in instructions:
            step += 1
            if not quiet:
                yield {"stream": "Step %d/%d : %s\n" % (step, total, _shown(inst))}
            if inst.cmd == "from":
                st = Stage(len(stages), None)
                yield from self._from(d, st, inst, stages, meta, options)
                stages.append(st)
                continue
            if st is None:
                if inst.cmd != "arg":
                    raise InvalidArgument("Please provide a source image with `from` prior to "
                                          "%s" % inst.cmd)
                self._meta_arg(d, meta_stage, inst, meta, options)
                continue
            for msg in self._dispatch(d, st, inst, stages, meta):
                if not quiet or "stream" not in msg:
                    yield msg
        assert st is not None
        for name, value in sorted(options.labels.items()):
            # docker appends each --label as a LABEL step of its own
            step += 1
            if not quiet:
                yield {"stream": "Step %d/%d : LABEL %s=%s\n" % (step, total, name, value)}
            for msg in d.apply_label(st, name, value):
                if not quiet:
                    yield msg
        if not st.image_id:
            raise InvalidArgument("No image was generated. Is your Dockerfile empty?")
        unused = sorted(set(options.build_args) - d.used_args - PROXY_ARGS)
        if unused:
            yield {"stream": "[Warning] One or more build-args [%s] were not consumed\n"
                   % " ".join(unused)}
        yield {"aux": {"ID": st.image_id}}
        if quiet:
            yield {"stream": st.image_id + "\n"}
        else:
            yield {"stream": "Successfully built %s\n" % short(st.image_id)}
        for tag in options.tags:
            ref = self.engine.images.tag(st.image_id, tag)
            if not quiet:
                yield {"stream": "Successfully tagged %s\n" % ref.familiar}

    def _meta_arg(self, d: Dispatcher, meta_stage: Stage, inst: Any,
                  meta: dict[str, str | None], options: BuildOptions) -> None:
        parse_flags(inst, ())
        for raw in inst.args:
            name, eq, default = raw.partition("=")
            if not name:
                raise InvalidArgument("ARG names can not be blank")
            value = d.expand(meta_stage, default) if eq else None
            if name in options.build_args:
                d.used_args.add(name)
                if options.build_args[name] is not None:
                    value = options.build_args[name]
            meta[name] = value
            meta_stage.args[name] = value

    def _dispatch(self, d: Dispatcher, st: Stage, inst: Any, stages: list[Stage],
                  meta: dict[str, str | None]) -> Iterator[dict[str, Any]]:
        cmd = inst.cmd
        if cmd == "run":
            return d.do_run(st, inst)
        if cmd == "copy":
            return d.do_copy(st, inst, stages)
        if cmd == "add":
            return d.do_add(st, inst, stages)
        if cmd == "workdir":
            return d.do_workdir(st, inst)
        if cmd == "arg":
            return d.do_arg(st, inst, meta)
        if cmd in _METADATA:
            return getattr(d, "do_" + cmd)(st, inst)
        raise InvalidArgument("Unknown instruction: %s" % cmd.upper())

    def _from(self, d: Dispatcher, st: Stage, inst: Any, stages: list[Stage],
              meta: dict[str, str | None], options: BuildOptions) -> Iterator[dict[str, Any]]:
        flags = parse_flags(inst, ("platform",))
        args = list(inst.args)
        if len(args) == 3 and args[1].lower() == "as":
            st.name = args[2].lower()
            args = args[:1]
        if len(args) != 1:
            raise InvalidArgument("FROM requires either one or three arguments")
        from pyrunc.engine.builder.dockerfile.words import expand
        env = {k: v for k, v in meta.items() if v is not None}
        name = expand(args[0], env, d.escape)
        platform = expand(flags["platform"], env, d.escape) if flags.get("platform") else \
            options.platform
        if not name:
            raise InvalidArgument("base name (%s) should not be blank" % args[0])
        if name.lower() == "scratch":
            if not options.quiet:
                yield {"stream": " ---> \n"}
            return
        for s in stages:
            if s.name == name.lower() or (name.isdigit() and s.index == int(name)):
                d.set_image(st, s.image_id)
                if not options.quiet:
                    yield {"stream": " ---> %s\n" % short(st.image_id)}
                yield from self._triggers(d, st, stages, meta)
                return
        image = yield from self.base_image(name, options, platform)
        d.set_image(st, image.id)
        if not options.quiet:
            yield {"stream": " ---> %s\n" % short(st.image_id)}
        yield from self._triggers(d, st, stages, meta)

    def _triggers(self, d: Dispatcher, st: Stage, stages: list[Stage],
                  meta: dict[str, str | None]) -> Iterator[dict[str, Any]]:
        """The base image's ONBUILD triggers, run as the stage's first steps."""
        triggers = list(st.config.get("OnBuild") or [])
        if not triggers:
            return
        st.config["OnBuild"] = None
        from pyrunc.engine.builder.dockerfile import parse_instruction
        if not d.options.quiet:
            yield {"stream": "# Executing %d build trigger%s\n"
                   % (len(triggers), "s" if len(triggers) > 1 else "")}
        for text in triggers:
            inst = parse_instruction(text)
            if inst.cmd in ("onbuild", "from", "maintainer"):
                raise InvalidArgument("%s isn't allowed as an ONBUILD trigger"
                                      % inst.cmd.upper())
            for msg in self._dispatch(d, st, inst, stages, meta):
                if not d.options.quiet or "stream" not in msg:
                    yield msg

    def base_image(self, name: str, options: BuildOptions, platform: str | None = None
                   ) -> Generator[dict[str, Any], None, Any]:
        """The image ``name``, pulled when missing or with ``pull``: yields the pull's
        progress messages as they come, returns the image."""
        images = self.engine.images
        if not options.pull:
            try:
                image = images.get(name)
            except NotFound:
                image = None
            if image is not None:
                self._check_platform(name, image, platform)
                return image
        if options.registries is None:
            raise NotFound("pull access denied for %s, repository does not exist or may "
                           "require 'docker login'" % name.split(":")[0]
                           if not options.pull else
                           "cannot pull %s: no registry is configured for builds" % name)
        from pyrunc.engine.distribution.pull import pull
        from pyrunc.engine.platforms import parse_platform
        wanted = parse_platform(platform) if platform else None
        messages: queue.Queue[Any] = queue.Queue()
        failure: list[BaseException] = []

        def work() -> None:
            try:
                pull(name, images, options.registries, platform=wanted,
                     progress=messages.put)
            except BaseException as e:     # handed to the build's thread
                failure.append(e)
            finally:
                messages.put(None)

        thread = threading.Thread(target=work, name="build-pull", daemon=True)
        thread.start()
        while True:
            msg = messages.get()
            if msg is None:
                break
            yield msg
        thread.join()
        if failure:
            raise failure[0]
        return images.get(name)

    @staticmethod
    def _check_platform(name: str, image: Any, platform: str | None) -> None:
        if not platform:
            return
        want = platform.split("/")
        have = [image.config.get("os", ""), image.config.get("architecture", "")]
        if want[0] != have[0] or (len(want) > 1 and want[1] != have[1]):
            raise NotFound("image with reference %s was found but does not match the "
                           "specified platform: wanted %s, actual: %s"
                           % (name, platform, "/".join(have)))


def _mounts_under(path: str) -> list[str]:
    """The mount points at or below ``path`` in this mount namespace, deepest first."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            target = line.split()[4].replace("\\040", " ")
            if target == path or target.startswith(path + "/"):
                found.append(target)
    return sorted(found, key=len, reverse=True)


def _up_to_target(instructions: list[Any], target: str) -> list[Any]:
    """The instructions up to the end of the stage named ``target``."""
    found = False
    for i, inst in enumerate(instructions):
        if inst.cmd != "from":
            continue
        if found:
            return instructions[:i]
        found = len(inst.args) == 3 and inst.args[2].lower() == target.lower()
    if not found:
        raise InvalidArgument("failed to reach build target %s in Dockerfile" % target)
    return instructions


def _shown(inst: Any) -> str:
    """The step as the classic builder prints it: the original line, its continuations
    joined."""
    return " ".join(inst.original.split()) if "\n" in inst.original else inst.original.strip()
