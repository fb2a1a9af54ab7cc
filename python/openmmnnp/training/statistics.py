"""Data statistics a model needs before training: env-matrix scale, energy bias, min distance."""

from __future__ import annotations

from typing import List, Tuple

import torch

from openmmnnp.models.env_matrix import environment_rows
from openmmnnp.models.se_e2_a import SeE2A


@torch.no_grad()
def frame_neighbors(model: torch.nn.Module, positions: List[torch.Tensor], boxes: List[torch.Tensor],
                    check_capacity: bool = False) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    """The model's full neighbour lists of each frame, padding cut off: (pairs [2, P_k], shifts [P_k, 3]) lists.

    ``model`` is any model with ``neighbors(positions, box)`` (se_e2_a, SE3Attention). The lists are
    copies, so the padded capacity is freed. A frame with more pairs than the model's capacity keeps
    the pairs that fit, unless ``check_capacity``.

    Raises:
        RuntimeError: with ``check_capacity``, a frame has more pairs than the model's pair capacity.
    """
    pairs, shifts = [], []
    for k, (pos, box) in enumerate(zip(positions, boxes)):
        p, s, num_pairs = model.neighbors(pos, box)
        n = min(int(num_pairs[0]), p.shape[1]) if not check_capacity else int(num_pairs[0])
        if n > p.shape[1]:
            raise RuntimeError(f"frame {k}: {n} pairs exceed the model's pair capacity {p.shape[1]}; "
                               "increase sel (se_e2_a) or se3_max_neighbors (se3)")
        pairs.append(p[:, :n].clone())
        shifts.append(s[:n].clone())
    return pairs, shifts


def set_statistics(model: SeE2A, positions: List[torch.Tensor], boxes: List[torch.Tensor],
                   pairs: List[torch.Tensor], shifts: List[torch.Tensor], types: torch.Tensor,
                   energies: torch.Tensor) -> None:
    """Fills model.dstd, model.energy_bias and model.min_neighbor_distance from training frames.

    dstd per centre type: RMS of the radial column s and of the angular columns s x/r (davg
    stays zero, see :mod:`openmmnnp.models.se_e2_a`). Energy bias: least-squares fit of the
    frame energies to per-type atom counts (minimum-norm if the composition never varies).
    Inputs are in model units; pairs are full lists without padding.
    """
    ntypes = model.ntypes
    sum_s2 = torch.zeros(ntypes, dtype=torch.float64)
    sum_a2 = torch.zeros(ntypes, dtype=torch.float64)
    count = torch.zeros(ntypes, dtype=torch.float64)
    min_distance = float("inf")
    for pos, box, pair, shift in zip(positions, boxes, pairs, shifts):
        pos = pos.double()
        vectors = pos[pair[1]] - pos[pair[0]] + shift.double() @ box.double()
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


@torch.no_grad()
def set_energy_bias(model: torch.nn.Module, types: torch.Tensor, energies: torch.Tensor) -> None:
    """model.energy_bias [ntypes]: least-squares fit of the frame energies [F] to per-type atom
    counts of ``types`` [N] (minimum-norm if the composition never varies)."""
    ntypes = model.energy_bias.shape[0]
    counts = torch.stack([(types == t).sum() for t in range(ntypes)]).double().expand(len(energies), ntypes)
    bias = torch.linalg.lstsq(counts, energies.double().unsqueeze(1), driver="gelsd").solution.squeeze(1)
    model.energy_bias.copy_(bias)
