"""Network drivers behind one interface, as libnetwork's: ``bridge``, ``null`` ("none"), ``host``.

A driver makes a network's host-side device (``create``/``delete``), plugs an endpoint into a
container's network namespace (``join``) and unplugs it (``leave``). The service keeps the
records (written before a driver acts) and the address management; drivers only act.
"""
from __future__ import annotations

import errno

from pyrunc.engine.network import netlink
from pyrunc.errors import SystemFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Driver:
    """The interface; ``name`` is the Engine API's ``Driver`` value."""
    name = ""
    has_addresses = False

    def create(self, network: dict[str, Any]) -> None:
        """Make whatever the network needs on the host (idempotent: also run to recreate)."""

    def delete(self, network: dict[str, Any]) -> None:
        """Remove what ``create`` made (nothing if it is gone)."""

    def join(self, network: dict[str, Any], endpoint: dict[str, Any], netns: str) -> None:
        """Plug ``endpoint`` (its record is already written) into the namespace ``netns``."""

    def leave(self, network: dict[str, Any], endpoint: dict[str, Any]) -> None:
        """Unplug ``endpoint`` (nothing if it is gone)."""


class NullDriver(Driver):
    """``none``: the container has only its loopback interface, up since its namespace was
    made (``netlink.create_netns``): nothing to plug."""
    name = "null"


class HostDriver(Driver):
    """``host``: the container shares the host's namespace; nothing to plug."""
    name = "host"


class BridgeDriver(Driver):
    """A Linux bridge per network with the gateway address; a veth pair per endpoint."""
    name = "bridge"
    has_addresses = True

    def create(self, network: dict[str, Any]) -> None:
        cfg = network["IPAM"]["Config"][0]
        netlink.ensure_bridge(network["bridge"], cfg["Gateway"],
                              int(cfg["Subnet"].rsplit("/", 1)[1]), _mtu(network))

    def delete(self, network: dict[str, Any]) -> None:
        netlink.delete_link(network["bridge"])

    def join(self, network: dict[str, Any], endpoint: dict[str, Any], netns: str) -> None:
        try:
            self._plug(network, endpoint, netns)
        except SystemFailure as e:
            if e.errno != errno.ENODEV:
                raise
            self.create(network)            # the bridge is gone (a reboot before any sweep)
            self._plug(network, endpoint, netns)

    def _plug(self, network: dict[str, Any], endpoint: dict[str, Any], netns: str) -> None:
        netlink.plug_veth(endpoint["host_if"], network["bridge"], netns, endpoint["ifname"],
                          endpoint["IPAddress"], endpoint["IPPrefixLen"],
                          endpoint["MacAddress"],
                          None if network["Internal"] else endpoint["Gateway"], _mtu(network))

    def leave(self, network: dict[str, Any], endpoint: dict[str, Any]) -> None:
        netlink.delete_link(endpoint["host_if"])


def _mtu(network: dict[str, Any]) -> int | None:
    value = network["Options"].get("com.docker.network.driver.mtu")
    return int(value) if value else None


DRIVERS: dict[str, Driver] = {d.name: d for d in (BridgeDriver(), NullDriver(), HostDriver())}
