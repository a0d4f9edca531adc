"""pyrunc: a container system built the way Docker is built, layer by layer.

Subpackages, bottom up (each imports only the ones below it):

* ``pyrunc.libcontainer`` - OCI runtime config to an isolated process (Python plans, C executes).
* ``pyrunc.containerd``   - bundle lifecycle, the runc-compatible ``pyrunc`` command, shims.
* ``pyrunc.engine``       - images, containers from images, networks, volumes, ``pydockerd``.
* ``pyrunc.cli``          - ``pydocker``, a docker-style client of the Engine API.

``pyrunc.errors`` is shared by all of them.
"""
__version__ = "0.1.0"
