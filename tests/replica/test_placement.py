"""openmmnnp.replica.placement and the one-line errors: platform, threads and GPU choice per rank."""

from __future__ import annotations

import openmm
import pytest
import torch

from openmmnnp.replica import Placement, choose_platform, default_threads, mpi_placement
from openmmnnp.replica.placement import available_cores
from openmmnnp.replica.sampler import ReplicaError, describe_failure, error_line


def test_without_mpi_this_process_is_rank_zero_of_one():
    assert mpi_placement() == Placement(rank=0, size=1, local_rank=0, local_size=1)


def test_cores_are_shared_among_the_ranks_of_a_node():
    cores = available_cores()
    assert default_threads(Placement()) == cores
    assert default_threads(Placement(rank=1, size=2, local_rank=1, local_size=2)) == max(1, cores // 2)
    assert default_threads(Placement(rank=5, size=64, local_rank=5, local_size=4 * cores)) == 1


def test_cpu_platform_with_its_threads_and_a_sentence():
    before = torch.get_num_threads()
    try:
        choice = choose_platform(Placement(rank=1, size=2, local_rank=1, local_size=2), 1, "CPU")
        assert choice.platform.getName() == "CPU"
        assert choice.properties == {"Threads": "1"}
        assert torch.get_num_threads() == 1
        assert choice.description == "rank 1 of 2 (local rank 1 of 2): platform CPU, 1 CPU thread(s)"
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_default_without_cuda_is_cpu_and_cuda_request_is_refused():
    before = torch.get_num_threads()
    try:
        assert choose_platform(Placement(), 1).platform.getName() == "CPU"
        with pytest.raises(ValueError, match="CUDA"):
            choose_platform(Placement(), 1, "CUDA")
    finally:
        torch.set_num_threads(before)


def test_bad_platform_or_threads_are_refused():
    with pytest.raises(ValueError, match="not available"):
        choose_platform(Placement(), 1, "OpenCL-that-does-not-exist")
    with pytest.raises(ValueError, match="at least 1"):
        choose_platform(Placement(), 0, "CPU")


def test_overflow_message_is_taken_from_the_torchscript_traceback():
    # What openmm-torch raises: the interpreter's traceback quotes the raising line, then the message.
    text = ('The following operation failed in the TorchScript interpreter.\n'
            '  File "code/__torch__/openmmnnp/compression/se_e2_a_compressed.py", line 270, in forward\n'
            '        _72 = torch.add("openmm-nnp (call ", str(calls2))\n'
            '                raise RuntimeError("openmm-nnp (call " + str(self.calls) + "): " + error)\n'
            'builtins.RuntimeError: openmm-nnp (call 6): 1 neighbour pairs lie beyond the compression tables. \n')
    assert describe_failure(openmm.OpenMMException(text)) == (
        "NNP overflow check failed: openmm-nnp (call 6): 1 neighbour pairs lie beyond the compression tables.")
    assert describe_failure(ValueError("first\nParticle coordinate is NaN.\n")) == "ValueError: Particle coordinate is NaN."


def test_error_line_drops_mpiplus_wrapping():
    received = ReplicaError("Node 1/2 received an exception from another MPI process. Original stack trace follow:\n"
                            "    Traceback (most recent call last):\n      File \"x.py\", line 1\n"
                            "    openmmnnp.replica.sampler.ReplicaError: Node 2/2: propagating replica 1 in state 3: boom\n    ")
    assert error_line(received) == "(from rank 1) propagating replica 1 in state 3: boom"
    assert error_line(ReplicaError("Node 1/2: propagating replica 0 in state 2: boom")) == (
        "(from rank 0) propagating replica 0 in state 2: boom")
    assert error_line(FileExistsError("the storage x.nc exists")) == "the storage x.nc exists"
