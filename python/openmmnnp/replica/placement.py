"""Where an MPI rank runs: its rank, its local rank on the node, its platform, device and threads.

OpenMM and openmm-torch run one Context on one GPU, so replica exchange scales out by giving
each MPI rank its own GPU: the rank's *local* rank (its index among the ranks on the same node)
chooses one of the GPUs that node shows it. Without CUDA every rank runs on the CPU platform,
and the node's cores are shared out so that K ranks do not each start one thread per core.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import openmm
import torch


@dataclass(frozen=True)
class Placement:
    """This process in the MPI job: rank of size ranks; local_rank of local_size ranks on this node."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1


@dataclass(frozen=True)
class PlatformChoice:
    """An OpenMM platform with its properties for this rank, and a sentence saying what was chosen."""

    platform: openmm.Platform
    properties: dict[str, str]
    description: str


def mpi_placement() -> Placement:
    """This process's place in the MPI job (a single process without MPI).

    Uses mpiplus, as openmmtools' samplers do, so that both agree on whether MPI is active
    (mpiplus reads the launcher's environment, e.g. PMI_RANK of MPICH's mpiexec). The local
    rank comes from splitting the communicator by shared memory, which works for every MPI.
    """
    import mpiplus

    comm = mpiplus.get_mpicomm()
    if comm is None:
        return Placement()
    from mpi4py import MPI

    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    placement = Placement(comm.rank, comm.size, local.rank, local.size)
    local.Free()
    return placement


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, which a batch scheduler sets)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_threads(placement: Placement) -> int:
    """The node's cores shared out evenly among its ranks, at least one each."""
    return max(1, available_cores() // placement.local_size)


def platform_names() -> list[str]:
    return [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]


def choose_platform(placement: Placement, threads: int, name: Optional[str] = None) -> PlatformChoice:
    """The platform for this rank, with torch and OpenMM set to ``threads`` CPU threads.

    Args:
        placement: this rank's place (:func:`mpi_placement`).
        threads: CPU threads for torch (the NNP on the CPU) and OpenMM's CPU platform.
        name: "CUDA", "CPU" or "Reference"; default CUDA when OpenMM has it and torch sees a
            GPU, else CPU.

    With CUDA the rank takes GPU ``local_rank % device_count`` of those its node shows it
    (``CUDA_VISIBLE_DEVICES``), for OpenMM (``DeviceIndex``) and for torch alike.

    Raises:
        ValueError: an unknown platform name, a non-positive thread count, or CUDA requested
            where it is missing.
    """
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    available = platform_names()
    cuda_ready = "CUDA" in available and torch.cuda.is_available()
    if name is None:
        name = "CUDA" if cuda_ready else "CPU"
    if name not in available:
        raise ValueError(f"OpenMM platform {name!r} is not available here; available: {available}")
    if name == "CUDA" and not cuda_ready:
        raise ValueError("the CUDA platform was requested but torch sees no GPU (is openmm-nnp[cu13] installed?)")
    # torch runs the NNP inside this process, OpenMM's CPU platform its own forces and integrator.
    torch.set_num_threads(threads)
    where = f"rank {placement.rank} of {placement.size} (local rank {placement.local_rank} of {placement.local_size})"
    if name == "CUDA":
        devices = torch.cuda.device_count()
        device = placement.local_rank % devices
        torch.cuda.set_device(device)
        shared = " (shared: more ranks than GPUs on this node)" if placement.local_size > devices else ""
        return PlatformChoice(openmm.Platform.getPlatformByName(name), {"DeviceIndex": str(device)},
                              f"{where}: platform CUDA, GPU {device} of {devices} visible{shared}")
    properties = {"Threads": str(threads)} if name == "CPU" else {}
    return PlatformChoice(openmm.Platform.getPlatformByName(name), properties,
                          f"{where}: platform {name}, {threads} CPU thread(s)")
