#!/usr/bin/env bash
# Creates ./.venv with the pinned stack and builds/installs openmm-nnp into it.
# Idempotent and cheap when nothing changed: the op library is rebuilt only when the
# C++/CUDA sources or the build files change. Sourced by run-md.sh and test.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  echo "[openmm-nnp] creating virtual environment in $venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
quiet() {  # some machines' pip configs warn about missing local indexes on every call
  "$@" 2>&1 | { grep -v "^WARNING: Location '" || true; }
}

stamp="$venv/.openmmnnp-installed"
# The editable install maps each Python module by name: a new module needs a reinstall, so the list
# of module names (not their contents: edits are live) is part of the hash.
inputs_hash="$(cd "$root" && { cat pyproject.toml CMakeLists.txt $(find plugin -type f | sort); find python -name '*.py' | sort; } | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$inputs_hash" ]; then
  echo "[openmm-nnp] installing the pinned stack (torch, OpenMM, openmm-torch; first time: a few minutes)"
  # Build requirements first: the op library must be built against this torch (no build isolation),
  # so sdists among the dependencies (pdbfixer) build with this setuptools: it needs bdist_wheel.
  quiet "${pip[@]}" install "torch==2.12.1" "scikit-build-core>=0.10" "cmake>=3.24" ninja "setuptools>=70.1" wheel
  echo "[openmm-nnp] building the op library and installing openmm-nnp (about 2 minutes)"
  quiet "${pip[@]}" install --no-build-isolation -e "$root[cpu,test,bench,mpi]"
  echo "$inputs_hash" > "$stamp"
fi
