"""Reference water data: the classical teacher the water potential learns from.

Teacher: openmmtools ``WaterBox`` with flexible TIP3P (``constrained=False``: harmonic O-H
bonds and H-O-H angle from OpenMM's tip3p.xml), PME electrostatics with a 0.6 nm real-space
cutoff and dispersion correction. Why this one: it is the same object the MD example
builds, so the NNP and its teacher are compared on exactly the same system, and flexible
bonds are needed because an NNP has no constraints. The cutoff is fixed (not tied to the
box) so every box size sees the same potential; boxes must be at least 1.25 nm wide.
"""

from __future__ import annotations

import argparse
from typing import Sequence, Tuple

import numpy as np
import openmm
import openmm.app
from openmm import unit

from openmmnnp import cli_types
from openmmnnp.data.frames import Frames, save_frames
from openmmnnp.data.teacher import FRICTION_PER_PS, TIMESTEP_FS, Teacher, sample_teacher  # noqa: F401 (re-exported)

TEACHER_CUTOFF_NM = 0.6
MIN_BOX_EDGE_NM = 2 * TEACHER_CUTOFF_NM + 0.05


def reference_water_box(box_edge_nm: float) -> Tuple[openmm.System, openmm.app.Topology, np.ndarray]:
    """The teacher: (system, topology, positions [N, 3] nm) of a cubic flexible TIP3P box."""
    if not box_edge_nm >= MIN_BOX_EDGE_NM:
        raise ValueError(f"box edge {box_edge_nm} nm is too small: at least {MIN_BOX_EDGE_NM} nm")
    import warnings

    from openmmnnp._import_noise import quiet_openmmtools

    with warnings.catch_warnings(), quiet_openmmtools():
        warnings.simplefilter("ignore")
        from openmmtools.testsystems import WaterBox
    box = WaterBox(box_edge=box_edge_nm * unit.nanometer, cutoff=TEACHER_CUTOFF_NM * unit.nanometer,
                   constrained=False)
    return box.system, box.topology, np.asarray(box.positions.value_in_unit(unit.nanometer))


def sample_water(box_edge_nm: float, temperatures: Sequence[float], frames_per_temperature: int,
                 interval_steps: int = 100, equilibration_steps: int = 4000, seed: int = 1,
                 platform: str = "CPU", progress: bool = True) -> Frames:
    """Langevin NVT trajectories of the teacher, one per temperature, sampled every ``interval_steps``.

    Returns frames with the teacher's total potential energy and forces (OpenMM units).
    """
    if frames_per_temperature < 1 or len(temperatures) == 0 or interval_steps < 1:  # before minutes of MD
        raise ValueError(f"need at least one temperature, one frame per temperature and an interval >= 1, got "
                         f"{list(temperatures)}, {frames_per_temperature} and {interval_steps}")
    system, topology, start = reference_water_box(box_edge_nm)
    teacher = Teacher(system, topology, ["O", "H"], platform)
    return sample_teacher(teacher, start, temperatures, frames_per_temperature, interval_steps, equilibration_steps,
                          seed, progress=progress)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="generate reference data")
    kinds = data.add_subparsers(dest="kind", required=True)
    water = kinds.add_parser("water", help="flexible TIP3P water boxes (openmmtools WaterBox) at several temperatures")
    water.add_argument("--output", required=True, type=cli_types.output_file, help="frame file to write (.npz)")
    water.add_argument("--box-edge", type=cli_types.positive_float, default=1.3, help="cubic box edge in nm (default 1.3: 65 waters)")
    water.add_argument("--temperatures", type=cli_types.positive_float, nargs="+", default=[280.0, 300.0, 330.0, 360.0, 400.0], help="K")
    water.add_argument("--frames-per-temperature", type=cli_types.positive_int, default=60)
    water.add_argument("--interval", type=cli_types.positive_int, default=100, help="MD steps (0.5 fs) between saved frames")
    water.add_argument("--equilibration", type=cli_types.non_negative_int, default=4000, help="MD steps before the first frame")
    water.add_argument("--seed", type=int, default=1)
    water.add_argument("--platform", default="CPU", type=platform_name)
    water.set_defaults(func=_run_water)
    from openmmnnp.data.alanine_dipeptide import add_kind  # the ML/MM solute's data (docs/mlmm.md)
    add_kind(kinds)


def platform_name(name: str) -> str:
    """An OpenMM platform of this machine (checked before any MD starts)."""
    available = [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]
    if name not in available:
        raise argparse.ArgumentTypeError(f"no OpenMM platform {name!r} here; available: {', '.join(available)}")
    return name


def _run_water(args: argparse.Namespace) -> int:
    if args.box_edge < MIN_BOX_EDGE_NM:
        raise SystemExit(f"openmm-nnp data water: --box-edge {args.box_edge} nm is too small for the teacher's "
                         f"{TEACHER_CUTOFF_NM} nm cutoff: at least {MIN_BOX_EDGE_NM} nm")
    print(f"openmm-nnp data water: box {args.box_edge} nm, {args.temperatures} K, "
          f"{args.frames_per_temperature} frames each, seed {args.seed}", flush=True)
    frames = sample_water(args.box_edge, args.temperatures, args.frames_per_temperature, args.interval,
                          args.equilibration, args.seed, args.platform)
    save_frames(args.output, frames)
    print(f"wrote {len(frames)} frames of {frames.positions.shape[1]} atoms to {args.output}")
    return 0
