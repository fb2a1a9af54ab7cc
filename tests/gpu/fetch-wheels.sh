#!/usr/bin/env bash
# Run HERE (a machine with PyPI): downloads into ./.whl the cp312 wheels that a bare GPU machine
# (Python 3.12, torch + nvcc, no OpenMM) lacks for tests/gpu/run.sh. OpenMM is 8.5.2, not the
# 8.6.1 of ../shared/device/gpu-wheels.sh: openmm-torch 1.10 crashes deserialising TorchForce on 8.6.
set -euo pipefail
top=$(git rev-parse --show-toplevel)
cd "$top"
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl \
  openmm==8.5.2 openmm-cuda-13==8.5.2 acellera-openmmtorch-cu13==1.10 \
  pytest pluggy iniconfig packaging hypothesis sortedcontainers attrs \
  matplotlib contourpy cycler fonttools kiwisolver pillow pyparsing python-dateutil six
ls -la .whl
# Water boxes for the benchmarks (openmmtools is not on the GPU machine): the smoke test's 1.2 nm box,
# plus any edges in $GPU_STUDY_EDGES (e.g. "1 1.26 ... 22"), into ./.bench-cache (git-ignored: carry it along).
OPENMMNNP_BENCH_CACHE="$top/.bench-cache" python3 benchmarks/scaling.py --prepare --edges 1.2 ${GPU_STUDY_EDGES:-}
