"""Build routes: building images is a later issue; until then the API says so plainly."""
from __future__ import annotations

from pyrunc.engine.api import httputils
from pyrunc.engine.api.server import Route

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.engine.daemon import Engine


def _unsupported(req: httputils.Request) -> httputils.Response:
    raise httputils.Unsupported("building images is not supported by pydockerd yet")


def routes(engine: Engine) -> list[Route]:
    """POST /build, /build/prune and /build/cancel: 501 with a clear message."""
    return [Route("POST", "/build", _unsupported), Route("POST", "/build/prune", _unsupported),
            Route("POST", "/build/cancel", _unsupported)]
