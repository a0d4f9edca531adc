"""Volume routes (moby's router/volume): create, list, inspect, remove, prune."""
from __future__ import annotations

from pyrunc.engine.api import httputils
from pyrunc.engine.api.server import Route
from pyrunc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyrunc.engine.daemon import Engine


def _string_map(body: dict[str, Any], key: str) -> dict[str, str] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in value.items()):
        raise InvalidArgument("%s must be an object of strings" % key)
    return value


class Volumes:
    def __init__(self, engine: Engine) -> None:
        self.volumes = engine.volumes

    def create(self, req: httputils.Request) -> httputils.Response:
        body = req.json_object()
        name = body.get("Name") or None
        driver = body.get("Driver") or None
        for key, value in (("Name", name), ("Driver", driver)):
            if value is not None and not isinstance(value, str):
                raise InvalidArgument("%s must be a string" % key)
        volume = self.volumes.create(name=name, driver=driver or "local",
                                     driver_opts=_string_map(body, "DriverOpts"),
                                     labels=_string_map(body, "Labels"))
        return httputils.json_response(volume, 201)

    def list(self, req: httputils.Request) -> httputils.Response:
        return httputils.json_response(self.volumes.list(req.filters()))

    def inspect(self, req: httputils.Request) -> httputils.Response:
        return httputils.json_response(self.volumes.inspect(req.params["name"]))

    def remove(self, req: httputils.Request) -> httputils.Response:
        self.volumes.remove(req.params["name"], force=req.query_bool("force"))
        return httputils.no_content()

    def prune(self, req: httputils.Request) -> httputils.Response:
        return httputils.json_response(self.volumes.prune(req.filters()))


def routes(engine: Engine) -> list[Route]:
    """The volume routes."""
    v = Volumes(engine)
    return [
        Route("POST", "/volumes/create", v.create),
        Route("GET", "/volumes", v.list),
        Route("POST", "/volumes/prune", v.prune),
        Route("GET", "/volumes/{name}", v.inspect),
        Route("DELETE", "/volumes/{name}", v.remove),
    ]
