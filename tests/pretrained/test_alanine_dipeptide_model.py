"""The shipped alanine-dipeptide models (docs/mlmm.md) against their teacher, through OpenMM.

Fresh teacher frames (vacuum ff96, 300 and 500 K, a seed the training data never used) are
labelled by the teacher's System and evaluated by NNPForce on the Reference platform.
"""

from __future__ import annotations

import numpy as np
import openmm
import pytest
from openmm_ml.water_region import energies_forces

from openmmnnp import NNPForce, pretrained_path
from openmmnnp.data.alanine_dipeptide import sample_dipeptide, vacuum_teacher

MODELS = ["alanine-dipeptide-se_e2_a", "alanine-dipeptide-se_e2_a-compressed"]
# Bounds from the held-out errors of docs/mlmm.md (force RMSE 101 kJ/mol/nm at 300 K, 155 at 600 K; energy
# spread 6-11 kJ/mol per molecule) with room for a 20-frame sample; a model that learned nothing has a
# force RMSE near the reference RMS (~900 kJ/mol/nm at these temperatures).
FORCE_RMSE_BOUND = 180.0  # kJ/mol/nm
ENERGY_RMSE_BOUND = 15.0  # kJ/mol per molecule, after removing the mean offset


@pytest.fixture(scope="module")
def frames():
    return sample_dipeptide([300.0, 500.0], frames_per_temperature=10, interval_steps=400, equilibration_steps=4000,
                            seed=17, progress=False)


@pytest.fixture(scope="module")
def predictions(frames):
    _, topology, _ = vacuum_teacher()
    out = {}
    for name in MODELS:
        system = openmm.System()
        for atom in topology.atoms():
            system.addParticle(atom.element.mass)
        system.addForce(NNPForce(pretrained_path(name), topology))
        results = [energies_forces(system, frames.positions[k].astype(np.float64)) for k in range(len(frames))]
        out[name] = (np.array([e for e, _ in results]), np.array([f for _, f in results]))
    return out


@pytest.mark.parametrize("name", MODELS)
def test_forces_and_energies_close_to_the_teacher(frames, predictions, name):
    energies, forces = predictions[name]
    force_rmse = np.sqrt(np.mean((forces - frames.forces) ** 2))
    reference_rms = np.sqrt(np.mean(frames.forces**2))
    assert force_rmse < FORCE_RMSE_BOUND < 0.25 * reference_rms
    offsets = energies - frames.energy
    assert np.std(offsets) < ENERGY_RMSE_BOUND
    assert abs(np.mean(offsets)) < 2 * ENERGY_RMSE_BOUND  # the energy bias was fitted to the teacher


def test_compressed_matches_uncompressed(predictions):
    (e0, f0), (e1, f1) = predictions[MODELS[0]], predictions[MODELS[1]]
    # float32 models: float32 noise, far below the model's own error.
    np.testing.assert_allclose(e1, e0, rtol=0, atol=1e-2)
    np.testing.assert_allclose(f1, f0, rtol=0, atol=0.1)


@pytest.mark.parametrize("name", MODELS)
def test_shipped_files_stay_small(name):
    assert pretrained_path(name).stat().st_size < 3_000_000
