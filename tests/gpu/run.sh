#!/usr/bin/env bash
# Run ON the GPU machine, from the repository root, with ./.whl carried along (see fetch-wheels.sh):
# installs OpenMM and openmm-torch from the wheels, builds the op library against the machine's
# torch (with CUDA kernels), and runs the GPU tests, then the CPU suite. Extra args go to pytest.
# With --study DIR instead: runs the GPU scaling study and MD throughput benchmarks into DIR.
# Water boxes come from ./.bench-cache (prepared by fetch-wheels.sh; the machine has no openmmtools).
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
if [ -d .bench-cache ]; then export OPENMMNNP_BENCH_CACHE="$root/.bench-cache"; fi
if [ "${1:-}" = "--study" ]; then
  out="${2:?usage: run.sh --study DIR}"
  mkdir -p "$out"
  python3 benchmarks/scaling.py --device cuda --time-bound 10 --out-dir "$out" "${@:3}" | tee "$out/scaling.log"
  python3 benchmarks/md_throughput.py --platform CUDA --edges 3.0 5.0 6.3 --csv "$out/md_throughput.csv" | tee "$out/md_throughput.log"
  exit 0
fi
python3 -m pytest -m gpu -p no:cacheprovider "$@"
