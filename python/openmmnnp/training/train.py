"""``openmm-nnp train``: train an se_e2_a or SE(3)-attention potential on frame files."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Callable, Dict

from openmmnnp import cli_types
from openmmnnp.training.trainer import TrainConfig, train

# How each TrainConfig field's value is checked on the command line (a field not listed here is
# parsed by the type of its default).
FIELD_TYPES: Dict[str, Callable[[str], object]] = {
    "steps": cli_types.non_negative_int,  # 0: export the untrained model
    "start_lr": cli_types.positive_float, "stop_lr": cli_types.positive_float,
    "start_pref_e": cli_types.non_negative_float, "limit_pref_e": cli_types.non_negative_float,
    "start_pref_f": cli_types.non_negative_float, "limit_pref_f": cli_types.non_negative_float,
    "validation_fraction": cli_types.fraction, "validate_every": cli_types.positive_int,
    "validation_frames": cli_types.positive_int, "threads": cli_types.positive_int,
    "time_limit_minutes": cli_types.non_negative_float,
    "rcut": cli_types.positive_float, "rcut_smth": cli_types.non_negative_float,
    "sel": cli_types.positive_int, "neuron": cli_types.positive_int, "axis_neuron": cli_types.positive_int,
    "fitting": cli_types.positive_int,
    "se3_lmax": cli_types.non_negative_int, "se3_channels": cli_types.positive_int, "se3_layers": cli_types.positive_int,
    "se3_heads": cli_types.positive_int, "se3_max_neighbors": cli_types.positive_int,
}
CHOICES = {"model": ["se_e2_a", "se3"]}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train an se_e2_a or SE(3)-attention (--model se3) potential (energy + force loss)")
    parser.add_argument("data", nargs="+", type=cli_types.input_file, help="frame files (.npz from `openmm-nnp data`)")
    parser.add_argument("--output-dir", required=True,
                        help="checkpoint.pt, model.pt, learning_curve.csv/.png go here (a folder that holds an earlier run "
                             "is only continued, with --resume)")
    parser.add_argument("--resume", action="store_true", help="continue from output-dir/checkpoint.pt (which must exist)")
    add_train_config_arguments(parser, skip={"data", "output_dir"})
    parser.set_defaults(func=_run)


def add_train_config_arguments(parser: argparse.ArgumentParser, skip: set) -> None:
    """One --flag per TrainConfig field (except those in ``skip``), defaulting to the field's default."""
    defaults = TrainConfig(data=[], output_dir="")
    for field in dataclasses.fields(TrainConfig):
        if field.name in skip:
            continue
        value = getattr(defaults, field.name)
        flag = "--" + field.name.replace("_", "-")
        if isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        elif isinstance(value, list):
            parser.add_argument(flag, type=FIELD_TYPES.get(field.name, type(value[0])), nargs="+", default=value)
        else:
            parser.add_argument(flag, type=FIELD_TYPES.get(field.name, type(value)), default=value,
                                choices=CHOICES.get(field.name))


def _run(args: argparse.Namespace) -> int:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    try:
        train(TrainConfig(**values), resume=args.resume)
    except (OSError, ValueError) as error:  # the output folder, the data files, the configuration: one line, no traceback
        raise SystemExit(f"openmm-nnp train: {error}") from error
    print(f"wrote {args.output_dir}/model.pt")
    return 0
