"""Measures the errors of docs/mlmm.md for the alanine-dipeptide model against its teacher (ff96 in vacuum).

1. Held-out frames (``openmm-nnp data alanine-dipeptide --seed 2``: independent vacuum trajectories).
2. The configurations ML/MM visits: solute snapshots of an MM run of the solvated dipeptide
   (AlanineDipeptideExplicit, 300 K), labelled by the vacuum teacher. The model never saw these:
   it was trained on gas-phase frames only.

Each for the uncompressed and the compressed model: force RMSE over all components, kJ/mol/nm.

    python examples/validate_solute_model.py --test-data data/ad_test.npz --output runs/validation-ad.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import openmm
import openmm.unit as unit
import torch
from tqdm import tqdm

import openmmnnp  # noqa: F401
from openmmnnp import pretrained_path
from openmmnnp.atomic_write import write_text
from openmmnnp.data import load_frames
from openmmnnp.data.alanine_dipeptide import solvated_system, vacuum_teacher
from openmmnnp.data.frames import save_frames
from openmmnnp.data.teacher import Teacher
from openmmnnp.training.deviation import force_errors


def solvated_solute_frames(count: int, interval_steps: int, seed: int):
    """Solute configurations of an MM run of the solvated dipeptide (2 fs, H-bond constraints, 300 K),
    labelled by the vacuum teacher (flexible ff96): the same force field without the water."""
    explicit = solvated_system()
    solute = [a.index for a in explicit.topology.atoms() if a.residue.name != "HOH"]
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 2 * unit.femtosecond)
    integrator.setRandomNumberSeed(seed)
    context = openmm.Context(explicit.system, integrator, openmm.Platform.getPlatformByName("CPU"))
    context.setPositions(explicit.positions)
    openmm.LocalEnergyMinimizer.minimize(context, 10.0, 500)
    context.setVelocitiesToTemperature(300 * unit.kelvin, seed)
    integrator.step(5000)
    positions = []
    for _ in tqdm(range(count), desc="solvated MM", unit="frame"):
        integrator.step(interval_steps)
        state = context.getState(getPositions=True)
        positions.append(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)[solute])
    system, topology, _ = vacuum_teacher()
    positions = np.array(positions)
    return Teacher(system, topology).frames(positions, np.zeros((count, 3, 3)), np.full(count, 300.0))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test-data", required=True, help="held-out frames (openmm-nnp data alanine-dipeptide --seed 2)")
    parser.add_argument("--models", nargs="+", default=["alanine-dipeptide-se_e2_a", "alanine-dipeptide-se_e2_a-compressed"],
                        help="model files or shipped names")
    parser.add_argument("--solvated-frames", type=int, default=200, help="solute snapshots of the solvated MM run (0: skip)")
    parser.add_argument("--solvated-interval", type=int, default=500, help="2 fs MM steps between snapshots")
    parser.add_argument("--output", required=True, help="JSON file to write")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    output = Path(args.output)
    sets = {"held-out vacuum frames": args.test_data}
    if args.solvated_frames > 0:
        solvated = output.with_name(output.stem + "-solvated-frames.npz")
        save_frames(solvated, solvated_solute_frames(args.solvated_frames, args.solvated_interval, args.seed))
        sets["solute configurations from solvated MM (300 K)"] = str(solvated)
    results = {}
    for name in args.models:
        path = Path(name) if Path(name).is_file() else pretrained_path(name)
        model = torch.jit.load(str(path))
        results[name] = {}
        for label, data in sets.items():
            frames = load_frames(data)
            results[name][label] = force_errors(model, frames.positions, frames.box, frames.types, frames.forces)
    write_text(output, json.dumps(results, indent=2) + "\n")
    for name, by_set in results.items():
        for label, e in by_set.items():
            print(f"{name}, {label} ({e['frames']} frames): force RMSE {e['force_rmse']:.1f} kJ/mol/nm "
                  f"({100 * e['relative']:.1f} % of the reference RMS {e['reference_force_rms']:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
