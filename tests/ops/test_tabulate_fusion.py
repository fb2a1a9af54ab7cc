"""The reference op torch.ops.openmmnnp.tabulate_fusion (CPU and CUDA): forward and backward against
the unfused torch expression, finite differences, padding, bad input, CUDA against the CPU."""

import math

import pytest
import torch

import openmmnnp  # noqa: F401  (loads the op library)
from openmmnnp.ops.reference import tabulate_fusion
from openmmnnp.compression import build_tables, evaluate_table
from compression.embedding_nets import embedding_net
from ops.fusion_reference import random_problem, unfused_tabulate_fusion


def on(device, problem):
    return tuple(x.to(device) if isinstance(x, torch.Tensor) else x for x in problem)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_forward_matches_unfused(dtype, tol):
    table, info, s, r, center, ti, n = random_problem(dtype=dtype)
    got = tabulate_fusion(table, info, s, r, center, ti, n)
    ref = unfused_tabulate_fusion(table, info, s, r, center, ti, n)
    assert got.shape == (n, table.shape[2], 4) and got.dtype == dtype
    assert (got - ref).abs().max() <= tol * max(1.0, ref.abs().max().item())


def test_backward_matches_unfused_autograd():
    table, info, s, r, center, ti, n = random_problem(seed=4)
    weight = torch.randn(n, table.shape[2], 4, dtype=torch.float64)
    grads = []
    for fn in (tabulate_fusion, unfused_tabulate_fusion):
        s1, r1 = s.clone().requires_grad_(True), r.clone().requires_grad_(True)
        (fn(table, info, s1, r1, center, ti, n) * weight).sum().backward()
        grads.append((s1.grad, r1.grad))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-10)
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-12)
    # Padded edges get zero gradient.
    assert torch.all(grads[0][0][ti < 0] == 0) and torch.all(grads[0][1][ti < 0] == 0)


def test_gradcheck_finite_differences():
    table, info, s, r, center, ti, n = random_problem(num_atoms=4, num_edges=20, seed=2)
    s, r = s.requires_grad_(True), r.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda s_, r_: tabulate_fusion(table, info, s_, r_, center, ti, n), (s, r), eps=1e-6, atol=1e-7)


def test_padding_contributes_nothing(device):
    table, info, s, r, center, ti, n = on(device, random_problem(seed=7))
    pad = ti < 0
    assert pad.any()
    base = tabulate_fusion(table, info, s, r, center, ti, n)
    # Garbage in every padded slot: NaN inputs, out-of-range centers.
    s2, r2, c2 = s.clone(), r.clone(), center.clone()
    s2[pad], r2[pad], c2[pad] = math.nan, math.inf, 10**9
    s2.requires_grad_(True)
    out = tabulate_fusion(table, info, s2, r2, c2, ti, n)
    assert torch.equal(out, base)
    out.sum().backward()
    assert torch.all(s2.grad[pad] == 0)
    # Same as dropping the padded edges altogether.
    keep = ~pad
    assert torch.allclose(tabulate_fusion(table, info, s[keep], r[keep], center[keep], ti[keep], n), base, atol=1e-13)


def test_sum_is_order_independent_and_deterministic():
    table, info, s, r, center, ti, n = random_problem(seed=3)
    perm = torch.randperm(s.shape[0], generator=torch.Generator().manual_seed(0))
    a = tabulate_fusion(table, info, s, r, center, ti, n)
    b = tabulate_fusion(table, info, s[perm], r[perm], center[perm], ti[perm], n)
    assert torch.allclose(a, b, atol=1e-13)
    assert torch.equal(a, tabulate_fusion(table, info, s, r, center, ti, n))


def test_extreme_inputs_stay_in_range(device):
    table, info, s, r, center, ti, n = on(device, random_problem(num_edges=5, seed=1))
    ti[:] = 0
    s = torch.tensor([math.nan, math.inf, -math.inf, 1e300, -1e300], dtype=torch.float64, device=device)
    out = tabulate_fusion(table, info, s, r, center, ti, n)
    assert torch.isnan(out[center[0]]).all()  # NaN propagates to its atom
    only_inf = tabulate_fusion(table, info, s[1:2], r[1:2], center[1:2], ti[1:2], n)
    assert torch.isfinite(only_inf).all()  # +inf is clamped to the end of the table


