"""``python -m pyrunc.libcontainer.ocispec BUNDLE``: check a bundle's config.json.

Loads it as ``pyrunc create`` does, then lists every JSON Schema error (the loader stops at the
first). Exit status 0 when valid, 2 when not (InvalidArgument), 3 without a config (NotFound).
"""
from __future__ import annotations

import sys

from pyrunc.errors import PyruncError
from pyrunc.libcontainer import ocispec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def main(argv: Any = None) -> Any:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0].startswith("-"):
        sys.stderr.write("usage: python -m pyrunc.libcontainer.ocispec BUNDLE\n")
        return 2
    try:
        spec = ocispec.load(argv[0])
    except PyruncError as e:
        sys.stderr.write("%s\n" % e)
        if isinstance(e, ocispec.ConfigError) and not e.reason.startswith("invalid JSON"):
            import json
            import os
            with open(os.path.join(argv[0], ocispec.CONFIG_FILE), "rb") as f:
                doc = json.load(f)
            for line in ocispec.validate_schema(doc):
                sys.stderr.write("%s: %s\n" % (ocispec.CONFIG_FILE, line))
        return e.exit_code
    sys.stdout.write("config.json: valid (ociVersion %s)\n" % spec.oci_version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
