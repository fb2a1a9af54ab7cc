"""``openmm-nnp learn``: concurrent learning against a teacher System (see :mod:`openmmnnp.training.concurrent`).

The teacher is the built-in flexible TIP3P water box (``--teacher water``) or any OpenMM System
given as a serialised XML file plus a PDB file with its topology, start positions and box
(``--teacher-system system.xml --teacher-pdb start.pdb``): a bigger box, another water model,
AMOEBA, a molecule. Every argument is checked before any work starts.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Tuple

import numpy as np

from openmmnnp import cli_types
from openmmnnp.data.water import platform_name
from openmmnnp.training.concurrent import LearnConfig, check_output, learn
from openmmnnp.training.explore import Condition
from openmmnnp.training.train import add_train_config_arguments
from openmmnnp.training.trainer import TrainConfig

if TYPE_CHECKING:
    from openmmnnp.data.teacher import Teacher

# Set per ensemble member or round by learn itself, so not command-line options here.
_PER_MEMBER = {"data", "output_dir", "steps", "seed", "init_model", "threads", "time_limit_minutes"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "learn", help="concurrent learning: ensemble training, NNP-driven exploration, teacher labelling (DP-GEN style)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", required=True, help="folder for data, rounds, the per-round table and model.pt")
    teacher = parser.add_argument_group("teacher")
    teacher.add_argument("--teacher", choices=["water"], default=None,
                         help="built-in teacher: flexible TIP3P water box (the default without --teacher-system)")
    teacher.add_argument("--box-edge", type=cli_types.positive_float, default=1.3, help="water teacher: cubic box edge, nm (default 1.3: 65 waters)")
    teacher.add_argument("--teacher-system", type=cli_types.input_file, help="teacher System, serialised by openmm.XmlSerializer (.xml)")
    teacher.add_argument("--teacher-pdb", type=cli_types.input_file, help="the teacher's topology, start positions and box (.pdb)")
    teacher.add_argument("--type-map", nargs="+", default=None,
                         help="element symbol of each model type (default: the topology's elements in order)")
    teacher.add_argument("--platform", default="CPU", type=platform_name, help="OpenMM platform for the teacher and the exploration MD")
    initial = parser.add_argument_group("first data (teacher MD)")
    initial.add_argument("--initial-data", nargs="+", type=cli_types.input_file, default=None, help="frame files to start from instead of teacher MD")
    initial.add_argument("--initial-temperatures", type=cli_types.positive_float, nargs="+", default=[280.0, 300.0, 330.0, 360.0, 400.0], help="K")
    initial.add_argument("--initial-frames-per-temperature", type=int, default=60)
    initial.add_argument("--initial-interval", type=cli_types.positive_int, default=100, help="MD steps (0.5 fs) between frames")
    initial.add_argument("--initial-equilibration", type=cli_types.non_negative_int, default=4000, help="MD steps before the first frame")
    initial.add_argument("--initial-perturbed", type=int, default=0,
                         help="teacher-labelled copies of first frames with some atoms displaced (DP-GEN's perturbed data; default 0)")
    initial.add_argument("--perturb-atoms", type=float, default=0.1, help="fraction of the atoms displaced in each (default 0.1)")
    initial.add_argument("--perturb-std", type=float, default=0.015, help="displacement per component, nm (default 0.015)")
    rounds = parser.add_argument_group("concurrent learning")
    defaults = LearnConfig(output_dir="", train=TrainConfig(data=[], output_dir=""), conditions=[Condition(300.0)])
    for name, help_text in (("ensemble", "models per ensemble (>= 2; DP-GEN uses 4)"), ("rounds", "rounds at most"),
                            ("first_steps", "training steps of the first round (from scratch)"),
                            ("round_steps", "training steps of later rounds (from the previous round's models)"),
                            ("round_start_lr", "learning rate at which later rounds start"),
                            ("final_steps", "steps of the final training of member 0 on all data (0: none)"),
                            ("explore_steps", "MD steps (0.5 fs) of each exploration"),
                            ("explore_interval", "MD steps between explored frames"),
                            ("trust_lo", "force deviation (kJ/mol/nm) below which a frame is accurate"),
                            ("trust_hi", "force deviation (kJ/mol/nm) from which a frame is failed (not labelled)"),
                            ("max_select", "candidates labelled per round at most"),
                            ("bond_stretch", "the teacher's domain: bonds up to this x their longest in the first data"),
                            ("contact_fraction", "the teacher's domain: contacts down to this x their shortest in the first data"),
                            ("converged_fraction", "stop when this fraction of explored frames is accurate"),
                            ("jobs", "processes for training and exploration (one thread each)"), ("seed", "random seed")):
        value = getattr(defaults, name)
        rounds.add_argument("--" + name.replace("_", "-"), type=type(value), default=value, help=f"{help_text} (default {value})")
    rounds.add_argument("--explore-temperatures", type=cli_types.positive_float, nargs="+", default=[300.0, 360.0, 420.0],
                        help="constant-volume explorations, K (default 300 360 420)")
    rounds.add_argument("--explore-npt-temperatures", type=cli_types.positive_float, nargs="*", default=[300.0],
                        help="constant-pressure explorations (densities), K (default 300; none: no NPT)")
    rounds.add_argument("--pressure", type=cli_types.positive_float, default=1.0, help="bar, for the constant-pressure explorations (default 1)")
    add_train_config_arguments(parser.add_argument_group("model and training (as `openmm-nnp train`)"), skip=_PER_MEMBER)
    parser.set_defaults(func=_run)


def load_teacher(args: argparse.Namespace) -> Tuple["Teacher", np.ndarray, Optional[np.ndarray]]:
    """(teacher, start positions [N, 3] nm, box [3, 3] nm or None) from the arguments; ValueError on bad input."""
    import openmm
    import openmm.app
    from openmm import unit

    from openmmnnp.data.teacher import Teacher
    from openmmnnp.data.water import reference_water_box

    if args.teacher_system is None and args.teacher_pdb is None:
        system, topology, positions = reference_water_box(args.box_edge)
        return Teacher(system, topology, args.type_map or ["O", "H"], args.platform), positions, None
    if args.teacher == "water":
        raise ValueError("give either --teacher water or --teacher-system/--teacher-pdb, not both")
    if args.teacher_system is None or args.teacher_pdb is None:
        raise ValueError("--teacher-system and --teacher-pdb go together")
    for path in (args.teacher_system, args.teacher_pdb):
        if not Path(path).is_file():
            raise ValueError(f"{path!r} is not a file")
    try:
        system = openmm.XmlSerializer.deserialize(Path(args.teacher_system).read_text())
    except Exception as error:
        raise ValueError(f"cannot read {args.teacher_system!r} as a serialised OpenMM System ({error})") from None
    if not isinstance(system, openmm.System):
        raise ValueError(f"{args.teacher_system!r} holds a {type(system).__name__}, not a System")
    try:
        pdb = openmm.app.PDBFile(args.teacher_pdb)
    except Exception as error:
        raise ValueError(f"cannot read {args.teacher_pdb!r} as a PDB file ({error})") from None
    box = None
    if system.usesPeriodicBoundaryConditions():
        vectors = pdb.topology.getPeriodicBoxVectors()
        if vectors is None:
            raise ValueError(f"the teacher System is periodic but {args.teacher_pdb!r} has no box (CRYST1 record)")
        box = np.array(vectors.value_in_unit(unit.nanometer))
    teacher = Teacher(system, pdb.topology, args.type_map, args.platform)
    return teacher, np.array(pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer)), box


def learn_config(args: argparse.Namespace) -> LearnConfig:
    train_values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if f.name not in _PER_MEMBER}
    conditions = [Condition(t) for t in args.explore_temperatures] + [Condition(t, args.pressure)
                                                                        for t in args.explore_npt_temperatures]
    names = ("ensemble", "rounds", "first_steps", "round_steps", "round_start_lr", "final_steps", "explore_steps",
             "explore_interval", "trust_lo", "trust_hi", "max_select", "bond_stretch", "contact_fraction", "converged_fraction", "jobs", "seed")
    return LearnConfig(output_dir=args.output_dir, train=TrainConfig(data=[], output_dir="", **train_values),
                       conditions=conditions, **{name: getattr(args, name) for name in names})


def _run(args: argparse.Namespace) -> int:
    from openmmnnp.data.frames import concatenate, load_frames
    from openmmnnp.data.teacher import perturbed_frames, sample_teacher

    try:  # everything is checked before the first MD step
        config = learn_config(args)
        config.validate()
        check_output(args.output_dir)
        teacher, positions, box = load_teacher(args)
        if args.initial_data:
            initial = concatenate([load_frames(p) for p in args.initial_data])
        elif args.initial_frames_per_temperature < 1:
            raise ValueError(f"--initial-frames-per-temperature must be at least 1, got {args.initial_frames_per_temperature}")
        if args.initial_perturbed < 0 or not 0 < args.perturb_atoms <= 1 or not args.perturb_std > 0:
            raise ValueError("need --initial-perturbed >= 0, 0 < --perturb-atoms <= 1 and --perturb-std > 0")
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"openmm-nnp learn: {error}") from None
    if not args.initial_data:
        print(f"openmm-nnp learn: teacher MD at {args.initial_temperatures} K, {args.initial_frames_per_temperature} frames each",
              flush=True)
        initial = sample_teacher(teacher, positions, args.initial_temperatures, args.initial_frames_per_temperature,
                                 args.initial_interval, args.initial_equilibration, args.seed, box=box)
    extra = None
    if args.initial_perturbed > 0:
        print(f"openmm-nnp learn: {args.initial_perturbed} perturbed frames ({100 * args.perturb_atoms:g} % of the atoms "
              f"displaced by {args.perturb_std} nm)", flush=True)
        domain = teacher.domain(initial, config.bond_stretch, config.contact_fraction)
        extra = perturbed_frames(teacher, initial, args.initial_perturbed, args.perturb_atoms, args.perturb_std, args.seed, domain)
        print(f"openmm-nnp learn: kept {len(extra)} perturbed frames inside the teacher's domain", flush=True)
    try:
        model = learn(config, teacher, initial, extra=extra)
    except ValueError as error:
        raise SystemExit(f"openmm-nnp learn: {error}") from None
    print(f"wrote {model} (per-round table: {Path(args.output_dir) / 'rounds.md'})")
    return 0
