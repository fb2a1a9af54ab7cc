"""The ``openmm-nnp`` command line: one sub-command per job (data, train, compress, ...).

Each sub-command lives next to the code it drives and contributes ``add_parser(subparsers)``,
which registers its arguments and sets ``func`` to the function that runs it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

# Modules that provide a sub-command, in the order they are listed by --help.
SUBCOMMAND_MODULES: list[str] = ["openmmnnp.data.water", "openmmnnp.training.train", "openmmnnp.training.learn",
                                 "openmmnnp.compression.compress",
                                 "openmmnnp.convert.deepmd.convert"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openmm-nnp", description="Machine-learned potentials for OpenMM.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except OSError as error:  # a file that cannot be read or written (no permission, a full disk): one line, no traceback
        raise SystemExit(f"openmm-nnp {args.command}: {error}") from error


if __name__ == "__main__":
    sys.exit(main())
