"""SE3Attention inside OpenMM: NNPForce matches the model called directly (Reference, CPU)."""

import numpy as np
import openmm
import pytest
import torch
import openmm.unit as unit

from models.test_se3_attention import make_se3
from models.test_se_e2_a_openmm import water_system
from openmmnnp import NNPForce, pretrained_path, units


@pytest.mark.parametrize("platform", ["Reference", "CPU"])
def test_nnpforce_matches_direct_model_call(water, platform):
    positions, box, types, _ = water
    model = make_se3(water, lmax=2)
    system, topology, positions_nm = water_system(positions[0], box[0])
    system.addForce(NNPForce(model, topology, system=system, periodic=True))
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform))
    context.setPositions(positions_nm)
    state = context.getState(getEnergy=True, getForces=True)
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    pos = positions[0].clone().requires_grad_(True)
    direct = model(pos, box[0], types)
    (grad,) = torch.autograd.grad(direct, pos)
    ev, angstrom = units.energy_factor("eV"), units.length_factor("angstrom")
    assert energy == pytest.approx(float(direct) * ev, rel=1e-6)
    np.testing.assert_allclose(forces, -grad.numpy() * ev / angstrom, rtol=1e-5, atol=1e-3)
    assert np.abs(forces).max() > 1.0


def test_shipped_water_se3_gives_finite_forces_in_openmm(water):
    """The shipped file must carry the freeze-safe code: its earlier export gave all-NaN forces."""
    positions, box, _, _ = water
    system, topology, positions_nm = water_system(positions[0], box[0])
    system.addForce(NNPForce(pretrained_path("water-se3"), topology, system=system, periodic=True))
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions_nm)
    forces = context.getState(getForces=True).getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    assert np.isfinite(forces).all()
    assert np.abs(forces).max() > 1.0
