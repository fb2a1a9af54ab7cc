"""Any OpenMM ``System`` as a teacher: it labels configurations and samples them by Langevin MD.

The water data (:mod:`openmmnnp.data.water`), concurrent learning and the solute models all
learn from a teacher given as an OpenMM ``System`` plus its ``Topology``: a classical force
field, AMOEBA, or anything else OpenMM can evaluate. Everything here is in OpenMM units
(nm, kJ/mol, kJ/mol/nm, K).
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import numpy as np
import openmm
import openmm.app
from openmm import unit

from openmmnnp.data.frames import Frames, concatenate

TIMESTEP_FS = 0.5  # flexible X-H bonds vibrate with a ~9 fs period
FRICTION_PER_PS = 1.0


def topology_type_map(topology: openmm.app.Topology) -> List[str]:
    """Element symbols of the topology in order of first appearance (water: ["O", "H"])."""
    symbols: List[str] = []
    for atom in topology.atoms():
        if atom.element is None:
            raise ValueError(f"teacher: atom {atom.index} ({atom.name} of residue {atom.residue.name}) has no element")
        if atom.element.symbol not in symbols:
            symbols.append(atom.element.symbol)
    return symbols


class Teacher:
    """Labels configurations with the energies and forces of an OpenMM System.

    Args:
        system: the teacher's System (its particle count must equal the topology's atom count).
        topology: the atoms; their elements give the types.
        type_map: element symbol of each type; default: the topology's elements in order of
            first appearance. Every element of the topology must be in it.
        platform: OpenMM platform name used to evaluate the teacher.
    """

    def __init__(self, system: openmm.System, topology: openmm.app.Topology, type_map: Optional[Sequence[str]] = None,
                 platform: str = "CPU") -> None:
        if not isinstance(system, openmm.System):
            raise TypeError(f"teacher: system must be an openmm.System, got {type(system).__name__}")
        if system.getNumParticles() != topology.getNumAtoms():
            raise ValueError(f"teacher: the System has {system.getNumParticles()} particles but the Topology has "
                             f"{topology.getNumAtoms()} atoms")
        elements = topology_type_map(topology)
        self.type_map = list(type_map) if type_map is not None else elements
        missing = [e for e in elements if e not in self.type_map]
        if missing:
            raise ValueError(f"teacher: the topology has element(s) {missing} that are not in the type map {self.type_map}")
        self.system = system
        self.topology = topology
        self.types = np.array([self.type_map.index(a.element.symbol) for a in topology.atoms()], dtype=np.int64)
        self.platform = platform
        self._context: Optional[openmm.Context] = None

    @property
    def context(self) -> openmm.Context:
        """A Context that only evaluates (its integrator never steps)."""
        if self._context is None:
            self._context = openmm.Context(self.system, openmm.VerletIntegrator(0.001),
                                           openmm.Platform.getPlatformByName(self.platform))
        return self._context

    def label(self, positions: np.ndarray, boxes: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """positions [F, N, 3] nm, boxes [F, 3, 3] nm (zeros or None: no box) -> (energy [F] kJ/mol, forces [F, N, 3] kJ/mol/nm)."""
        energies = np.empty(len(positions), dtype=np.float64)
        forces = np.empty(positions.shape, dtype=np.float64)
        context = self.context
        for k, frame in enumerate(positions):
            if boxes is not None and np.any(boxes[k]):
                context.setPeriodicBoxVectors(*boxes[k])
            context.setPositions(frame)
            state = context.getState(getEnergy=True, getForces=True)
            energies[k] = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
            forces[k] = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
        return energies, forces

    def frames(self, positions: np.ndarray, boxes: np.ndarray, temperatures: np.ndarray) -> Frames:
        """Labelled frames of configurations [F, N, 3] nm in boxes [F, 3, 3] nm sampled at ``temperatures`` [F] K."""
        energies, forces = self.label(positions, boxes)
        return Frames(np.asarray(positions, np.float32), np.asarray(boxes, np.float32), energies,
                      forces.astype(np.float32), self.types, list(self.type_map), np.asarray(temperatures, np.float32))


def langevin_frames(system: openmm.System, positions: np.ndarray, box: Optional[np.ndarray], temperature: float,
                    num_frames: int, interval_steps: int, equilibration_steps: int, seed: int, platform: str = "CPU",
                    minimize: bool = True, on_frame: Optional[Callable[[int], None]] = None) -> tuple[np.ndarray, np.ndarray]:
    """Langevin NVT (LangevinMiddle, 1/ps, 0.5 fs) of ``system`` from ``positions`` [N, 3] nm.

    Returns (positions [F, N, 3] nm, boxes [F, 3, 3] nm) of ``num_frames`` frames taken every
    ``interval_steps`` after ``equilibration_steps``; wrapped into the box. ``on_frame(k)`` is
    called after each frame (progress bars).
    """
    if num_frames < 1 or interval_steps < 1 or equilibration_steps < 0:
        raise ValueError(f"langevin_frames: need num_frames >= 1, interval_steps >= 1, equilibration_steps >= 0; got "
                         f"{num_frames}, {interval_steps}, {equilibration_steps}")
    integrator = openmm.LangevinMiddleIntegrator(temperature * unit.kelvin, FRICTION_PER_PS / unit.picosecond,
                                                 TIMESTEP_FS * unit.femtosecond)
    integrator.setRandomNumberSeed(seed)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName(platform))
    if box is not None:
        context.setPeriodicBoxVectors(*box)
    context.setPositions(positions)
    if minimize:
        openmm.LocalEnergyMinimizer.minimize(context, 10.0, 200)
    context.setVelocitiesToTemperature(temperature * unit.kelvin, seed)
    integrator.step(equilibration_steps)
    out_positions, out_boxes = [], []
    periodic = system.usesPeriodicBoundaryConditions()
    for k in range(num_frames):
        integrator.step(interval_steps)
        state = context.getState(getPositions=True, enforcePeriodicBox=periodic)
        out_positions.append(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
        # A System without periodic forces has no box: the frame format stores zeros (frames.py).
        out_boxes.append(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer) if periodic
                         else np.zeros((3, 3)))
        if on_frame is not None:
            on_frame(k)
    return np.array(out_positions), np.array(out_boxes)


def sample_teacher(teacher: Teacher, positions: np.ndarray, temperatures: Sequence[float], frames_per_temperature: int,
                   interval_steps: int = 100, equilibration_steps: int = 4000, seed: int = 1,
                   box: Optional[np.ndarray] = None, progress: bool = True) -> Frames:
    """Teacher MD at each temperature from ``positions`` [N, 3] nm; frames labelled by the teacher.

    One independent trajectory per temperature (seed ``seed * 1000 + k``), a frame every
    ``interval_steps`` of 0.5 fs after ``equilibration_steps``.
    """
    if frames_per_temperature < 1:
        raise ValueError(f"sample_teacher: frames_per_temperature must be at least 1, got {frames_per_temperature}")
    if not temperatures or any(not np.isfinite(t) or t <= 0 for t in temperatures):
        raise ValueError(f"sample_teacher: temperatures must be positive (K), got {list(temperatures)}")
    parts = []
    for k, temperature in enumerate(temperatures):
        frame_positions, frame_boxes = langevin_frames(teacher.system, positions, box, temperature, frames_per_temperature,
                                                       interval_steps, equilibration_steps, seed * 1000 + k, teacher.platform)
        parts.append(teacher.frames(frame_positions, frame_boxes, np.full(frames_per_temperature, temperature)))
        if progress:
            print(f"  {temperature:.0f} K: {frames_per_temperature} frames", flush=True)
    return concatenate(parts)
