"""CUDA tabulate_fusion agrees with the CPU op (forward and backward), padding included."""

import math

import pytest
import torch

import openmmnnp
from openmmnnp.ops import tabulate_fusion
from compression.fusion_reference import random_problem

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available() or not openmmnnp.cuda_ops_available(), reason="needs CUDA and the CUDA ops"),
]


def to_cuda(problem):
    return tuple(x.cuda() if isinstance(x, torch.Tensor) else x for x in problem)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("num_atoms, num_edges", [(7, 60), (300, 5000)])
def test_cuda_matches_cpu(dtype, tol, num_atoms, num_edges):
    cpu = random_problem(num_atoms=num_atoms, num_edges=num_edges, dtype=dtype, seed=11)
    gpu = to_cuda(cpu)
    weight = torch.randn(num_atoms, cpu[0].shape[2], 4, dtype=dtype)
    results = []
    for table, info, s, r, center, ti, n in (cpu, gpu):
        s, r = s.clone().requires_grad_(True), r.clone().requires_grad_(True)
        out = tabulate_fusion(table, info, s, r, center, ti, n)
        (out * weight.to(out.device)).sum().backward()
        results.append([out.detach().cpu(), s.grad.cpu(), r.grad.cpu()])
    for a, b in zip(*results):
        assert (a - b).abs().max() <= tol * max(1.0, a.abs().max().item())


def test_cuda_padding_contributes_nothing():
    table, info, s, r, center, ti, n = to_cuda(random_problem(seed=12))
    pad = ti < 0
    base = tabulate_fusion(table, info, s, r, center, ti, n)
    s2, r2, c2 = s.clone(), r.clone(), center.clone()
    s2[pad], r2[pad], c2[pad] = math.nan, math.inf, 10**9
    s2.requires_grad_(True)
    out = tabulate_fusion(table, info, s2, r2, c2, ti, n)
    assert torch.equal(out, base)
    out.sum().backward()
    assert torch.all(s2.grad[pad] == 0)


def test_cuda_extreme_inputs_stay_in_range():
    table, info, s, r, center, ti, n = to_cuda(random_problem(num_edges=4, seed=13))
    ti[:] = 0
    s = torch.tensor([math.inf, -1e30, 1e30, 0.5], dtype=torch.float64, device="cuda")
    out = tabulate_fusion(table, info, s, r, center, ti, n)
    torch.cuda.synchronize()
    assert torch.isfinite(out[center[0]]).all()
