"""``python -m pyrunc.engine.images.builtin_tar NAME... > images.tar``: the built-in images
(``busybox``, ``hello-world``) as one docker-archive on stdout, for ``pydocker load`` or
``docker load`` on any daemon: the explicit operation that gives a daemon the built-in images
without a registry (a fresh engine lists none)."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

from pyrunc.engine.images.archive import save
from pyrunc.engine.images.builtin import BUILTIN, build
from pyrunc.engine.images.service import ImageService


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pyrunc.engine.images.builtin_tar",
                                description="Write built-in images as a docker-archive "
                                            "on stdout.")
    p.add_argument("names", nargs="+", choices=sorted(BUILTIN), metavar="NAME",
                   help="built-in images: %s" % ", ".join(sorted(BUILTIN)))
    args = p.parse_args(argv)
    if sys.stdout.isatty():
        p.error("refusing to write an image archive to a terminal: redirect stdout")
    with tempfile.TemporaryDirectory(prefix="pyrunc-builtin-") as tmp:
        service = ImageService(os.path.join(tmp, "images"))
        for name in args.names:
            build(service, name)
        save(service, ["%s:latest" % n for n in args.names], sys.stdout.buffer)
        sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
