"""benchmarks/scaling.py on CUDA (smoke run): CUDA memory columns, and energies equal to the CPU's."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import openmmnnp

from benchmark_modules import BENCHMARKS, benchmark_module

water_box = benchmark_module("common").water_box
potentials = benchmark_module("potentials")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available() or not openmmnnp.cuda_ops_available(), reason="needs CUDA and the CUDA ops"),
]
POTENTIALS = ["se_e2_a", "se_e2_a-compressed", "se_e2_a-dense"]
EDGE = 1.2


def test_scaling_smoke_on_cuda(tmp_path):
    try:
        path = water_box(EDGE)
    except ImportError:
        pytest.fail("no cached 1.2 nm water box and no openmmtools: run tests/gpu/fetch-wheels.sh, which prepares .bench-cache")
    out = subprocess.run([sys.executable, str(BENCHMARKS / "scaling.py"), "--device", "cuda", "--edges", str(EDGE), "--repeats", "2",
                          "--potentials", *POTENTIALS, "--out-dir", str(tmp_path)], capture_output=True, text=True, timeout=900,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    with open(tmp_path / "scaling.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * len(POTENTIALS)
    data = np.load(path)
    elements = [str(e) for e in data["elements"]]
    for row in rows:
        assert row["status"] == "ok" and row["device"] == "cuda" and row["memory"].startswith("cuda"), row
        assert float(row["median_s"]) > 0 and float(row["peak_mb"]) > 0 and float(row["resident_mb"]) > 0
        cpu = potentials.openmm_potential(potentials.load(potentials.REGISTRY[row["potential"]]), elements)
        with torch.no_grad():
            expected = float(cpu(torch.tensor(data["positions"]), torch.tensor(data["box"])))
        assert float(row["energy_kj_mol"]) == pytest.approx(expected, abs=0.05), row  # float32, summation order
    for name in ("scaling_time.png", "scaling_memory.png"):
        assert (tmp_path / name).stat().st_size > 5000
