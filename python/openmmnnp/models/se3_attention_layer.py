"""One SE(3)-equivariant graph attention block on packed irreps features.

    x        = RMSNorm(h)
    q_i      = Linear(x_i);   k_ij, v_ij = KeyValueConvolution(x_j, Y(u_ij), radial MLP(r_ij))
    s_ij     = <q_i, k_ij> per head (sum over channels and m of each degree: invariant)
    a_ij     = env(r_ij) exp(s_ij) / (1 + sum_k env(r_ik) exp(s_ik))
    h_i     += Gate(Linear(sum_j a_ij v_ij))

The "1" is a sink with score 0: without it the weights of an atom's last neighbour would be 1
up to the cutoff and jump to 0 beyond it; with it and the C2 envelope env(r) every a_ij goes to
zero smoothly at the cutoff. The per-centre max used for stability cancels exactly in the
ratio, so it is taken without gradient and forces stay exact.

Implementations of the edge part (same parameters, same numbers):
  * "fused": the kernels of openmmnnp.ops.se3_attention build k_ij and v_ij in registers; per edge
    only the radial weights [2 P C] and the scores/attention [heads] are stored. First derivatives.
  * "low_memory": the same kernels also recompute the radial weights from the radial features, so
    a layer stores O(heads) numbers per edge. Inference only (no gradients for the radial MLP).
  * "torch": packed pure-torch contraction; twice differentiable, so training (force loss) uses it.
  * "reference": per-path loop materialising per-edge [C, C] weight matrices and bases.
"""

from typing import List

import torch

from openmmnnp.models.equivariant_layers import MLP, EquivariantLinear, EquivariantRMSNorm, Gate
from openmmnnp.models.kv_convolution import KeyValueConvolution
from openmmnnp.ops.se3_attention import se3_attention_messages, se3_attention_scores

IMPLEMENTATIONS = ("fused", "low_memory", "torch", "reference")


class SE3AttentionLayer(torch.nn.Module):
    def __init__(self, lmax: int, channels: int, heads: int, num_radial: int, radial_hidden: int) -> None:
        super().__init__()
        if channels % heads != 0:
            raise ValueError(f"SE3AttentionLayer: channels {channels} must be divisible by heads {heads}")
        self.heads = heads
        self.channels = channels
        self.dim = (lmax + 1) ** 2
        self.norm = EquivariantRMSNorm(lmax, channels)
        self.query = EquivariantLinear(lmax, channels, channels)
        self.convolution = KeyValueConvolution(lmax, channels)
        self.radial = MLP([num_radial, radial_hidden, self.convolution.num_weights()])
        self.output = EquivariantLinear(lmax, channels, channels)
        self.gate = Gate(lmax, channels)
        self.scale = 1.0 / (channels // heads * self.dim) ** 0.5

    def forward(self, h: torch.Tensor, center: torch.Tensor, neighbor: torch.Tensor, y: torch.Tensor,
                radial: torch.Tensor, envelope: torch.Tensor, implementation: str) -> torch.Tensor:
        """h [N, C, D], center/neighbor [E] int64, y [E, D], radial [E, B], envelope [E] -> h [N, C, D]."""
        x = self.norm(h)
        queries = self.query(x)
        if implementation == "fused" or implementation == "low_memory":
            aggregated = self.fused_edges(x, queries, center, neighbor, y, radial, envelope, implementation == "low_memory")
        else:
            aggregated = self.torch_edges(x, queries, center, neighbor, y, radial, envelope, implementation == "reference")
        return h + self.gate(self.output(aggregated))

    def torch_edges(self, x: torch.Tensor, queries: torch.Tensor, center: torch.Tensor, neighbor: torch.Tensor,
                    y: torch.Tensor, radial: torch.Tensor, envelope: torch.Tensor, reference: bool) -> torch.Tensor:
        """Sum over edges of attention x values, with per-edge keys and values as torch tensors -> [N, C, D]."""
        num_edges = y.shape[0]
        weights = self.radial(radial)
        if reference:
            keys, values = self.convolution.reference(x, neighbor, y, weights)
        else:
            keys, values = self.convolution.packed(x, neighbor, y, weights)
        scores = (queries.index_select(0, center) * keys).view(num_edges, self.heads, -1).sum(2)  # [E, H]
        attention = self.attention(scores, center, envelope, x.shape[0])
        messages = values.view(num_edges, self.heads, -1) * attention.unsqueeze(2)
        aggregated = torch.zeros_like(x)
        return aggregated.index_add(0, center, messages.view(num_edges, self.channels, self.dim))

    def fused_edges(self, x: torch.Tensor, queries: torch.Tensor, center: torch.Tensor, neighbor: torch.Tensor,
                    y: torch.Tensor, radial: torch.Tensor, envelope: torch.Tensor, low_memory: bool) -> torch.Tensor:
        """Same sum by the fused kernels: keys and values never leave registers -> [N, C, D]."""
        first, last = self.radial.layers[0], self.radial.layers[1]
        half = self.convolution.num_paths * self.channels  # keys: rows [0, half) of the last layer, values: the rest
        index = self.convolution.entry_index
        value = self.convolution.entry_value.to(x.dtype)
        if low_memory:
            if self.training:
                raise RuntimeError("SE3Attention: the low_memory implementation is for inference (the radial MLP gets "
                                   "no gradients); call model.eval(), or train with implementation 'torch'")
            w1, b1 = first.weight.detach(), first.bias.detach()
            w2, b2 = last.weight.detach(), last.bias.detach()
            key_mlp: List[torch.Tensor] = [w1, b1, w2[:half], b2[:half]]
            value_mlp: List[torch.Tensor] = [w1, b1, w2[half:], b2[half:]]
            key_weights, value_weights = radial, radial
        else:
            hidden = torch.nn.functional.silu(torch.nn.functional.linear(radial, first.weight, first.bias))
            key_weights = torch.nn.functional.linear(hidden, last.weight[:half], last.bias[:half])  # [E, P C]
            value_weights = torch.nn.functional.linear(hidden, last.weight[half:], last.bias[half:])
            key_mlp = []
            value_mlp = []
        scores = se3_attention_scores(queries, x, y, key_weights, key_mlp, center, neighbor, index, value, self.heads)
        attention = self.attention(scores, center, envelope, x.shape[0])
        return se3_attention_messages(attention, x, y, value_weights, value_mlp, center, neighbor, index, value)

    def attention(self, scores: torch.Tensor, center: torch.Tensor, envelope: torch.Tensor, num_atoms: int) -> torch.Tensor:
        """Softmax with a sink over each centre's edges: unscaled scores [E, H] -> attention [E, H]."""
        scores = scores * self.scale
        num_edges = scores.shape[0]
        index = center.unsqueeze(1).expand(num_edges, self.heads)
        # The shift only guards exp() against overflow; the softmax does not depend on it, so it
        # must carry no gradient. .detach() alone is not enough: torch.jit.freeze (which TorchForce
        # applies) drops it, and the amax backward then yields NaN. no_grad survives freezing.
        with torch.no_grad():
            top = torch.zeros(num_atoms, self.heads, dtype=scores.dtype, device=scores.device)
            top = top.scatter_reduce(0, index, scores.detach(), reduce="amax", include_self=True)  # >= 0: the sink
        numerator = torch.exp(scores - top.index_select(0, center)) * envelope.unsqueeze(1)
        denominator = torch.exp(-top).index_add(0, center, numerator)
        return numerator / denominator.index_select(0, center)  # [E, H]
