"""Test oracle: every reduced energy in a sampler's storage, recomputed from scratch.

For each stored (iteration, replica, state) the sampler stored u = β_state · U(x). Here U is
recomputed by a fresh NNPForce (built from the model file, not taken from the storage) in a
Reference-platform Context at the stored positions and box, and β = 1 / (R T_state).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import torch

import openmmnnp
from openmmtools.multistate import MultiStateReporter

R_KJ_PER_MOL_K = unit.MOLAR_GAS_CONSTANT_R.value_in_unit(unit.kilojoule_per_mole / unit.kelvin)


def water_topology(box_edge_nm: float) -> app.Topology:
    """The topology of openmmtools' WaterBox of that edge (the example's default system)."""
    from openmmtools.testsystems import WaterBox

    return WaterBox(box_edge=box_edge_nm * unit.nanometer, cutoff=min(0.6, 0.45 * box_edge_nm) * unit.nanometer,
                    constrained=False).topology


def stored_iterations(storage: Path) -> int:
    """The last complete iteration that MultiStateReporter reads from the storage."""
    reporter = MultiStateReporter(str(storage), open_mode="r")
    try:
        return reporter.read_last_iteration(last_checkpoint=False)
    finally:
        reporter.close()


def reduced_energies(storage: Path, model: Path, topology: app.Topology) -> tuple[np.ndarray, np.ndarray]:
    """(stored, recomputed) reduced energies [iterations + 1, replicas, states], dimensionless.

    Needs positions of every iteration (checkpoint interval 1). Checks that the stored System's
    particles are the topology's atoms (same masses, in order).
    """
    reporter = MultiStateReporter(str(storage), open_mode="r")
    try:
        last = reporter.read_last_iteration(last_checkpoint=False)
        assert reporter.checkpoint_interval == 1, "the oracle needs the positions of every iteration"
        stored, _, _ = reporter.read_energies(slice(0, last + 1))
        thermodynamic_states, _ = reporter.read_thermodynamic_states()
        samples = [reporter.read_sampler_states(i) for i in range(last + 1)]
    finally:
        reporter.close()
    stored_system = thermodynamic_states[0].system
    masses = [stored_system.getParticleMass(i).value_in_unit(unit.dalton) for i in range(stored_system.getNumParticles())]
    assert np.allclose(masses, [a.element.mass.value_in_unit(unit.dalton) for a in topology.atoms()])

    system = openmm.System()
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    system.addForce(openmmnnp.NNPForce(str(model), topology, system=system, periodic=True))
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    betas = np.array([1.0 / (R_KJ_PER_MOL_K * s.temperature.value_in_unit(unit.kelvin)) for s in thermodynamic_states])
    recomputed = np.empty_like(stored)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the runs: the model's float32 sums then add up in the same order
    try:
        for iteration, sampler_states in enumerate(samples):
            for replica, sample in enumerate(sampler_states):
                context.setPeriodicBoxVectors(*sample.box_vectors)
                context.setPositions(sample.positions)
                energy = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
                recomputed[iteration, replica, :] = betas * energy
    finally:
        torch.set_num_threads(threads)
    return np.asarray(stored), recomputed


def worst_relative_error(stored: np.ndarray, recomputed: np.ndarray) -> float:
    """max over all entries of |stored - recomputed| / |recomputed|."""
    return float(np.max(np.abs(stored - recomputed) / np.abs(recomputed)))
