"""A short-range repulsive prior that every openmm-nnp model carries: no low-energy holes at short range.

A network only knows the distances it was trained on. Closer than the closest pair of the
training data it extrapolates, and an extrapolated energy can fall as two atoms approach: MD
then drives atoms into each other. DeePMD-kit's DP-ZBL models fix this with a physical term;
this is the same idea:

    E_prior = sum_{i<j} V_ab(r_ij) * w_ab(r_ij)

    V_ab(r) = k Z_a Z_b / r * phi(r / a_ab)            ZBL universal screened nuclear repulsion
    a_ab    = 0.46850 / (Z_a^0.23 + Z_b^0.23)          angstrom
    phi(x)  = 0.18175 e^{-3.19980 x} + 0.50986 e^{-0.94229 x} + 0.28022 e^{-0.40290 x} + 0.02817 e^{-0.20162 x}
    w_ab(r) = 1 below inner[a, b], 0 from outer[a, b] on, C2 switch between (env_matrix.switch_polynomial)

with k = e^2 / (4 pi eps0) = 14.399645 eV angstrom and Z the atomic numbers of the type map.
The window comes from the shortest distance d_ab between atoms of types a and b in the training
data (:func:`openmmnnp.training.statistics.set_distance_statistics`): by default inner = 0.75 d_ab
and outer = d_ab, so the prior is exactly zero on every training configuration and the network
learns the teacher unchanged; a window reaching into the data (outer > d_ab) makes the network learn
the teacher minus the prior there instead. V and w both fall monotonically with r, so the prior rises
monotonically as a pair approaches and, being ZBL, rises steeply (O-O at 1.5 angstrom: ~4 eV).
A model whose ``outer`` is all zero (e.g. one imported from DeePMD-kit) has no prior. Both radii
are buffers, so they travel with the state dict (compression, TorchScript files).

Units: angstrom and eV (the units of the models that carry it).
"""

from typing import List, Optional

import openmm.app
import torch

from openmmnnp.models.env_matrix import switch_polynomial

COULOMB_EV_ANGSTROM = 14.399645  # e^2 / (4 pi eps0)
ZBL_SCREENING_LENGTH = 0.46850  # angstrom (0.8854 Bohr radii)
ZBL_EXPONENT = 0.23


def atomic_number(symbol: str) -> int:
    """Atomic number of an element symbol (ValueError for an unknown one)."""
    try:
        return int(openmm.app.Element.getBySymbol(symbol).atomic_number)
    except KeyError:
        raise ValueError(f"PairRepulsion: unknown element symbol {symbol!r}") from None