def test_double_backward_raises():
    table, info, s, r, center, ti, n = random_problem(seed=5)
    s = s.requires_grad_(True)
    energy = tabulate_fusion(table, info, s, r, center, ti, n).square().sum()
    (ds,) = torch.autograd.grad(energy, s, create_graph=False)  # first derivatives work
    assert ds.shape == s.shape
    energy = tabulate_fusion(table, info, s, r, center, ti, n).square().sum()
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(energy, s, create_graph=True)


def test_bad_input_raises_clear_errors():
    table, info, s, r, center, ti, n = random_problem(seed=6)
    with pytest.raises(RuntimeError, match="center"):
        tabulate_fusion(table, info, s, r, torch.where(ti >= 0, center + n, center), ti, n)
    with pytest.raises(RuntimeError, match="table_index"):
        tabulate_fusion(table, info, s, r, center, ti + table.shape[0], n)
    with pytest.raises(RuntimeError, match="dtype"):
        tabulate_fusion(table, info, s.float(), r, center, ti, n)
    with pytest.raises(RuntimeError, match="r_hat"):
        tabulate_fusion(table, info, s, r[:, :3], center, ti, n)
    with pytest.raises(RuntimeError, match="table"):
        tabulate_fusion(table[..., :5], info, s, r, center, ti, n)
    with pytest.raises(RuntimeError, match="detached"):
        tabulate_fusion(table.clone().requires_grad_(True), info, s, r, center, ti, n)


def test_torchscript_front_end():
    table, info, s, r, center, ti, n = random_problem(seed=8)
    scripted = torch.jit.script(tabulate_fusion)
    assert torch.equal(scripted(table, info, s, r, center, ti, n), tabulate_fusion(table, info, s, r, center, ti, n))


def test_meta_kernels_give_shapes():
    table, info, s, r, center, ti, n = (x.to("meta") if isinstance(x, torch.Tensor) else x for x in random_problem(seed=9))
    out = torch.ops.openmmnnp.tabulate_fusion(table, info, s, r, center, ti, n)
    assert out.shape == (n, table.shape[2], 4) and out.device.type == "meta"
    ds, dr = torch.ops.openmmnnp.tabulate_fusion_backward(table, info, s, r, center, ti, out)
    assert ds.shape == s.shape and dr.shape == r.shape


def test_without_extrapolation_table_values_clamp_at_upper():
    table, info = build_tables([embedding_net([4, 8], seed=1)], 0.0, 1.0, stride=0.05, extrapolate=1.0)
    assert info[2] == info[1]  # no second table
    s = torch.tensor([-0.1, 0.3, 0.99, 1.0, 3.0], dtype=torch.float64, requires_grad=True)
    r = torch.ones(5, 4, dtype=torch.float64)
    center = torch.arange(5)
    out = tabulate_fusion(table, info, s, r, center, torch.zeros(5, dtype=torch.int64), 5)
    value, slope = evaluate_table(table[0], info, s.detach())
    assert torch.allclose(out[:, :, 0], value, atol=1e-13)
    assert torch.allclose(out[3], out[4])  # clamped beyond upper
    out[:, :, 0].sum().backward()
    assert torch.allclose(s.grad, slope.sum(1), atol=1e-12) and s.grad[3] == 0 and s.grad[4] == 0


@pytest.mark.gpu
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("num_atoms, num_edges", [(7, 60), (300, 5000)])
def test_cuda_matches_cpu(cuda_device, dtype, tol, num_atoms, num_edges):
    cpu = random_problem(num_atoms=num_atoms, num_edges=num_edges, dtype=dtype, seed=11)
    weight = torch.randn(num_atoms, cpu[0].shape[2], 4, dtype=dtype)
    results = []
    for table, info, s, r, center, ti, n in (cpu, on(cuda_device, cpu)):
        s, r = s.clone().requires_grad_(True), r.clone().requires_grad_(True)
        out = tabulate_fusion(table, info, s, r, center, ti, n)
        (out * weight.to(out.device)).sum().backward()
        results.append([out.detach().cpu(), s.grad.cpu(), r.grad.cpu()])
    for a, b in zip(*results):
        assert (a - b).abs().max() <= tol * max(1.0, a.abs().max().item())
