"""The systemd cgroup driver (``--systemd-cgroup``): the cgroup is a transient unit that
systemd creates over D-Bus. Only available where systemd is PID 1; this build reports that
clearly instead of falling back to writing the cgroup files itself."""
import os

from pyrunc.errors import Unavailable

SYSTEMD_RUNNING = "/run/systemd/system"


def _unavailable():
    if not os.path.isdir(SYSTEMD_RUNNING):
        return Unavailable("systemd cgroup driver: systemd is not running on this host "
                           "(no %s); run without --systemd-cgroup" % SYSTEMD_RUNNING)
    return Unavailable("systemd cgroup driver: not supported by this build of pyrunc; "
                       "run without --systemd-cgroup")


def new_manager(cgroups_path, container_id):
    raise _unavailable()


def load_manager(state):
    raise _unavailable()
