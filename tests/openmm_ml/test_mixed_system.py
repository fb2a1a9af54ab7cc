"""createMixedSystem with MLPotential("openmmnnp") on a periodic water box whose central waters are
the ML region, checked by energy decomposition against independently built Systems:

    mixed = full MM - (MM internal energy of the ML waters alone) + (NNP of the ML waters alone)

term by term (bonds, angles, nonbonded, NNP), on the Reference platform (double precision).
The PME energy difference is exact here: OpenMM handles an excluded pair's reciprocal-space part
analytically (erf/r), so removing the ML-ML pairs removes exactly their Coulomb 1/r (all ML-ML
pairs lie inside the cutoff: asserted) and LJ, which the isolated ML System sums directly.
"""

from __future__ import annotations

import numpy as np
import openmm
import pytest
from openmm_ml.water_region import (CUTOFF_NM, central_waters, energies_forces, isolated_mm_system, set_groups,
                                    water_box, waters_only)
from openmmml import MLPotential

from openmmnnp import NNPForce, pretrained_path

MODEL = "water-se_e2_a"
BONDED = ("HarmonicBondForce", "HarmonicAngleForce")
# The shipped model runs in float32: coordinates of ~20 angstrom round at ~2e-6 angstrom, which moves
# its energy by ~1e-4 kJ/mol between two evaluations of the same configuration (here: with and
# without the box, or wrapped and unwrapped).
FLOAT32_ENERGY_KJ = 1e-3


@pytest.fixture(scope="module")
def setup():
    mm, topology, positions = water_box()
    # Off the ideal geometry Modeller builds, so that every term has energy and force.
    positions = positions + np.random.default_rng(3).normal(0.0, 0.004, positions.shape)
    ml_atoms = central_waters(topology, positions)
    mixed = MLPotential("openmmnnp", modelPath=MODEL).createMixedSystem(topology, mm, ml_atoms)
    sub_topology, sub_positions = waters_only(topology, positions, ml_atoms)
    isolated = isolated_mm_system(sub_topology)
    nnp_alone = isolated_mm_system(sub_topology)
    for k in reversed(range(nnp_alone.getNumForces())):
        nnp_alone.removeForce(k)
    nnp_alone.addForce(NNPForce(pretrained_path(MODEL), sub_topology))
    return dict(mm=mm, topology=topology, positions=positions, ml_atoms=ml_atoms, mixed=mixed, isolated=isolated,
                nnp_alone=nnp_alone, sub_positions=sub_positions)


def _by_group(system: openmm.System, positions: np.ndarray):
    groups = set_groups(system)
    return {name: energies_forces(system, positions, groups={g}) for name, g in groups.items()}


def test_ml_region_is_compact(setup):
    """Precondition of the exact PME comparison: every ML-ML pair is closer than the cutoff."""
    p = setup["positions"][setup["ml_atoms"]]
    distances = np.linalg.norm(p[:, None] - p[None], axis=2)
    assert len(setup["ml_atoms"]) == 12 and distances.max() < CUTOFF_NM


def test_energy_decomposition(setup):
    ml = setup["ml_atoms"]
    full = _by_group(setup["mm"], setup["positions"])
    mixed = _by_group(setup["mixed"], setup["positions"])
    alone = _by_group(setup["isolated"], setup["sub_positions"])
    nnp_energy, nnp_forces = energies_forces(setup["nnp_alone"], setup["sub_positions"])
    assert set(mixed) == set(full) | {"TorchForce"}

    def embedded(forces):  # forces of the ML-only System placed on the full System's atoms
        out = np.zeros_like(full["NonbondedForce"][1])
        out[ml] = forces
        return out

    # Bonds and angles: exactly those inside the ML region are gone, every other term is kept.
    for name in BONDED + ("NonbondedForce",):
        expected_energy = full[name][0] - alone[name][0]
        assert abs(alone[name][0]) > 1.0  # the removed part is not trivially zero
        assert mixed[name][0] == pytest.approx(expected_energy, rel=1e-9, abs=1e-6)
        expected_forces = full[name][1] - embedded(alone[name][1])
        np.testing.assert_allclose(mixed[name][1], expected_forces, rtol=0, atol=1e-6 * np.abs(full[name][1]).max())
    # ML-MM nonbonded interactions stay: removing ML-ML pairs must leave every force on an MM atom
    # as it was, including the pull of the ML waters on their MM neighbours.
    mm_atoms = np.setdiff1d(np.arange(len(setup["positions"])), ml)
    np.testing.assert_allclose(mixed["NonbondedForce"][1][mm_atoms], full["NonbondedForce"][1][mm_atoms], rtol=0,
                               atol=1e-6 * np.abs(full["NonbondedForce"][1]).max())
    # The NNP acts on the ML atoms only, as it would on the ML waters alone (no box: the
    # periodic images are beyond the model's cutoff).
    energy, forces = mixed["TorchForce"]
    assert energy == pytest.approx(nnp_energy, rel=0, abs=FLOAT32_ENERGY_KJ)
    np.testing.assert_allclose(forces[ml], nnp_forces, rtol=0, atol=1e-5 * np.abs(nnp_forces).max())
    assert not forces[mm_atoms].any()


