"""Containers made from images: records on disk, lifecycle through the task manager, and
results in the Engine API's shapes (``ContainerService``)."""
from pyrunc.engine.container.service import ContainerService
from pyrunc.engine.container.store import Container, ContainerStore

__all__ = ["Container", "ContainerService", "ContainerStore"]
