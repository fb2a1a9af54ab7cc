"""Small analytic potentials that follow openmm-nnp's model contract, for the tests."""


from typing import List, Optional

import torch

from openmmnnp.ops.reference import dense_neighbor_pairs


class HarmonicPairs(torch.nn.Module):
    """E = sum over pairs i<j closer than cutoff of k/2 (r_ij - r0)^2, in Å and eV.

    Declared in Å/eV on purpose, so that tests exercise NNPForce's unit conversion.
    Uses the minimum image when a box is given.
    """

    type_map: List[str]

    def __init__(self, k: float = 0.5, r0: float = 3.0, cutoff: float = 6.0, type_map: Optional[List[str]] = None) -> None:
        super().__init__()
        self.type_map = type_map if type_map is not None else ["Ar"]
        self.length_unit = "angstrom"
        self.energy_unit = "eV"
        self.k = k
        self.r0 = r0
        self.cutoff = cutoff
        self.register_buffer("dtype_probe", torch.zeros(0, dtype=torch.float64))

    def forward(self, positions: torch.Tensor, box: Optional[torch.Tensor], types: torch.Tensor) -> torch.Tensor:
        pairs, shifts, num_pairs = dense_neighbor_pairs(positions, self.cutoff, box, -1, False)
        vectors = positions[pairs[1]] - positions[pairs[0]]
        if box is not None:
            vectors = vectors + shifts.to(positions.dtype) @ box
        r = torch.linalg.norm(vectors, dim=1)
        # A per-type scale makes the types matter, so a wrong type assignment changes the energy.
        weight = (1.0 + types[pairs[0]] + types[pairs[1]]).to(positions.dtype)
        return (0.5 * self.k * weight * (r - self.r0) ** 2).sum()


class ScaledHarmonicPairs(HarmonicPairs):
    """HarmonicPairs whose energy passes through the compiled op ``openmmnnp::scale``."""

    def forward(self, positions: torch.Tensor, box: Optional[torch.Tensor], types: torch.Tensor) -> torch.Tensor:
        pairs, shifts, num_pairs = dense_neighbor_pairs(positions, self.cutoff, box, -1, False)
        vectors = positions[pairs[1]] - positions[pairs[0]]
        r = torch.linalg.norm(vectors, dim=1)
        weight = (1.0 + types[pairs[0]] + types[pairs[1]]).to(positions.dtype)
        energy = (0.5 * self.k * weight * (r - self.r0) ** 2).sum()
        return torch.ops.openmmnnp.scale(energy, 2.0) * 0.5  # the op itself: it must appear in the exported graph
