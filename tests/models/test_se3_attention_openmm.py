"""SE3Attention inside OpenMM: NNPForce matches the model called directly (Reference, CPU)."""

import numpy as np
import openmm
import pytest
import openmm.unit as unit

from models.test_se3_attention import make_se3
from models.test_se_e2_a_openmm import assert_nnpforce_matches_direct_call, water_system
from openmmnnp import NNPForce, pretrained_path


@pytest.mark.parametrize("platform", ["Reference", "CPU"])
def test_nnpforce_matches_direct_model_call(water, platform):
    assert_nnpforce_matches_direct_call(make_se3(water, lmax=2), water, platform)


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
