"""``openmm-nnp compress``: tabulate the embedding nets of an se_e2_a model (``dp compress``).

The first table covers the ŝ seen in training: from a neighbour at rcut (s = 0) to one at the
smallest neighbour distance of the training data (``min_neighbor_distance``), normalised with
each centre type's davg/dstd; the second extends it to extrapolate·upper.
"""

from __future__ import annotations

import argparse
import copy
import math
from typing import Union

import torch

from openmmnnp import cli_types
from openmmnnp.atomic_write import save_torch
from openmmnnp.compression.se_e2_a_compressed import SeE2ACompressed
from openmmnnp.compression.tables import build_tables, table_bounds
from openmmnnp.models.env_matrix import smooth_weight

Model = Union[torch.nn.Module, torch.jit.ScriptModule]

# Most intervals per table. A table costs 48 * M bytes per interval (float64, M = neuron[-1]) for each
# embedding net: 1e5 intervals of M = 32 are 150 MB per net. The shipped compressed water model has 937.
MAX_INTERVALS = 100_000


def table_range(model: Model) -> tuple[float, float]:
    """(lower, upper) of ŝ = (s - davg[t, 0]) / dstd[t, 0] over centre types t, s in [0, s(r_min)]."""
    r_min = float(model.min_neighbor_distance)
    if r_min == 0.0:
        raise ValueError("compress: the model has no min_neighbor_distance (it is set from the training data by "
                         "openmmnnp.training.statistics.set_statistics); cannot choose the table range")
    if not 0.0 < r_min < float(model.rcut):
        raise ValueError(f"compress: the model's min_neighbor_distance {r_min:g} {model.length_unit} must lie between 0 and "
                         f"its cutoff {float(model.rcut):g}: the tables would not cover the neighbours the model sees "
                         "(for an imported model, pass a plausible convert-deepmd --min-distance)")
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
    if not (math.isfinite(stride) and stride > 0.0):
        raise ValueError(f"compress: the table step must be a positive finite number, got {stride}")
    if not (math.isfinite(extrapolate) and extrapolate >= 1.0):
        raise ValueError(f"compress: extrapolate must be a finite number >= 1, got {extrapolate}")
    if isinstance(check_frequency, bool) or not isinstance(check_frequency, int) or check_frequency == 0 or check_frequency < -1:
        raise ValueError(f"compress: check_frequency must be a positive integer or -1 (no checks), got {check_frequency!r}")
    lower, upper = table_range(model)
    _, n1, n2 = table_bounds(lower, upper, stride, extrapolate)
    if n1 + n2 > MAX_INTERVALS:
        raise ValueError(f"compress: the tables would have {n1 + n2} intervals each (at most {MAX_INTERVALS}): s_hat runs "
                         f"up to {upper:.4g} (min_neighbor_distance {float(model.min_neighbor_distance):g} "
                         f"{model.length_unit}) in steps of {stride:g}, extrapolated {extrapolate:g}x. A larger -s, a smaller "
                         "-e, or a plausible min_neighbor_distance (convert-deepmd --min-distance)")
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
    if cli_types.same_file(args.input, args.output):
        raise SystemExit(f"openmm-nnp compress: -o {args.output!r} is the input model; write the compressed model to another file")
    try:
        model = torch.jit.load(args.input, map_location="cpu")
    except (RuntimeError, ValueError, OSError) as error:
        raise SystemExit(f"openmm-nnp compress: cannot read {args.input!r} as a TorchScript model ({error})") from error
    try:
        compressed = compress(model, args.step, args.extrapolate, args.frequency)
    except ValueError as error:
        raise SystemExit(f"openmm-nnp {error}") from error
    save_torch(args.output, torch.jit.script(compressed))
    lower, upper, upper2, stride, stride2 = compressed.table_info.tolist()
    print(f"compressed {args.input} -> {args.output}: {compressed.table.shape[0]} tables of {compressed.table.shape[1]} "
          f"intervals x {compressed.table.shape[2]} outputs; s_hat in [{lower:.4g}, {upper:.4g}) step {stride:g}, "
          f"extrapolated to {upper2:.4g} step {stride2:g}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compress", help="tabulate the embedding nets of an se_e2_a model (dp compress)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--input", required=True, type=cli_types.input_file, help="TorchScript model file (from openmm-nnp train)")
    parser.add_argument("-o", "--output", required=True, type=cli_types.output_file, help="compressed TorchScript model file to write")
    parser.add_argument("-s", "--step", type=cli_types.positive_float, default=0.01, help="interval width of the first table (default 0.01)")
    parser.add_argument("-e", "--extrapolate", type=cli_types.at_least_one, default=5.0,
                        help="the second table (step 10*STEP) reaches EXTRAPOLATE*upper (default 5)")
    parser.add_argument("-f", "--frequency", type=cli_types.check_frequency, default=-1,
                        help="check every FREQUENCY evaluations that distances stay in the first table; -1: never (default)")
    parser.set_defaults(func=run)
