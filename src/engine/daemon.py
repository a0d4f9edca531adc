"""The engine as one object: dockerd's services over one root directory, without a daemon.

    engine = Engine(root="/var/lib/pyrunc")
    engine.load_builtin("busybox")
    cid = engine.containers.create({"Image": "busybox", "Cmd": ["echo", "hi"]})["Id"]
    engine.containers.start(cid)

Layout under ROOT: image/ (the image service's content, images and snapshots);
containers/; volumes/; network/ (``bridge``: the default bridge's device, dockerd's
--bridge, with "none" its --bridge=none; None, the default, turns networking off: see
pyrunc.engine.container.network); events.jsonl; and the task manager's state at the exec root
(ROOT/exec unless given; one given is recorded in ROOT/exec-root for the next Engine). With ``userns_remap`` (docker's --userns-remap: "default", a user
name or uid, with a group) all but the events are under ROOT/UID.GID, the remapped root's
own tree, and images are unpacked with their owners shifted. ``runtime`` is the default
OCI runtime's name and ``runtimes`` adds runtimes to the stock pyrunc and runc (name -> path, or
``{"path": ..., "runtimeArgs": [...]}``; see pyrunc.engine.runtimes): a container runs with its
``HostConfig.Runtime``. Several processes may use one root at once: every container has its own flock and
the indexes are locked documents. What a library user gets without the supervisor
(``pyrunc.engine.supervisor``): correct states and exit codes on every read, but no restart
policies and no health checks.
"""
from __future__ import annotations

import os

from pyrunc.containerd.tasks import TaskManager
from pyrunc.engine.container import ContainerService
from pyrunc.engine.container.network import ContainerNetworking
from pyrunc.engine.content.private import private_dir
from pyrunc.engine.idmap import parse_remap
from pyrunc.engine.events import EventService
from pyrunc.engine.images import builtin
from pyrunc.engine.images.service import ImageService
from pyrunc.engine import runtimes as oci_runtimes
from pyrunc.engine.volume import VolumeService
from pyrunc.errors import Conflict

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Iterable, Mapping
    from pyrunc.engine.builder import Builder
    from pyrunc.engine.network import NetworkService

DEFAULT_ROOT = "/var/lib/pyrunc"


class Engine:
    """Images, containers, volumes and events under ``root``."""

    def __init__(self, root: str = DEFAULT_ROOT, *, exec_root: str | None = None,
                 runtime: str = "pyrunc", runtimes: Mapping[str, Any] | None = None,
                 snapshotter: str | None = None,
                 userns_remap: str | None = None, bridge: str | None = None,
                 iptables: bool = True, dns_upstreams: Iterable[str] | None = None,
                 warm_create: bool = False) -> None:
        """``warm_create``: the task manager creates pyrunc containers through its create
        server (no interpreter started per create; see docs/containerd.md), stopped by
        ``close``."""
        self.root = os.path.abspath(root)
        self._builder: Builder | None = None
        self.runtime = runtime
        self.userns_remap = userns_remap
        self.idmap = parse_remap(userns_remap) if userns_remap else None
        if self.idmap is None:
            tree, group = private_dir(self.root), None
        else:
            tree, group = self.idmap.make_root_dir(self.root), self.idmap.root[1]
        self.exec_root = self._exec_root(tree, exec_root)
        self.runtimes = oci_runtimes.configure(runtimes, runtime, self.exec_root)
        self.events = EventService(os.path.join(self.root, "events.jsonl"))
        self.images = ImageService(os.path.join(tree, "image"), snapshotter,
                                   containers=self._image_users, idmap=self.idmap)
        self.images.events = self.events
        self.volumes = VolumeService(os.path.join(tree, "volumes"),
                                     owner=self.idmap.root if self.idmap else None)
        self.tasks = TaskManager(self.exec_root, runtime=runtime, runtimes={
            name: rt.command for name, rt in self.runtimes.items()}, warm_create=warm_create)
        self.containers = ContainerService(os.path.join(tree, "containers"),
                                           tasks=self.tasks, images=self.images,
                                           volumes=self.volumes, events=self.events,
                                           runtime=runtime, idmap=self.idmap, group=group,
                                           networking=ContainerNetworking(
                                               os.path.join(tree, "network"), bridge=bridge,
                                               iptables=iptables, dns_upstreams=dns_upstreams,
                                               events=self.events))
        self.containers.clean_abandoned()
        self._sweep_networks()

    @property
    def builder(self) -> Builder:
        """The image builder (docker build's classic builder; its cache in ROOT/builder)."""
        if self._builder is None:
            from pyrunc.engine.builder import Builder
            self._builder = Builder(self)
        return self._builder

    @property
    def networks(self) -> NetworkService:
        """The network service (ROOT/network; docker's bridge, host and none networks are
        made on first use)."""
        return self.containers.networking.service

    def _sweep_networks(self) -> None:
        """Remove what containers that are gone left on the networks (veths, addresses,
        published ports, namespaces), once networks were used on this root. A container is
        kept while it runs or while another process holds its lock (starting it)."""
        networking = self.containers.networking
        if not networking.in_use():
            return
        live = []
        for c in self.containers.store.all():
            c = self.containers.refresh(c)
            if c.state.get("Running") or c.state.get("Restarting"):
                live.append(c.id)
                continue
            try:
                with c.lock(blocking=False):
                    pass
            except Conflict:
                live.append(c.id)
        networking.sweep(live)

    @staticmethod
    def _exec_root(tree: str, exec_root: str | None) -> str:
        """The task state root: the one given (recorded in TREE/exec-root), else the one
        recorded by an earlier Engine on this root (so it finds the tasks of the containers
        it sees), else TREE/exec."""
        record = os.path.join(tree, "exec-root")
        if exec_root is None:
            try:
                with open(record) as f:
                    return f.read().strip()
            except FileNotFoundError:
                return os.path.join(tree, "exec")
        exec_root = os.path.abspath(exec_root)
        tmp = record + ".tmp"
        with open(tmp, "w") as f:
            f.write(exec_root + "\n")
        os.rename(tmp, record)
        return exec_root

    def _image_users(self, image_id: str) -> list[tuple[str, bool]]:
        return self.containers.image_users(image_id)

    def load_builtin(self, name: str) -> str:
        """Make the built-in image ``name`` (busybox, hello-world) and tag it NAME:latest;
        returns its ID. A fresh engine has no images until this (or a pull) adds one."""
        return builtin.build(self.images, name)

    def close(self) -> None:
        """Let go of what this process holds: for the networks, the embedded DNS server's
        listeners and the sockets reserving published ports; the task manager's create server
        (files are closed after every operation)."""
        self.containers.networking.close()
        self.tasks.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
