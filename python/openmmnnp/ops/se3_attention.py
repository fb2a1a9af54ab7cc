"""Fused edge kernels of the SE(3) attention layer (TorchScript-compatible front ends).

Keys and values of every edge are channel-wise tensor products built in registers and never
stored (see plugin/se3_attention/se3_attention.h for the math and the coupling-entry layout).
First derivatives only (forces); double backward raises.
"""

from __future__ import annotations

from typing import List

import torch


def se3_attention_scores(
    queries: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    edge_weights: torch.Tensor,
    radial_mlp: List[torch.Tensor],
    center: torch.Tensor,
    neighbor: torch.Tensor,
    cg_index: torch.Tensor,
    cg_value: torch.Tensor,
    heads: int,
) -> torch.Tensor:
    """s[e, h] = Σ_{c in head h, o} queries[center[e], c, o] · k_e[c, o]  ->  [E, heads] (unscaled).

    Args:
        queries, x: [N, C, D] packed irreps (D = (L+1)²); keys are built from x[neighbor[e]].
        y: [E, D] spherical harmonics of the edges.
        edge_weights: [E, P C] channel-wise radial weights (index p C + c), or, when ``radial_mlp``
            is [W1 [H, B], b1 [H], W2 [P C, H], b2 [P C]], the radial features [E, B] from which the
            kernel recomputes W2 silu(W1 r + b1) + b2 (low-memory mode; the MLP gets no gradients).
        center, neighbor: [E] int64.
        cg_index: [K, 4] int32 coupling entries (l_in column a, filter column f, output column o, path p).
        cg_value: [K] their coefficients, x's dtype.
        heads: number of attention heads (divides C).
    """
    return torch.ops.openmmnnp.se3_attention_scores(queries, x, y, edge_weights, radial_mlp, center, neighbor,
                                                     cg_index, cg_value, heads)


def se3_attention_messages(
    attention: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    edge_weights: torch.Tensor,
    radial_mlp: List[torch.Tensor],
    center: torch.Tensor,
    neighbor: torch.Tensor,
    cg_index: torch.Tensor,
    cg_value: torch.Tensor,
) -> torch.Tensor:
    """out[i, c, o] = Σ_{e: center[e] = i} attention[e, h(c)] · v_e[c, o]  ->  [N, C, D].

    attention: [E, heads]; the other arguments as for :func:`se3_attention_scores` (values use
    their own weights, e.g. the second half of the radial MLP's output).
    """
    return torch.ops.openmmnnp.se3_attention_messages(attention, x, y, edge_weights, radial_mlp, center, neighbor,
                                                       cg_index, cg_value)
