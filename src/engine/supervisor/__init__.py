"""The supervisor: restart policies and health checks, the part of dockerd that stays running.

``policy`` and ``health`` are pure (parsing, validation, decisions); ``Supervisor`` applies them
to an ``Engine``'s containers.
"""
from pyrunc.engine.supervisor import health, policy
from pyrunc.engine.supervisor.supervisor import Supervisor

__all__ = ["Supervisor", "health", "policy"]
