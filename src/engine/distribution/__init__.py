"""Pull and push: moving images between a registry and the local stores, with docker's
progress events."""
from pyrunc.engine.platforms import Platform, host_platform, parse_platform
from pyrunc.engine.distribution.progress import render_plain
from pyrunc.engine.distribution.pull import PullResult, fetch, pull
from pyrunc.engine.distribution.push import PushResult, push

__all__ = ["Platform", "PullResult", "PushResult", "fetch", "host_platform", "parse_platform",
           "pull", "push", "render_plain"]
