"""Data statistics a model needs before training: env-matrix scale, energy bias, min distance."""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch

from openmmnnp.models.env_matrix import environment_rows
from openmmnnp.models.pair_repulsion import pair_lengths
from openmmnnp.models.se_e2_a import SeE2A


@torch.no_grad()
def frame_neighbors(model: SeE2A, positions: List[torch.Tensor], boxes: List[Optional[torch.Tensor]]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    """The model's full neighbour lists of each frame, padding cut off: (pairs [2, P_k], shifts [P_k, 3]) lists."""
    pairs, shifts = [], []
    for pos, box in zip(positions, boxes):
        p, s, n = model.neighbors(pos, box)
        pairs.append(p[:, : int(n[0])])
        shifts.append(s[: int(n[0])])
    return pairs, shifts


def set_statistics(model: SeE2A, positions: List[torch.Tensor], boxes: List[Optional[torch.Tensor]],
                   pairs: List[torch.Tensor], shifts: List[torch.Tensor], types: torch.Tensor,
                   energies: torch.Tensor) -> None:
    """Fills model.dstd, model.energy_bias and model.min_neighbor_distance from training frames.

    dstd per centre type: RMS of the radial column s and of the angular columns s x/r (davg
    stays zero, see :mod:`openmmnnp.models.se_e2_a`). Energy bias: least-squares fit of the
    frame energies to per-type atom counts (minimum-norm if the composition never varies).
    Inputs are in model units (a box None: no periodic boundaries); pairs are full lists without padding.
    """
    ntypes = model.ntypes
    sum_s2 = torch.zeros(ntypes, dtype=torch.float64)
    sum_a2 = torch.zeros(ntypes, dtype=torch.float64)
    count = torch.zeros(ntypes, dtype=torch.float64)
    min_distance = float("inf")
    for pos, box, pair, shift in zip(positions, boxes, pairs, shifts):
        pos = pos.double()
        vectors = pos[pair[1]] - pos[pair[0]]
        if box is not None:
            vectors = vectors + shift.double() @ box.double()
        min_distance = min(min_distance, float(vectors.norm(dim=1).min()))
        rows = environment_rows(vectors, model.rcut_smth, model.rcut)
        center_type = types[pair[0]]
        sum_s2.index_add_(0, center_type, rows[:, 0] ** 2)
        sum_a2.index_add_(0, center_type, (rows[:, 1:] ** 2).mean(1))
        count.index_add_(0, center_type, torch.ones_like(rows[:, 0]))
    count = count.clamp(min=1.0)
    dstd = torch.ones(ntypes, 4, dtype=torch.float64)
    dstd[:, 0] = (sum_s2 / count).sqrt()
    dstd[:, 1:] = (sum_a2 / count).sqrt().unsqueeze(1)
    dstd[dstd < 1e-2] = 1.0  # a type without neighbours keeps unit scale
    model.dstd.copy_(dstd)
    set_energy_bias(model, types, energies)
    model.min_neighbor_distance.fill_(min_distance)
    set_repulsion_window(model, positions, boxes, pairs, shifts, types)


@torch.no_grad()
def shortest_pairs(positions: List[torch.Tensor], boxes: List[Optional[torch.Tensor]], pairs: List[torch.Tensor],
                   shifts: List[torch.Tensor], types: torch.Tensor, ntypes: int) -> torch.Tensor:
    """[ntypes, ntypes] shortest distance between atoms of each pair of types over the frames (model units;
    inf for a pair of types that never meet within the pair lists' cutoff)."""
    shortest = torch.full((ntypes * ntypes,), float("inf"), dtype=torch.float64)
    for pos, box, pair, shift in zip(positions, boxes, pairs, shifts):
        r = pair_lengths(pos.double(), None if box is None else box.double(), pair[0].long(), pair[1].long(), shift)
        index = types.index_select(0, pair[0].long()) * ntypes + types.index_select(0, pair[1].long())
        shortest = shortest.scatter_reduce(0, index, r, reduce="amin")
    shortest = shortest.view(ntypes, ntypes)
    return torch.minimum(shortest, shortest.transpose(0, 1))


@torch.no_grad()
def set_repulsion_window(model: torch.nn.Module, positions: List[torch.Tensor], boxes: List[Optional[torch.Tensor]],
                         pairs: List[torch.Tensor], shifts: List[torch.Tensor], types: torch.Tensor) -> None:
    """The short-range prior (model.repulsion, :mod:`openmmnnp.models.pair_repulsion`) vanishes from the
    shortest distance of each type pair in the training frames on, so it is zero on all of them.
    A pair of types that never meet closer than the cutoff gets no prior."""
    shortest = shortest_pairs(positions, boxes, pairs, shifts, types, model.repulsion.outer.shape[0])
    model.repulsion.set_window(torch.where(torch.isfinite(shortest), shortest, torch.zeros_like(shortest)))


@torch.no_grad()
def set_energy_bias(model: torch.nn.Module, types: torch.Tensor, energies: torch.Tensor) -> None:
    """model.energy_bias [ntypes]: least-squares fit of the frame energies [F] to per-type atom
    counts of ``types`` [N] (minimum-norm if the composition never varies)."""
    ntypes = model.energy_bias.shape[0]
    counts = torch.stack([(types == t).sum() for t in range(ntypes)]).double().expand(len(energies), ntypes)
    bias = torch.linalg.lstsq(counts, energies.double().unsqueeze(1), driver="gelsd").solution.squeeze(1)
    model.energy_bias.copy_(bias)
