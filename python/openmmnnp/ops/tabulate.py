"""Fused table look-up x GᵀR of compressed embedding nets (TorchScript-compatible front end).

See plugin/tabulate/tabulate_fusion.h for the table layout and python/openmmnnp/compression/tables.py
for how the tables are built.
"""

from __future__ import annotations

import torch


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

    G is evaluated from the polynomial tables in registers and accumulated at once (never stored).
    Differentiable with respect to ``s_hat`` and ``r_hat`` (first derivatives only).

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
