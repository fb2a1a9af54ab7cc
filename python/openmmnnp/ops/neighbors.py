"""Cell-list neighbour search: the one neighbour list of openmm-nnp.

PLACEHOLDER until the compiled op (issue 3) lands: delegates to the dense search so that
models can be written against the final signature now.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from openmmnnp.ops.dense_neighbors import dense_neighbor_pairs


def neighbor_pairs(
    positions: torch.Tensor,
    cutoff: float,
    box: Optional[torch.Tensor] = None,
    max_pairs: int = -1,
    full: bool = False,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pairs closer than ``cutoff``; see :func:`openmmnnp.ops.dense_neighbor_pairs` for the contract."""
    return dense_neighbor_pairs(positions, cutoff, box, max_pairs, full)
