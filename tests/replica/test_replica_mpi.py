"""examples/replica_exchange.py under `mpiexec -n 2`: replicas on two ranks, one thread each.

Needs the mpi extra (mpi4py and the mpich wheel's mpiexec), which scripts/bootstrap.sh installs;
without it the tests skip and say so.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import openmmnnp
from replica.energy_oracle import reduced_energies, stored_iterations, water_topology, worst_relative_error
from replica.example_runner import (MPI_EXTRA_MISSING, OVERFLOW_STATE, OVERFLOW_TEMPERATURES, SMALL, mpiexec,
                                    overflowing_model, run_example)

pytest.importorskip("mpi4py", reason=MPI_EXTRA_MISSING)
if mpiexec() is None:
    pytest.skip(MPI_EXTRA_MISSING, allow_module_level=True)

MODEL = openmmnnp.pretrained_path("water-se_e2_a-compressed")


def test_two_ranks_complete_with_consistent_energies(tmp_path):
    result = run_example([*SMALL, "--temperatures", "300", "315", "330", "345", "--iterations", "3", "--storage", "rx.nc"],
                         ranks=2, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for rank in (0, 1):  # each rank says where it runs, with one thread
        assert f"rank {rank} of 2 (local rank {rank} of 2): platform CPU, 1 CPU thread(s)" in result.stdout
    assert "3 iterations on 2 rank(s)" in result.stdout
    assert stored_iterations(tmp_path / "rx.nc") == 3
    stored, recomputed = reduced_energies(tmp_path / "rx.nc", MODEL, water_topology(1.0))
    assert stored.shape == (4, 4, 4) and np.all(np.isfinite(stored))
    error = worst_relative_error(stored, recomputed)
    assert error <= 1e-5, error


def test_overflow_on_one_rank_stops_both_with_the_error(tmp_path):
    """Only the 100000 K replica overflows, on whichever rank holds it: the job ends, naming it."""
    model = overflowing_model(tmp_path / "overflowing.pt")
    result = run_example([*SMALL, *OVERFLOW_TEMPERATURES, "--iterations", "6", "--storage", "ov.nc", "--model", str(model),
                          "--check-every", "1"], ranks=2, cwd=tmp_path)
    assert result.returncode != 0, result.stdout[-3000:] + result.stderr[-3000:]
    # (a rank's error can follow rank 0's progress bar on the same line of the shared stderr)
    errors = re.findall(r"replica_exchange\.py: error on rank \d: .*", result.stderr)
    assert errors, result.stderr[-3000:]
    for line in errors:
        assert re.search(r"propagating replica \d in " + re.escape(OVERFLOW_STATE) + r" at iteration \d: "
                         r"NNP overflow check failed: openmm-nnp \(call \d+\): ", line), line
