"""Compressed se_e2_a from the pair list in one fused op (TorchScript-compatible front end).

See plugin/env_tabulate/env_tabulate.h for the math and the outputs, plugin/common/polynomial_table.h
for the table layout and python/openmmnnp/compression/tables.py for how the tables are built.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

# Entries of the statistics output (plugin/env_tabulate/env_tabulate.h, kStat*).
STAT_OUTSIDE = 0  # valid edges with s_hat outside [lower, upper) but below upper2: extrapolated
STAT_BEYOND = 1  # valid edges with s_hat >= upper2 or NaN: clamped, wrong
STAT_WORST = 2  # largest s_hat (-inf without valid edges)
STAT_CENTER = 3  # its centre atom (-1 without valid edges)
STAT_NEIGHBOR = 4  # its neighbour atom (-1 without valid edges)


def env_tabulate(
    positions: torch.Tensor,
    box: Optional[torch.Tensor],
    pairs: torch.Tensor,
    shifts: torch.Tensor,
    num_pairs: torch.Tensor,
    types: torch.Tensor,
    davg: torch.Tensor,
    dstd: torch.Tensor,
    table: torch.Tensor,
    table_info: torch.Tensor,
    rcut_smth: float,
    rcut: float,
    type_one_side: bool,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """T[i] = Σ_{valid e = (i, j)} G_k(ŝ_e) ⊗ R̂_e with R̂ the normalised se_e2_a environment row.

    Valid edges are the first ``num_pairs`` slots (capped at the capacity); padded slots are never
    read. R̂ = (R(v) - davg[t_i]) / dstd[t_i] with R = (s, s v/r), v = x_j - x_i + shift @ box,
    ŝ = R̂[0], and k = t_j (``type_one_side``) or t_i · ntypes + t_j. Differentiable with respect to
    ``positions`` and ``box`` (first derivatives; nothing is stored per edge).

    Args:
        positions: [N, 3] float32/float64.
        box: [3, 3] box vectors as rows (same dtype), or None for no periodicity (shifts ignored).
        pairs: [2, capacity] int32/int64 centre and neighbour of each edge (a full list).
        shifts: [capacity, 3] int16/int32 periodic shifts.
        num_pairs: [1] int64 number of valid edges.
        types: [N] int64 in [0, ntypes).
        davg, dstd: [ntypes, 4] normalisation of the centre type (dtype of positions).
        table: [num_tables, num_intervals, M, 6] coefficients (dtype of positions).
        table_info: [5] (lower, upper, upper2, stride, stride2).
        rcut_smth, rcut: smooth-switch start and cutoff.
        type_one_side: one table per neighbour type (else per (centre, neighbour) type pair).
    Returns:
        T [N, M, 4] (the raw sum: divide by Σsel), neighbour counts [N, ntypes] int64 per centre and
        neighbour type, statistics [5] float64 (STAT_* above) of ŝ against the table ranges.
    """
    return torch.ops.openmmnnp.env_tabulate(positions, box, pairs, shifts, num_pairs, types, davg, dstd, table, table_info,
                                            rcut_smth, rcut, type_one_side)
