#!/bin/sh
# The main job on a built-in default: build a busybox-static OCI bundle and run it with pyrunc.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bundle=$(mktemp -d /tmp/pyrunc-demo.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
"$top/.venv/bin/python" -m pyrunc.engine.busybox "$bundle" \
    -- sh -c 'echo "hello from pyrunc: pid $$ on $(hostname)"; ls /'
exec unshare --mount --propagation private -- "$top/.venv/bin/pyrunc" run --bundle "$bundle" "demo-$$"
