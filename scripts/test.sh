#!/bin/sh
# Run the whole test suite as root in a private mount namespace, so that a runtime bug cannot
# change the host's mounts. Extra arguments go to pytest.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
exec unshare --mount --propagation private -- .venv/bin/python -m pytest -p no:cacheprovider "$@"
