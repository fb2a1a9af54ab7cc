"""Replica exchange of NNP systems with openmmtools' ``multistate``, on one process or over MPI.

:mod:`openmmnnp.replica.sampler` holds the sampler and move (failures name the replica and
state), :mod:`openmmnnp.replica.placement` chooses each MPI rank's platform, GPU and threads,
:mod:`openmmnnp.replica.mixing` plots which replica visited which temperature. The command line
front end is ``examples/replica_exchange.py``; docs/scale-out.md explains how to run it.
"""

from openmmnnp.replica.placement import Placement, PlatformChoice, choose_platform, default_threads, mpi_placement
from openmmnnp.replica.sampler import NNPParallelTemperingSampler, ReplicaError, StrictLangevinDynamicsMove

__all__ = ["NNPParallelTemperingSampler", "Placement", "PlatformChoice", "ReplicaError", "StrictLangevinDynamicsMove",
           "choose_platform", "default_threads", "mpi_placement"]
