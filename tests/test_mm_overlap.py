"""The double-counting warning: NNPForce(atoms=...) on a System whose MM forces still act inside the subset."""

from __future__ import annotations

import warnings

import openmm
import pytest
from openmm_ml.water_region import central_waters, water_box
from openmmml import MLPotential

from openmmnnp import NNPForce, pretrained_path
from openmmnnp.data.alanine_dipeptide import solvated_system
from openmmnnp.mm_overlap import DoubleCountingWarning, mm_terms_inside


def _count_terms(system: openmm.System) -> int:
    """Bonds + angles + torsions of the standard bonded forces, counted through their own API."""
    total = 0
    for force in system.getForces():
        for method in ("getNumBonds", "getNumAngles", "getNumTorsions"):
            if hasattr(force, method) and not isinstance(force, (openmm.NonbondedForce, openmm.CustomNonbondedForce)):
                total += getattr(force, method)()
    return total


@pytest.fixture(scope="module")
def box():
    system, topology, positions = water_box()
    return system, topology, central_waters(topology, positions)


def test_subset_of_an_mm_system_warns(box):
    system, topology, atoms = box
    with pytest.warns(DoubleCountingWarning, match=r"12 bonded terms .* and 54 nonbonded pairs among the 12 ML atoms.*"
                                                   r"createMixedSystem"):
        NNPForce(pretrained_path("water-se_e2_a"), topology, atoms=atoms, system=system)


def test_counts_on_the_water_box(box):
    """4 flexible waters: 2 bonds + 1 angle each; 12 atoms make 66 pairs, 3 per water are excluded."""
    system, _, atoms = box
    assert mm_terms_inside(system, atoms) == {"bonded": 12, "nonbonded": 66 - 12}
    assert mm_terms_inside(system, atoms[:3]) == {"bonded": 3, "nonbonded": 0}  # one water: no pair left


def test_counts_match_what_create_mixed_system_removes():
    """The solute of the solvated dipeptide: the bonded terms counted equal those createMixedSystem drops."""
    explicit = solvated_system(constraints=None)
    solute = [a.index for a in explicit.topology.atoms() if a.residue.name != "HOH"]
    counts = mm_terms_inside(explicit.system, solute)
    # OpenMM-ML's own removal step of createMixedSystem (it does not use the potential).
    stripped = MLPotential._removeBonds(None, explicit.system, solute, True, True)
    assert counts["bonded"] == _count_terms(explicit.system) - _count_terms(stripped) > 50
    assert mm_terms_inside(stripped, solute)["bonded"] == 0


def test_create_mixed_system_does_not_warn(box):
    system, topology, atoms = box
    with warnings.catch_warnings():
        warnings.simplefilter("error", DoubleCountingWarning)
        mixed = MLPotential("openmmnnp", modelPath="water-se_e2_a").createMixedSystem(topology, system, atoms)
    assert mm_terms_inside(mixed, atoms) == {"bonded": 0, "nonbonded": 0}


def test_no_warning_without_mm_terms_inside(box):
    system, topology, atoms = box
    with warnings.catch_warnings():
        warnings.simplefilter("error", DoubleCountingWarning)
        empty = openmm.System()
        for _ in range(system.getNumParticles()):
            empty.addParticle(1.0)
        NNPForce(pretrained_path("water-se_e2_a"), topology, atoms=atoms, system=empty)
