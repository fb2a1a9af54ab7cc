"""CUDA se_a_descriptor agrees with the CPU op, forward and backward."""

import pytest
import torch

import openmmnnp
from openmmnnp.ops.descriptor import se_a_descriptor

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available() or not openmmnnp.cuda_ops_available(), reason="needs CUDA and the CUDA ops"),
]


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("atoms, m, axis", [(300, 100, 16), (5, 8, 8), (0, 4, 2)])
def test_cuda_equals_cpu(dtype, tol, atoms, m, axis):
    torch.manual_seed(atoms + m + axis)
    t = torch.randn(atoms, m, 4, dtype=dtype)
    grad = torch.randn(atoms, m * axis, dtype=dtype)
    results = []
    for device in ("cpu", "cuda"):
        x = t.to(device).requires_grad_(True)
        d = se_a_descriptor(x, axis)
        (g,) = torch.autograd.grad(d, x, grad.to(device))
        results.append((d.detach().cpu(), g.cpu()))
    for a, b in zip(*results):
        torch.testing.assert_close(b, a, rtol=tol, atol=tol)
