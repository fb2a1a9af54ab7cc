"""Device fixtures of the op tests: an op's CPU and CUDA cases live in one file.

``device`` runs a test on the CPU and, marked ``gpu``, on CUDA; ``cuda_device`` is for the tests that
compare CUDA with the CPU (mark them ``gpu``). CUDA cases skip themselves without a CUDA device or
without the library's CUDA kernels; ``tests/gpu/run.sh`` runs them (``pytest -m gpu``).
"""

import pytest
import torch

import openmmnnp


def _skip_without_cuda_ops() -> None:
    if not torch.cuda.is_available() or not openmmnnp.cuda_ops_available():
        pytest.skip("needs CUDA and the CUDA ops")


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request) -> str:
    if request.param == "cuda":
        _skip_without_cuda_ops()
    return request.param


@pytest.fixture
def cuda_device() -> str:
    _skip_without_cuda_ops()
    return "cuda"
