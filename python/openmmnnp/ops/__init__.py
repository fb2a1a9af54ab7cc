"""Python front ends of the compiled ``torch.ops.openmmnnp`` ops (TorchScript-compatible).

The reference ops (oracles and baselines for tests and benchmarks) live apart, in
:mod:`openmmnnp.ops.reference`, and are not part of this API.
"""

from openmmnnp.ops.descriptor import se_a_descriptor
from openmmnnp.ops.env_tabulate import env_tabulate
from openmmnnp.ops.neighbors import neighbor_pairs
from openmmnnp.ops.se3_attention import se3_attention_messages, se3_attention_scores

__all__ = ["env_tabulate", "neighbor_pairs", "se3_attention_messages", "se3_attention_scores", "se_a_descriptor"]
