#!/bin/sh
# Install everything pyrunc needs on a Debian 12 machine (as root): the apt packages in
# scripts/apt-packages.txt, a virtual environment in .venv made from Debian's python3, and
# pyrunc itself with its native core and test dependencies.
#   --dev   install pyrunc editable (src/ is imported in place; rebuild native code with
#           `.venv/bin/python setup.py build_ext --inplace`). Editable imports cost ~10 ms more
#           per start, so benchmarks use the default install.
set -eu
editable=""
[ "${1:-}" = "--dev" ] && editable="-e"
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

pkgs=$(grep -v -e '^#' -e '^$' scripts/apt-packages.txt)
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "install.sh: apt packages:$missing"
    apt-get update -qq
    # No package may start a service here (docker.io would start dockerd, which rewrites the
    # host's firewall): a policy-rc.d that denies every start, unless one is already there.
    guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        guard=/usr/sbin/policy-rc.d
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    [ -z "$guard" ] || rm -f "$guard"
fi

# Debian's interpreter starts in about 10 ms; the pyrunc command is on engines' hot path.
[ -x .venv/bin/python ] || /usr/bin/python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check $editable ".[test]"
# bash completion for the pydocker command
if [ -d /usr/share/bash-completion/completions ]; then
    install -m 0644 src/cli/completion.bash /usr/share/bash-completion/completions/pydocker
fi
echo "install.sh: pyrunc installed in $top/.venv"
