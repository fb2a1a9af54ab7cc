"""Inputs of the fused env_tabulate op and its unfused torch oracle (SeE2A's normalised environment
followed by the tabulate_fusion op), on water frames and random triclinic boxes."""

from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch

from openmmnnp import units
from openmmnnp.compression import compress
from openmmnnp.models import SeE2A
from openmmnnp.ops import env_tabulate
from compression.small_se_e2_a import small_model

FRAMES = Path(__file__).resolve().parents[1] / "data" / "water_frames.npz"


def water_frame(k: int = 0) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(positions [195, 3] Å, box [3, 3] Å, types [195]) of frame k of tests/data/water_frames.npz, float64."""
    frames = np.load(FRAMES)
    per_nm = 1.0 / units.length_factor("angstrom")
    return (torch.tensor(frames["positions"][k] * per_nm, dtype=torch.float64),
            torch.tensor(frames["box"][k] * per_nm, dtype=torch.float64),
            torch.tensor(frames["types"], dtype=torch.long))


def triclinic_system(seed: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(positions [27, 3], box [3, 3], types [27]) in a random reduced triclinic box of 6.5-8 Å edges: a
    jittered 3x3x3 lattice in fractional coordinates, then atoms moved by whole box vectors (wrapping)."""
    gen = torch.Generator().manual_seed(seed)
    diag = 6.5 + 1.5 * torch.rand(3, generator=gen, dtype=torch.float64)
    box = torch.diag(diag)
    box[1, 0] = (torch.rand(1, generator=gen, dtype=torch.float64) - 0.5) * diag[0]
    box[2, 0] = (torch.rand(1, generator=gen, dtype=torch.float64) - 0.5) * diag[0]
    box[2, 1] = (torch.rand(1, generator=gen, dtype=torch.float64) - 0.5) * diag[1]
    grid = torch.stack(torch.meshgrid(*[torch.arange(3, dtype=torch.float64)] * 3, indexing="ij"), -1).reshape(-1, 3)
    fractional = (grid + 0.5 + 0.5 * (torch.rand(27, 3, generator=gen, dtype=torch.float64) - 0.5)) / 3.0
    fractional = fractional + torch.randint(-1, 2, (27, 3), generator=gen).double()  # outside the primary cell
    types = torch.randint(0, 2, (27,), generator=gen)
    return fractional @ box, box, types


def compressed_model(type_one_side: bool, positions: torch.Tensor, box: Optional[torch.Tensor]):
    """The small random se_e2_a of small_se_e2_a.py, compressed (step 0.01, extrapolate 5), float64."""
    return compress(small_model(type_one_side, positions, box), stride=0.01, extrapolate=5.0)


def op_args(model, positions, box, types, pairs, shifts, num_pairs) -> tuple:
    """Arguments of env_tabulate for a compressed model, in the dtype of positions."""
    dtype = positions.dtype
    return (positions, box, pairs, shifts, num_pairs, types, model.davg.to(dtype), model.dstd.to(dtype),
            model.table.to(dtype), model.table_info, model.rcut_smth, model.rcut, model.type_one_side)


def fused(model, positions, box, types, pairs, shifts, num_pairs):
    """(T [N, M, 4] raw sum, counts [N, ntypes], stats [5]) by the fused op."""
    return env_tabulate(*op_args(model, positions, box, types, pairs, shifts, num_pairs))


def unfused(model, positions, box, types, pairs, shifts, num_pairs) -> torch.Tensor:
    """T [N, M, 4] raw sum by SeE2A's unfused path (normalised environment tensors + tabulate_fusion)."""
    return SeE2A.contracted_environment(model, positions, box, types, pairs, shifts, num_pairs) * float(model.sel_total)


def unfused_s_hat(model, positions, box, types, pairs, shifts) -> torch.Tensor:
    """ŝ [E] of the valid edges by the unfused path."""
    valid = pairs[0] >= 0
    s_hat, _ = model.normalized_environment(positions, box, types, pairs[0].clamp(min=0), pairs[1].clamp(min=0), shifts, valid)
    return s_hat[valid]
