"""Python front ends of the compiled ``torch.ops.openmmnnp`` ops (TorchScript-compatible)."""

from openmmnnp.ops.dense_neighbors import dense_neighbor_pairs
from openmmnnp.ops.env_tabulate import env_tabulate
from openmmnnp.ops.neighbors import neighbor_pairs
from openmmnnp.ops.tabulate import tabulate_fusion

__all__ = ["dense_neighbor_pairs", "env_tabulate", "neighbor_pairs", "tabulate_fusion"]
