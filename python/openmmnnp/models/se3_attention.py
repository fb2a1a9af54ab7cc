"""SE(3)-equivariant graph attention potential (``SE3Attention``), openmm-nnp model contract.

Atoms carry packed features of degrees 0..lmax (<= 3) with ``channels`` channels each, start
from a type embedding (scalars), pass ``layers`` :class:`SE3AttentionLayer` blocks over the full
neighbour list of :func:`openmmnnp.ops.neighbor_pairs` (cutoff ``rcut``, C2 envelope), and end in
per-atom energies MLP(scalars) + energy_bias[type]. Units angstrom and eV. Forces come from
autograd through everything (harmonics, envelope, attention), so they are exact.

``implementation`` (attribute) selects how the layers' edge part is computed, with the same
parameters and numbers (see se3_attention_layer.py): "fused" (default; fused kernels, first
derivatives: MD), "low_memory" (fused kernels recomputing the radial weights: least memory,
inference only), "torch" (pure torch, twice differentiable: training; the trainer selects it) and
"reference" (per-path, per-edge weight matrices: tests and benchmarks).
``max_neighbors`` sizes the static pair capacity N * max_neighbors: exceeding it raises on the
CPU and sets the ``capacity_overflow`` buffer elsewhere.
"""

from typing import List, Optional, Tuple

import torch

from openmmnnp.models.env_matrix import smooth_switch
from openmmnnp.models.equivariant_layers import MLP, RadialBasis
from openmmnnp.models.pair_repulsion import PairRepulsion
from openmmnnp.models.se3_attention_layer import IMPLEMENTATIONS, SE3AttentionLayer
from openmmnnp.models.spherical_harmonics import MAX_DEGREE, spherical_harmonics
from openmmnnp.ops.neighbors import neighbor_pairs


class SE3Attention(torch.nn.Module):
    """Args: type_map (element symbols), rcut (angstrom), lmax (0..3), channels, layers, heads,
    num_radial (Bessel functions), radial_hidden (radial MLP width), max_neighbors (capacity per atom)."""

    type_map: List[str]
    length_unit: str
    energy_unit: str
    implementation: str
    implementations: List[str]

    def __init__(self, type_map: List[str], rcut: float = 5.0, lmax: int = 2, channels: int = 16, layers: int = 2,
                 heads: int = 2, num_radial: int = 8, radial_hidden: int = 32, max_neighbors: int = 80) -> None:
        super().__init__()
        if not 0 <= lmax <= MAX_DEGREE:
            raise ValueError(f"SE3Attention: lmax must be in 0..{MAX_DEGREE}, got {lmax}")
        if rcut <= 0 or layers < 1 or channels < 1 or max_neighbors < 1:
            raise ValueError("SE3Attention: rcut, layers, channels and max_neighbors must be positive")
        self.type_map = list(type_map)
        self.length_unit = "angstrom"
        self.energy_unit = "eV"
        self.ntypes = len(type_map)
        self.rcut = float(rcut)
        self.lmax = int(lmax)
        self.channels = int(channels)
        self.dim = (lmax + 1) ** 2
        self.max_neighbors = int(max_neighbors)
        self.implementation = "fused"
        self.implementations = list(IMPLEMENTATIONS)
        self.embedding = torch.nn.Embedding(self.ntypes, channels)
        self.radial_basis = RadialBasis(self.rcut, num_radial)
        self.layers = torch.nn.ModuleList(
            [SE3AttentionLayer(lmax, channels, heads, num_radial, radial_hidden) for _ in range(layers)])
        self.readout = MLP([channels, channels, 1])
        self.register_buffer("energy_bias", torch.zeros(self.ntypes))
        self.register_buffer("capacity_overflow", torch.zeros(1, dtype=torch.long))
        # Short-range prior below the training data's shortest pairs (inactive until its window is set).
        self.repulsion = PairRepulsion(self.type_map)

    def forward(self, positions: torch.Tensor, box: Optional[torch.Tensor], types: torch.Tensor) -> torch.Tensor:
        """positions [N, 3] angstrom, box [3, 3] rows or None, types [N] int64 -> energy [] eV."""
        return self.atomic_energies(positions, box, types).sum()

    def atomic_energies(self, positions: torch.Tensor, box: Optional[torch.Tensor], types: torch.Tensor) -> torch.Tensor:
        """[N] atomic energies, eV (including the per-type bias)."""
        pairs, shifts, num_pairs = self.neighbors(positions, box)
        return self.atomic_energies_from_pairs(positions, box, types, pairs, shifts, num_pairs)

    def neighbors(self, positions: torch.Tensor, box: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Full pair list within rcut, static capacity N * max_neighbors."""
        return neighbor_pairs(positions, self.rcut, box, positions.shape[0] * self.max_neighbors, True)

    def atomic_energies_from_pairs(self, positions: torch.Tensor, box: Optional[torch.Tensor], types: torch.Tensor,
                                   pairs: torch.Tensor, shifts: torch.Tensor, num_pairs: torch.Tensor) -> torch.Tensor:
        """Atomic energies [N] from a full pair list [2, P] (-1 padded), shifts [P, 3], num_pairs [1]."""
        if positions.dim() != 2 or positions.shape[1] != 3 or types.shape[0] != positions.shape[0]:
            raise ValueError("SE3Attention: need positions [N, 3] and types [N]")
        capacity = pairs.shape[1]
        if positions.device.type == "cpu":
            count = int(num_pairs[0])
            if count > capacity:
                raise RuntimeError("SE3Attention: " + str(count) + " neighbour pairs within rcut exceed the capacity "
                                   + str(capacity) + "; increase max_neighbors (" + str(self.max_neighbors) + ")")
            pairs, shifts = pairs[:, :count], shifts[:count]  # no padded edges on the CPU
        else:
            self.capacity_overflow.copy_(torch.maximum(self.capacity_overflow, (num_pairs > capacity).to(torch.long)))
        if self.implementation not in self.implementations:
            raise ValueError("SE3Attention: implementation must be one of " + ", ".join(self.implementations)
                             + "; got " + self.implementation)
        valid = pairs[0] >= 0
        center = pairs[0].clamp(min=0).to(torch.long)
        neighbor = pairs[1].clamp(min=0).to(torch.long)
        vectors = positions.index_select(0, neighbor) - positions.index_select(0, center)
        if box is not None:
            vectors = vectors + shifts.to(positions.dtype) @ box
        far = torch.zeros_like(vectors)
        far[:, 0] = 2.0 * self.rcut  # padded slots: finite, beyond rcut, so their envelope is 0
        vectors = torch.where(valid.unsqueeze(1), vectors, far)
        r = torch.linalg.vector_norm(vectors, dim=1)
        y = spherical_harmonics(vectors / r.unsqueeze(1), self.lmax)
        radial = self.radial_basis(r)
        envelope = smooth_switch(r, 0.0, self.rcut)
        scalars = self.embedding(types)
        h = torch.cat([scalars.unsqueeze(2), scalars.new_zeros(scalars.shape[0], self.channels, self.dim - 1)], dim=2)
        for layer in self.layers:
            h = layer(h, center, neighbor, y, radial, envelope, self.implementation)
        prior = self.repulsion.atomic_energies(positions, box, types, pairs, shifts)
        return self.readout(h[:, :, 0]).squeeze(1) + self.energy_bias.index_select(0, types).to(h.dtype) + prior
