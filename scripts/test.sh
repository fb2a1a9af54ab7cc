#!/usr/bin/env bash
# Runs the test suite (GPU tests skip themselves without CUDA). Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/bootstrap.sh"
cd "$root"
# pytest exits 5 when it collected no test: that is a failure for us, and set -e keeps it one.
exec "$root/.venv/bin/python" -m pytest "$@"
