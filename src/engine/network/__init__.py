"""Networks (docker's libnetwork): bridge, ``none`` and ``host`` drivers, IP address
management on disk, published ports through the engine's own iptables chains, the embedded DNS
server at 127.0.0.11, and a container's hosts/resolv.conf files.

    from pyrunc.engine.network import NetworkService, write_container_files, parse_port_specs
    from pyrunc.engine.network import default_bridge   # pydockerd's bridge for a data root
"""
from __future__ import annotations

from pyrunc.engine.network.files import write_container_files
from pyrunc.engine.network.ports import parse_port_specs
from pyrunc.engine.network.service import NetworkService, default_bridge

__all__ = ["NetworkService", "default_bridge", "write_container_files", "parse_port_specs"]
