"""Network routes (moby's router/network): create, list, inspect, remove, prune, connect,
disconnect. The network service emits no events, so these emit dockerd's network events
(create, destroy, prune; connect and disconnect come from the container service)."""
from __future__ import annotations

from pyrunc.engine.api import httputils
from pyrunc.engine.api.server import Route
from pyrunc.errors import InvalidArgument, NotFound, shown

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyrunc.engine.daemon import Engine


def _field(body: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise InvalidArgument("%s: must be a %s" % (key, {str: "string", bool: "boolean",
                                                          dict: "JSON object"}[kind]))
    return value


class Networks:
    """The handlers."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.events = engine.events

    def create(self, req: httputils.Request) -> httputils.Response:
        body = req.json_object(required=True)
        name = _field(body, "Name", str, "")
        if not name:
            raise InvalidArgument("network name is required")
        driver = _field(body, "Driver", str, "") or "bridge"
        if _field(body, "EnableIPv6", bool, False):
            raise InvalidArgument("IPv6 networks are not supported")
        for key in ("Ingress", "ConfigOnly"):
            if _field(body, key, bool, False):
                raise InvalidArgument("%s networks are not supported" % key.lower())
        if _field(body, "Scope", str, "") not in ("", "local"):
            raise InvalidArgument("only local scope networks are supported")
        _field(body, "Attachable", bool, False)
        result = self.engine.networks.create(
            name, driver, ipam=_field(body, "IPAM", dict, None),
            internal=_field(body, "Internal", bool, False),
            labels=_field(body, "Labels", dict, None), options=_field(body, "Options", dict, None))
        self.events.emit("network", "create", result["Id"], {"name": name, "type": driver})
        return httputils.json_response(result, 201)

    def list(self, req: httputils.Request) -> httputils.Response:
        if not self.engine.containers.networking.enabled:     # --bridge=none: no networks
            return httputils.json_response([])
        return httputils.json_response(self.engine.networks.list(req.filters()))

    def inspect(self, req: httputils.Request) -> httputils.Response:
        scope = req.query("scope") or ""
        if scope not in ("", "local"):
            raise InvalidArgument("invalid scope: %s" % scope[:40])
        return httputils.json_response(self._find(req.params["id"]))

    def _find(self, ref: str) -> dict:
        if not self.engine.containers.networking.enabled:     # --bridge=none: no networks
            raise NotFound("network %s not found" % shown(ref))
        return self.engine.networks.inspect(ref)

    def remove(self, req: httputils.Request) -> httputils.Response:
        net = self._find(req.params["id"])
        self.engine.networks.remove(net["Id"])
        self.events.emit("network", "destroy", net["Id"], {"name": net["Name"],
                                                           "type": net["Driver"]})
        return httputils.no_content()

    def prune(self, req: httputils.Request) -> httputils.Response:
        if not self.engine.containers.networking.enabled:
            return httputils.json_response({"NetworksDeleted": None})
        before = {n["Name"]: n for n in self.engine.networks.list()}
        report = self.engine.networks.prune(req.filters())
        for name in report.get("NetworksDeleted") or []:
            n = before.get(name)
            if n is not None:
                self.events.emit("network", "destroy", n["Id"], {"name": name,
                                                                 "type": n["Driver"]})
        self.events.emit("network", "prune", "", {})
        return httputils.json_response(report)

    def connect(self, req: httputils.Request) -> httputils.Response:
        body = req.json_object(required=True)
        container = _field(body, "Container", str, "")
        if not container:
            raise InvalidArgument("Container: a container is required")
        self.engine.containers.network_connect(container, req.params["id"],
                                               _field(body, "EndpointConfig", dict, None))
        return httputils.no_content(200)

    def disconnect(self, req: httputils.Request) -> httputils.Response:
        body = req.json_object(required=True)
        container = _field(body, "Container", str, "")
        if not container:
            raise InvalidArgument("Container: a container is required")
        self.engine.containers.network_disconnect(container, req.params["id"],
                                                  force=_field(body, "Force", bool, False))
        return httputils.no_content(200)


def routes(engine: Engine) -> list[Route]:
    """The network routes."""
    n = Networks(engine)
    return [
        Route("POST", "/networks/create", n.create),
        Route("GET", "/networks", n.list),
        Route("POST", "/networks/prune", n.prune),
        Route("GET", "/networks/{id}", n.inspect),
        Route("DELETE", "/networks/{id}", n.remove),
        Route("POST", "/networks/{id}/connect", n.connect),
        Route("POST", "/networks/{id}/disconnect", n.disconnect),
    ]
