"""Data statistics a model needs before training: env-matrix scale, energy bias, min distance."""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch

from openmmnnp.models.env_matrix import environment_rows
from openmmnnp.models.pair_repulsion import pair_lengths
from openmmnnp.models.se_e2_a import SeE2A


@torch.no_grad()
def frame_neighbors(model: torch.nn.Module, positions: List[torch.Tensor], boxes: List[Optional[torch.Tensor]],
                    check_capacity: bool = False) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    """The model's full neighbour lists of each frame, padding cut off: (pairs [2, P_k], shifts [P_k, 3]) lists.

    ``model`` is any model with ``neighbors(positions, box)`` (se_e2_a, SE3Attention); a box None: no
    periodic boundaries. The lists are copies, so the padded capacity is freed. A frame with more pairs
    than the model's capacity keeps the pairs that fit, unless ``check_capacity``.

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


def set_statistics(model: SeE2A, positions: List[torch.Tensor], boxes: List[Optional[torch.Tensor]],
                   pairs: List[torch.Tensor], shifts: List[torch.Tensor], types: torch.Tensor,
                   energies: torch.Tensor, prior_window: Tuple[float, float] = (0.75, 1.0)) -> None:
    """Fills model.dstd, model.energy_bias, model.min_neighbor_distance and the prior's window from training frames.

    dstd per centre type: RMS of the radial column s and of the angular columns s x/r (davg
    stays zero, see :mod:`openmmnnp.models.se_e2_a`). Energy bias: least-squares fit of the
    frame energies to per-type atom counts (minimum-norm if the composition never varies).
    Inputs are in model units (a box None: no periodic boundaries); pairs are full lists without padding.
    """
    ntypes = model.ntypes
    sum_s2 = torch.zeros(ntypes, dtype=torch.float64)
    sum_a2 = torch.zeros(ntypes, dtype=torch.float64)
    count = torch.zeros(ntypes, dtype=torch.float64)
    for pos, box, pair, shift in zip(positions, boxes, pairs, shifts):
        pos = pos.double()
        vectors = pos[pair[1]] - pos[pair[0]]
        if box is not None:
            vectors = vectors + shift.double() @ box.double()
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
    set_distance_statistics(model, positions, boxes, pairs, shifts, types, prior_window)
    set_fitting_input_statistics(model, positions, boxes, pairs, shifts, types)


@torch.no_grad()
def set_fitting_input_statistics(model: SeE2A, positions: List[torch.Tensor], boxes: List[Optional[torch.Tensor]],
                                 pairs: List[torch.Tensor], shifts: List[torch.Tensor], types: torch.Tensor,
                                 max_frames: int = 32) -> None:
    """model.fit_shift / fit_scale [ntypes, M * axis_neuron]: mean and 1/std of each descriptor component over
    the atoms of each type in (up to ``max_frames`` of) the frames, with the model's current embedding nets.
    Components that barely vary keep a scale of at most 1e3."""
    sums = [torch.zeros(model.fit_shift.shape[1], dtype=torch.float64) for _ in range(model.ntypes)]
    squares = [torch.zeros_like(s) for s in sums]
    counts = [0] * model.ntypes
    for pos, box, pair, shift in list(zip(positions, boxes, pairs, shifts))[:max_frames]:
        num_pairs = torch.tensor([pair.shape[1]])
        t = model.contracted_environment(pos, box, types, pair, shift, num_pairs)
        d = model.descriptor(t).double()
        for k in range(model.ntypes):
            rows = d[types == k]
            sums[k] += rows.sum(0)
            squares[k] += (rows * rows).sum(0)
            counts[k] += rows.shape[0]
    for k in range(model.ntypes):
        if counts[k] == 0:
            continue
        mean = sums[k] / counts[k]
        std = (squares[k] / counts[k] - mean * mean).clamp(min=0.0).sqrt()
        model.fit_shift[k].copy_(mean)
        model.fit_scale[k].copy_(1.0 / std.clamp(min=1e-3))


@torch.no_grad()
def set_distance_statistics(model: torch.nn.Module, positions: List[torch.Tensor], boxes: List[Optional[torch.Tensor]],
                            pairs: List[torch.Tensor], shifts: List[torch.Tensor], types: torch.Tensor,
                            prior_window: Tuple[float, float] = (0.75, 1.0)) -> None:
    """What depends on the training data's shortest pairs, refreshed whenever the data grow (concurrent
    learning): the short-range prior's window and, for se_e2_a, ``min_neighbor_distance`` (where
    compression starts its tables). ``prior_window`` (inner, outer): the prior's radii as multiples of the
    shortest distance of each type pair."""
    shortest = shortest_pairs(positions, boxes, pairs, shifts, types, model.repulsion.outer.shape[0])
    shortest = torch.where(torch.isfinite(shortest), shortest, torch.zeros_like(shortest))
    model.repulsion.set_window(prior_window[0] * shortest, prior_window[1] * shortest)
    if hasattr(model, "min_neighbor_distance"):
        model.min_neighbor_distance.fill_(float(shortest.min()))


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
def set_energy_bias(model: torch.nn.Module, types: torch.Tensor, energies: torch.Tensor) -> None:
    """model.energy_bias [ntypes]: least-squares fit of the frame energies [F] to per-type atom
    counts of ``types`` [N] (minimum-norm if the composition never varies)."""
    ntypes = model.energy_bias.shape[0]
    counts = torch.stack([(types == t).sum() for t in range(ntypes)]).double().expand(len(energies), ntypes)
    bias = torch.linalg.lstsq(counts, energies.double().unsqueeze(1), driver="gelsd").solution.squeeze(1)
    model.energy_bias.copy_(bias)
