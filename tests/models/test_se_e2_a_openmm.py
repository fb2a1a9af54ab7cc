"""se_e2_a inside OpenMM: NNPForce matches the model called directly; NVE conserves energy."""

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import pytest
import torch

import openmmnnp
from openmmnnp import NNPForce, units


def water_system(positions_a: torch.Tensor, box_a: torch.Tensor):
    """System + topology of the water frame (O, H, H per molecule), no classical forces."""
    topology = app.Topology()
    chain = topology.addChain()
    system = openmm.System()
    oxygen, hydrogen = app.Element.getBySymbol("O"), app.Element.getBySymbol("H")
    for _ in range(positions_a.shape[0] // 3):
        residue = topology.addResidue("HOH", chain)
        for name, element in (("O", oxygen), ("H1", hydrogen), ("H2", hydrogen)):
            topology.addAtom(name, element, residue)
            system.addParticle(element.mass)
    box_nm = box_a.numpy() * units.length_factor("angstrom")
    vectors = [openmm.Vec3(*row) for row in box_nm]
    topology.setPeriodicBoxVectors(vectors)
    system.setDefaultPeriodicBoxVectors(*vectors)
    return system, topology, positions_a.numpy() * units.length_factor("angstrom")


@pytest.mark.parametrize("platform", ["Reference", "CPU"])
def test_nnpforce_matches_direct_model_call(model_factory, water, platform):
    assert_nnpforce_matches_direct_call(model_factory(), water, platform)


def assert_nnpforce_matches_direct_call(model, water, platform: str) -> None:
    """Energy and forces of NNPForce(model) on a water frame equal the model's own, in OpenMM units
    (shared by the tests of every model)."""
    positions, box, types, _ = water
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


def test_shipped_water_model_conserves_energy_in_nve(water):
    """Velocity Verlet, 0.25 fs, 200 steps (0.05 ps) of the shipped model from a 300 K frame:
    the total energy stays within 0.02 kJ/mol per atom of its start (the kinetic energy
    fluctuates by ~1 kJ/mol per atom, fifty times more)."""
    positions, box, types, _ = water
    system, topology, positions_nm = water_system(positions[1], box[1])
    system.addForce(NNPForce(openmmnnp.pretrained_path("water-se_e2_a"), topology, system=system, periodic=True))
    integrator = openmm.VerletIntegrator(0.25 * unit.femtosecond)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("CPU"))
    context.setPositions(positions_nm)
    context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    totals, kinetic = [], []
    for _ in range(20):
        integrator.step(10)
        state = context.getState(getEnergy=True)
        k = state.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole)
        totals.append(k + state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
        kinetic.append(k)
    n = system.getNumParticles()
    deviation = np.abs(np.array(totals) - totals[0]).max() / n
    assert np.isfinite(deviation) and deviation < 0.02
    assert (max(kinetic) - min(kinetic)) / n > 50 * deviation
