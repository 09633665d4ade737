#!/usr/bin/env bash
# Installs what the integration tier needs (Debian packages). Idempotent; run as root. Starts nothing.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
  docker.io        # dockerd + runc: the private engine the tests start (engine.py)
  docker-registry  # distribution 2.8 `registry` binary: stand-in for registry:3 (images.py)
  containerd       # containerd 1.6 + ctr: the "node" image (images.py, node.py)
  busybox-static   # sh, wget, httpd (fake token server) inside the generated images
  iproute2         # ip/tc for network shaping in tests
  iptables         # dockerd probes it even with --iptables=false
  apache2-utils    # htpasswd -B: bcrypt htpasswd for fake upstreams with basic auth (upstreams.py)
  openssl          # key, certificate and RS256 signature of the fake token server's JWTs (upstreams.py)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup.sh: all packages present"
  exit 0
fi

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
