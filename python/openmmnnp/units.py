"""Unit conversion between a model's declared units and OpenMM's (nm, kJ/mol).

This is the only place in openmm-nnp that knows conversion factors: models declare
``length_unit`` and ``energy_unit`` strings, and :class:`openmmnnp.NNPForce` converts
with the factors below.
"""

from __future__ import annotations

# Size of one model length unit in nanometres.
LENGTH_IN_NM: dict[str, float] = {
    "nm": 1.0,
    "angstrom": 0.1,
    "bohr": 0.0529177210903,
}

# Size of one model energy unit in kJ/mol (CODATA 2018, as OpenMM uses).
ENERGY_IN_KJ_PER_MOL: dict[str, float] = {
    "kJ/mol": 1.0,
    "kcal/mol": 4.184,
    "eV": 96.48533212331002,
    "hartree": 2625.4996394798254,
}


def length_factor(unit: str) -> float:
    """Nanometres per ``unit``; raises ValueError for an unknown unit."""
    if unit not in LENGTH_IN_NM:
        raise ValueError(f"unknown length unit {unit!r}; known: {sorted(LENGTH_IN_NM)}")
    return LENGTH_IN_NM[unit]


def energy_factor(unit: str) -> float:
    """kJ/mol per ``unit``; raises ValueError for an unknown unit."""
    if unit not in ENERGY_IN_KJ_PER_MOL:
        raise ValueError(f"unknown energy unit {unit!r}; known: {sorted(ENERGY_IN_KJ_PER_MOL)}")
    return ENERGY_IN_KJ_PER_MOL[unit]
