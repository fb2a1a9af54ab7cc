"""Langevin MD runs that record what a person checks: temperature, potential energy, volume, frames.

Shared by the water example (the README's main command) and the water-model validation, so both
run the same protocol: LangevinMiddle at the data's friction (1/ps) and time step (0.5 fs), an
optional Monte Carlo barostat, the overflow checks of NNP forces through
:class:`openmmnnp.NNPCheckReporter` (their warnings are recorded), and a progress bar.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from typing import List, Optional

import numpy as np
import openmm
import openmm.app as app
from openmm import unit

from openmmnnp.data.teacher import FRICTION_PER_PS, TIMESTEP_FS
from openmmnnp.reporter import NNPCheckReporter, nnp_flags_tags

BOLTZMANN_KJ_PER_MOL_K = unit.MOLAR_GAS_CONSTANT_R.value_in_unit(unit.kilojoule_per_mole / unit.kelvin)


@dataclasses.dataclass
class Run:
    """What a run recorded. Series [S] every ``report_interval`` steps; frames [F] every
    ``sample_interval`` steps after equilibration."""

    label: str
    time_ps: np.ndarray
    temperature: np.ndarray  # K
    potential_energy: np.ndarray  # kJ/mol
    volume: np.ndarray  # nm^3
    positions: np.ndarray  # [F, N, 3] nm
    boxes: np.ndarray  # [F, 3, 3] nm
    ns_per_day: float
    warnings: List[str]
    equilibration_ps: float

    def after_equilibration(self, series: np.ndarray) -> np.ndarray:
        return series[self.time_ps > self.equilibration_ps]


def best_platform(name: Optional[str] = None) -> openmm.Platform:
    """The named OpenMM platform, else the fastest available of CUDA, CPU, Reference."""
    if name:
        return openmm.Platform.getPlatformByName(name)
    available = {openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())}
    return openmm.Platform.getPlatformByName(next(p for p in ("CUDA", "CPU", "Reference") if p in available))


def degrees_of_freedom(system: openmm.System) -> int:
    """3N minus constraints, minus 3 when a CMMotionRemover removes the centre-of-mass motion (as
    OpenMM's StateDataReporter counts)."""
    dof = 3 * sum(1 for i in range(system.getNumParticles()) if system.getParticleMass(i) > 0 * unit.dalton)
    dof -= system.getNumConstraints()
    if any(isinstance(f, openmm.CMMotionRemover) for f in system.getForces()):
        dof -= 3
    return dof


def langevin(label: str, system: openmm.System, topology: app.Topology, positions: np.ndarray, platform: openmm.Platform,
             steps: int, temperature: float = 300.0, pressure: Optional[float] = None, seed: int = 1,
             equilibration_steps: int = 0, report_interval: int = 100, sample_interval: int = 100,
             check_interval: int = 100, box: Optional[np.ndarray] = None, progress: bool = True) -> Run:
    """Langevin MD at ``temperature`` K (NPT at ``pressure`` bar if given) from ``positions`` [N, 3] nm.

    A short minimisation (50 iterations) precedes the run; velocities are drawn at ``temperature``.
    NNP forces are checked every ``check_interval`` steps; their warnings are kept in ``Run.warnings``.
    """
    from tqdm import tqdm

    system = system.__copy__() if pressure is None else _with_barostat(system, pressure, temperature)
    integrator = openmm.LangevinMiddleIntegrator(temperature * unit.kelvin, FRICTION_PER_PS / unit.picosecond,
                                                 TIMESTEP_FS * unit.femtosecond)
    integrator.setRandomNumberSeed(seed)
    simulation = app.Simulation(topology, system, integrator, platform)
    if box is not None:
        simulation.context.setPeriodicBoxVectors(*box)
    simulation.context.setPositions(positions)
    simulation.minimizeEnergy(maxIterations=50)
    simulation.context.setVelocitiesToTemperature(temperature * unit.kelvin, seed)
    if nnp_flags_tags(system)[1]:  # NNPForces whose models record overflow flags (not the teacher's System)
        simulation.reporters.append(NNPCheckReporter(check_interval))
    dof = degrees_of_freedom(system)
    series = {"time": [], "temperature": [], "potential": [], "volume": []}
    frames, boxes = [], []
    periodic = system.usesPeriodicBoundaryConditions()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        start = time.time()
        with tqdm(total=steps, desc=label, unit="step", disable=not progress, mininterval=2.0) as bar:
            done = 0
            while done < steps:
                chunk = min(report_interval, steps - done)
                simulation.step(chunk)
                done += chunk
                bar.update(chunk)
                take_frame = done > equilibration_steps and done % sample_interval < chunk
                state = simulation.context.getState(getEnergy=True, getPositions=take_frame, enforcePeriodicBox=periodic)
                kinetic = state.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole)
                series["time"].append(done * TIMESTEP_FS / 1000.0)
                series["temperature"].append(2.0 * kinetic / (dof * BOLTZMANN_KJ_PER_MOL_K))
                series["potential"].append(state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
                vectors = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer)
                series["volume"].append(float(np.prod(np.diag(vectors))))
                if take_frame:
                    frames.append(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
                    boxes.append(vectors)
                if progress:
                    bar.set_postfix(T=f"{series['temperature'][-1]:.0f}K", refresh=False)
        elapsed = time.time() - start
    n = topology.getNumAtoms()
    return Run(label, np.array(series["time"]), np.array(series["temperature"]), np.array(series["potential"]),
               np.array(series["volume"]), np.array(frames).reshape(-1, n, 3), np.array(boxes).reshape(-1, 3, 3),
               steps * TIMESTEP_FS * 1e-6 / (elapsed / 86400.0), [str(w.message) for w in caught],
               equilibration_steps * TIMESTEP_FS / 1000.0)


def _with_barostat(system: openmm.System, pressure: float, temperature: float) -> openmm.System:
    copy = system.__copy__()
    copy.addForce(openmm.MonteCarloBarostat(pressure * unit.bar, temperature * unit.kelvin, 25))
    return copy


def density(run: Run, system: openmm.System) -> np.ndarray:
    """Mass density [S] g/cm^3 of the run's volumes."""
    mass = sum(system.getParticleMass(i).value_in_unit(unit.dalton) for i in range(system.getNumParticles()))
    grams = mass * 1.66053906660e-24
    return grams / (run.volume * 1e-21)
