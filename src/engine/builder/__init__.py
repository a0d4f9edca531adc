"""Building images from a Dockerfile and a context, as docker's classic builder does.

``Builder(engine).build(context, BuildOptions(...))`` yields ``/build``'s messages; the
Dockerfile parser is ``pyrunc.engine.builder.dockerfile``."""
from __future__ import annotations

from pyrunc.engine.builder.builder import Builder, BuildOptions

__all__ = ["Builder", "BuildOptions"]
