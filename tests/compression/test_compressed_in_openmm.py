"""The compressed model inside OpenMM (TorchForce): same energy and forces as the original."""

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import pytest

from openmmnnp import NNPForce
from compression.small_se_e2_a import small_model, small_system
from openmmnnp.compression import compress


def openmm_energy_forces(model, types, positions_nm, box_nm, platform):
    topology = app.Topology()
    chain = topology.addChain()
    system = openmm.System()
    for t in types.tolist():
        element = app.Element.getBySymbol(["O", "H"][t])
        topology.addAtom(element.symbol, element, topology.addResidue("RES", chain))
        system.addParticle(element.mass)
    vectors = [openmm.Vec3(*row) for row in box_nm.tolist()]
    topology.setPeriodicBoxVectors(vectors)
    system.setDefaultPeriodicBoxVectors(*vectors)
    system.addForce(NNPForce(model, topology))
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform))
    context.setPositions(positions_nm)
    state = context.getState(getEnergy=True, getForces=True)
    return (state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
            np.asarray(state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)))


@pytest.mark.parametrize("platform", ["Reference", "CPU"])
def test_compressed_model_in_openmm_matches_original(platform):
    positions, box, types = small_system()
    model = small_model(False, positions, box)
    compressed = compress(model)
    e_ref, f_ref = openmm_energy_forces(model, types, positions.numpy() / 10.0, box.numpy() / 10.0, platform)
    e, f = openmm_energy_forces(compressed, types, positions.numpy() / 10.0, box.numpy() / 10.0, platform)
    scale = np.abs(f_ref).max()
    assert scale > 0
    assert abs(e - e_ref) < 1e-8 * max(1.0, abs(e_ref))
    assert np.abs(f - f_ref).max() < 1e-6 * scale
