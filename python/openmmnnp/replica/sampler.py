"""Parallel tempering of NNP systems with openmmtools' ``multistate``, stopping on the first failure.

openmmtools' integrator moves treat any exception of a step as a numerical accident: they warn,
restart the step up to ``n_restart_attempts`` times and then report a NaN. An openmm-nnp overflow
check (:mod:`openmmnnp.checks`) is no accident: a retry from the same state meets it again, and
the user must learn what overflowed, where. So :class:`StrictLangevinDynamicsMove` stops at the
first failed step with its message, and :class:`NNPParallelTemperingSampler` names the replica,
its thermodynamic state and the iteration. Both run inside ``mpiplus.distribute``, which hands an
exception of one rank to every rank, so no rank is left waiting for one that has failed.

Both classes are stored by name in the sampler's netCDF file: ``from_storage`` finds them here.
"""

from __future__ import annotations

import math
import re
from typing import Any

import openmm
import openmm.unit as unit
from openmmtools import mcmc
from openmmtools.multistate import ParallelTemperingSampler

OVERFLOW_PREFIX = "openmm-nnp (call "  # how the models' in-model checks begin their errors (models/se_e2_a.py)


class ReplicaError(RuntimeError):
    """A replica failed: its message names the replica, its state and temperature, and the cause.

    One string argument only: mpiplus re-creates exceptions as ``type(e)(message)`` to send them
    to the other ranks.
    """


class StrictLangevinDynamicsMove(mcmc.LangevinDynamicsMove):
    """``LangevinDynamicsMove`` (``LangevinMiddleIntegrator``) without restarts.

    An exception from a step (an NNP overflow check, a NaN coordinate) and a non-finite energy
    after the steps end the move with their own message; the sampler state is left unchanged.
    """

    def apply(self, thermodynamic_state: Any, sampler_state: Any, context_cache: Any = None) -> None:
        integrator = self._get_integrator(thermodynamic_state)
        context, integrator = self._get_context_cache(context_cache).get_context(thermodynamic_state, integrator)
        sampler_state.apply_to_context(context, ignore_velocities=self.reassign_velocities)
        if self.reassign_velocities:
            context.setVelocitiesToTemperature(thermodynamic_state.temperature)
        self._before_integration(context, thermodynamic_state)
        integrator.step(self.n_steps)
        state = context.getState(getPositions=True, getVelocities=True, getEnergy=True,
                                 enforcePeriodicBox=thermodynamic_state.is_periodic)
        energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        if not math.isfinite(energy):
            raise openmm.OpenMMException(f"the potential energy is {energy} kJ/mol after {self.n_steps} steps")
        self._after_integration(context, thermodynamic_state)
        # Positions, velocities and box from the State; collective variables exist only in the Context.
        sampler_state.update_from_context(state, ignore_collective_variables=True)
        sampler_state.update_from_context(context, ignore_positions=True, ignore_velocities=True,
                                          ignore_collective_variables=False)


def describe_failure(error: BaseException) -> str:
    """One line for an exception from OpenMM: an NNP overflow check's own line when there is one.

    openmm-torch wraps a model's exception in the TorchScript interpreter's traceback; the line
    that matters is the model's ``openmm-nnp (call N): ...``.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in reversed(lines):  # the message is last; the traceback above quotes the raising source line
        start = line.find(OVERFLOW_PREFIX)
        if start >= 0:
            return "NNP overflow check failed: " + line[start:]
    return f"{type(error).__name__}: {lines[-1] if lines else ''}"


def error_line(error: BaseException) -> str:
    """The last line of an error's message without mpiplus's wrapping: the line a user needs.

    An error that mpiplus received from another rank carries that rank's traceback, ending in
    ``module.Class: Node k/K: message``; the local rank's own is ``Node k/K: message``.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    line = re.sub(r"^[\w.]+(Error|Exception): ", "", lines[-1])
    node = re.match(r"^Node (\d+)/(\d+): ", line)
    if node:  # mpiplus counts nodes from 1
        line = f"(from rank {int(node.group(1)) - 1}) " + line[node.end():]
    return line


class NNPParallelTemperingSampler(ParallelTemperingSampler):
    """openmmtools' ``ParallelTemperingSampler`` whose failures name the replica and state.

    Use with :class:`StrictLangevinDynamicsMove` so that a failed step is reported at once (the
    default moves retry it and end with "NaN").
    """

    _citations_shown = False  # openmmtools prints them at create and again at from_storage: once is enough

    def _display_citations(self, overwrite_global: bool = False, citation_stack: Any = None) -> None:
        if NNPParallelTemperingSampler._citations_shown and not overwrite_global:
            return
        NNPParallelTemperingSampler._citations_shown = True
        super()._display_citations(overwrite_global=overwrite_global, citation_stack=citation_stack)

    def _replica_error(self, action: str, replica_id: int, error: BaseException) -> ReplicaError:
        state_id = int(self._replica_thermodynamic_states[replica_id])
        temperature = self._thermodynamic_states[state_id].temperature.value_in_unit(unit.kelvin)
        return ReplicaError(f"{action} replica {replica_id} in state {state_id} ({temperature:g} K) at iteration "
                            f"{self._iteration}: {describe_failure(error)}")

    def _propagate_replica(self, replica_id: int) -> Any:
        try:
            return super()._propagate_replica(replica_id)
        except Exception as error:
            raise self._replica_error("propagating", replica_id, error) from error

    def _compute_replica_energies(self, replica_id: int) -> Any:
        try:
            return super()._compute_replica_energies(replica_id)
        except Exception as error:
            raise self._replica_error("computing the energies of", replica_id, error) from error
