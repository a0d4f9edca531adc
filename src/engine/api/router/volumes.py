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
    """The handlers. The volume service emits no events, so these emit dockerd's volume
    events (create, destroy, prune) for what the API does."""

    def __init__(self, engine: Engine) -> None:
        self.volumes = engine.volumes
        self.events = engine.events

    def create(self, req: httputils.Request) -> httputils.Response:
        body = req.json_object()
        name = body.get("Name") or None
        driver = body.get("Driver") or None
        for key, value in (("Name", name), ("Driver", driver)):
            if value is not None and not isinstance(value, str):
                raise InvalidArgument("%s must be a string" % key)
        volume, made = self.volumes.create_for(name, driver or "local",
                                               _string_map(body, "DriverOpts"),
                                               _string_map(body, "Labels"))
        if made:
            self.events.emit("volume", "create", volume["Name"], {"driver": volume["Driver"]})
        return httputils.json_response(volume, 201)

    def list(self, req: httputils.Request) -> httputils.Response:
        return httputils.json_response(self.volumes.list(req.filters()))

    def inspect(self, req: httputils.Request) -> httputils.Response:
        return httputils.json_response(self.volumes.inspect(req.params["name"]))

    def remove(self, req: httputils.Request) -> httputils.Response:
        name = req.params["name"]
        driver = self.volumes.inspect(name)["Driver"] if self.volumes.exists(name) else None
        self.volumes.remove(name, force=req.query_bool("force"))
        if driver is not None:
            self.events.emit("volume", "destroy", name, {"driver": driver})
        return httputils.no_content()

    def prune(self, req: httputils.Request) -> httputils.Response:
        report = self.volumes.prune(req.filters())
        for name in report.get("VolumesDeleted") or []:
            self.events.emit("volume", "destroy", name, {"driver": "local"})
        self.events.emit("volume", "prune", "", {"reclaimed": str(report["SpaceReclaimed"])})
        return httputils.json_response(report)


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
