"""Containers on disk: records, IDs, the names index and per-container locks.

    ROOT/containers/ID/config.v2.json   the record (docker's file name): Config, State, ...
    ROOT/containers/ID/hostconfig.json  the HostConfig
    ROOT/containers/ID/hostname, hosts, resolv.conf, ID-json.log, config.json (the bundle)
    ROOT/containers/names.json          {"/name": ID}, under the flock of ROOT/containers/lock
    ROOT/containers/locks/ID            the container's flock (held by every change to it)

A directory without config.v2.json is a create in progress (its lock is held) or one whose
process died (its lock is free): ``abandoned()`` finds the latter for the engine to clean.
"""
from __future__ import annotations

import json
import os
import secrets

from pyrunc.containerd.tasks.locking import IdLock
from pyrunc.engine.container import names as container_names
from pyrunc.engine.content.private import private_dir
from pyrunc.engine.metadata import locked_document
from pyrunc.engine.volume import MountPoint
from pyrunc.errors import Conflict, InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from pyrunc.containerd.tasks import Task, TaskManager

RECORD = "config.v2.json"
HOST_CONFIG = "hostconfig.json"
_HEX = frozenset("0123456789abcdef")


def is_full_id(text: str) -> bool:
    return len(text) == 64 and all(c in _HEX for c in text)


def write_json(path: str, value: Any) -> None:
    """Replace ``path`` atomically (a reader sees the old or the new document, never half)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f)
    os.rename(tmp, path)


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def _share_with(path: str, group: int) -> None:
    os.chown(path, os.geteuid(), group)
    os.chmod(path, 0o710)


class Container:
    """One container's record as loaded from disk; ``save()`` writes it back (hold ``lock()``)."""

    def __init__(self, store: ContainerStore, record: dict[str, Any],
                 host_config: dict[str, Any]) -> None:
        self.store = store
        self.record = record
        self.host_config = host_config

    def __repr__(self) -> str:
        return "<Container %s %s>" % (self.id[:12], self.name)

    @property
    def id(self) -> str:
        return self.record["ID"]

    @property
    def name(self) -> str:
        return self.record["Name"]

    @property
    def dir(self) -> str:
        return os.path.join(self.store.root, self.id)

    @property
    def config(self) -> dict[str, Any]:
        return self.record["Config"]

    @property
    def state(self) -> dict[str, Any]:
        return self.record["State"]

    @property
    def image_id(self) -> str:
        return self.record["Image"]

    @property
    def snapshot_key(self) -> str:
        return self.record["SnapshotKey"]

    @property
    def rootfs(self) -> str:
        return os.path.join(self.dir, "rootfs")

    @property
    def log_path(self) -> str:
        return self.record["LogPath"]

    @property
    def restart_count(self) -> int:
        return self.record["RestartCount"]

    @property
    def mount_points(self) -> list[Any]:
        return [MountPoint.from_dict(m) for m in self.record["MountPoints"]]

    def task(self) -> Task:
        """The lifecycle manager's task of this container (NotFound when there is none)."""
        return self.store.tasks.get(self.id)

    def lock(self, blocking: bool = True) -> IdLock:
        return self.store.lock(self.id, blocking)

    def reload(self) -> None:
        fresh = self.store.load(self.id)
        if fresh is None:
            raise NotFound("No such container: %s" % self.id)
        self.record, self.host_config = fresh.record, fresh.host_config

    def save(self) -> None:
        write_json(os.path.join(self.dir, HOST_CONFIG), self.host_config)
        write_json(os.path.join(self.dir, RECORD), self.record)

    def save_state(self) -> None:
        write_json(os.path.join(self.dir, RECORD), self.record)


