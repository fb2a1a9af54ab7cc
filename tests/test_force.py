"""NNPForce: analytic energies/forces through OpenMM, serialisation, ML/MM subsets, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import pytest
import torch
from analytic_models import HarmonicPairs, ScaledHarmonicPairs

import openmmnnp
from openmmnnp import NNPForce, units

PLATFORMS = ["Reference", "CPU"]
K_EV_PER_A2, R0_A, CUTOFF_A = 0.5, 3.0, 6.0


def make_system(num_atoms: int, elements: list[str], box_nm: float | None = None, seed: int = 0):
    """A random cluster (or periodic box) of atoms with no forces, its topology and positions in nm."""
    rng = np.random.default_rng(seed)
    topology = app.Topology()
    chain = topology.addChain()
    system = openmm.System()
    for i in range(num_atoms):
        residue = topology.addResidue("RES", chain)
        element = app.Element.getBySymbol(elements[i % len(elements)])
        topology.addAtom(element.symbol, element, residue)
        system.addParticle(element.mass)
    edge = box_nm if box_nm is not None else 1.2
    positions = rng.uniform(0.0, edge, size=(num_atoms, 3))
    if box_nm is not None:
        vectors = [openmm.Vec3(box_nm, 0, 0), openmm.Vec3(0, box_nm, 0), openmm.Vec3(0, 0, box_nm)]
        topology.setPeriodicBoxVectors(vectors)
        system.setDefaultPeriodicBoxVectors(*vectors)
    return system, topology, positions


def analytic_energy_forces(positions_nm: np.ndarray, types: np.ndarray, box_nm: float | None = None):
    """Harmonic pair energy (kJ/mol) and forces (kJ/mol/nm), written out by hand in numpy."""
    ev = units.ENERGY_IN_KJ_PER_MOL["eV"]
    k = K_EV_PER_A2 * ev * 100.0  # kJ/mol/nm^2
    r0, cutoff = R0_A / 10.0, CUTOFF_A / 10.0
    energy, forces = 0.0, np.zeros_like(positions_nm)
    n = len(positions_nm)
    for i in range(n):
        for j in range(i + 1, n):
            d = positions_nm[j] - positions_nm[i]
            if box_nm is not None:
                d -= box_nm * np.round(d / box_nm)
            r = np.linalg.norm(d)
            if r >= cutoff:
                continue
            w = 1.0 + types[i] + types[j]
            energy += 0.5 * k * w * (r - r0) ** 2
            f = -k * w * (r - r0) * d / r  # force on j
            forces[j] += f
            forces[i] -= f
    return energy, forces


def evaluate(system: openmm.System, positions: np.ndarray, platform: str):
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform))
    context.setPositions(positions)
    state = context.getState(getEnergy=True, getForces=True)
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    return energy, np.asarray(forces)


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("box_nm", [None, 1.3])
def test_analytic_potential_energy_and_forces(platform, box_nm):
    system, topology, positions = make_system(12, ["Ar", "Ne"], box_nm=box_nm)
    system.addForce(NNPForce(HarmonicPairs(K_EV_PER_A2, R0_A, CUTOFF_A, ["Ar", "Ne"]), topology))
    energy, forces = evaluate(system, positions, platform)
    types = np.array([i % 2 for i in range(12)])
    expected_energy, expected_forces = analytic_energy_forces(positions, types, box_nm)
    assert expected_energy > 1.0  # the configuration really has interacting pairs
    assert energy == pytest.approx(expected_energy, rel=1e-5)
    np.testing.assert_allclose(forces, expected_forces, rtol=1e-4, atol=1e-3 * np.abs(expected_forces).max())


@pytest.mark.parametrize("platform", PLATFORMS)
def test_custom_op_runs_inside_torchforce(platform, tmp_path):
    system, topology, positions = make_system(8, ["Ar"])
    path = tmp_path / "scaled.pt"
    torch.jit.script(ScaledHarmonicPairs(K_EV_PER_A2, R0_A, CUTOFF_A)).save(str(path))
    assert "ops.openmmnnp.scale" in torch.jit.load(str(path)).code  # the op is in the exported graph
    system.addForce(NNPForce(str(path), topology))
    energy, forces = evaluate(system, positions, platform)
    expected_energy, expected_forces = analytic_energy_forces(positions, np.zeros(8, dtype=int))
    assert energy == pytest.approx(expected_energy, rel=1e-5)
    np.testing.assert_allclose(forces, expected_forces, rtol=1e-4, atol=1e-3 * np.abs(expected_forces).max())


def test_xml_round_trip_gives_same_energy():
    system, topology, positions = make_system(10, ["Ar", "Ne"], box_nm=1.3)
    system.addForce(NNPForce(HarmonicPairs(K_EV_PER_A2, R0_A, CUTOFF_A, ["Ar", "Ne"]), topology))
    copy = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(system))
    original, _ = evaluate(system, positions, "CPU")
    restored, _ = evaluate(copy, positions, "CPU")
    assert restored == pytest.approx(original, rel=1e-12)


def test_ml_mm_subset_equals_model_on_subset():
    system, topology, positions = make_system(14, ["Ar", "Ne"])
    subset = [1, 4, 5, 9, 13]
    system.addForce(NNPForce(HarmonicPairs(K_EV_PER_A2, R0_A, CUTOFF_A, ["Ar", "Ne"]), topology, atoms=subset))
    energy, forces = evaluate(system, positions, "CPU")
    types = np.array([i % 2 for i in subset])
    expected_energy, expected_forces = analytic_energy_forces(positions[subset], types)
    assert energy == pytest.approx(expected_energy, rel=1e-5)
    np.testing.assert_allclose(forces[subset], expected_forces, rtol=1e-4, atol=1e-6)
    others = [i for i in range(14) if i not in subset]
    assert np.all(forces[others] == 0.0)  # MM atoms feel nothing from the NNP


def test_periodicity_follows_topology():
    _, periodic_topology, _ = make_system(4, ["Ar"], box_nm=2.0)
    _, open_topology, _ = make_system(4, ["Ar"])
    assert NNPForce(HarmonicPairs(), periodic_topology).usesPeriodicBoundaryConditions()
    assert not NNPForce(HarmonicPairs(), open_topology).usesPeriodicBoundaryConditions()
    # A System whose only force will be the NNP does not "use" periodicity yet: the topology decides.
    system, topology, _ = make_system(4, ["Ar"], box_nm=2.0)
    assert NNPForce(HarmonicPairs(), topology, system=system).usesPeriodicBoundaryConditions()


def test_force_gets_a_copy_without_parameter_gradients_and_the_model_stays_trainable():
    """TorchScript's autodiff would compute every parameter's gradient on every step: the force runs
    a copy whose parameters need none, while the user's model keeps training as before."""
    from openmmnnp.force import inference_copy

    model = torch.jit.load(openmmnnp.pretrained_path("water-se_e2_a"))
    copy = inference_copy(model)
    assert all(p.requires_grad for p in model.parameters())
    assert not any(p.requires_grad for p in copy.parameters())
    positions = torch.tensor([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0],
                              [3.0, 0.0, 0.0], [3.96, 0.0, 0.0], [2.76, 0.93, 0.0]], requires_grad=True)
    types = torch.tensor([0, 1, 1, 0, 1, 1])
    (forces,) = torch.autograd.grad(model(positions, None, types), positions)
    (forces_copy,) = torch.autograd.grad(copy(positions, None, types), positions)
    torch.testing.assert_close(forces_copy, forces, rtol=1e-5, atol=1e-6)  # float32; the graphs may order sums differently
    system, topology, _ = make_system(6, ["O", "H", "H"])
    NNPForce(model, topology, system=system)
    assert all(p.requires_grad for p in model.parameters())


