"""Python front ends of the compiled ``torch.ops.openmmnnp`` ops (TorchScript-compatible)."""

from openmmnnp.ops.dense_neighbors import dense_neighbor_pairs
from openmmnnp.ops.descriptor import se_a_descriptor
from openmmnnp.ops.env_tabulate import env_tabulate
from openmmnnp.ops.neighbors import neighbor_pairs
from openmmnnp.ops.se3_attention import se3_attention_messages, se3_attention_scores
from openmmnnp.ops.tabulate import tabulate_fusion

__all__ = ["dense_neighbor_pairs", "env_tabulate", "neighbor_pairs", "se3_attention_messages", "se3_attention_scores", "se_a_descriptor",
           "tabulate_fusion"]
