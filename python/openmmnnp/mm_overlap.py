"""The ML/MM double-counting check: MM interactions a System still computes inside an ML region.

An NNP on a subset of atoms computes the whole internal energy of that subset. If the System's
MM forces still hold bonds, angles, torsions or nonbonded pairs among those atoms, that energy is
counted twice. OpenMM-ML's ``createMixedSystem`` removes exactly these terms (mechanical embedding,
docs/mlmm.md); :func:`openmmnnp.NNPForce` warns with :class:`DoubleCountingWarning` when it is
given a System that still has them.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from typing import Dict, Sequence

import openmm

# Particle attributes of bonded terms in OpenMM's XML: p1..pN; CMAP torsions use a1..a4, b1..b4.
_PARTICLE_ATTRIBUTE = re.compile(r"^[pab]\d+$")
_TERM_TAGS = ("Bond", "Angle", "Torsion")


class DoubleCountingWarning(UserWarning):
    """MM forces of the System still compute interactions inside the NNP's atom subset."""


def _bonded_terms_inside(force: openmm.Force, inside: set) -> int:
    """Bonds/angles/torsions of ``force`` whose particles all lie in ``inside`` (read from its XML,
    which covers the standard and the custom bonded forces alike)."""
    root = ElementTree.fromstring(openmm.XmlSerializer.serialize(force))
    count = 0
    for tag in _TERM_TAGS:
        for term in root.iter(tag):
            particles = [int(v) for k, v in term.attrib.items() if _PARTICLE_ATTRIBUTE.match(k)]
            if particles and all(p in inside for p in particles):
                count += 1
    return count


def _nonbonded_pairs_inside(force: openmm.NonbondedForce, atoms: Sequence[int]) -> int:
    """Pairs of interacting ``atoms`` (a charge or an LJ well) that no exception switches off."""
    interacting = set()
    for a in atoms:
        charge, _, epsilon = force.getParticleParameters(a)
        if charge._value != 0.0 or epsilon._value != 0.0:
            interacting.add(a)
    n = len(interacting)
    pairs = n * (n - 1) // 2
    for k in range(force.getNumExceptions()):
        i, j, charge_product, _, epsilon = force.getExceptionParameters(k)
        if i in interacting and j in interacting and i != j and charge_product._value == 0.0 and epsilon._value == 0.0:
            pairs -= 1
    return max(pairs, 0)


def _custom_pairs_inside(force: openmm.CustomNonbondedForce, inside: set) -> int:
    if force.getNumInteractionGroups() > 0:  # the groups decide which pairs interact: not counted here
        return 0
    n = len(inside)
    excluded = sum(1 for k in range(force.getNumExclusions())
                   if all(p in inside for p in force.getExclusionParticles(k)))
    return max(n * (n - 1) // 2 - excluded, 0)


def mm_terms_inside(system: openmm.System, atoms: Sequence[int]) -> Dict[str, int]:
    """Counts of MM interactions among ``atoms`` only that ``system``'s forces still compute.

    Returns:
        {"bonded": bonds + angles + torsions with every particle in atoms,
         "nonbonded": NonbondedForce / CustomNonbondedForce pairs inside atoms left in place}
    """
    inside = set(int(a) for a in atoms)
    counts = {"bonded": 0, "nonbonded": 0}
    for force in system.getForces():
        if isinstance(force, openmm.NonbondedForce):
            counts["nonbonded"] += _nonbonded_pairs_inside(force, sorted(inside))
        elif isinstance(force, openmm.CustomNonbondedForce):
            counts["nonbonded"] += _custom_pairs_inside(force, inside)
        elif any(hasattr(force, method) for method in ("addBond", "addAngle", "addTorsion")):
            counts["bonded"] += _bonded_terms_inside(force, inside)
    return counts


def double_counting_message(counts: Dict[str, int], num_atoms: int) -> str:
    return (f"NNPForce: the System's MM forces still compute {counts['bonded']} bonded terms (bonds, angles, "
            f"torsions) and {counts['nonbonded']} nonbonded pairs among the {num_atoms} ML atoms; the NNP counts that "
            "energy again. For ML/MM use openmmml's MLPotential('openmmnnp', modelPath=...).createMixedSystem("
            "topology, system, atoms), which removes them (docs/mlmm.md)")


def warn_if_double_counting(system: openmm.System, atoms: Sequence[int]) -> None:
    """Warns (:class:`DoubleCountingWarning`, at NNPForce's caller) if ``system`` still computes MM
    interactions among ``atoms``."""
    import warnings

    counts = mm_terms_inside(system, atoms)
    if counts["bonded"] or counts["nonbonded"]:
        warnings.warn(double_counting_message(counts, len(atoms)), DoubleCountingWarning, stacklevel=3)
