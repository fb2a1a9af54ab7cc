"""The unfused torch expression of tabulate_fusion (test oracle) and random inputs for it."""

from typing import Tuple

import torch

from openmmnnp.compression import build_tables, evaluate_table
from compression.embedding_nets import embedding_net


def unfused_tabulate_fusion(table, table_info, s_hat, r_hat, center, table_index, num_atoms: int) -> torch.Tensor:
    """Σ_e G(s_e) ⊗ r_e per center with G [E, M] materialised; differentiable through torch autograd."""
    valid = table_index >= 0
    s, r, c, ti = s_hat[valid], r_hat[valid], center[valid], table_index[valid]
    g = torch.zeros(s.shape[0], table.shape[2], dtype=s.dtype)
    for k in range(table.shape[0]):
        value, _ = evaluate_table(table[k], table_info, s)
        g = torch.where((ti == k).unsqueeze(1), value, g)
    out = torch.zeros(num_atoms, table.shape[2], 4, dtype=s.dtype)
    return out.index_add(0, c, g.unsqueeze(2) * r.unsqueeze(1))


def random_problem(
    num_atoms: int = 7, num_edges: int = 60, num_tables: int = 3, dtype: torch.dtype = torch.float64, seed: int = 0
) -> Tuple[torch.Tensor, ...]:
    """(table, table_info, s_hat, r_hat, center, table_index, num_atoms): tables of random nets on
    [-0.3, 1.0] (stride 0.02, extrapolate 2), edges in random order, one in five padded (-1), ŝ spread
    over below-lower, both tables and beyond upper2."""
    nets = [embedding_net([4, 8], seed=seed + k) for k in range(num_tables)]
    table, info = build_tables(nets, -0.3, 1.0, stride=0.02, extrapolate=2.0)
    gen = torch.Generator().manual_seed(seed)
    s = (-0.5 + 3.0 * torch.rand(num_edges, generator=gen, dtype=torch.float64)).to(dtype)
    r = torch.randn(num_edges, 4, generator=gen, dtype=torch.float64).to(dtype)
    center = torch.randint(0, num_atoms, (num_edges,), generator=gen)
    table_index = torch.randint(0, num_tables, (num_edges,), generator=gen)
    table_index[torch.rand(num_edges, generator=gen) < 0.2] = -1
    return table.to(dtype), info, s, r, center, table_index, num_atoms
