#!/usr/bin/env bash
# The main job: a water-box MD run with the shipped model (CPU by default).
# Extra arguments go to examples/water_box_md.py (try --help).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/bootstrap.sh"
exec "$root/.venv/bin/python" "$root/examples/water_box_md.py" "$@"
