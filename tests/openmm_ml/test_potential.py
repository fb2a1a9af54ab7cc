"""MLPotential("openmmnnp"): registration, createSystem against NNPForce, arguments that reach NNPForce."""

from __future__ import annotations

import numpy as np
import openmm
import openmmtorch
import pytest
from openmm_ml.water_region import energies_forces, water_box
from openmmml import MLPotential

from openmmnnp import NNPForce, pretrained_path
from openmmnnp.openmm_ml.potential import NNPPotentialImplFactory


@pytest.fixture(scope="module")
def box():
    system, topology, positions = water_box()
    return topology, positions


def test_registered_by_entry_point():
    assert isinstance(MLPotential._implFactories["openmmnnp"], NNPPotentialImplFactory)


@pytest.mark.parametrize("platform", ["Reference", "CPU"])
@pytest.mark.parametrize("model", ["water-se_e2_a", "water-se_e2_a-compressed", "water-se3"])
def test_create_system_matches_nnpforce(box, model, platform):
    topology, positions = box
    system = MLPotential("openmmnnp", modelPath=model).createSystem(topology)
    reference = openmm.System()
    for atom in topology.atoms():
        reference.addParticle(atom.element.mass)
    reference.setDefaultPeriodicBoxVectors(*topology.getPeriodicBoxVectors())
    reference.addForce(NNPForce(pretrained_path(model), topology))
    energy, forces = energies_forces(system, positions, platform)
    expected_energy, expected_forces = energies_forces(reference, positions, platform)
    assert abs(expected_energy) > 1.0
    assert energy == pytest.approx(expected_energy, rel=1e-6, abs=0.0)
    np.testing.assert_allclose(forces, expected_forces, rtol=0, atol=1e-6 * np.abs(expected_forces).max())
    assert system.usesPeriodicBoundaryConditions()


def test_model_file_path_and_name_agree(box):
    topology, positions = box
    by_name = MLPotential("openmmnnp", modelPath="water-se_e2_a").createSystem(topology)
    by_path = MLPotential("openmmnnp", modelPath=str(pretrained_path("water-se_e2_a"))).createSystem(topology)
    assert energies_forces(by_name, positions)[0] == energies_forces(by_path, positions)[0]


def test_ml_long_range_is_false():
    potential = MLPotential("openmmnnp", modelPath="water-se_e2_a")
    assert potential._impl.getMLLongRange() is False


def _torch_force(system: openmm.System) -> openmmtorch.TorchForce:
    return openmmtorch.TorchForce.cast(next(f for f in system.getForces() if openmmtorch.TorchForce.isinstance(f)))


def test_arguments_reach_nnpforce(box):
    topology, positions = box
    potential = MLPotential("openmmnnp", modelPath="water-se_e2_a-compressed")
    system = potential.createSystem(topology, checkFrequency=7, properties={"useCUDAGraphs": "true"})
    force = _torch_force(system)
    assert force.getProperties()["useCUDAGraphs"] == "true"
    assert force.getName() == "NNPForce" and force.getModule().model.flags_key  # checks registered under a key
    assert force.getModule().model.check_frequency == 7


def test_force_group_of_create_mixed_system(box):
    from openmm_ml.water_region import central_waters
    topology, positions = box
    mm, _, _ = water_box()
    atoms = central_waters(topology, positions)
    mixed = MLPotential("openmmnnp", modelPath="water-se_e2_a").createMixedSystem(topology, mm, atoms, forceGroup=5)
    assert _torch_force(mixed).getForceGroup() == 5
