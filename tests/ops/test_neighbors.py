"""openmmnnp.neighbor_pairs (cell list, CPU and CUDA) against brute-force references; CUDA against the CPU,
its device error codes and CUDA-graph capture."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import openmmnnp
from openmmnnp.ops.reference import dense_neighbor_pairs
from openmmnnp.ops.neighbors import (BAD_BOX, FAR_FROM_BOX, NON_FINITE_POSITIONS, check_neighbor_overflow, default_max_pairs,
                                     neighbor_pairs)

RECT = [[3.0, 0.0, 0.0], [0.0, 3.2, 0.0], [0.0, 0.0, 2.9]]
TRICLINIC = [[3.0, 0.0, 0.0], [1.2, 3.1, 0.0], [-1.4, 1.5, 2.8]]  # reduced form


def pair_set(pairs: torch.Tensor, shifts: torch.Tensor, num_pairs: torch.Tensor) -> set:
    n = min(int(num_pairs), pairs.shape[1])
    return set(zip(pairs[0, :n].tolist(), pairs[1, :n].tolist(), map(tuple, shifts[:n].tolist())))


def image_reference(positions: torch.Tensor, cutoff: float, box: torch.Tensor, full: bool) -> set:
    """Every (i, j, shift) closer than cutoff over all images (valid for any box size)."""
    if positions.shape[0] == 0:
        return set()
    pos = positions.double()
    b = box.double()
    widths = torch.linalg.det(b).abs() / torch.linalg.cross(b[[1, 2, 0]], b[[2, 0, 1]]).norm(dim=1)
    # positions may sit several boxes away: cover their wrap plus the cutoff
    frac = pos @ torch.linalg.inv(b)
    reach = [int(cutoff / float(w)) + 2 + int((frac[:, d].max() - frac[:, d].min()).ceil()) for d, w in enumerate(widths)]
    found = set()
    delta = pos.unsqueeze(0) - pos.unsqueeze(1)  # [i, j] = r_j - r_i
    for s in itertools.product(*[range(-r, r + 1) for r in reach]):
        shift = torch.tensor(s, dtype=torch.float64)
        d2 = ((delta + shift @ b) ** 2).sum(-1)
        for i, j in torch.nonzero(d2 < cutoff * cutoff).tolist():
            if i == j and not any(s):
                continue
            if not full and (i > j or (i == j and s < (0, 0, 0))):
                continue
            found.add((i, j, s))
    return found


def on(device: str, *tensors):
    """The tensors (or None) on device, for the op; results go back with .cpu()."""
    return [t.to(device) if t is not None else None for t in tensors]


def assert_same_as_dense(positions, cutoff, box, full, device="cpu"):
    """The op on device against the dense oracle on the CPU."""
    ref = dense_neighbor_pairs(positions, cutoff, box, full=full)
    ours = [t.cpu() for t in neighbor_pairs(*on(device, positions), cutoff, *on(device, box), max_pairs=int(ref[2]) + 7, full=full)]
    assert int(ours[2]) == int(ref[2])
    assert (ours[0][:, int(ref[2]) :] == -1).all()
    assert pair_set(*ours) == pair_set(*ref)
    assert ours[0].dtype == torch.int32 and ours[1].dtype == torch.int16 and ours[2].dtype == torch.int64


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("box", [RECT, TRICLINIC, None], ids=["rect", "triclinic", "none"])
@pytest.mark.parametrize("full", [False, True])
def test_random_matches_dense(device, dtype, box, full):
    g = torch.Generator().manual_seed(1)
    positions = (torch.rand(250, 3, generator=g, dtype=torch.float64) * 5 - 1).to(dtype)  # many outside the box
    b = None if box is None else torch.tensor(box, dtype=dtype)
    assert_same_as_dense(positions, 1.2, b, full, device)


def test_water_matches_dense():
    from openmm import unit
    from openmmtools.testsystems import WaterBox

    water = WaterBox(box_edge=2.0 * unit.nanometer)
    positions = torch.tensor(water.positions.value_in_unit(unit.nanometer), dtype=torch.float64)
    box = torch.tensor(
        [v.value_in_unit(unit.nanometer) for v in water.system.getDefaultPeriodicBoxVectors()], dtype=torch.float64
    )
    for full in (False, True):
        assert_same_as_dense(positions, 0.6, box, full)
        assert_same_as_dense(positions.float(), 0.6, box.float(), full)


@pytest.mark.parametrize("box", [RECT, TRICLINIC], ids=["rect", "triclinic"])
def test_cell_borders_and_outside_primary_box(device, box):
    b = torch.tensor(box, dtype=torch.float64)
    # lattice points on exact fractions of the box (cell borders), moved by whole box vectors
    frac = torch.tensor(list(itertools.product([0.0, 0.25, 0.5, 0.75, 1.0 - 1e-12], repeat=3)), dtype=torch.float64)
    g = torch.Generator().manual_seed(2)
    images = torch.randint(-3, 4, frac.shape, generator=g).double()
    positions = (frac + images) @ b
    assert_same_as_dense(positions, 0.9, b, False, device)
    assert_same_as_dense(positions, 0.9, b, True, device)


def test_cutoff_close_to_half_box():
    b = torch.tensor(TRICLINIC, dtype=torch.float64)
    widths = torch.linalg.det(b) / torch.linalg.cross(b[[1, 2, 0]], b[[2, 0, 1]]).norm(dim=1)
    positions = torch.rand(200, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 3
    assert_same_as_dense(positions, 0.4999 * float(widths.min()), b, False)


@pytest.mark.parametrize("box", [RECT, TRICLINIC], ids=["rect", "triclinic"])
@pytest.mark.parametrize("cutoff", [1.7, 3.5])  # larger than half the box, and than the box
def test_small_box_lists_every_image(device, box, cutoff):
    b = torch.tensor(box, dtype=torch.float64)
    positions = torch.rand(12, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64) * 3
    for full in (False, True):
        ours = [t.cpu() for t in neighbor_pairs(*on(device, positions), cutoff, *on(device, b), full=full)]
        expected = image_reference(positions, cutoff, b, full)
        assert int(ours[2]) == len(expected)
        assert pair_set(*ours) == expected


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 40),
    seed=st.integers(0, 2**31 - 1),
    lengths=st.tuples(*[st.floats(1.0, 4.0)] * 3),
    tilt=st.tuples(*[st.floats(-0.5, 0.5)] * 3),
    cutoff=st.floats(0.3, 2.5),
    full=st.booleans(),
    periodic=st.booleans(),
)
def test_property_matches_reference(n, seed, lengths, tilt, cutoff, full, periodic):
    a, bl, c = lengths
    box = torch.tensor(
        [[a, 0, 0], [tilt[0] * a, bl, 0], [tilt[1] * a, tilt[2] * bl, c]], dtype=torch.float64
    )
    positions = (torch.rand(n, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 0.5) * 4
    # Pairs at the cutoff to within rounding may fall either way: compare between two references.
    inner, outer = cutoff * (1 - 1e-12), cutoff * (1 + 1e-12)
    if periodic:
        ours = neighbor_pairs(positions, cutoff, box, full=full)
        surely, maybe = image_reference(positions, inner, box, full), image_reference(positions, outer, box, full)
    else:
        ours = neighbor_pairs(positions, cutoff, None, full=full)
        surely = pair_set(*dense_neighbor_pairs(positions, inner, None, full=full))
        maybe = pair_set(*dense_neighbor_pairs(positions, outer, None, full=full))
    found = pair_set(*ours)
    assert int(ours[2]) == len(found)
    assert surely <= found <= maybe


def test_overflow_is_reported_and_bounded():
    positions = torch.rand(300, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 3
    box = torch.tensor(RECT, dtype=torch.float64)
    everything = pair_set(*neighbor_pairs(positions, 1.0, box))
    true_count = len(everything)
    for capacity in (0, 1, true_count // 3, true_count, true_count + 10):
        pairs, shifts, num_pairs = neighbor_pairs(positions, 1.0, box, max_pairs=capacity)
        assert pairs.shape == (2, capacity) and shifts.shape == (capacity, 3)
        assert int(num_pairs) == true_count
        kept = min(capacity, true_count)
        assert pair_set(pairs, shifts, num_pairs) <= everything
        assert len(pair_set(pairs, shifts, num_pairs)) == kept
        assert (pairs[:, kept:] == -1).all() and (shifts[kept:] == 0).all()
        if capacity < true_count:
            with pytest.raises(RuntimeError, match="larger max_pairs"):
                check_neighbor_overflow(num_pairs, capacity)
        else:
            check_neighbor_overflow(num_pairs, capacity)


def test_default_capacity_holds_water_like_density():
    positions = torch.rand(3000, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64) * 3.1
    box = torch.eye(3, dtype=torch.float64) * 3.1
    capacity = default_max_pairs(positions, 0.6, box)
    pairs, _, num_pairs = neighbor_pairs(positions, 0.6, box)
    assert pairs.shape[1] == capacity and int(num_pairs) <= capacity


def test_energy_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(7)
    positions = torch.rand(25, 3, generator=g, dtype=torch.float64) * 2
    box = torch.tensor([[2.0, 0, 0], [0.6, 2.1, 0], [-0.5, 0.7, 1.9]], dtype=torch.float64)
    cutoff = 0.8
    pairs, shifts, num_pairs = neighbor_pairs(positions, cutoff, box, full=False)
    n = int(num_pairs)
    assert n > 20
    i, j, s = pairs[0, :n], pairs[1, :n], shifts[:n].double()

    def energy(r: torch.Tensor) -> torch.Tensor:
        d2 = ((r[j] - r[i] + s @ box) ** 2).sum(-1)
        return ((1 - d2 / cutoff**2) ** 3).sum()  # smooth at the cutoff

    assert torch.autograd.gradcheck(energy, (positions.clone().requires_grad_(),))
    assert torch.autograd.gradgradcheck(energy, (positions.clone().requires_grad_(),))


def test_deterministic_and_scriptable():
    positions = torch.rand(200, 3, generator=torch.Generator().manual_seed(8)) * 3
    box = torch.tensor(TRICLINIC)

    @torch.jit.script
    def scripted(r: torch.Tensor, b: torch.Tensor):
        return neighbor_pairs(r, 1.0, b, 5000, True)

    first = scripted(positions, box)
    second = neighbor_pairs(positions, 1.0, box, 5000, True)
    assert all(torch.equal(x, y) for x, y in zip(first, second))
    assert openmmnnp.neighbor_pairs is neighbor_pairs


def test_meta_kernel_gives_shapes():
    pairs, shifts, num_pairs = torch.ops.openmmnnp.neighbor_pairs(
        torch.empty(10, 3, device="meta"), 1.0, torch.empty(3, 3, device="meta"), 77, False
    )
    assert pairs.shape == (2, 77) and shifts.shape == (77, 3) and num_pairs.shape == (1,)
    assert pairs.dtype == torch.int32 and shifts.dtype == torch.int16


@pytest.mark.parametrize(
    "positions, cutoff, box, message",
    [
        (torch.tensor([[0.0, 0.0, float("nan")], [1.0, 1.0, 1.0]]), 1.0, None, "NaN"),
        (torch.tensor([[0.0, 0.0, float("inf")], [1.0, 1.0, 1.0]]), 1.0, torch.eye(3), "NaN or infinite"),
        (torch.zeros(4, 3), -1.0, None, "cutoff must be positive"),
        (torch.zeros(4, 3), 0.0, None, "cutoff must be positive"),
        (torch.zeros(4, 2), 1.0, None, r"shape \[N, 3\]"),
        (torch.zeros(4, 3, dtype=torch.int64), 1.0, None, "float32 or float64"),
        (torch.zeros(4, 3), 1.0, torch.eye(2), r"shape \[3, 3\]"),
        (torch.zeros(4, 3), 1.0, torch.tensor([[2.0, 0, 0], [1.5, 2.0, 0], [0, 0, 2.0]]), "reduced form"),
        (torch.zeros(4, 3), 1.0, torch.tensor([[2.0, 0.1, 0], [0, 2.0, 0], [0, 0, 2.0]]), "reduced form"),
        (torch.zeros(4, 3), 1.0, torch.zeros(3, 3), "reduced form"),
        (torch.zeros(4, 3), 100.0, torch.eye(3), "too small for cutoff"),
        (torch.tensor([[0.0, 0.0, 0.0], [0.5, 0.5, 16001.5]]), 0.4, torch.eye(3), "16000 box lengths"),
    ],
)
def test_bad_inputs_raise_clear_errors(positions, cutoff, box, message):
    with pytest.raises(RuntimeError, match=message):
        neighbor_pairs(positions, cutoff, box, max_pairs=10)


@pytest.mark.parametrize(
    "cutoff, box, message",
    [
        (float("nan"), None, "cutoff must be a positive finite number, got nan"),
        (float("inf"), torch.eye(3), "cutoff must be a positive finite number, got inf"),
        (1.0, torch.zeros(3, 3), r"three finite, linearly independent box vectors \(a zero or singular box has no volume\)"),
        (1.0, torch.tensor([[2.0, 0, 0], [2.0, 0, 0], [0, 0, 2.0]]), "linearly independent box vectors"),
        (1.0, torch.tensor([[2.0, 0, 0], [0, float("nan"), 0], [0, 0, 2.0]]), "three finite"),
    ],
)
def test_bad_box_or_cutoff_with_the_default_capacity_gives_a_clear_error(cutoff, box, message):
    """max_pairs=-1 estimates the capacity from the box on the host: a NaN or singular box (or a NaN
    cutoff) used to reach int() as NaN or as an astronomic number, with a cryptic error."""
    with pytest.raises(RuntimeError, match=message):
        neighbor_pairs(torch.rand(8, 3), cutoff, box)
    with pytest.raises(torch.jit.Error, match=message):  # the same inside TorchScript
        torch.jit.script(neighbor_pairs)(torch.rand(8, 3), cutoff, box)


def test_positions_far_outside_the_box_keep_exact_shifts():
    """Unwrapped MD positions thousands of boxes away: the int16 shifts still give the pair vectors."""
    box = torch.tensor(TRICLINIC, dtype=torch.float64)
    g = torch.Generator().manual_seed(11)
    positions = torch.rand(60, 3, generator=g, dtype=torch.float64) * 2
    drift = torch.randint(-5000, 5000, (60, 3), generator=g).to(torch.float64)
    moved = positions + drift @ box  # same configuration, each atom thousands of images away
    near = neighbor_pairs(positions, 0.9, box, max_pairs=5000, full=True)
    far = neighbor_pairs(moved, 0.9, box, max_pairs=5000, full=True)
    assert int(far[2]) == int(near[2]) > 0
    n = int(far[2])

    def vectors(pos, pairs, shifts):
        i, j = pairs[0, :n].long(), pairs[1, :n].long()
        return pos[j] - pos[i] + shifts[:n].to(pos.dtype) @ box

    def keyed(pos, pairs, shifts):
        vec = vectors(pos, pairs, shifts)
        order = sorted(range(n), key=lambda k: (int(pairs[0, k]), int(pairs[1, k]), *[round(float(x), 4) for x in vec[k]]))
        return pairs[:, order], vec[order]

    far_pairs, far_vectors = keyed(moved, far[0], far[1])
    near_pairs, near_vectors = keyed(positions, near[0], near[1])
    assert torch.equal(far_pairs, near_pairs)
    torch.testing.assert_close(far_vectors, near_vectors, rtol=0, atol=1e-8)  # rounding of |r| ~ 3e4 nm
    assert int(far[1][:n].abs().max()) > 4000  # the shifts really carry the drift


@pytest.mark.parametrize("full", [False, True])
def test_one_pass_and_two_pass_paths_agree(full):
    """One thread appends in one pass, several threads count then write: same lists, same order."""
    positions = torch.rand(5000, 3, generator=torch.Generator().manual_seed(12), dtype=torch.float64) * 4
    box = torch.tensor(TRICLINIC, dtype=torch.float64) * 4 / 3
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = neighbor_pairs(positions, 0.5, box, full=full)
        torch.set_num_threads(2)
        parallel = neighbor_pairs(positions, 0.5, box, full=full)
        small = neighbor_pairs(positions, 0.5, box, max_pairs=1000, full=full)  # overflow in the two-pass path
    finally:
        torch.set_num_threads(threads)
    assert int(single[2]) > 1000
    assert all(torch.equal(x, y) for x, y in zip(single, parallel))
    assert int(small[2]) == int(single[2])
    assert torch.equal(small[0], single[0][:, :1000]) and torch.equal(small[1], single[1][:1000])

# Boxes of the CUDA-against-CPU tests (2000 atoms: many blocks and cells).
CUDA_BOXES = {
    "rect": RECT,
    "triclinic": TRICLINIC,
    "small": [[1.0, 0.0, 0.0], [0.3, 1.1, 0.0], [0.2, -0.4, 0.9]],  # smaller than 2 * cutoff: images
    "none": None,
}


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("box", list(CUDA_BOXES), ids=list(CUDA_BOXES))
@pytest.mark.parametrize("full", [False, True])
def test_cuda_matches_cpu(cuda_device, dtype, box, full):
    positions = (torch.rand(2000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 5 - 1).to(dtype)
    b = None if CUDA_BOXES[box] is None else torch.tensor(CUDA_BOXES[box], dtype=dtype)
    cutoff = 1.3 if box == "small" else 0.7
    cpu = neighbor_pairs(positions, cutoff, b, max_pairs=400000, full=full)
    cuda = neighbor_pairs(positions.cuda(), cutoff, None if b is None else b.cuda(), max_pairs=400000, full=full)
    assert all(t.is_cuda for t in cuda)
    assert int(cuda[2]) == int(cpu[2]) <= 400000
    assert pair_set(*[t.cpu() for t in cuda]) == pair_set(*cpu)


@pytest.mark.gpu
def test_cuda_overflow_is_bounded(cuda_device):
    positions = torch.rand(3000, 3, device="cuda", dtype=torch.float64) * 3
    box = torch.eye(3, device="cuda", dtype=torch.float64) * 3
    everything = pair_set(*[t.cpu() for t in neighbor_pairs(positions, 0.8, box, max_pairs=10**6)])
    pairs, shifts, num_pairs = neighbor_pairs(positions, 0.8, box, max_pairs=100)
    assert int(num_pairs) == len(everything)
    assert pair_set(pairs.cpu(), shifts.cpu(), num_pairs.cpu()) <= everything
    with pytest.raises(RuntimeError, match="larger max_pairs"):
        check_neighbor_overflow(num_pairs, 100)


@pytest.mark.gpu
def test_cuda_bad_data_sets_error_codes(cuda_device):
    positions = torch.rand(100, 3, device="cuda")
    positions[7, 1] = float("nan")
    pairs, _, num_pairs = neighbor_pairs(positions, 0.5, torch.eye(3, device="cuda"), max_pairs=1000)
    assert int(num_pairs) == NON_FINITE_POSITIONS and (pairs == -1).all()
    with pytest.raises(RuntimeError, match="NaN"):
        check_neighbor_overflow(num_pairs, 1000)
    bad_box = torch.tensor([[2.0, 0, 0], [1.5, 2.0, 0], [0, 0, 2.0]], device="cuda")
    pairs, _, num_pairs = neighbor_pairs(torch.rand(100, 3, device="cuda"), 0.5, bad_box, max_pairs=1000)
    assert int(num_pairs) == BAD_BOX and (pairs == -1).all()
    with pytest.raises(RuntimeError, match="reduced"):
        check_neighbor_overflow(num_pairs, 1000)
    far = torch.rand(100, 3, device="cuda")
    far[3, 2] = 20000.5
    pairs, _, num_pairs = neighbor_pairs(far, 0.5, torch.eye(3, device="cuda"), max_pairs=1000)
    assert int(num_pairs) == FAR_FROM_BOX and (pairs == -1).all()
    with pytest.raises(RuntimeError, match="wrap the positions"):
        check_neighbor_overflow(num_pairs, 1000)


@pytest.mark.gpu
def test_cuda_graph_capture_and_replay(cuda_device):
    g = torch.Generator().manual_seed(1)
    box = torch.tensor(CUDA_BOXES["triclinic"], device="cuda")
    static_positions = (torch.rand(1500, 3, generator=g) * 3).cuda()
    # warm up on a side stream, as torch.cuda.graphs requires
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        neighbor_pairs(static_positions, 0.6, box, max_pairs=200000)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = neighbor_pairs(static_positions, 0.6, box, max_pairs=200000)
    for _ in range(3):
        new_positions = (torch.rand(1500, 3, generator=g) * 3).cuda()
        static_positions.copy_(new_positions)
        graph.replay()
        torch.cuda.synchronize()
        expected = neighbor_pairs(new_positions.cpu(), 0.6, box.cpu(), max_pairs=200000)
        assert int(out[2]) == int(expected[2])
        assert pair_set(*[t.cpu() for t in out]) == pair_set(*expected)
