"""useCUDAGraphs: the shipped water models give the same 100-step Langevin trajectory with CUDA graphs
on and off (skipped without CUDA).

Assumes the models are graph-safe (no host synchronisation inside forward). Tolerance: the two runs
use the same integrator seed, so they differ only through the float32 atomic additions (index_add,
the fused table op, the SE(3) kernels) whose order varies between launches: ~1e-7 relative in the forces, amplified by
the dynamics over 100 steps to well under 1e-4 nm. A graph replaying stale inputs or outputs would
be off by the distance atoms travel in 50 fs, ~1e-2 nm, which the test also requires them to travel.
"""

from pathlib import Path

import numpy as np
import openmm
import openmm.unit as unit
import pytest
from benchmark_modules import benchmark_module
from gpu.test_nnpforce_cuda import cuda_platform_available

from openmmnnp import NNPForce, pretrained_path
from openmmnnp.data import load_frames

water_topology = benchmark_module("common").water_topology

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not cuda_platform_available(), reason="needs CUDA and OpenMM's CUDA platform")]

FRAMES = Path(__file__).resolve().parents[1] / "data" / "water_frames.npz"
STEPS = 100


def trajectory_end(model: str, graphs: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """(start, end positions nm, end potential energy kJ/mol) of STEPS Langevin steps from a water frame."""
    frames = load_frames(FRAMES)
    elements = np.array([frames.type_map[t] for t in frames.types])
    system, topology = water_topology(elements, frames.box[0].astype(np.float64))
    properties = {"useCUDAGraphs": "true" if graphs else "false"}
    system.addForce(NNPForce(pretrained_path(model), topology, system=system, periodic=True, properties=properties))
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 0.5 * unit.femtosecond)
    integrator.setRandomNumberSeed(7)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("CUDA"), {"Precision": "mixed"})
    start = frames.positions[0].astype(np.float64)
    context.setPositions(start)
    context.setVelocitiesToTemperature(300 * unit.kelvin, 7)
    integrator.step(STEPS)
    state = context.getState(getPositions=True, getEnergy=True)
    end = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    return start, np.asarray(end), state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)


@pytest.mark.parametrize("model", ["water-se_e2_a", "water-se_e2_a-compressed", "water-se3"])
def test_cuda_graphs_give_the_same_trajectory(model):
    start, off, energy_off = trajectory_end(model, graphs=False)
    _, on, energy_on = trajectory_end(model, graphs=True)
    assert np.abs(off - start).max() > 1e-2  # the atoms moved: a frozen or stale trajectory cannot pass
    np.testing.assert_allclose(on, off, rtol=0, atol=1e-4)
    # ~1e3 kJ/mol/nm forces times the position tolerance, over 195 atoms.
    assert energy_on == pytest.approx(energy_off, abs=0.5)
