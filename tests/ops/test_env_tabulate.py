"""The fused op torch.ops.openmmnnp.env_tabulate (CPU and CUDA): pair list -> T against SeE2A's unfused
path (normalised environment + tabulate_fusion), position and box gradients, padding, statistics, bad
input; CUDA against the CPU: T, neighbour counts, statistics, gradients, padding, the compressed model."""

import copy
import math

import pytest
import torch

import openmmnnp  # noqa: F401  (loads the op library)
from openmmnnp.ops import env_tabulate, neighbor_pairs
from openmmnnp.ops.env_tabulate import STAT_BEYOND, STAT_CENTER, STAT_NEIGHBOR, STAT_OUTSIDE, STAT_WORST
from ops.env_reference import (compressed_model, fused, op_args, triclinic_system, unfused, unfused_s_hat,
                                       water_frame)

TOLERANCE = {torch.float64: 1e-11, torch.float32: 2e-5}


def systems():
    """(name, positions, box for the op, types, box the model's table range is taken from)."""
    positions, box, types = water_frame(0)
    yield "water", positions, box, types, box
    for seed in (1, 2):
        positions, box, types = triclinic_system(seed)
        yield f"triclinic{seed}", positions, box, types, box
    yield "no box", positions, None, types, box


def full_pairs(model, positions, box):
    return neighbor_pairs(positions, model.rcut, box, positions.shape[0] * model.sel_total, True)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("type_one_side", [False, True])
def test_values_and_gradients_match_unfused_path(dtype, type_one_side):
    for name, positions, box, types, model_box in systems():
        model = copy.deepcopy(compressed_model(type_one_side, positions, model_box)).to(dtype)
        x = positions.to(dtype)
        b = box.to(dtype) if box is not None else None
        pairs, shifts, num = full_pairs(model, x, b)
        weight = torch.randn(x.shape[0], model.neuron[-1], 4, generator=torch.Generator().manual_seed(0), dtype=dtype)
        results = []
        for fn in (fused, unfused):
            xg = x.clone().requires_grad_(True)
            bg = b.clone().requires_grad_(True) if b is not None else None
            out = fn(model, xg, bg, types, pairs, shifts, num)
            t = out[0] if isinstance(out, tuple) else out
            inputs = [xg] + ([bg] if bg is not None else [])
            grads = torch.autograd.grad((t * weight).sum(), inputs)
            results.append([t.detach()] + list(grads))
        scale = float(results[1][0].abs().max())
        assert scale > 0.1, name  # T is not trivially small
        for got, ref in zip(*results):
            assert got.dtype == dtype
            assert float((got - ref).abs().max()) <= TOLERANCE[dtype] * max(1.0, float(ref.abs().max())), name


