"""Python front ends of the compiled ``torch.ops.openmmnnp`` ops (TorchScript-compatible)."""

from openmmnnp.ops.dense_neighbors import dense_neighbor_pairs
from openmmnnp.ops.neighbors import neighbor_pairs
from openmmnnp.ops.tabulate import tabulate_fusion

__all__ = ["dense_neighbor_pairs", "neighbor_pairs", "tabulate_fusion"]
