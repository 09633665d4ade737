#!/usr/bin/env bash
# Installs what the integration tier needs: Debian packages, then the Go programs pinned in tests/gotools.py
# (registry v3.1.1, containerd v2.3.1, kind v0.32.0), built from their Go modules once per machine.
# Idempotent; run as root. Starts nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
  docker.io        # dockerd + runc: the private engine the tests start (engine.py)
  busybox-static   # sh, wget, httpd (fake token server) inside the generated images
  iproute2         # ip/tc for network shaping in tests
  iptables         # dockerd probes it even with --iptables=false
  apache2-utils    # htpasswd -B: bcrypt htpasswd for fake upstreams with basic auth (upstreams.py)
  openssl          # key, certificate and RS256 signature of the fake token server's JWTs (upstreams.py)
)

have_go=0
if command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ]; then
  have_go=1
else
  PACKAGES+=(
    docker-registry  # distribution 2.8: the registry:3 stand-in's fallback on a machine without Go (images.py)
    containerd       # containerd 1.6 + ctr: the node's fallback on a machine without Go (images.py, node.py)
  )
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup.sh: all packages present"
else
  # Keep maintainer scripts from starting dockerd/containerd services: the tests start their own.
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  trap '[ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  echo "setup.sh: installed ${missing[*]}"
fi

if [ "$have_go" = 1 ]; then
  # Built once per machine and kept under KRC_GO_TOOLS_DIR (tests/gotools.py); a failed build fails the setup.
  python3 tests/gotools.py build
else
  cat >&2 <<'WARN'
setup.sh: ##############################################################################################
setup.sh: WARNING: no Go on this machine. The integration tier falls back to Debian's distribution 2.8 and
setup.sh: containerd 1.6, which are NOT what users run (registry:3 is v3.1.1; kind v0.32.0 nodes run
setup.sh: containerd v2.3.1). Install Go 1.26 and run this setup again to test the real versions.
setup.sh: ##############################################################################################
WARN
fi
