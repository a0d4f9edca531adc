"""Built-in images made on this machine, without a registry: ``busybox`` (Debian's
busybox-static with every applet linked) and ``hello-world`` (native/programs/hello.c).

The layers are written with fixed times (busybox's package date; a fixed date for hello) and
gzip without a timestamp, so the same binary always gives the same image ID."""
from __future__ import annotations

import io
import os
import shutil
import tempfile

import pyrunc
from pyrunc.engine import busybox
from pyrunc.engine.images.importer import ingest_layer
from pyrunc.engine.layers import write_tree
from pyrunc.engine.platforms import host_platform
from pyrunc.errors import FailedPrecondition, InvalidArgument
from pyrunc.libcontainer import timestamps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from pyrunc.engine.images.service import ImageService

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HELLO = os.path.join(os.path.dirname(pyrunc.__file__), "_libexec", "hello")


HELLO_TIME = 1683046167        # 2023-05-02T16:49:27Z: hello-world's date, whatever the build's


def _busybox_tree(root):
    busybox.make_rootfs(root)
    return int(os.stat(busybox.BUSYBOX).st_mtime), ["sh"], "busybox-static"


def _hello_tree(root):
    if not os.path.exists(HELLO):
        raise FailedPrecondition("%s: not found (build the native programs: setup.py build_ext)"
                                 % HELLO)
    os.makedirs(root, exist_ok=True)
    shutil.copy(HELLO, os.path.join(root, "hello"))
    os.chmod(os.path.join(root, "hello"), 0o755)
    return HELLO_TIME, ["/hello"], "native/programs/hello.c"


BUILTIN = {"busybox": _busybox_tree, "hello-world": _hello_tree}


def build(service: ImageService, name: str) -> str:
    """Create (or find) the built-in image ``name`` and tag it ``name:latest``; returns its ID."""
    if name not in BUILTIN:
        raise InvalidArgument("no built-in image %r (there are: %s)" % (name, ", ".join(BUILTIN)))
    tmp = tempfile.mkdtemp(prefix="builtin-", dir=service.root)
    try:
        rootfs = os.path.join(tmp, "rootfs")
        mtime, cmd, origin = BUILTIN[name](rootfs)
        buf = io.BytesIO()
        write_tree(rootfs, buf, mtime=mtime)
    finally:
        shutil.rmtree(tmp)
    buf.seek(0)
    with service.holding_gc():
        descriptor, diff_id, _ = ingest_layer(service.content, buf)
        return _record(service, name, descriptor, diff_id, mtime, cmd, origin)


def _record(service, name, descriptor, diff_id, mtime, cmd, origin):
    created = timestamps.format_ns(mtime * timestamps.NS)
    config = dict(host_platform().to_json(), created=created,
                  config={"Env": [DEFAULT_PATH], "Cmd": cmd},
                  rootfs={"type": "layers", "diff_ids": [diff_id]},
                  history=[{"created": created,
                            "created_by": "pyrunc built-in image from %s" % origin}])
    return service.put_image(config, [descriptor], ["%s:latest" % name])
