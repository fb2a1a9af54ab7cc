"""The shipped compressed water model reproduces the shipped uncompressed one."""

from pathlib import Path

import numpy as np
import torch

from openmmnnp import pretrained_path, units

FRAMES = Path(__file__).resolve().parents[1] / "data" / "water_frames.npz"


def test_shipped_compressed_model_matches_the_original():
    original = torch.jit.load(str(pretrained_path("water-se_e2_a")))
    compressed = torch.jit.load(str(pretrained_path("water-se_e2_a-compressed")))
    frames = np.load(FRAMES)
    per_nm = 1.0 / units.length_factor("angstrom")
    for k in range(len(frames["positions"])):
        box = torch.tensor(frames["box"][k] * per_nm, dtype=torch.float32)
        types = torch.tensor(frames["types"], dtype=torch.long)
        results = []
        for model in (original, compressed):
            x = torch.tensor(frames["positions"][k] * per_nm, dtype=torch.float32, requires_grad=True)
            energy = model(x, box, types)
            (gradient,) = torch.autograd.grad(energy, x)
            results.append((float(energy), gradient))
        # float32 models: tolerances are float32 noise, 4 orders below the model's force RMSE (0.25 eV/Å).
        assert abs(results[0][0] - results[1][0]) < 2e-4 * len(types) ** 0.5
        assert float((results[0][1] - results[1][1]).abs().max()) < 1e-4