def test_total_energy(setup):
    """The whole mixed System, all groups at once, on both CPU platforms."""
    for platform in ("Reference", "CPU"):
        total, _ = energies_forces(setup["mixed"], setup["positions"], platform)
        full, _ = energies_forces(setup["mm"], setup["positions"], platform)
        alone, _ = energies_forces(setup["isolated"], setup["sub_positions"], platform)
        nnp, _ = energies_forces(setup["nnp_alone"], setup["sub_positions"], platform)
        # CPU: single-precision PME, relative to the ~1e4 kJ/mol nonbonded energy.
        tolerance = 1e-6 if platform == "Reference" else 2e-5
        assert total == pytest.approx(full - alone + nnp, rel=tolerance)


def test_nnp_sees_a_whole_region_across_the_boundary(setup):
    """Positions wrapped atom by atom (as OpenMM's CUDA platform hands them to TorchForce) leave the
    NNP energy unchanged: it sees the box and takes minimum images."""
    positions = setup["positions"].copy()
    box = np.diag([v[k] for k, v in enumerate(setup["topology"].getPeriodicBoxVectors().value_in_unit(openmm.unit.nanometer))])
    ml = setup["ml_atoms"]
    # Move the ML region's centre onto a box corner, then wrap every atom on its own.
    shifted = positions - positions[ml].mean(0)
    wrapped = shifted - np.floor(shifted / np.diag(box)) * np.diag(box)
    assert (np.abs(wrapped[ml] - shifted[ml]) > 1.0).any()  # the region really is split
    group = set_groups(setup["mixed"])["TorchForce"]
    whole, whole_forces = energies_forces(setup["mixed"], shifted, groups={group})
    split, split_forces = energies_forces(setup["mixed"], wrapped, groups={group})
    assert split == pytest.approx(whole, rel=0, abs=FLOAT32_ENERGY_KJ)
    np.testing.assert_allclose(split_forces, whole_forces, rtol=0, atol=1e-4 * np.abs(whole_forces).max())
    # Without the box the same wrapped positions would tear the region apart.
    sub_topology, _ = waters_only(setup["topology"], setup["positions"], ml)
    no_box = openmm.System()
    for atom in setup["topology"].atoms():
        no_box.addParticle(atom.element.mass)
    no_box.addForce(NNPForce(pretrained_path(MODEL), setup["topology"], atoms=ml, periodic=False))
    torn, _ = energies_forces(no_box, wrapped)
    assert abs(torn - whole) > 1.0


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_interpolate_endpoints(setup, value):
    """interpolate=True: lambda_interpolate 0 is the pure-MM System, 1 the ML/MM System."""
    potential = MLPotential("openmmnnp", modelPath=MODEL)
    interpolated = potential.createMixedSystem(setup["topology"], setup["mm"], setup["ml_atoms"], interpolate=True)
    energy, forces = energies_forces(interpolated, setup["positions"], parameters={"lambda_interpolate": value})
    reference = setup["mm"] if value == 0.0 else setup["mixed"]
    expected_energy, expected_forces = energies_forces(reference, setup["positions"])
    assert energy == pytest.approx(expected_energy, rel=1e-8)
    np.testing.assert_allclose(forces, expected_forces, rtol=0, atol=1e-6 * np.abs(expected_forces).max())


def test_interpolate_is_linear(setup):
    potential = MLPotential("openmmnnp", modelPath=MODEL)
    interpolated = potential.createMixedSystem(setup["topology"], setup["mm"], setup["ml_atoms"], interpolate=True)
    e = [energies_forces(interpolated, setup["positions"], parameters={"lambda_interpolate": x})[0] for x in (0.0, 0.3, 1.0)]
    assert abs(e[1] - e[0]) > 1.0  # the endpoints differ
    assert e[1] == pytest.approx(0.7 * e[0] + 0.3 * e[2], rel=1e-9)


@pytest.mark.parametrize("interpolate", [False, True])
def test_xml_round_trip_on_cpu(setup, interpolate):
    """The mixed System (a TorchForce, or a CustomCVForce holding one) survives XmlSerializer on the CPU platform."""
    potential = MLPotential("openmmnnp", modelPath=MODEL)
    system = potential.createMixedSystem(setup["topology"], setup["mm"], setup["ml_atoms"], interpolate=interpolate)
    copy = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(system))
    parameters = {"lambda_interpolate": 0.6} if interpolate else None
    energy, forces = energies_forces(system, setup["positions"], "CPU", parameters=parameters)
    copy_energy, copy_forces = energies_forces(copy, setup["positions"], "CPU", parameters=parameters)
    # The CPU platform sums in single precision; the deserialised System's Context may sum in another
    # order (measured: 1e-6 of the largest force). A lost or altered force would differ by far more.
    assert copy_energy == pytest.approx(energy, rel=1e-7)
    np.testing.assert_allclose(copy_forces, forces, rtol=0, atol=1e-5 * np.abs(forces).max())
