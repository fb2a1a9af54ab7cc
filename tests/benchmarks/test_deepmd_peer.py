"""benchmarks/deepmd_peer.py: our worker (the DeePMD-kit one needs DeePMD's venv) on a fixture model and frame."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from benchmark_modules import BENCHMARKS

import openmmnnp
from openmmnnp.convert.deepmd import convert_deepmd

FIXTURES = Path(__file__).resolve().parents[1] / "convert" / "deepmd"


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[
    pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available() or not openmmnnp.cuda_ops_available(), reason="needs CUDA")])])
def test_ours_worker_reproduces_deepmd_energy_and_forces(tmp_path, device):
    torch.jit.script(convert_deepmd(str(FIXTURES / "se_e2_a_two_side.pth"))).save(str(tmp_path / "ours.pt"))
    reference = np.load(FIXTURES / "se_e2_a_two_side_reference.npz")
    np.savez(tmp_path / "box.npz", coords=reference["coords_0"], box=reference["box_0"], types=reference["types"])
    out = subprocess.run([sys.executable, str(BENCHMARKS / "deepmd_peer.py"), "--worker", "ours", str(tmp_path / "ours.pt"),
                          str(tmp_path / "box.npz"), "--threads", "1", "--repeat", "1", "--save", str(tmp_path / "out.npz"),
                          "--device", device],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == "ok" and result["atoms"] == len(reference["types"]) and result["seconds"] > 0
    assert result["peak_mb"] >= 0
    saved = np.load(tmp_path / "out.npz")
    assert abs(float(saved["energy"]) - reference["energy"][0]) < 1e-8 * abs(reference["energy"][0])
    scale = np.abs(reference["forces_0"]).max()
    np.testing.assert_allclose(saved["forces"], reference["forces_0"], rtol=0.0, atol=1e-8 * scale)
