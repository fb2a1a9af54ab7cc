"""The sampler's storage: openmmtools' two netCDF files, created so that a killed run leaves none half-made.

openmmtools writes a new storage in place: the System (the NNP model inside it, several MB of
XML), options and the first sampler states take seconds, and a run killed meanwhile leaves files
that neither resume nor a new run can use. Here they are written under temporary names and
renamed when complete (:mod:`openmmnnp.atomic_write`); from then on openmmtools appends to them
and records each complete iteration last, so a killed run resumes from its last complete one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Union

import mpiplus
from openmmtools.multistate import MultiStateReporter

from openmmnnp.atomic_write import atomic_path

PathLike = Union[str, os.PathLike]


def checkpoint_path(storage: PathLike) -> Path:
    """The second file, which openmmtools names after the first: positions, velocities and boxes."""
    path = Path(storage)
    return path.with_name(f"{path.stem}_checkpoint{path.suffix}")


def create_storage(storage: PathLike, checkpoint_interval: int, create: Callable[[MultiStateReporter], None]) -> None:
    """Calls ``create(reporter)`` (a sampler's ``create``) on every MPI rank; rank 0 writes the files.

    On rank 0 the reporter writes temporary files next to ``storage``, which are renamed to
    ``storage`` and its checkpoint file once ``create`` has returned (the checkpoint first, so a
    storage file never exists without it). The ranks then wait for each other, so that none opens
    the storage before it has its name. Open it with ``from_storage`` to run.
    """
    comm = mpiplus.get_mpicomm()
    if comm is not None and comm.rank != 0:
        create(MultiStateReporter(str(storage), checkpoint_interval=checkpoint_interval))  # rank 0 alone opens it
    else:
        with atomic_path(storage) as main, atomic_path(checkpoint_path(storage)) as checkpoint:
            reporter = MultiStateReporter(str(main), checkpoint_storage=checkpoint.name,
                                          checkpoint_interval=checkpoint_interval)
            try:
                create(reporter)
            finally:
                reporter.close()
    if comm is not None:
        comm.barrier()
