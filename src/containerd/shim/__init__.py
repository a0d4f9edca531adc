"""The per-container shim: a small C monitor (``pyrunc/_libexec/pyrunc-shim``) and its client.

One shim runs per container, detached from whoever created it. It is the container's child
subreaper, holds its stdio (json-file logs, attach streams, a pty), records the exit status and
OOM kills in the container's state directory, and answers requests on ``shim.sock`` there.
The wire protocol is described in docs/containerd.md, "The shim protocol".
"""
from pyrunc.containerd.shim.client import Attachment, ShimClient, ShimGone, start_shim

__all__ = ["Attachment", "ShimClient", "ShimGone", "start_shim"]
