"""CUDA openmmnnp.neighbor_pairs: same pairs as the CPU op, device error codes, CUDA-graph capture."""

from __future__ import annotations

import pytest
import torch

import openmmnnp
from openmmnnp.ops.neighbors import BAD_BOX, FAR_FROM_BOX, NON_FINITE_POSITIONS, check_neighbor_overflow, neighbor_pairs

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available() or not openmmnnp.cuda_ops_available(), reason="needs CUDA and the CUDA ops"),
]

BOXES = {
    "rect": [[3.0, 0.0, 0.0], [0.0, 3.2, 0.0], [0.0, 0.0, 2.9]],
    "triclinic": [[3.0, 0.0, 0.0], [1.2, 3.1, 0.0], [-1.4, 1.5, 2.8]],
    "small": [[1.0, 0.0, 0.0], [0.3, 1.1, 0.0], [0.2, -0.4, 0.9]],  # smaller than 2 * cutoff: images
    "none": None,
}


def pair_set(pairs, shifts, num_pairs):
    n = min(int(num_pairs), pairs.shape[1])
    return set(zip(pairs[0, :n].tolist(), pairs[1, :n].tolist(), map(tuple, shifts[:n].tolist())))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("box", list(BOXES), ids=list(BOXES))
@pytest.mark.parametrize("full", [False, True])
def test_cuda_matches_cpu(dtype, box, full):
    positions = (torch.rand(2000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 5 - 1).to(dtype)
    b = None if BOXES[box] is None else torch.tensor(BOXES[box], dtype=dtype)
    cutoff = 1.3 if box == "small" else 0.7
    cpu = neighbor_pairs(positions, cutoff, b, max_pairs=400000, full=full)
    cuda = neighbor_pairs(positions.cuda(), cutoff, None if b is None else b.cuda(), max_pairs=400000, full=full)
    assert all(t.is_cuda for t in cuda)
    assert int(cuda[2]) == int(cpu[2]) <= 400000
    assert pair_set(*[t.cpu() for t in cuda]) == pair_set(*cpu)


def test_cuda_overflow_is_bounded():
    positions = torch.rand(3000, 3, device="cuda", dtype=torch.float64) * 3
    box = torch.eye(3, device="cuda", dtype=torch.float64) * 3
    everything = pair_set(*[t.cpu() for t in neighbor_pairs(positions, 0.8, box, max_pairs=10**6)])
    pairs, shifts, num_pairs = neighbor_pairs(positions, 0.8, box, max_pairs=100)
    assert int(num_pairs) == len(everything)
    assert pair_set(pairs.cpu(), shifts.cpu(), num_pairs.cpu()) <= everything
    with pytest.raises(RuntimeError, match="larger max_pairs"):
        check_neighbor_overflow(num_pairs, 100)


def test_cuda_bad_data_sets_error_codes():
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


def test_cuda_graph_capture_and_replay():
    g = torch.Generator().manual_seed(1)
    box = torch.tensor(BOXES["triclinic"], device="cuda")
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
