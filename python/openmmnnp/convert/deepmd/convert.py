"""``openmm-nnp convert-deepmd``: a DeePMD-kit se_e2_a model -> an openmm-nnp TorchScript model.

Reads the PyTorch backend's frozen model (.pth) or training checkpoint (.pt), or the
backend-neutral .dp file of ``dp convert-backend``, without DeePMD-kit. The result is an
:class:`openmmnnp.models.SeE2A` (angstrom, eV, float64) that runs in NNPForce and that
``openmm-nnp compress`` tabulates. DeePMD's padded neighbour slots are reproduced by the
model's empty-slot term; more neighbours than ``sel`` is an error (DeePMD truncates).
"""

from __future__ import annotations

import argparse
import os
from typing import Optional

import torch

from openmmnnp import cli_types
from openmmnnp.atomic_write import save_torch
from openmmnnp.convert.deepmd.archive import read_frozen
from openmmnnp.convert.deepmd.checkpoint import read_checkpoint
from openmmnnp.convert.deepmd.dp_file import read_dp
from openmmnnp.convert.deepmd.mapping import build_model
from openmmnnp.models.se_e2_a import SeE2A

READERS = {".pth": read_frozen, ".pt": read_checkpoint, ".dp": read_dp}


def convert_deepmd(path: str, min_neighbor_distance: Optional[float] = None) -> SeE2A:
    """The DeePMD-kit se_e2_a model in ``path`` (.pth, .pt or .dp) as an eager float64 SeE2A.

    ``min_neighbor_distance`` (angstrom; default: the model's own ``min_nbor_dist`` when it
    has one) sets the range that ``openmm-nnp compress`` tabulates.
    """
    extension = os.path.splitext(path)[1].lower()
    if extension not in READERS:
        raise ValueError(f"convert-deepmd: unknown model file type {extension!r} of {path!r}; "
                         f"expected one of {sorted(READERS)}")
    if os.path.isdir(path):
        raise ValueError(f"convert-deepmd: {path!r} is a folder, not a model file")
    if not os.path.isfile(path):
        raise ValueError(f"convert-deepmd: no such file {path!r}")
    if min_neighbor_distance is not None and not 0.0 < float(min_neighbor_distance):
        raise ValueError(f"convert-deepmd: the minimum neighbour distance must be a positive number of angstrom, "
                         f"got {min_neighbor_distance}")
    params, tensors = READERS[extension](path)
    model = build_model(params, tensors)
    if min_neighbor_distance is None:
        stored = tensors.get("min_nbor_dist")
        if stored is not None and float(stored) > 0.0:
            min_neighbor_distance = float(stored)
    if min_neighbor_distance is not None:
        if not float(min_neighbor_distance) < model.rcut:  # a table from there would cover no neighbour
            raise ValueError(f"convert-deepmd: the minimum neighbour distance {float(min_neighbor_distance):g} A must be "
                             f"below the model's cutoff rcut = {model.rcut:g} A")
        model.min_neighbor_distance = torch.tensor(float(min_neighbor_distance), dtype=torch.float64)
    return model


def run(args: argparse.Namespace) -> int:
    if cli_types.same_file(args.input, args.output):
        raise SystemExit(f"openmm-nnp convert-deepmd: -o {args.output!r} is the input model; write to another file")
    try:
        model = convert_deepmd(args.input, args.min_distance)
    except ValueError as error:
        raise SystemExit(f"openmm-nnp {error}") from error
    save_torch(args.output, torch.jit.script(model))
    print(f"converted {args.input} -> {args.output}: se_e2_a, type_map {model.type_map}, rcut {model.rcut} A, "
          f"sel {model.sel}, neuron {model.neuron}, type_one_side {model.type_one_side}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("convert-deepmd", help="import a DeePMD-kit se_e2_a model (.pth, .pt, .dp)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--input", required=True, type=cli_types.input_file,
                        help="DeePMD-kit model: frozen .pth, checkpoint .pt or .dp")
    parser.add_argument("-o", "--output", required=True, type=cli_types.output_file, help="TorchScript model file to write")
    parser.add_argument("--min-distance", type=cli_types.positive_float, default=None,
                        help="smallest neighbour distance of the training data, angstrom (for openmm-nnp compress; "
                             "default: the model's min_nbor_dist if stored)")
    parser.set_defaults(func=run)
