#!/usr/bin/env bash
# Run ON the GPU machine, from the repository root, with ./.whl carried along (see fetch-wheels.sh):
# installs OpenMM and openmm-torch from the wheels, builds the op library against the machine's
# torch (with CUDA kernels), and runs the GPU tests, then the CPU suite. Extra args go to pytest.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
site="${HOME:-/tmp}/site"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl
export PYTHONPATH="$site:$root/python"
cmake -S . -B build/gpu -G Ninja -DPython_EXECUTABLE="$(command -v python3)" -DOPENMMNNP_CUDA=ON > build-gpu.log 2>&1 || { tail -40 build-gpu.log; exit 1; }
cmake --build build/gpu -j "$(nproc)" >> build-gpu.log 2>&1 || { tail -40 build-gpu.log; exit 1; }
export OPENMMNNP_LIBRARY="$root/build/gpu/libopenmmnnp_ops.so"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -m pytest -m gpu -p no:cacheprovider "$@"
