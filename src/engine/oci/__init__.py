"""The OCI runtime config of a container made from an image, as dockerd makes it.

    from pyrunc.engine.oci import merge_image_config, build_spec
    config = merge_image_config(image["config"], request_config)
    spec = build_spec(config=config, host_config=host_config, rootfs=rootfs,
                      container_dir=cdir, mounts=[m.to_oci() for m in mount_points],
                      cgroups_path="/pyrunc/" + cid, hostname=cid[:12])

| module | what it is |
|---|---|
| ``merge.py`` | the image's config and the request merged by docker's rules |
| ``defaults.py`` | docker's default capabilities, mounts, masked and read-only paths |
| ``seccomp.py`` | the default seccomp profile; docker's profile format to ``linux.seccomp`` |
| ``user.py`` | ``--user``/``--group-add`` resolved in the image's /etc/passwd and /etc/group, never reading outside the root filesystem |
| ``options.py`` | each HostConfig option checked (docker's messages) and converted |
| ``spec.py`` | ``build_spec`` and ``validate_host_config`` |
"""
from __future__ import annotations

from pyrunc.engine.oci.merge import merge_image_config
from pyrunc.engine.oci.seccomp import default_profile
from pyrunc.engine.oci.spec import build_spec, validate_host_config
from pyrunc.engine.oci.user import ExecUser, resolve_user

__all__ = ["merge_image_config", "build_spec", "validate_host_config", "resolve_user",
           "ExecUser", "default_profile"]
