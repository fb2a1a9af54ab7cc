"""Reference data for the alanine-dipeptide solute model (``openmm-nnp data alanine-dipeptide``).

Teacher: the Amber ff96 force field of openmmtools' ``AlanineDipeptideVacuum`` in vacuum (no
cutoff), with flexible bonds (``constraints=None``: an NNP has no constraints). It is the same
force field that ``AlanineDipeptideExplicit`` (ff96 solute in TIP3P) gives the solute, so the
ML/MM example (examples/mlmm.py) replaces exactly the solute's internal MM energy by a model of
it. Frames carry no box (all zeros): the solute model is trained non-periodic.
"""

from __future__ import annotations

import argparse
import warnings
from typing import List, Sequence, Tuple

import numpy as np
import openmm
import openmm.app
from openmm import unit

from openmmnnp.data.frames import save_frames
from openmmnnp.data.teacher import Teacher, sample_teacher

DEFAULT_TEMPERATURES: List[float] = [300.0, 450.0, 600.0, 800.0]


def _quiet_import_testsystems():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from openmmtools import testsystems
    return testsystems


def vacuum_teacher() -> Tuple[openmm.System, openmm.app.Topology, np.ndarray]:
    """(system, topology, positions [22, 3] nm) of alanine dipeptide in vacuum, ff96, flexible bonds."""
    test_system = _quiet_import_testsystems().AlanineDipeptideVacuum(constraints=None)
    return test_system.system, test_system.topology, np.asarray(test_system.positions.value_in_unit(unit.nanometer))


def solvated_system(constraints=openmm.app.HBonds):
    """openmmtools' ``AlanineDipeptideExplicit``: ff96 solute in TIP3P, PME, periodic box (rigid water)."""
    return _quiet_import_testsystems().AlanineDipeptideExplicit(constraints=constraints)


def sample_dipeptide(temperatures: Sequence[float], frames_per_temperature: int, interval_steps: int = 200,
                     equilibration_steps: int = 10000, seed: int = 1, platform: str = "CPU", progress: bool = True):
    """Teacher Langevin MD in vacuum at each temperature; frames labelled with the teacher's energy and forces."""
    system, topology, positions = vacuum_teacher()
    teacher = Teacher(system, topology, platform=platform)
    return sample_teacher(teacher, positions, list(temperatures), frames_per_temperature, interval_steps,
                          equilibration_steps, seed, progress=progress)


def add_kind(kinds: argparse._SubParsersAction) -> None:
    """Registers ``openmm-nnp data alanine-dipeptide``."""
    parser = kinds.add_parser("alanine-dipeptide", help="alanine dipeptide in vacuum (Amber ff96, flexible) at several temperatures")
    parser.add_argument("--output", required=True, help="frame file to write (.npz)")
    parser.add_argument("--temperatures", type=float, nargs="+", default=DEFAULT_TEMPERATURES, help="K")
    parser.add_argument("--frames-per-temperature", type=int, default=500)
    parser.add_argument("--interval", type=int, default=200, help="MD steps (0.5 fs) between saved frames")
    parser.add_argument("--equilibration", type=int, default=10000, help="MD steps before the first frame")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--platform", default="CPU")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    print(f"openmm-nnp data alanine-dipeptide: {args.temperatures} K, {args.frames_per_temperature} frames each, "
          f"seed {args.seed}", flush=True)
    frames = sample_dipeptide(args.temperatures, args.frames_per_temperature, args.interval, args.equilibration,
                              args.seed, args.platform)
    save_frames(args.output, frames)
    counts = {symbol: int((frames.types == t).sum()) for t, symbol in enumerate(frames.type_map)}
    print(f"wrote {len(frames)} frames of {frames.positions.shape[1]} atoms to {args.output}; type_map "
          f"{frames.type_map}, atoms per type {counts}")
    return 0
