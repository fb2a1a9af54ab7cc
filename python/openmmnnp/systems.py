"""Systems made from other Systems: the NNP in place of a classical force field."""

from __future__ import annotations

import copy
from typing import Optional

import openmm
import openmm.app

from openmmnnp.force import ModelLike, NNPForce


def nnp_system(system: openmm.System, topology: openmm.app.Topology, model: ModelLike,
               properties: Optional[dict] = None, check_frequency: Optional[int] = None) -> openmm.System:
    """A copy of ``system`` whose forces are replaced by the NNP on all atoms (masses, box, constraints
    and the centre-of-mass motion remover kept).

    Periodic when ``system`` is, or when the topology has a box (a bare System without forces is not
    periodic in OpenMM's eyes): the NNP then sees the System's box. ``properties`` go to openmm-torch
    (e.g. ``{"useCUDAGraphs": "true"}``), ``check_frequency`` to :func:`openmmnnp.NNPForce`.
    """
    periodic = system.usesPeriodicBoundaryConditions() or topology.getPeriodicBoxVectors() is not None
    nnp = copy.deepcopy(system)
    for index in reversed(range(nnp.getNumForces())):
        if not isinstance(nnp.getForce(index), openmm.CMMotionRemover):
            nnp.removeForce(index)
    nnp.addForce(NNPForce(model, topology, system=nnp, periodic=periodic, properties=properties,
                          check_frequency=check_frequency))
    return nnp
