"""Model forces on frames and the ensemble's force deviation (DP-GEN's ``max_devi_f``).

Concurrent learning selects the configurations an ensemble of models disagrees on: for each
frame, the largest over atoms of the standard deviation of the atom's force vector across the
models,

    sigma_f = max_i sqrt( < |F_i^k - <F_i^k>_k|^2 >_k ),

in kJ/mol/nm (OpenMM units). Small: every model agrees, the frame teaches nothing new; large:
the models extrapolate.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from openmmnnp import units


def model_forces(model: torch.nn.Module, positions: np.ndarray, boxes: Optional[np.ndarray], types: np.ndarray,
                 failed_as_nan: bool = False) -> np.ndarray:
    """Forces [F, N, 3] kJ/mol/nm of a contract model (file-loaded or eager) on frames [F, N, 3] nm.

    ``boxes`` [F, 3, 3] nm (an all-zero box or None: no periodic boundaries). With ``failed_as_nan``, a
    frame on which the model raises (e.g. more neighbours than its capacity: a collapsed frame) gets NaN
    forces instead of stopping the evaluation.
    """
    to_length = 1.0 / units.length_factor(model.length_unit)
    to_force = units.energy_factor(model.energy_unit) * to_length
    dtype = next(t.dtype for t in list(model.parameters()) + list(model.buffers()) if t.is_floating_point())
    type_tensor = torch.from_numpy(np.asarray(types, dtype=np.int64))
    forces = np.empty(positions.shape, dtype=np.float64)
    for k in range(len(positions)):
        pos = torch.from_numpy(np.asarray(positions[k], np.float64) * to_length).to(dtype).requires_grad_(True)
        box = None
        if boxes is not None and np.any(boxes[k]):
            box = torch.from_numpy(np.asarray(boxes[k], np.float64) * to_length).to(dtype)
        try:
            energy = model(pos, box, type_tensor)
            (grad,) = torch.autograd.grad(energy, pos)
        except RuntimeError:
            if not failed_as_nan:
                raise
            forces[k] = np.nan
            continue
        forces[k] = -grad.double().numpy() * to_force
    return forces


def max_force_deviation(forces: Sequence[np.ndarray]) -> np.ndarray:
    """sigma_f [F] (units of the forces) from each model's forces [F, N, 3] on the same frames; inf where a
    model's forces are not finite (it failed on that frame)."""
    stacked = np.stack(forces)  # [K, F, N, 3]
    if stacked.shape[0] < 2:
        raise ValueError(f"max_force_deviation: needs at least 2 models, got {stacked.shape[0]}")
    spread = ((stacked - stacked.mean(axis=0)) ** 2).sum(axis=-1).mean(axis=0)  # [F, N]
    return np.where(np.isfinite(spread).all(axis=-1), np.sqrt(np.where(np.isfinite(spread), spread, 0.0).max(axis=-1)), np.inf)


def force_errors(model: torch.nn.Module, positions: np.ndarray, boxes: Optional[np.ndarray], types: np.ndarray,
                 reference: np.ndarray) -> dict:
    """Force RMSE of ``model`` against ``reference`` forces [F, N, 3] kJ/mol/nm on frames [F, N, 3] nm.

    Returns {"frames", "force_rmse", "reference_force_rms", "relative"}: the RMSE over all force components,
    the RMS of the reference components (kJ/mol/nm) and their ratio.
    """
    predicted = model_forces(model, positions, boxes, types)
    reference = np.asarray(reference, dtype=np.float64)
    rmse = float(np.sqrt(((predicted - reference) ** 2).mean()))
    rms = float(np.sqrt((reference**2).mean()))
    return {"frames": len(positions), "force_rmse": rmse, "reference_force_rms": rms, "relative": rmse / rms}
