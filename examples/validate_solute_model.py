"""Measures the errors of docs/mlmm.md for the alanine-dipeptide model against its teacher (ff96 in vacuum).

1. Held-out frames (``openmm-nnp data alanine-dipeptide --seed 2``: independent vacuum trajectories).
2. The configurations ML/MM visits: solute snapshots of an MM run of the solvated dipeptide
   (AlanineDipeptideExplicit, 300 K), labelled by the vacuum teacher. The model never saw these:
   it was trained on gas-phase frames only.

Each for the uncompressed and the compressed model; energies per atom and force components.

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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate_water_model import test_set_errors  # noqa: E402

import openmmnnp  # noqa: E402,F401
from openmmnnp import pretrained_path, units  # noqa: E402
from openmmnnp.atomic_write import write_text  # noqa: E402
from openmmnnp.data.alanine_dipeptide import solvated_system, vacuum_teacher  # noqa: E402
from openmmnnp.data.frames import save_frames  # noqa: E402
from openmmnnp.data.teacher import Teacher  # noqa: E402

KJ_PER_NM_PER_MEV_PER_A = units.energy_factor("eV") / 1000 / units.length_factor("angstrom")


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


def in_openmm_units(errors: dict) -> dict:
    """Adds the force RMSEs in kJ/mol/nm next to the meV/angstrom ones."""
    out = dict(errors)
    for key in ("force_rmse_meV_per_A", "force_rms_of_reference_meV_per_A"):
        out[key.replace("meV_per_A", "kJ_per_mol_per_nm")] = errors[key] * KJ_PER_NM_PER_MEV_PER_A
    out["force_rmse_relative"] = errors["force_rmse_meV_per_A"] / errors["force_rms_of_reference_meV_per_A"]
    return out


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
        results[name] = {label: in_openmm_units(test_set_errors(str(path), data)) for label, data in sets.items()}
    write_text(output, json.dumps(results, indent=2) + "\n")
    for name, by_set in results.items():
        for label, e in by_set.items():
            print(f"{name}, {label} ({e['frames']} frames): energy RMSE {e['energy_rmse_meV_per_atom']:.2f} meV/atom "
                  f"({e['energy_rmse_meV_per_atom_after_removing_mean_offset']:.2f} without the mean offset), force RMSE "
                  f"{e['force_rmse_meV_per_A']:.0f} meV/A = {e['force_rmse_kJ_per_mol_per_nm']:.1f} kJ/mol/nm "
                  f"({100 * e['force_rmse_relative']:.1f} % of the reference RMS {e['force_rms_of_reference_kJ_per_mol_per_nm']:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