def test_gradcheck_positions_and_box():
    positions, box, types = triclinic_system(4)
    model = compressed_model(False, positions, box)
    pairs, shifts, num = full_pairs(model, positions, box)
    weight = torch.randn(positions.shape[0], model.neuron[-1], 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def energy(x, b):
        return (fused(model, x, b, types, pairs, shifts, num)[0] * weight).sum()

    assert torch.autograd.gradcheck(energy, (positions.clone().requires_grad_(True), box.clone().requires_grad_(True)),
                                    eps=1e-6, atol=1e-6, rtol=1e-5)


def test_padding_slots_are_never_read():
    positions, box, types = water_frame(1)
    model = compressed_model(False, positions, box)
    pairs, shifts, num = full_pairs(model, positions, box)
    n = int(num[0])
    assert n < pairs.shape[1]
    x = positions.clone().requires_grad_(True)
    t, counts, stats = fused(model, x, box, types, pairs, shifts, num)
    (grad,) = torch.autograd.grad(t.square().sum(), x)
    # Garbage past num_pairs: out-of-range atoms, huge shifts, even valid-looking pairs.
    gen = torch.Generator().manual_seed(2)
    pairs2, shifts2 = pairs.clone(), shifts.clone()
    pairs2[:, n:] = torch.randint(-10**6, 10**6, (2, pairs.shape[1] - n), generator=gen)
    pairs2[:, n::2] = torch.randint(0, positions.shape[0], pairs2[:, n::2].shape, generator=gen)
    shifts2[n:] = torch.randint(-1000, 1000, shifts2[n:].shape, generator=gen, dtype=shifts.dtype)
    x2 = positions.clone().requires_grad_(True)
    t2, counts2, stats2 = fused(model, x2, box, types, pairs2, shifts2, num)
    (grad2,) = torch.autograd.grad(t2.square().sum(), x2)
    assert torch.equal(t, t2) and torch.equal(counts, counts2) and torch.equal(stats, stats2) and torch.equal(grad, grad2)
    # Same as a list cut to the valid pairs.
    t3, _, _ = fused(model, positions, box, types, pairs[:, :n].contiguous(), shifts[:n].contiguous(), num)
    assert torch.equal(t, t3)
    # num_pairs beyond the capacity (overflow) reads the capacity only; negative (device error code) reads nothing.
    t4, _, _ = fused(model, positions, box, types, pairs[:, :n].contiguous(), shifts[:n].contiguous(), num + 5)
    assert torch.equal(t, t4)
    t5, counts5, stats5 = fused(model, positions, box, types, pairs, shifts, torch.tensor([-2]))
    assert torch.all(t5 == 0) and torch.all(counts5 == 0)
    assert stats5[STAT_WORST] == -math.inf and stats5[STAT_CENTER] == -1 and stats5[STAT_OUTSIDE] == 0


@pytest.mark.parametrize("pair_dtype, shift_dtype", [(torch.int32, torch.int16), (torch.int32, torch.int32), (torch.int64, torch.int16)])
def test_narrow_index_types_give_identical_results(pair_dtype, shift_dtype):
    positions, box, types = triclinic_system(5)
    model = compressed_model(True, positions, box)
    pairs, shifts, num = full_pairs(model, positions, box)
    results = []
    for p, s in ((pairs, shifts), (pairs.to(pair_dtype), shifts.to(shift_dtype))):
        x = positions.clone().requires_grad_(True)
        b = box.clone().requires_grad_(True)
        t, counts, stats = fused(model, x, b, types, p, s, num)
        results.append([t, counts, stats] + list(torch.autograd.grad(t.sum(), (x, b))))
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_neighbor_counts_and_table_statistics():
    positions, box, types = water_frame(2)
    model = compressed_model(False, positions, box)
    model.table_info[1] = 0.5 * model.table_info[1]  # pretend the accurate table ends early: some edges lie outside
    pairs, shifts, num = full_pairs(model, positions, box)
    _, counts, stats = fused(model, positions, box, types, pairs, shifts, num)
    valid = pairs[0] >= 0
    expected = torch.zeros(positions.shape[0], 2, dtype=torch.long)
    expected.index_put_((pairs[0, valid], types[pairs[1, valid]]), torch.ones(int(valid.sum()), dtype=torch.long), accumulate=True)
    assert torch.equal(counts, expected)
    s_hat = unfused_s_hat(model, positions, box, types, pairs, shifts)
    lower, upper, upper2 = model.table_info[:3].tolist()
    outside = int(((s_hat >= upper) & (s_hat < upper2)).sum())  # below lower: rounding at rcut, inside
    assert outside > 0
    assert stats[STAT_OUTSIDE] == outside and stats[STAT_BEYOND] == int((s_hat >= upper2).sum())
    worst = int(torch.argmax(s_hat))
    assert float(stats[STAT_WORST]) == pytest.approx(float(s_hat[worst]), rel=1e-12)
    assert (stats[STAT_CENTER], stats[STAT_NEIGHBOR]) == (pairs[0, valid][worst], pairs[1, valid][worst])
    # An edge beyond the extrapolated table.
    model.table_info[2] = float(s_hat[worst]) - 1e-9
    _, _, stats = fused(model, positions, box, types, pairs, shifts, num)
    assert stats[STAT_BEYOND] >= 1


def test_stats_in_the_model_warn_with_check_frequency():
    positions, box, types = water_frame(0)
    model = compressed_model(False, positions, box)
    model.check_frequency = 1
    model(positions, box, types)  # in range: no warning
    info = model.table_info.clone()
    info[1] = 0.5 * info[1]  # a narrower accurate range: the same pairs now count as extrapolated
    model.set_table(model.table, info)
    with pytest.warns(UserWarning, match="outside the accurate compression table"):
        model(positions, box, types)


def test_bad_input_raises_clear_errors():
    positions, box, types = triclinic_system(6)
    model = compressed_model(False, positions, box)
    pairs, shifts, num = full_pairs(model, positions, box)
    args = list(op_args(model, positions, box, types, pairs, shifts, num))

    def call(**changes):
        names = ["positions", "box", "pairs", "shifts", "num_pairs", "types", "davg", "dstd", "table", "table_info",
                 "rcut_smth", "rcut", "type_one_side"]
        a = list(args)
        for key, value in changes.items():
            a[names.index(key)] = value
        return env_tabulate(*a)

    bad_pairs = pairs.clone()
    bad_pairs[1, 3] = positions.shape[0]
    with pytest.raises(RuntimeError, match="pair 3 .* out of range"):
        call(pairs=bad_pairs)
    with pytest.raises(RuntimeError, match=r"types\[0\]"):
        call(types=torch.full_like(types, 5))
    with pytest.raises(RuntimeError, match="dtype of positions"):
        call(positions=positions.float())
    with pytest.raises(RuntimeError, match="pairs must be int32 or int64"):
        call(pairs=pairs.to(torch.int16))
    with pytest.raises(RuntimeError, match="shifts must be int16 or int32"):
        call(shifts=shifts.to(torch.int64))
    with pytest.raises(RuntimeError, match="shifts must be"):
        call(shifts=shifts[:-1])
    with pytest.raises(RuntimeError, match="2 types need 2 tables"):
        call(type_one_side=True)
    with pytest.raises(RuntimeError, match="box must be"):
        call(box=box[:2])
    with pytest.raises(RuntimeError, match="rcut_smth"):
        call(rcut_smth=5.0, rcut=4.0)
    with pytest.raises(RuntimeError, match="num_pairs"):
        call(num_pairs=num.to(torch.int32))
    with pytest.raises(RuntimeError, match="detached"):
        call(table=args[8].clone().requires_grad_(True))
    x = positions.clone().requires_grad_(True)
    t = call(positions=x)[0]
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(t.square().sum(), x, create_graph=True)


def test_meta_shapes_and_torchscript_front_end():
    positions, box, types = triclinic_system(7)
    model = compressed_model(False, positions, box)
    pairs, shifts, num = full_pairs(model, positions, box)
    args = op_args(model, positions, box, types, pairs, shifts, num)
    meta = [a.to("meta") if isinstance(a, torch.Tensor) else a for a in args]
    t, counts, stats = torch.ops.openmmnnp.env_tabulate(*meta)
    assert t.shape == (27, model.neuron[-1], 4) and counts.shape == (27, 2) and stats.shape == (5,) and t.device.type == "meta"
    gx, gb = torch.ops.openmmnnp.env_tabulate_backward(*meta, t)
    assert gx.shape == (27, 3) and gb.shape == (3, 3)
    scripted = torch.jit.script(env_tabulate)
    for a, b in zip(scripted(*args), env_tabulate(*args)):
        assert torch.equal(a, b)


def test_changed_or_replaced_tables_are_used_not_a_stale_copy():
    """The CPU kernels keep a coefficient-major copy of each table between calls
    (plugin/env_tabulate/table_cache.h): in-place changes, new tensors (also ones that reuse a
    freed table's memory) and views must all be read afresh. T and its gradient are linear in
    the table, so scaling the table scales both."""
    positions, box, types = water_frame(1)
    model = compressed_model(False, positions, box)
    pairs, shifts, num = full_pairs(model, positions, box)
    args = list(op_args(model, positions, box, types, pairs, shifts, num))

    def t_and_grad(table):
        x = positions.clone().requires_grad_(True)
        call = [x] + args[1:8] + [table] + args[9:]
        t = env_tabulate(*call)[0]
        return t.detach(), torch.autograd.grad(t.sum(), x)[0]

    table = args[8].clone()
    t1, g1 = t_and_grad(table)
    table.mul_(2.0)  # in place: same tensor, new version
    t2, g2 = t_and_grad(table)
    torch.testing.assert_close(t2, 2.0 * t1, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g2, 2.0 * g1, rtol=1e-12, atol=1e-12)
    for k in range(3, 8):  # a new tensor each time; the previous one is freed first
        table = None
        table = args[8] * float(k)
        t, g = t_and_grad(table)
        torch.testing.assert_close(t, k * t1, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(g, k * g1, rtol=1e-12, atol=1e-12)
    # A non-contiguous view of a larger table.
    wide = torch.cat([args[8], args[8] * 5.0], dim=2)[:, :, args[8].shape[2]:, :]
    torch.testing.assert_close(t_and_grad(wide)[0], 5.0 * t1, rtol=1e-12, atol=1e-12)
    # Tables made under inference mode (no version counter), changed in place between calls.
    with torch.inference_mode():
        table = args[8] * 1.0
        call = args[:8] + [table] + args[9:]
        torch.testing.assert_close(env_tabulate(*call)[0], t1, rtol=1e-12, atol=1e-12)
        table.mul_(3.0)
        torch.testing.assert_close(env_tabulate(*call)[0], 3.0 * t1, rtol=1e-12, atol=1e-12)


def run(model, positions, box, types, pairs, shifts, num, weight):
    """(T, counts, stats, dE/dpositions, dE/dbox) with E = sum(T * weight), all moved to the CPU."""
    x = positions.clone().requires_grad_(True)
    b = box.clone().requires_grad_(True) if box is not None else None
    t, counts, stats = fused(model, x, b, types, pairs, shifts, num)
    grads = torch.autograd.grad((t * weight.to(t.device)).sum(), [x] + ([b] if b is not None else []))
    return [t.detach().cpu(), counts.cpu(), stats.cpu()] + [g.cpu() for g in grads]


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("type_one_side", [False, True])
@pytest.mark.parametrize("system", ["water", "triclinic", "no box"])
@pytest.mark.parametrize("pair_dtype, shift_dtype", [(torch.int64, torch.int32), (torch.int32, torch.int16)])
def test_cuda_matches_cpu(cuda_device, dtype, type_one_side, system, pair_dtype, shift_dtype):
    positions, box, types = water_frame(0) if system == "water" else triclinic_system(11)
    model = copy.deepcopy(compressed_model(type_one_side, positions, box)).to(dtype)
    positions = positions.to(dtype)
    box = None if system == "no box" else box.to(dtype)
    pairs, shifts, num = neighbor_pairs(positions, model.rcut, box, positions.shape[0] * model.sel_total, True)
    pairs, shifts = pairs.to(pair_dtype), shifts.to(shift_dtype)
    weight = torch.randn(positions.shape[0], model.neuron[-1], 4, generator=torch.Generator().manual_seed(0), dtype=dtype)
    cpu = run(model, positions, box, types, pairs, shifts, num, weight)
    cuda_args = [a.to(cuda_device) if a is not None else None for a in (positions, box, types, pairs, shifts, num)]
    gpu = run(copy.deepcopy(model).to(cuda_device), *cuda_args, weight)
    t, counts, stats = gpu[:3]
    assert float((t - cpu[0]).abs().max()) <= TOLERANCE[dtype] * max(1.0, float(cpu[0].abs().max()))
    assert torch.equal(counts, cpu[1])
    assert stats[STAT_OUTSIDE] == cpu[2][STAT_OUTSIDE] and stats[STAT_BEYOND] == cpu[2][STAT_BEYOND]
    assert float(stats[STAT_WORST]) == pytest.approx(float(cpu[2][STAT_WORST]), rel=1e-6)
    # The worst pair is found twice in a full list (i, j) and (j, i); ties may pick either order.
    assert {int(stats[STAT_CENTER]), int(stats[STAT_NEIGHBOR])} == {int(cpu[2][STAT_CENTER]), int(cpu[2][STAT_NEIGHBOR])}
    for got, ref in zip(gpu[3:], cpu[3:]):  # gradients: atomics change only the summation order
        assert float((got - ref).abs().max()) <= 10 * TOLERANCE[dtype] * max(1.0, float(ref.abs().max()))


@pytest.mark.gpu
def test_cuda_padding_slots_are_never_read(cuda_device):
    positions, box, types = water_frame(1)
    model = compressed_model(False, positions, box).to(cuda_device)
    positions, box, types = positions.to(cuda_device), box.to(cuda_device), types.to(cuda_device)
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


@pytest.mark.gpu
def test_compressed_model_on_cuda_matches_cpu(cuda_device):
    positions, box, types = water_frame(2)
    model = compressed_model(False, positions, box)
    results = []
    for device in ("cpu", cuda_device):
        m = copy.deepcopy(model).to(device)
        x = positions.to(device).requires_grad_(True)
        energy = m(x, box.to(device), types.to(device))
        (grad,) = torch.autograd.grad(energy, x)
        results.append((float(energy), grad.cpu()))
        assert int(m.sel_overflow) == 0 and int(m.table_overflow) == 0
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-12)
    assert torch.allclose(results[0][1], results[1][1], rtol=0, atol=1e-10)