class ContainerStore:
    """The containers under ``root`` (ENGINE_ROOT/containers) and their tasks' manager.

    ``group``: the gid of a remapped root (--userns-remap), which must pass through the
    directories to its container's root filesystem (0710, as docker makes them); without
    one the directories are private to this user.
    """

    def __init__(self, root: str, tasks: TaskManager, group: int | None = None) -> None:
        self.root = os.path.abspath(root)
        private_dir(self.root)
        self.group = group
        if group is not None:
            _share_with(self.root, group)
        self.locks_dir = os.path.join(self.root, "locks")
        os.makedirs(self.locks_dir, 0o700, exist_ok=True)
        self.tasks = tasks

    def make_dir(self, container_id: str) -> str:
        """Make the directory of a new container (FileExistsError if it exists)."""
        d = os.path.join(self.root, container_id)
        os.mkdir(d, 0o700 if self.group is None else 0o710)
        if self.group is not None:
            _share_with(d, self.group)
        return d

    # ids, locks -----------------------------------------------------------------------------
    @staticmethod
    def new_id() -> str:
        """64 random hex digits whose 12-digit short form is not all decimal (docker's rule,
        so a short ID is never read as a number)."""
        while True:
            cid = secrets.token_hex(32)
            if not cid[:12].isdigit():
                return cid

    def lock(self, container_id: str, blocking: bool = True) -> IdLock:
        return IdLock(self.locks_dir, container_id, blocking)

    # records --------------------------------------------------------------------------------
    def load(self, container_id: str) -> Container | None:
        d = os.path.join(self.root, container_id)
        record = _read_json(os.path.join(d, RECORD))
        if record is None:
            return None
        return Container(self, record, _read_json(os.path.join(d, HOST_CONFIG)) or {})

    def ids(self) -> list[str]:
        """IDs of the containers with a record (creates in progress are not listed)."""
        return [n for n in os.listdir(self.root)
                if is_full_id(n) and os.path.exists(os.path.join(self.root, n, RECORD))]

    def all(self) -> list[Container]:
        out = []
        for cid in self.ids():
            c = self.load(cid)
            if c is not None:
                out.append(c)
        return out

    def abandoned(self) -> list[str]:
        """Directories of creates whose process died before writing the record."""
        found = []
        for n in os.listdir(self.root):
            if is_full_id(n) and not os.path.exists(os.path.join(self.root, n, RECORD)):
                try:
                    with self.lock(n, blocking=False):
                        if not os.path.exists(os.path.join(self.root, n, RECORD)):
                            found.append(n)
                except Conflict:
                    continue        # a create in progress
        return found

    # names ----------------------------------------------------------------------------------
    def _names(self, write: bool = True) -> Any:
        # not synced: what an operating-system crash loses is put back by restore_names
        return locked_document(self.root, "names.json", dict, write=write, sync=False)

    def restore_names(self, containers: list[Container]) -> None:
        """Reserve each container's name where names.json lacks it (an operating-system crash
        lost the last writes, or the file was deleted); dockerd rebuilds its names from the
        containers at start the same way."""
        with self._names() as index:
            for c in containers:
                owner = index.get(c.name)
                if owner != c.id and not (owner and self._owner_alive(owner)):
                    index[c.name] = c.id

    def reserve_name(self, name: str, container_id: str) -> None:
        """Record ``/name`` for ``container_id``; Conflict with docker's text when it is taken
        by a container that exists (a dead create's reservation is taken over)."""
        with self._names() as index:
            owner = index.get(name)
            if owner and owner != container_id and self._owner_alive(owner):
                raise Conflict('Conflict. The container name "%s" is already in use by container '
                               '"%s". You have to remove (or rename) that container to be able '
                               'to reuse that name.' % (name, owner))
            index[name] = container_id

    def _owner_alive(self, owner):
        d = os.path.join(self.root, owner)
        if os.path.exists(os.path.join(d, RECORD)):
            return True
        if not os.path.isdir(d):
            return False
        try:
            with self.lock(owner, blocking=False):
                return os.path.exists(os.path.join(d, RECORD))
        except Conflict:
            return True             # its create is in progress

    def release_name(self, name: str, container_id: str) -> None:
        with self._names() as index:
            if index.get(name) == container_id:
                del index[name]

    def release_names_of(self, container_id: str) -> None:
        with self._names() as index:
            for name in [n for n, i in index.items() if i == container_id]:
                del index[name]

    def random_name(self, container_id: str) -> str:
        """Reserve and return a random unused name (docker retries with a digit suffix)."""
        for retry in range(10):
            name = "/" + container_names.random_name(retry)
            try:
                self.reserve_name(name, container_id)
                return name
            except Conflict:
                continue
        name = "/" + container_id[:12]
        self.reserve_name(name, container_id)
        return name

    def name_owner(self, name: str) -> str | None:
        with self._names(write=False) as index:
            return index.get(name)

    # lookup ---------------------------------------------------------------------------------
    def resolve(self, ref: str) -> str:
        """The ID of the container ``ref`` names: full ID, name, or unique ID prefix (docker's
        order)."""
        if not isinstance(ref, str) or not ref or "\0" in ref:
            raise NotFound("No such container: %s" % (ref,))
        if is_full_id(ref) and os.path.exists(os.path.join(self.root, ref, RECORD)):
            return ref
        if container_names.valid_name(ref):
            owner = self.name_owner(ref if ref.startswith("/") else "/" + ref)
            if owner and os.path.exists(os.path.join(self.root, owner, RECORD)):
                return owner
        if all(c in _HEX for c in ref):
            matches = [i for i in self.ids() if i.startswith(ref)]
            if len(matches) > 1:
                raise InvalidArgument("multiple IDs found with provided prefix: %s" % ref)
            if matches:
                return matches[0]
        raise NotFound("No such container: %s" % ref)

    def get(self, ref: str) -> Container:
        cid = self.resolve(ref)
        c = self.load(cid)
        if c is None:
            raise NotFound("No such container: %s" % ref)
        return c
