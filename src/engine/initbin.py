"""The path of the engine's init, ``pyrunc-init`` (native/programs/pyrunc-init.c).

``docker run --init`` binds it into the container at ``/sbin/docker-init`` and runs it as
PID 1 ahead of the command: it forwards signals to the command, reaps every orphan and exits
with the command's status (128+N when signal N killed it).
"""
from __future__ import annotations

import os

import pyrunc

INIT_PATH = os.path.join(os.path.dirname(pyrunc.__file__), "_libexec", "pyrunc-init")
# where docker mounts its init in the container
INIT_DESTINATION = "/sbin/docker-init"
