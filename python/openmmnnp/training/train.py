"""``openmm-nnp train``: train an se_e2_a or SE(3)-attention potential on frame files."""

from __future__ import annotations

import argparse
import dataclasses

from openmmnnp.training.trainer import TrainConfig, train


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train an se_e2_a or SE(3)-attention (--model se3) potential (energy + force loss)")
    parser.add_argument("data", nargs="+", help="frame files (.npz from `openmm-nnp data`)")
    parser.add_argument("--output-dir", required=True, help="checkpoint.pt, model.pt, learning_curve.csv/.png go here")
    parser.add_argument("--resume", action="store_true", help="continue from output-dir/checkpoint.pt")
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
            parser.add_argument(flag, type=type(value[0]), nargs="+", default=value)
        else:
            parser.add_argument(flag, type=type(value), default=value)


def _run(args: argparse.Namespace) -> int:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    train(TrainConfig(**values), resume=args.resume)
    print(f"wrote {args.output_dir}/model.pt")
    return 0
