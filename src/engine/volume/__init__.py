"""Volumes and a container's mounts, as docker's: the ``local`` volume driver
(``VolumeService``), the parsing and resolution of binds, ``--mount``, ``--tmpfs`` and the
image's volumes into ``MountPoint`` objects, and the copy of the image's content into a new
volume (``copy_up``).

A container's life, for the container service::

    points = resolve_mounts(host_config, image_config.get("Volumes"), container_id=cid,
                            volumes=svc)                       # create: volumes made, referenced
    setup_mounts(points, svc, cid)                             # each start
    copy_up(points, rootfs)                                    # first start, rootfs mounted
    spec_mounts = [m.to_oci() for m in points]                 # into the OCI config
    teardown_mounts(points, svc, cid)                          # each stop
    release_mounts(points, svc, cid, remove_anonymous=rm_v)    # remove
"""
from __future__ import annotations

from pyrunc.engine.volume.copyup import copy_up
from pyrunc.engine.volume.mounts import (MountPoint, inspect_mounts, merge_tmpfs_options,
                                         parse_bind, parse_mount, parse_mounts, release_mounts,
                                         resolve_mounts, setup_mounts, teardown_mounts)
from pyrunc.engine.volume.service import ANONYMOUS_LABEL, VolumeService, validate_name

__all__ = ["ANONYMOUS_LABEL", "MountPoint", "VolumeService", "copy_up", "inspect_mounts",
           "merge_tmpfs_options", "parse_bind", "parse_mount", "parse_mounts", "release_mounts",
           "resolve_mounts", "setup_mounts", "teardown_mounts", "validate_name"]
