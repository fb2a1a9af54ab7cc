"""Test systems for ML/MM: a periodic flexible TIP3P box with its central waters as the ML region,
and independently built Systems of parts of it (the oracles of the energy decomposition)."""

from __future__ import annotations

import warnings

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import openmmtorch

BOX_EDGE_NM = 1.8
CUTOFF_NM = 0.7
ML_WATERS = 4


def water_box(nonbonded_method=app.PME):
    """(system, topology, positions [N, 3] nm) of a cubic flexible TIP3P box: harmonic O-H bonds and
    H-O-H angles (so bonded terms exist inside the ML region), no switching, no dispersion correction."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from openmmtools.testsystems import WaterBox
    box = WaterBox(box_edge=BOX_EDGE_NM * unit.nanometer, cutoff=CUTOFF_NM * unit.nanometer, constrained=False,
                   switch_width=None, dispersion_correction=False, nonbondedMethod=nonbonded_method,
                   ewaldErrorTolerance=1e-5)
    return box.system, box.topology, np.asarray(box.positions.value_in_unit(unit.nanometer))


def central_waters(topology: app.Topology, positions: np.ndarray, count: int = ML_WATERS) -> list[int]:
    """Atom indices of the ``count`` waters whose oxygen is nearest the box centre."""
    centre = np.array([v[k] for k, v in enumerate(topology.getPeriodicBoxVectors().value_in_unit(unit.nanometer))]) / 2
    residues = list(topology.residues())
    oxygen = [next(a.index for a in r.atoms() if a.element.symbol == "O") for r in residues]
    nearest = np.argsort(np.linalg.norm(positions[oxygen] - centre, axis=1))[:count]
    return sorted(a.index for k in nearest for a in residues[k].atoms())


def waters_only(topology: app.Topology, positions: np.ndarray, atoms: list[int]):
    """(topology, positions) of the residues made of ``atoms``, nothing else, no box."""
    keep = set(atoms)
    modeller = app.Modeller(topology, positions * unit.nanometer)
    modeller.delete([r for r in topology.residues() if not all(a.index in keep for a in r.atoms())])
    sub = modeller.getTopology()
    sub.setPeriodicBoxVectors(None)
    return sub, np.asarray(modeller.getPositions().value_in_unit(unit.nanometer))


def isolated_mm_system(topology: app.Topology) -> openmm.System:
    """The same TIP3P force field on ``topology`` alone, no cutoff: its bonds and angles, and its
    intermolecular Coulomb + LJ pairs summed exactly."""
    return app.ForceField("tip3p.xml").createSystem(topology, nonbondedMethod=app.NoCutoff, constraints=None,
                                                    rigidWater=False, removeCMMotion=False)


def force_name(force: openmm.Force) -> str:
    """The force's class name (plugin forces such as TorchForce come back from getForces() as Force)."""
    return "TorchForce" if openmmtorch.TorchForce.isinstance(force) else type(force).__name__


def set_groups(system: openmm.System) -> dict[str, int]:
    """Puts each force in a group of its own; returns {class name: group}."""
    groups = {}
    for k, force in enumerate(system.getForces()):
        force.setForceGroup(k)
        groups[force_name(force)] = k
    return groups


def energies_forces(system: openmm.System, positions: np.ndarray, platform: str = "Reference",
                    groups=None, parameters: dict | None = None):
    """(energy kJ/mol, forces [N, 3] kJ/mol/nm) of ``groups`` (a set of group numbers; default all)."""
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform))
    context.setPositions(positions)
    for name, value in (parameters or {}).items():
        context.setParameter(name, value)
    state = context.getState(getEnergy=True, getForces=True, **({} if groups is None else {"groups": set(groups)}))
    return (state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
            np.asarray(state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)))
