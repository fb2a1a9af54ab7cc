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
"""

import torch

from openmmnnp.models.equivariant_layers import MLP, EquivariantLinear, EquivariantRMSNorm, Gate
from openmmnnp.models.kv_convolution import KeyValueConvolution


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
                radial: torch.Tensor, envelope: torch.Tensor, fused: bool) -> torch.Tensor:
        """h [N, C, D], center/neighbor [E], y [E, D], radial [E, B], envelope [E] -> h [N, C, D]."""
        num_atoms, num_edges = h.shape[0], y.shape[0]
        x = self.norm(h)
        weights = self.radial(radial)
        if fused:
            keys, values = self.convolution.fused(x, neighbor, y, weights)
        else:
            keys, values = self.convolution.reference(x, neighbor, y, weights)
        queries = self.query(x).index_select(0, center)
        scores = (queries * keys).view(num_edges, self.heads, -1).sum(2) * self.scale  # [E, H]
        index = center.unsqueeze(1).expand(num_edges, self.heads)
        # The shift only guards exp() against overflow; the softmax does not depend on it, so it
        # must carry no gradient. .detach() alone is not enough: torch.jit.freeze (which TorchForce
        # applies) drops it, and the amax backward then yields NaN. no_grad survives freezing.
        with torch.no_grad():
            top = torch.zeros(num_atoms, self.heads, dtype=h.dtype, device=h.device)
            top = top.scatter_reduce(0, index, scores.detach(), reduce="amax", include_self=True)  # >= 0: the sink
        numerator = torch.exp(scores - top.index_select(0, center)) * envelope.unsqueeze(1)
        denominator = torch.exp(-top).index_add(0, center, numerator)
        attention = numerator / denominator.index_select(0, center)  # [E, H]
        messages = values.view(num_edges, self.heads, -1) * attention.unsqueeze(2)
        aggregated = torch.zeros(num_atoms, self.channels, self.dim, dtype=h.dtype, device=h.device)
        aggregated = aggregated.index_add(0, center, messages.view(num_edges, self.channels, self.dim))
        return h + self.gate(self.output(aggregated))
