"""NNPForce on OpenMM's CUDA platform agrees with the CPU platform (skipped without CUDA)."""

import numpy as np
import openmm
import pytest
import torch
from analytic_models import HarmonicPairs
from test_force import evaluate, make_system

from openmmnnp import NNPForce


def cuda_platform_available() -> bool:
    names = [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]
    return torch.cuda.is_available() and "CUDA" in names


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not cuda_platform_available(), reason="needs CUDA and OpenMM's CUDA platform")]


@pytest.mark.parametrize("precision", ["single", "mixed", "double"])
def test_cuda_platform_matches_cpu(precision):
    system, topology, positions = make_system(40, ["Ar", "Ne"], box_nm=1.6)
    system.addForce(NNPForce(HarmonicPairs(type_map=["Ar", "Ne"]), topology))
    cpu_energy, cpu_forces = evaluate(system, positions, "CPU")
    platform = openmm.Platform.getPlatformByName("CUDA")
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), platform, {"Precision": precision})
    context.setPositions(positions)
    state = context.getState(getEnergy=True, getForces=True)
    energy = state.getPotentialEnergy()._value
    forces = np.asarray(state.getForces(asNumpy=True)._value)
    tolerance = 1e-5 if precision == "double" else 1e-4
    assert energy == pytest.approx(cpu_energy, rel=tolerance)
    np.testing.assert_allclose(forces, cpu_forces, rtol=tolerance * 10, atol=tolerance * np.abs(cpu_forces).max())
