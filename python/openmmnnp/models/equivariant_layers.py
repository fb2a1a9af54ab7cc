"""Node-wise equivariant building blocks on packed irreps tensors x [N, C, (L+1)^2].

Every degree l = 0..L has the same C channels; degree l occupies columns l^2..(l+1)^2-1.
Channel mixing happens here, on nodes (cheap), never per edge.
"""

from typing import List

import torch


def degree_index(lmax: int) -> torch.Tensor:
    """[(L+1)^2] long: the degree l of each packed column."""
    return torch.tensor([l for l in range(lmax + 1) for _ in range(2 * l + 1)], dtype=torch.long)


class EquivariantLinear(torch.nn.Module):
    """Per-degree channel mixing y[:, :, l] = W_l x[:, :, l] (+ bias on l = 0 only)."""

    def __init__(self, lmax: int, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(lmax + 1, channels_in, channels_out) / channels_in ** 0.5)
        self.bias = torch.nn.Parameter(torch.zeros(channels_out))
        self.register_buffer("degree", degree_index(lmax))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, C_in, D] -> [N, C_out, D]."""
        w = self.weight.index_select(0, self.degree)  # [D, C_in, C_out]: one batched matmul for all degrees
        y = torch.bmm(x.permute(2, 0, 1), w).permute(1, 2, 0)
        return torch.cat([y[:, :, :1] + self.bias.view(1, -1, 1), y[:, :, 1:]], dim=2)


class EquivariantRMSNorm(torch.nn.Module):
    """Per-degree RMS normalisation over channels and m, with a learnt per-(degree, channel) scale.

    The norm of a degree-l block is rotation invariant, so dividing by it keeps equivariance.
    """

    def __init__(self, lmax: int, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(lmax + 1, channels))
        self.eps = eps
        self.lmax = lmax
        self.register_buffer("degree", degree_index(lmax))
        self.register_buffer("multiplicity", torch.tensor([float(2 * l + 1) for l in range(lmax + 1)]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, C, D] -> [N, C, D]."""
        sq = torch.zeros(x.shape[0], self.lmax + 1, dtype=x.dtype, device=x.device)
        sq = sq.index_add(1, self.degree, (x * x).mean(1))  # [N, L+1]: sum over m, mean over channels
        inv = torch.rsqrt(sq / self.multiplicity.to(x.dtype) + self.eps)  # [N, L+1]
        factor = inv.unsqueeze(1) * self.scale.t().unsqueeze(0)  # [N, C, L+1]
        return x * factor.index_select(2, self.degree)


class Gate(torch.nn.Module):
    """Gated nonlinearity: SiLU on scalars; degree l > 0 scaled by sigmoid(linear(scalars))."""

    def __init__(self, lmax: int, channels: int) -> None:
        super().__init__()
        self.gates = torch.nn.Linear(channels, channels * lmax) if lmax > 0 else None
        self.lmax = lmax
        self.register_buffer("gate_index", (degree_index(lmax)[1:] - 1).clamp(min=0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, C, D] -> [N, C, D]."""
        scalars = x[:, :, 0]
        gates = self.gates
        if gates is None:
            return torch.nn.functional.silu(x)
        g = torch.sigmoid(gates(scalars)).view(x.shape[0], x.shape[1], self.lmax)
        return torch.cat([torch.nn.functional.silu(x[:, :, :1]), x[:, :, 1:] * g.index_select(2, self.gate_index)], dim=2)


class RadialBasis(torch.nn.Module):
    """Bessel radial basis sqrt(2/rc) sin(n pi r / rc) / r, n = 1..num: r [E] -> [E, num]."""

    def __init__(self, rcut: float, num: int) -> None:
        super().__init__()
        self.rcut = rcut
        self.register_buffer("frequencies", torch.arange(1, num + 1, dtype=torch.get_default_dtype()) * torch.pi / rcut)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return (2.0 / self.rcut) ** 0.5 * torch.sin(r.unsqueeze(1) * self.frequencies.to(r.dtype)) / r.unsqueeze(1)


class MLP(torch.nn.Module):
    """SiLU multilayer perceptron, last layer linear: [B, sizes[0]] -> [B, sizes[-1]]."""

    def __init__(self, sizes: List[int]) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for k, layer in enumerate(self.layers):
            x = layer(x)
            if k < last:
                x = torch.nn.functional.silu(x)
        return x
