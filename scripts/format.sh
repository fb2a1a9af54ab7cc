#!/usr/bin/env bash
# clang-format over the op library (plugin/, style in .clang-format). With --check: report the files
# that differ from the style and fail, changing nothing (CI, fast); without: reformat them in place.
# clang-format is the pinned wheel of the test extra (scripts/bootstrap.sh installs it into .venv).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
formatter="$root/.venv/bin/clang-format"
[ -x "$formatter" ] || formatter="$(command -v clang-format)"
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- 'plugin/*.h' 'plugin/*.cpp' 'plugin/*.cu')
if [ "${1:-}" = "--check" ]; then
  "$formatter" --dry-run --Werror "${files[@]}"
  echo "[openmm-nnp] clang-format: ${#files[@]} files of plugin/ follow .clang-format"
else
  "$formatter" -i "${files[@]}"
fi
