"""What this runtime supports, in the JSON shape of ``runc features`` (runtime-spec features.md).

Every list is what pyrunc really does here: the mount options specconv knows, the namespaces the
running kernel has, the capabilities it knows; the systemd cgroup driver (cgroup v2 hosts with
systemd as PID 1); no AppArmor or SELinux.
"""
from __future__ import annotations

from pyrunc.errors import PyruncError
from pyrunc.libcontainer import capabilities
from pyrunc.libcontainer.namespaces import supported as supported_namespaces
from pyrunc.libcontainer.specconv.mounts import known_options

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

OCI_VERSION_MIN = "1.0.0"
OCI_VERSION_MAX = "1.2.0"
HOOKS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop"]


def features() -> dict[str, Any]:
    """The features document as a dict (``json.dumps(features(), indent=4)`` is the output)."""
    from pyrunc import __version__ as version
    last = capabilities.last_cap()
    seccomp, libseccomp = _seccomp()
    annotations = {"org.pyrunc.version": version}
    if libseccomp:
        annotations["io.github.seccomp.libseccomp.version"] = libseccomp
    return {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": list(HOOKS),
        "mountOptions": known_options(),
        "linux": {
            "namespaces": supported_namespaces(),
            "capabilities": list(capabilities.CAPABILITIES[:last + 1]),
            "cgroup": {"v1": True, "v2": True, "systemd": True, "systemdUser": False},
            "seccomp": seccomp,
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": annotations,
    }


def _seccomp():
    """(the seccomp features, libseccomp's version or None)."""
    try:
        from pyrunc.libcontainer import seccomp
        return seccomp.features(), seccomp.version_string()
    except (ImportError, PyruncError):   # built without libseccomp
        return {"enabled": False}, None
