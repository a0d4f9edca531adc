"""Device nodes every container gets, and the runtime spec's device types.

The defaults are runc's: /dev/null, zero, full, random, urandom and tty, mode 0666, owned by
the container's root. Unless /dev is a bind mount, the native core also links /dev/ptmx to
``pts/ptmx`` and /dev/fd, stdin, stdout, stderr (and /dev/core) into /proc, as runc does.
"""
from pyrunc.libcontainer.plan import Device

DEFAULT_DEVICES = (
    Device("/dev/null", "c", 1, 3),
    Device("/dev/random", "c", 1, 8),
    Device("/dev/full", "c", 1, 7),
    Device("/dev/tty", "c", 5, 0),
    Device("/dev/zero", "c", 1, 5),
    Device("/dev/urandom", "c", 1, 9),
)

KINDS = {"c": "c", "u": "c", "b": "b", "p": "p"}
"""Spec device type -> node kind (``u``, unbuffered character, is a character device)."""


DEFAULT_RULES = (
    ({"allow": True, "type": "c", "access": "m"}, None),   # mknod of any device
    ({"allow": True, "type": "b", "access": "m"}, None),
    *(({"allow": True, "type": d.kind, "major": d.major, "minor": d.minor, "access": "rwm"},
       d.path) for d in DEFAULT_DEVICES),
    ({"allow": True, "type": "c", "major": 136, "access": "rwm"}, None),   # /dev/pts/*
    ({"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"}, None),   # ptmx
    ({"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"}, None),  # tun
)
"""runc's device cgroup rules every container gets, after the spec's own: (rule, the default
device it is for, which a linux.devices entry of the same path replaces)."""
