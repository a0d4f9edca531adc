#!/bin/sh
# The main job on a built-in default: the seed's first flow. Start pydockerd (a data root of its
# own, in a private mount namespace, --bridge=none: hello-world needs no network, so the demo
# makes no bridge or firewall rule on the user's host), give it the built-in hello-world image
# (made on this machine: no registry), then `pydocker run hello-world`; the daemon is stopped
# after.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/pyrunc-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
bin="$top/.venv/bin"
unshare --mount --propagation private -- sh -eu -c '
bin=$1 work=$2
export DOCKER_HOST="unix://$work/docker.sock"
"$bin/pydockerd" --data-root "$work/root" --exec-root "$work/run" -H "$DOCKER_HOST" \
    --pidfile "$work/pydockerd.pid" --bridge=none >"$work/pydockerd.log" 2>&1 &
daemon=$!
trap "kill -TERM $daemon 2>/dev/null; wait $daemon 2>/dev/null || true" EXIT
tries=0
until "$bin/pydocker" version >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ $tries -gt 100 ] || ! kill -0 $daemon 2>/dev/null; then
        echo "demo: pydockerd did not start:" >&2; cat "$work/pydockerd.log" >&2; exit 1
    fi
    sleep 0.1
done
echo "\$ python -m pyrunc.engine.images.builtin_tar hello-world | pydocker load"
"$bin/python" -m pyrunc.engine.images.builtin_tar hello-world | "$bin/pydocker" load
echo "\$ pydocker run hello-world"
"$bin/pydocker" run hello-world
echo "\$ pydocker ps -a"
"$bin/pydocker" ps -a
"$bin/pydocker" container prune -f >/dev/null
' demo "$bin" "$work"