class PairRepulsion(torch.nn.Module):
    """ZBL repulsion of the type pairs, fully on below ``inner`` [T, T] and off from ``outer`` [T, T] (angstrom) on.

    Args:
        type_map: element symbol of each type (their atomic numbers set the ZBL strength).
    """

    active: bool

    def __init__(self, type_map: List[str]) -> None:
        super().__init__()
        z = torch.tensor([float(atomic_number(s)) for s in type_map], dtype=torch.float64)
        self.register_buffer("prefactor", COULOMB_EV_ANGSTROM * z.unsqueeze(0) * z.unsqueeze(1))  # [T, T] eV angstrom
        zp = z**ZBL_EXPONENT
        self.register_buffer("screening", ZBL_SCREENING_LENGTH / (zp.unsqueeze(0) + zp.unsqueeze(1)))  # [T, T] angstrom
        self.register_buffer("inner", torch.zeros(len(type_map), len(type_map), dtype=torch.float64))
        self.register_buffer("outer", torch.zeros(len(type_map), len(type_map), dtype=torch.float64))
        self.active = False

    @torch.jit.ignore
    def set_window(self, inner: torch.Tensor, outer: torch.Tensor) -> None:
        """inner, outer [T, T] angstrom, symmetric, 0 <= inner < outer (outer 0: no prior for that pair)."""
        for name, value in (("inner", inner), ("outer", outer)):
            if value.shape != self.outer.shape or not torch.equal(value, value.transpose(0, 1)) or bool((value < 0).any()):
                raise ValueError(f"PairRepulsion: {name} must be a symmetric non-negative {tuple(self.outer.shape)} tensor, got {value}")
        if bool(((outer > 0) & (inner >= outer)).any()):
            raise ValueError(f"PairRepulsion: need inner < outer where outer > 0, got inner {inner}, outer {outer}")
        self.inner.copy_(inner)
        self.outer.copy_(outer)
        self.active = bool((outer > 0).any())

    def _load_from_state_dict(self, state_dict, prefix, *args) -> None:  # type: ignore[no-untyped-def]
        if prefix + "outer" in state_dict and prefix + "inner" not in state_dict:
            # Files from before ``inner`` was a buffer: it was 0.75 x outer.
            state_dict[prefix + "inner"] = 0.75 * state_dict[prefix + "outer"]
        super()._load_from_state_dict(state_dict, prefix, *args)
        self.active = bool((self.outer > 0).any())

    def pair_energy(self, r: torch.Tensor, center_type: torch.Tensor, neighbor_type: torch.Tensor) -> torch.Tensor:
        """V_ab(r) w_ab(r) [E] eV of edges of length r [E] angstrom between the given types [E]."""
        index = center_type * self.outer.shape[0] + neighbor_type
        dtype = r.dtype
        outer = self.outer.to(dtype).flatten().index_select(0, index)
        inner = self.inner.to(dtype).flatten().index_select(0, index)
        screening = self.screening.to(dtype).flatten().index_select(0, index)
        prefactor = self.prefactor.to(dtype).flatten().index_select(0, index)
        x = r / screening
        phi = (0.18175 * torch.exp(-3.19980 * x) + 0.50986 * torch.exp(-0.94229 * x)
               + 0.28022 * torch.exp(-0.40290 * x) + 0.02817 * torch.exp(-0.20162 * x))
        u = ((r - inner) / (outer - inner).clamp(min=1e-12)).clamp(0.0, 1.0)
        weight = torch.where(outer > 0, switch_polynomial(u), torch.zeros_like(r))
        return prefactor / r.clamp(min=1e-4) * phi * weight  # clamp: coincident atoms stay finite

    def atomic_energies(self, positions: torch.Tensor, box: Optional[torch.Tensor], types: torch.Tensor,
                        pairs: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
        """[N] eV: half of each pair's prior to each of its atoms, from a full pair list [2, P] (-1 padded)."""
        energies = torch.zeros(positions.shape[0], dtype=positions.dtype, device=positions.device)
        if not self.active:
            return energies
        center = pairs[0].to(torch.long)
        neighbor = pairs[1].to(torch.long)
        if positions.device.type == "cpu":
            # Only the few pairs inside the window matter: find them on detached positions, then compute those.
            r = pair_lengths(positions.detach(), box, center.clamp(min=0), neighbor.clamp(min=0), shifts)
            pair_type = types.index_select(0, center.clamp(min=0)) * self.outer.shape[0] + types.index_select(0, neighbor.clamp(min=0))
            outer = self.outer.to(r.dtype).flatten().index_select(0, pair_type)
            close = torch.nonzero((center >= 0) & (r < outer)).squeeze(1)
            center = center.index_select(0, close)
            neighbor = neighbor.index_select(0, close)
            shifts = shifts.index_select(0, close)
            valid = torch.ones_like(center, dtype=torch.bool)
        else:  # static shapes (CUDA graphs): every edge, masked
            valid = center >= 0
            center = center.clamp(min=0)
            neighbor = neighbor.clamp(min=0)
        r = pair_lengths(positions, box, center, neighbor, shifts)
        r = torch.where(valid, r, torch.full_like(r, 1.0e3))  # padded slots: far beyond any window
        energy = self.pair_energy(r, types.index_select(0, center), types.index_select(0, neighbor))
        return energies.index_add(0, center, 0.5 * energy)


def pair_lengths(positions: torch.Tensor, box: Optional[torch.Tensor], center: torch.Tensor, neighbor: torch.Tensor,
                 shifts: torch.Tensor) -> torch.Tensor:
    """|r_j - r_i + shift @ box| [E] of edges (center, neighbor) [E], shifts [E, 3] in box vectors."""
    vectors = positions.index_select(0, neighbor) - positions.index_select(0, center)
    if box is not None:
        vectors = vectors + shifts.to(positions.dtype) @ box
    return torch.linalg.vector_norm(vectors, dim=1)
