"""``openmm-nnp compress``: tabulate the embedding nets of an se_e2_a model (``dp compress``).

The first table covers the ŝ seen in training: from a neighbour at rcut (s = 0) to one at the
smallest neighbour distance of the training data (``min_neighbor_distance``), normalised with
each centre type's davg/dstd; the second extends it to extrapolate·upper.
"""

from __future__ import annotations

import argparse
import copy
from typing import Union

import torch

from openmmnnp.compression.se_e2_a_compressed import SeE2ACompressed
from openmmnnp.compression.tables import build_tables
from openmmnnp.models.env_matrix import smooth_weight

Model = Union[torch.nn.Module, torch.jit.ScriptModule]


def table_range(model: Model) -> tuple[float, float]:
    """(lower, upper) of ŝ = (s - davg[t, 0]) / dstd[t, 0] over centre types t, s in [0, s(r_min)]."""
    r_min = float(model.min_neighbor_distance)
    if not r_min > 0.0:
        raise ValueError("compress: the model has no min_neighbor_distance (it is set from the training data by "
                         "openmmnnp.training.statistics.set_statistics); cannot choose the table range")
    s_max = smooth_weight(torch.tensor([r_min], dtype=torch.float64), float(model.rcut_smth), float(model.rcut))
    davg = model.davg[:, 0].detach().to(torch.float64)
    dstd = model.dstd[:, 0].detach().to(torch.float64)
    lower = float(((0.0 - davg) / dstd).min())
    upper = float(((s_max - davg) / dstd).max())
    return lower, upper


def compress(model: Model, stride: float = 0.01, extrapolate: float = 5.0, check_frequency: int = -1) -> SeE2ACompressed:
    """An eager :class:`SeE2ACompressed` equal to the se_e2_a ``model`` (eager or TorchScript) up to the tables' error."""
    if hasattr(model, "table") and hasattr(model, "table_info"):
        raise ValueError("compress: the model is already compressed")
    for name in ("embeddings", "davg", "dstd", "neuron", "sel", "axis_neuron", "fitting_neuron", "type_one_side"):
        if not hasattr(model, name):
            raise ValueError(f"compress: the model is not an se_e2_a model (it has no {name!r})")
    if not extrapolate >= 1.0:
        raise ValueError(f"compress: extrapolate must be >= 1, got {extrapolate}")
    lower, upper = table_range(model)
    state = {k: v for k, v in model.state_dict().items() if k != "sel_overflow"}  # files from before openmmnnp.checks
    dtype = state["davg"].dtype
    placeholder = torch.zeros(len(list(model.embeddings.children())), 1, int(model.neuron[-1]), 6)
    compressed = SeE2ACompressed(list(model.type_map), float(model.rcut), float(model.rcut_smth), list(model.sel),
                                 list(model.neuron), int(model.axis_neuron), list(model.fitting_neuron),
                                 bool(model.type_one_side), placeholder, torch.zeros(5), check_frequency).to(dtype)
    missing, unexpected = compressed.load_state_dict(state, strict=False)
    # Files from before the short-range prior and the fitting-input scaling: inactive / identity, as in the original.
    optional = {"table", "table_info", "overflow_flags", "repulsion.prefactor", "repulsion.screening", "repulsion.inner", "repulsion.outer",
                "fit_shift", "fit_scale"}
    if unexpected or not {"table", "table_info"} <= set(missing) <= optional:
        raise ValueError(f"compress: the model's parameters do not match se_e2_a (missing {missing}, unexpected {unexpected})")
    nets = [copy.deepcopy(net).double() for net in compressed.embeddings]
    table, info = build_tables(nets, lower, upper, stride, extrapolate)
    compressed.set_table(table.to(dtype), info)
    return compressed


def run(args: argparse.Namespace) -> int:
    try:
        model = torch.jit.load(args.input, map_location="cpu")
    except (RuntimeError, ValueError, OSError) as error:
        raise SystemExit(f"openmm-nnp compress: cannot read {args.input!r} as a TorchScript model ({error})") from error
    try:
        compressed = compress(model, args.step, args.extrapolate, args.frequency)
    except ValueError as error:
        raise SystemExit(f"openmm-nnp {error}") from error
    torch.jit.script(compressed).save(args.output)
    lower, upper, upper2, stride, stride2 = compressed.table_info.tolist()
    print(f"compressed {args.input} -> {args.output}: {compressed.table.shape[0]} tables of {compressed.table.shape[1]} "
          f"intervals x {compressed.table.shape[2]} outputs; s_hat in [{lower:.4g}, {upper:.4g}) step {stride:g}, "
          f"extrapolated to {upper2:.4g} step {stride2:g}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compress", help="tabulate the embedding nets of an se_e2_a model (dp compress)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--input", required=True, help="TorchScript model file (from openmm-nnp train)")
    parser.add_argument("-o", "--output", required=True, help="compressed TorchScript model file to write")
    parser.add_argument("-s", "--step", type=float, default=0.01, help="interval width of the first table (default 0.01)")
    parser.add_argument("-e", "--extrapolate", type=float, default=5.0,
                        help="the second table (step 10*STEP) reaches EXTRAPOLATE*upper (default 5)")
    parser.add_argument("-f", "--frequency", type=int, default=-1,
                        help="check every FREQUENCY evaluations that distances stay in the first table; -1: never (default)")
    parser.set_defaults(func=run)
