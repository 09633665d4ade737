#!/usr/bin/env bash
# The one command that runs every test tier: installs what the tests need (Debian packages for the
# integration tier, a virtualenv with requirements.txt), then runs pytest. The integration tier
# starts its own Docker engine and stops it at the end. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

as_root bash tests/integration/setup.sh

venv=${KRC_TEST_VENV:-.venv-test}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt

# Every tier must run: a skipped unit, program or integration test fails the run (only e2e may skip).
export KRC_FORBID_SKIPS=1
if [ "$(id -u)" = 0 ]; then
  exec "$venv/bin/python" -m pytest "$@"
else
  # The integration tier starts dockerd and containerd, which need root.
  exec sudo --preserve-env=KRC_FORBID_SKIPS,KRC_HYPOTHESIS_PROFILE,KRC_GO_TOOLS_DIR,KRC_REFERENCE_DIR,KRC_DOCKERD_DIR,KRC_DOCKERD_ADDRESS_POOL,KRC_TEST_SUBNET,PATH "$venv/bin/python" -m pytest "$@"
fi
