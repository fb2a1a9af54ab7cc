"""Random DeePMD-like embedding nets (the model's tanh MLP with residual connections), float64."""

from typing import List

import torch

from openmmnnp.models.networks import ResidualTanhNet


def embedding_net(widths: List[int], seed: int) -> ResidualTanhNet:
    """x [K, 1] -> [K, widths[-1]], float64, weights drawn from ``seed`` (global RNG untouched)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return ResidualTanhNet([1] + list(widths)).double()