def shipped_water_context(platform: str = "Reference"):
    """A Context of the first test-data frame (65 waters) with the shipped compressed (float32) model."""
    from models.test_se_e2_a_openmm import water_system

    from openmmnnp.data import load_frames

    frames = load_frames(Path(__file__).resolve().parent / "data" / "water_frames.npz")
    to_a = 1.0 / units.length_factor("angstrom")
    system, topology, positions = water_system(torch.from_numpy(frames.positions[0].astype(np.float64) * to_a),
                                               torch.from_numpy(frames.box[0].astype(np.float64) * to_a))
    system.addForce(NNPForce(openmmnnp.pretrained_path("water-se_e2_a-compressed"), topology))
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform))
    return context, positions, float(frames.box[0, 0, 0])


def forces_at(context: openmm.Context, positions: np.ndarray) -> np.ndarray:
    context.setPositions(positions)
    return context.getState(getForces=True).getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)


@pytest.mark.parametrize("boxes", [1000, 10000])
def test_positions_thousands_of_boxes_away_keep_the_forces_of_their_wrapped_images(boxes):
    """OpenMM does not wrap positions. NNPForce wraps them in OpenMM's float64 before casting to the
    model's float32 (cast first, the digits that distances need were gone: forces 75 and 901
    kJ/mol/nm off at 1,000 and 10,000 box lengths)."""
    context, positions, edge = shipped_water_context()
    inside = forces_at(context, positions)
    away = positions.copy()
    away[::2] += np.array([boxes, -boxes, boxes // 2]) * edge  # every other atom, so molecules straddle images
    assert np.abs(forces_at(context, away) - inside).max() < 0.05  # float32 noise: forces are ~1e3 kJ/mol/nm
    # Beyond 16,000 box lengths: an error (tests/reliability/test_md_inputs.py, in a subprocess: on the
    # unfixed freeze bug that error was a segfault).

