"""The engine: images, containers made from images, networks, volumes, logs and pydockerd."""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.engine.daemon import Engine


def __getattr__(name: str) -> object:
    """``from pyrunc.engine import Engine`` without importing the services for the engine's
    other modules."""
    if name == "Engine":
        from pyrunc.engine.daemon import Engine
        return Engine
    raise AttributeError("module 'pyrunc.engine' has no attribute %r" % name)
