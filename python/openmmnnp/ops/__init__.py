"""Python front ends of the compiled ``torch.ops.openmmnnp`` ops (TorchScript-compatible)."""

from openmmnnp.ops.dense_neighbors import dense_neighbor_pairs
from openmmnnp.ops.neighbors import neighbor_pairs

__all__ = ["dense_neighbor_pairs", "neighbor_pairs"]
