"""Build routes: building images is a later issue; until then the API says so plainly."""
from __future__ import annotations

from pyrunc.engine.api import httputils
from pyrunc.engine.api.server import Route

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.engine.daemon import Engine


def _unsupported(req: httputils.Request) -> httputils.Response:
    raise httputils.Unsupported("building images is not supported by pydockerd yet")


def _prune(req: httputils.Request) -> httputils.Response:
    """There is no build cache, so pruning it deletes nothing (``docker system prune`` asks)."""
    req.filters()   # malformed filters are still refused
    return httputils.json_response({"CachesDeleted": None, "SpaceReclaimed": 0})


def routes(engine: Engine) -> list[Route]:
    """POST /build and /build/cancel: 501 with a clear message; /build/prune: nothing to
    delete."""
    return [Route("POST", "/build", _unsupported), Route("POST", "/build/prune", _prune),
            Route("POST", "/build/cancel", _unsupported)]
