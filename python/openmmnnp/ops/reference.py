"""Reference ops: oracles and baselines, not part of the product API.

Models and ``NNPForce`` never need these; the tests use them as oracles and the benchmarks as
baselines. Everything here is reachable only as ``openmmnnp.ops.reference.*`` (none is in a public
``__all__``):

- :func:`dense_neighbor_pairs`: all-pairs neighbour search in plain torch, O(N^2) time and memory,
  the pattern most NNP codes use (cdist + masks); the oracle of the neighbour-list tests and the N^2
  baseline of the benchmarks. Same outputs and conventions as :func:`openmmnnp.ops.neighbor_pairs`.
- :func:`tabulate_fusion`: the compressed embedding from precomputed normalised environment rows
  (compiled op, ``plugin/reference/tabulate_fusion/``); the unfused path that the production op
  ``env_tabulate`` is tested against.
- :func:`scale`: y = factor * x (compiled op, ``plugin/reference/scale/``): a smoke test of the build,
  the CPU/CUDA dispatch and the TorchScript -> TorchForce path, and the template of a new op.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch


def scale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """factor * x by the compiled smoke-test op (differentiable, CPU and CUDA)."""
    return torch.ops.openmmnnp.scale(x, factor)


def tabulate_fusion(
    table: torch.Tensor,
    table_info: torch.Tensor,
    s_hat: torch.Tensor,
    r_hat: torch.Tensor,
    center: torch.Tensor,
    table_index: torch.Tensor,
    num_atoms: int,
) -> torch.Tensor:
    """T[i, m, k] = Σ_{e: center[e] = i, table_index[e] >= 0} G_{table_index[e], m}(s_hat[e]) · r_hat[e, k].

    G is evaluated from the polynomial tables (layout: plugin/common/polynomial_table.h) in registers
    and accumulated at once (never stored). Differentiable with respect to ``s_hat`` and ``r_hat`` (first derivatives only).

    Args:
        table: [num_tables, num_intervals, M, 6] coefficients, same dtype as s_hat (float32/64).
        table_info: [5] (lower, upper, upper2, stride, stride2).
        s_hat: [E] embedding inputs.
        r_hat: [E, 4] environment-matrix rows.
        center: [E] int64 center atom of each edge, in [0, num_atoms) for valid edges.
        table_index: [E] int64 net (type pair) of each edge; -1 marks a padded edge (skipped).
        num_atoms: N.
    Returns:
        [N, M, 4]; the caller applies any normalisation (e.g. 1/Σsel).
    """
    return torch.ops.openmmnnp.tabulate_fusion(table, table_info, s_hat, r_hat, center, table_index, num_atoms)


def minimum_image_shifts(delta: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """Integer image shifts that bring ``delta`` to its minimum image in a reduced box.

    Args:
        delta: [..., 3] vectors r_j - r_i.
        box: [3, 3] box vectors as rows, in OpenMM's reduced form (a along x, b in the xy plane).

    Returns:
        [..., 3] shifts (same dtype as delta, integral values) with delta + shifts @ box the
        minimum image, exact when the cutoff is at most half the smallest box width.
    """
    shifts = torch.zeros_like(delta)
    d = delta.clone()
    # Reduced form makes this sequence exact: c has the only z component, b the only y besides c.
    for k in (2, 1, 0):
        n = -torch.round(d[..., k] / box[k, k])
        d = d + n.unsqueeze(-1) * box[k]
        shifts[..., k] = n
    return shifts


def dense_neighbor_pairs(
    positions: torch.Tensor,
    cutoff: float,
    box: Optional[torch.Tensor] = None,
    max_pairs: int = -1,
    full: bool = False,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pairs closer than ``cutoff`` by brute force.

    Args:
        positions: [N, 3].
        cutoff: pair cutoff, same length unit as positions.
        box: [3, 3] periodic box vectors (rows, reduced form) or None for no periodicity.
        max_pairs: capacity of the outputs; -1 means exactly the number found.
        full: both (i, j) and (j, i) if True, else only i < j.

    Returns:
        pairs [2, max_pairs] int32 (padded with -1), shifts [max_pairs, 3] int16 with
        r_j - r_i + shifts @ box the pair vector (zeros in padding), num_pairs [1] int64,
        the true count (may exceed max_pairs; then the first max_pairs pairs are returned).
    """
    n = positions.shape[0]
    delta = positions.unsqueeze(0) - positions.unsqueeze(1)  # [i, j] = r_j - r_i
    if box is not None:
        shifts = minimum_image_shifts(delta, box)
        delta = delta + shifts @ box
    else:
        shifts = torch.zeros_like(delta)
    dist2 = (delta * delta).sum(-1)
    index = torch.arange(n, device=positions.device)
    keep = dist2 < cutoff * cutoff
    if full:
        keep = keep & (index.unsqueeze(0) != index.unsqueeze(1))
    else:
        keep = keep & (index.unsqueeze(1) < index.unsqueeze(0))
    ij = torch.nonzero(keep)
    i, j = ij[:, 0], ij[:, 1]
    found = i.shape[0]
    capacity = found if max_pairs < 0 else max_pairs
    pairs = torch.full((2, capacity), -1, dtype=torch.int32, device=positions.device)
    out_shifts = torch.zeros((capacity, 3), dtype=torch.int16, device=positions.device)
    m = min(found, capacity)
    pairs[0, :m] = i[:m]
    pairs[1, :m] = j[:m]
    out_shifts[:m] = shifts[i[:m], j[:m]].to(torch.int16)
    num_pairs = torch.tensor([found], dtype=torch.long, device=positions.device)
    return pairs, out_shifts, num_pairs
