"""Shared fixtures for the se_e2_a tests: real water frames and a model with data statistics."""

from pathlib import Path

import numpy as np
import pytest
import torch

import openmmnnp  # noqa: F401  (loads the op library)
from openmmnnp import units
from openmmnnp.data import load_frames
from openmmnnp.models import SeE2A
from openmmnnp.training.statistics import frame_neighbors, set_statistics

FRAMES = Path(__file__).resolve().parents[1] / "data" / "water_frames.npz"


@pytest.fixture(scope="session")
def water():
    """(positions [F, N, 3] angstrom float64, box [F, 3, 3] angstrom, types [N], energy [F] eV)."""
    frames = load_frames(FRAMES)
    to_a = 1.0 / units.length_factor("angstrom")
    return (torch.from_numpy(frames.positions.astype(np.float64) * to_a), torch.from_numpy(frames.box.astype(np.float64) * to_a),
            torch.from_numpy(frames.types), torch.from_numpy(frames.energy / units.energy_factor("eV")))


def make_model(water, type_one_side: bool = False, **kwargs) -> SeE2A:
    """A float64 model with random weights and statistics from the water frames."""
    positions, box, types, energy = water
    torch.manual_seed(7)
    model = SeE2A(["O", "H"], type_one_side=type_one_side, **kwargs).double()
    pairs, shifts = frame_neighbors(model, list(positions), list(box))
    set_statistics(model, list(positions), list(box), pairs, shifts, types, energy)
    return model


@pytest.fixture(params=[False, True], ids=["two_side", "one_side"])
def model(request, water):
    return make_model(water, type_one_side=request.param)


@pytest.fixture
def model_factory(water):
    """make_model bound to the water frames: model_factory(type_one_side=..., sel=..., rcut=...)."""
    return lambda **kwargs: make_model(water, **kwargs)
