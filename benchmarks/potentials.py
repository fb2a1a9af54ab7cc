"""The potentials the scaling and MD benchmarks compare: one registry entry each.

An entry names a shipped model (``openmmnnp.pretrained_path``) and optionally a variant built
from it. Adding a potential is one line in ``REGISTRY``; entries whose model file is not shipped
are skipped with a note. :func:`openmm_potential` wraps a model exactly as ``NNPForce`` does
(``OpenMMPotential``: nm in, kJ/mol out), so the benchmarks time the code path that MD runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

import torch

from openmmnnp import pretrained_path, units
from openmmnnp.force import OpenMMPotential, _model_dtype, load_model
from openmmnnp.models import SeE2A
from openmmnnp.ops.reference import dense_neighbor_pairs


class DenseSeE2A(SeE2A):
    """se_e2_a with the all-pairs (N^2 time and memory) neighbour search: the wall a cell list removes.

    Minimum image only: exact when every box width is at least 2 rcut.
    """

    def neighbors(self, positions: torch.Tensor, box: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if box is not None and bool((torch.diagonal(box) < 2.0 * self.rcut).any()):
            raise RuntimeError("DenseSeE2A: the minimum-image search needs box widths >= 2 rcut = " + str(2.0 * self.rcut))
        return dense_neighbor_pairs(positions, self.rcut, box, positions.shape[0] * self.sel_total, True)


def dense_variant(model: torch.jit.ScriptModule) -> torch.jit.ScriptModule:
    """The shipped se_e2_a ``model`` (same weights) with :class:`DenseSeE2A`'s neighbour search."""
    dense = DenseSeE2A(list(model.type_map), float(model.rcut), float(model.rcut_smth), list(model.sel), list(model.neuron),
                       int(model.axis_neuron), list(model.fitting_neuron), bool(model.type_one_side))
    dense = dense.to(_model_dtype(model))
    # assign: each tensor keeps the file's dtype (the prior's window buffers are float64 in a float32 model;
    # copying them into float32 buffers moved the window by float32 rounding and the energy by 3e-8).
    dense.load_state_dict({k: v.clone() for k, v in model.state_dict().items()}, assign=True)
    return torch.jit.script(dense)


@dataclass(frozen=True)
class Potential:
    name: str  # label in tables, CSV and plots
    model: str  # shipped model name, see openmmnnp.pretrained
    about: str
    variant: Optional[Callable[[torch.jit.ScriptModule], torch.jit.ScriptModule]] = None


REGISTRY: dict[str, Potential] = {p.name: p for p in (
    Potential("se_e2_a", "water-se_e2_a", "DeePMD se_e2_a, cell-list neighbours"),
    Potential("se_e2_a-compressed", "water-se_e2_a-compressed", "se_e2_a with tabulated embedding (fused op)"),
    Potential("se3", "water-se3", "SE(3)-equivariant"),
    Potential("se_e2_a-dense", "water-se_e2_a", "se_e2_a with the all-pairs N^2 neighbour search", dense_variant),
)}


def shipped(name: str) -> bool:
    try:
        pretrained_path(REGISTRY[name].model)
        return True
    except ValueError:
        return False


def select(names: Sequence[str]) -> list[Potential]:
    """The registry entries ``names`` whose model is shipped; prints a note for each one that is not."""
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown potential(s) {unknown}; known: {list(REGISTRY)}")
    chosen = []
    for name in names:
        if shipped(name):
            chosen.append(REGISTRY[name])
        else:
            print(f"note: skipping {name}: no shipped model {REGISTRY[name].model!r}", flush=True)
    return chosen


def load(potential: Potential) -> torch.jit.ScriptModule:
    """The potential's model as NNPForce loads it (TorchScript, contract checked), variant applied."""
    model = load_model(pretrained_path(potential.model))
    return load_model(potential.variant(model)) if potential.variant else model


def openmm_potential(model: torch.jit.ScriptModule, elements: Sequence[str]) -> torch.jit.ScriptModule:
    """``model`` wrapped as NNPForce wraps it for openmm-torch: forward(positions nm, box nm) -> kJ/mol."""
    index = {symbol: i for i, symbol in enumerate(model.type_map)}
    types = torch.tensor([index[symbol] for symbol in elements], dtype=torch.long)
    potential = OpenMMPotential(model, types, None, len(elements), units.length_factor(model.length_unit),
                                units.energy_factor(model.energy_unit), _model_dtype(model))
    return torch.jit.script(potential)
