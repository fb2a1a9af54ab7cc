"""Exploration for concurrent learning: MD driven by the NNP itself, in OpenMM.

The configurations a model drives itself into are the ones its training data must cover
(on-policy data): a model trained only on the teacher's trajectories never sees its own
mistakes. Each exploration runs Langevin MD of the NNP (the integrator of the data: LangevinMiddle,
1/ps, 0.5 fs), optionally with a Monte Carlo barostat (densities), from a configuration of the
training data, and keeps a frame every ``interval`` steps. A trajectory that blows up (an error
raised by the model's checks, non-finite positions) stops there and says why.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import openmm
from openmm import unit

from openmmnnp.data.teacher import FRICTION_PER_PS, TIMESTEP_FS, Teacher
from openmmnnp.force import ModelLike, load_model
from openmmnnp.systems import nnp_system

BAROSTAT_INTERVAL = 25  # MD steps between Monte Carlo volume moves


@dataclasses.dataclass(frozen=True)
class Condition:
    """A thermodynamic state to explore: temperature in K; pressure in bar (None: constant volume)."""

    temperature: float
    pressure: Optional[float] = None

    def __post_init__(self) -> None:
        if not np.isfinite(self.temperature) or self.temperature <= 0:
            raise ValueError(f"exploration temperature must be positive (K), got {self.temperature}")
        if self.pressure is not None and not np.isfinite(self.pressure):
            raise ValueError(f"exploration pressure must be finite (bar), got {self.pressure}")

    @property
    def label(self) -> str:
        return f"{self.temperature:g} K" + (f", {self.pressure:g} bar" if self.pressure is not None else "")


@dataclasses.dataclass
class Trajectory:
    """Frames of one exploration: positions [F, N, 3] nm, boxes [F, 3, 3] nm (zeros: no box); ``error``
    is why it stopped early ("" if it ran to the end)."""

    condition: Condition
    positions: np.ndarray
    boxes: np.ndarray
    error: str = ""


def explore(model: ModelLike, teacher: Teacher, positions: np.ndarray, box: Optional[np.ndarray], condition: Condition,
            steps: int, interval: int, seed: int, platform: str = "CPU") -> Trajectory:
    """NNP Langevin MD of ``teacher``'s atoms (its masses, topology and box) under ``condition``.

    Args:
        model: the NNP (file or module); its overflow checks run every step, so a blow-up stops the run.
        positions: start [N, 3] nm; box: [3, 3] nm or None.
        steps: MD steps of 0.5 fs; interval: steps between kept frames.
    """
    if steps < interval or interval < 1:
        raise ValueError(f"explore: need 1 <= interval <= steps, got interval {interval}, steps {steps}")
    periodic = teacher.system.usesPeriodicBoundaryConditions()
    if condition.pressure is not None and not periodic:
        raise ValueError(f"explore: constant pressure ({condition.label}) needs a periodic teacher System")
    scripted = load_model(model)
    has_checks = hasattr(scripted, "check_frequency")  # check every step: a blow-up stops the run at once
    system = nnp_system(teacher.system, teacher.topology, scripted, check_frequency=1 if has_checks else None)
    if condition.pressure is not None:
        system.addForce(openmm.MonteCarloBarostat(condition.pressure * unit.bar, condition.temperature * unit.kelvin,
                                                  BAROSTAT_INTERVAL))
    integrator = openmm.LangevinMiddleIntegrator(condition.temperature * unit.kelvin, FRICTION_PER_PS / unit.picosecond,
                                                 TIMESTEP_FS * unit.femtosecond)
    integrator.setRandomNumberSeed(seed)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName(platform))
    if box is not None and periodic:
        context.setPeriodicBoxVectors(*box)
    context.setPositions(positions)
    context.setVelocitiesToTemperature(condition.temperature * unit.kelvin, seed)
    kept_positions, kept_boxes = [], []
    error = ""
    for _ in range(steps // interval):
        try:
            integrator.step(interval)
        except openmm.OpenMMException as exception:
            error = str(exception).strip().splitlines()[-1] if str(exception).strip() else "OpenMMException"
            break
        state = context.getState(getPositions=True, enforcePeriodicBox=periodic)
        frame = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        if not np.all(np.isfinite(frame)):
            error = "non-finite positions"
            break
        kept_positions.append(frame)
        kept_boxes.append(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer) if periodic
                          else np.zeros((3, 3)))
    num_atoms = teacher.topology.getNumAtoms()
    return Trajectory(condition, np.array(kept_positions).reshape(-1, num_atoms, 3),
                      np.array(kept_boxes).reshape(-1, 3, 3), error)
