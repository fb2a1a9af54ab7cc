"""CUDA env_tabulate agrees with the CPU op: T, neighbour counts, table statistics, position and box
gradients; padded slots are never read; the compressed model runs on CUDA."""

import copy

import pytest
import torch

import openmmnnp
from openmmnnp.ops import neighbor_pairs
from openmmnnp.ops.env_tabulate import STAT_BEYOND, STAT_CENTER, STAT_NEIGHBOR, STAT_OUTSIDE, STAT_WORST
from compression.env_reference import compressed_model, fused, triclinic_system, water_frame

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available() or not openmmnnp.cuda_ops_available(), reason="needs CUDA and the CUDA ops"),
]

TOLERANCE = {torch.float64: 1e-11, torch.float32: 2e-5}


def run(model, positions, box, types, pairs, shifts, num, weight):
    """(T, counts, stats, dE/dpositions, dE/dbox) with E = sum(T * weight), all moved to the CPU."""
    x = positions.clone().requires_grad_(True)
    b = box.clone().requires_grad_(True) if box is not None else None
    t, counts, stats = fused(model, x, b, types, pairs, shifts, num)
    grads = torch.autograd.grad((t * weight.to(t.device)).sum(), [x] + ([b] if b is not None else []))
    return [t.detach().cpu(), counts.cpu(), stats.cpu()] + [g.cpu() for g in grads]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("type_one_side", [False, True])
@pytest.mark.parametrize("system", ["water", "triclinic", "no box"])
@pytest.mark.parametrize("pair_dtype, shift_dtype", [(torch.int64, torch.int32), (torch.int32, torch.int16)])
def test_cuda_matches_cpu(dtype, type_one_side, system, pair_dtype, shift_dtype):
    positions, box, types = water_frame(0) if system == "water" else triclinic_system(11)
    model = copy.deepcopy(compressed_model(type_one_side, positions, box)).to(dtype)
    positions = positions.to(dtype)
    box = None if system == "no box" else box.to(dtype)
    pairs, shifts, num = neighbor_pairs(positions, model.rcut, box, positions.shape[0] * model.sel_total, True)
    pairs, shifts = pairs.to(pair_dtype), shifts.to(shift_dtype)
    weight = torch.randn(positions.shape[0], model.neuron[-1], 4, generator=torch.Generator().manual_seed(0), dtype=dtype)
    cpu = run(model, positions, box, types, pairs, shifts, num, weight)
    cuda_args = [a.cuda() if a is not None else None for a in (positions, box, types, pairs, shifts, num)]
    gpu = run(copy.deepcopy(model).cuda(), *cuda_args, weight)
    t, counts, stats = gpu[:3]
    assert float((t - cpu[0]).abs().max()) <= TOLERANCE[dtype] * max(1.0, float(cpu[0].abs().max()))
    assert torch.equal(counts, cpu[1])
    assert stats[STAT_OUTSIDE] == cpu[2][STAT_OUTSIDE] and stats[STAT_BEYOND] == cpu[2][STAT_BEYOND]
    assert float(stats[STAT_WORST]) == pytest.approx(float(cpu[2][STAT_WORST]), rel=1e-6)
    # The worst pair is found twice in a full list (i, j) and (j, i); ties may pick either order.
    assert {int(stats[STAT_CENTER]), int(stats[STAT_NEIGHBOR])} == {int(cpu[2][STAT_CENTER]), int(cpu[2][STAT_NEIGHBOR])}
    for got, ref in zip(gpu[3:], cpu[3:]):  # gradients: atomics change only the summation order
        assert float((got - ref).abs().max()) <= 10 * TOLERANCE[dtype] * max(1.0, float(ref.abs().max()))


def test_cuda_padding_slots_are_never_read():
    positions, box, types = water_frame(1)
    model = compressed_model(False, positions, box).cuda()
    positions, box, types = positions.cuda(), box.cuda(), types.cuda()
    pairs, shifts, num = neighbor_pairs(positions, model.rcut, box, positions.shape[0] * model.sel_total, True)
    n = int(num[0])
    weight = torch.ones(positions.shape[0], model.neuron[-1], 4, dtype=torch.float64)
    base = run(model, positions, box, types, pairs, shifts, num, weight)
    pairs2, shifts2 = pairs.clone(), shifts.clone()
    pairs2[:, n:] = 10**6
    pairs2[:, n::2] = 0
    shifts2[n:] = 1000
    garbage = run(model, positions, box, types, pairs2, shifts2, num, weight)
    assert torch.equal(base[0], garbage[0]) and torch.equal(base[1], garbage[1]) and torch.equal(base[2], garbage[2])
    for a, b in zip(base[3:], garbage[3:]):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)


def test_compressed_model_on_cuda_matches_cpu():
    positions, box, types = water_frame(2)
    model = compressed_model(False, positions, box)
    results = []
    for device in ("cpu", "cuda"):
        m = copy.deepcopy(model).to(device)
        x = positions.to(device).requires_grad_(True)
        energy = m(x, box.to(device), types.to(device))
        (grad,) = torch.autograd.grad(energy, x)
        results.append((float(energy), grad.cpu()))
        assert int(m.sel_overflow) == 0 and int(m.table_overflow) == 0
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-12)
    assert torch.allclose(results[0][1], results[1][1], rtol=0, atol=1e-10)
