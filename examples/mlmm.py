"""ML/MM MD of alanine dipeptide in TIP3P water with OpenMM-ML's MLPotential("openmmnnp") (docs/mlmm.md).

The solute's internal energy comes from the shipped NNP, trained on the solute's own force field
(Amber ff96) in vacuum; the water and the solute-water interactions stay MM (mechanical embedding:
``createMixedSystem`` removes the MM terms inside the solute and keeps the rest). From one
equilibrated start the script runs

1. pure MM and ML/MM Langevin NVT (300 K) of the periodic system, each reporting ns/day, and plots
   the Ramachandran (phi/psi) histograms of both (``ramachandran.png``);
2. the ``interpolate=True`` System, switching ``lambda_interpolate`` from 0 (pure MM) to 1 (ML/MM),
   checking that its energy at the end points equals the two Systems' energies.

The solute's X-H bonds stay constrained as in the MM run (``removeConstraints=False``), so both
runs take 2 fs steps and differ only in the solute's internal energy; ``--flexible-solute`` lets
the NNP move them too (1 fs steps). It writes ``summary.json`` (speeds, basin populations,
temperatures, end-point checks) and ``ramachandran.png`` into ``--output-dir``.

    python examples/mlmm.py --output-dir runs/mlmm --time-ps 100      # docs/mlmm.md
    python examples/mlmm.py --output-dir /tmp/mlmm --time-ps 0.2       # a quick look
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import torch
from tqdm import tqdm

import openmmnnp  # noqa: F401  (loads the op library before any TorchForce runs)
from openmmnnp.atomic_write import atomic_path, write_text
from openmmnnp.data.alanine_dipeptide import solvated_system
from openmmnnp.md import best_platform

DEFAULT_MODEL = "alanine-dipeptide-se_e2_a-compressed"
FRICTION_PER_PS = 1.0
# Basins of the Ramachandran plot (degrees), as usually drawn for alanine dipeptide.
BASINS = {"alpha_R": lambda phi, psi: (phi < 0) & (psi > -120) & (psi <= 50),
          "beta/PII": lambda phi, psi: (phi < 0) & ((psi > 50) | (psi <= -120)),
          "alpha_L": lambda phi, psi: phi >= 0}


def backbone_dihedrals(topology: app.Topology) -> Dict[str, List[int]]:
    """Atom indices of phi (C-N-CA-C) and psi (N-CA-C-N) of the alanine residue."""
    residues = list(topology.residues())
    index = {(r.name, a.name): a.index for r in residues for a in r.atoms()}
    return {"phi": [index[("ACE", "C")], index[("ALA", "N")], index[("ALA", "CA")], index[("ALA", "C")]],
            "psi": [index[("ALA", "N")], index[("ALA", "CA")], index[("ALA", "C")], index[("NME", "N")]]}


def dihedral_degrees(positions: np.ndarray, atoms: List[int]) -> float:
    """The dihedral angle of four atoms (IUPAC sign convention), degrees in (-180, 180]."""
    p0, p1, p2, p3 = (positions[a] for a in atoms)
    b0, b1, b2 = p0 - p1, p2 - p1, p3 - p2
    b1 = b1 / np.linalg.norm(b1)
    v = b0 - np.dot(b0, b1) * b1
    w = b2 - np.dot(b2, b1) * b1
    return float(np.degrees(np.arctan2(np.dot(np.cross(b1, v), w), np.dot(v, w))))


def degrees_of_freedom(system: openmm.System) -> int:
    removes_com = any(isinstance(f, openmm.CMMotionRemover) for f in system.getForces())
    return 3 * system.getNumParticles() - system.getNumConstraints() - (3 if removes_com else 0)


def make_context(system, platform, temperature, timestep_fs, seed, properties=None):
    integrator = openmm.LangevinMiddleIntegrator(temperature * unit.kelvin, FRICTION_PER_PS / unit.picosecond,
                                                 timestep_fs * unit.femtosecond)
    integrator.setRandomNumberSeed(seed)
    return openmm.Context(system, integrator, platform, properties or {}), integrator


def run(label: str, system, state: openmm.State, platform, args, dihedrals) -> dict:
    """Langevin NVT from ``state``; phi/psi every ``--sample-fs``; returns angles, temperature and ns/day."""
    context, integrator = make_context(system, platform, args.temperature, args.timestep_fs, args.seed)
    context.setState(state)
    interval = max(1, int(round(args.sample_fs / args.timestep_fs)))
    samples = max(1, int(round(args.time_ps * 1000 / args.timestep_fs)) // interval)
    dof = degrees_of_freedom(system)
    phi, psi, temperatures = [], [], []
    start = time.time()
    for _ in tqdm(range(samples), desc=label, unit="sample", mininterval=2.0):
        integrator.step(interval)
        current = context.getState(getPositions=True, getEnergy=True)
        positions = current.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        phi.append(dihedral_degrees(positions, dihedrals["phi"]))
        psi.append(dihedral_degrees(positions, dihedrals["psi"]))
        kinetic = current.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole)
        temperatures.append(2 * kinetic / (dof * unit.MOLAR_GAS_CONSTANT_R.value_in_unit(unit.kilojoule_per_mole / unit.kelvin)))
    elapsed = time.time() - start
    simulated_ns = samples * interval * args.timestep_fs * 1e-6
    phi, psi = np.array(phi), np.array(psi)
    return {"phi": phi, "psi": psi, "ns_per_day": simulated_ns / (elapsed / 86400.0), "simulated_ps": simulated_ns * 1000,
            "mean_temperature_K": float(np.mean(temperatures[len(temperatures) // 5:])),
            "populations": {name: float(np.mean(test(phi, psi))) for name, test in BASINS.items()},
            "final_state": context.getState(getPositions=True, getVelocities=True)}


def interpolate_run(interpolated, mm_system, mixed, state, platform, args) -> dict:
    """lambda_interpolate 0 -> 1 in steps, a segment of MD at each; the end points' energies checked."""
    context, integrator = make_context(interpolated, platform, args.temperature, args.timestep_fs, args.seed + 1)
    context.setState(state)
    steps = max(1, int(round(args.interpolate_ps * 1000 / args.timestep_fs)))
    lambdas = [0.0, 0.25, 0.5, 0.75, 1.0]
    checks, energies = {}, []
    start = time.time()
    for value in tqdm(lambdas, desc="interpolate", unit="lambda"):
        context.setParameter("lambda_interpolate", value)
        integrator.step(steps)
        current = context.getState(getPositions=True, getEnergy=True)
        energy = current.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        energies.append(energy)
        if value in (0.0, 1.0):  # the same configuration in the System this end point must equal
            reference, _ = make_context(mm_system if value == 0.0 else mixed, platform, args.temperature,
                                        args.timestep_fs, args.seed)
            reference.setState(current)
            expected = reference.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
            checks["mm" if value == 0.0 else "mlmm"] = {"energy": energy, "reference_energy": expected,
                                                          "difference": energy - expected}
            del reference
    elapsed = time.time() - start
    return {"lambdas": lambdas, "potential_energies_kJ_per_mol": energies, "end_point_checks": checks,
            "ns_per_day": len(lambdas) * steps * args.timestep_fs * 1e-6 / (elapsed / 86400.0)}


def plot_ramachandran(path: Path, runs: Dict[str, dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    bins = np.linspace(-180, 180, 37)
    fig, axes = plt.subplots(1, len(runs), figsize=(4.6 * len(runs), 4.2), sharey=True)
    for ax, (label, result) in zip(np.atleast_1d(axes), runs.items()):
        histogram, _, _ = np.histogram2d(result["phi"], result["psi"], bins=[bins, bins], density=True)
        image = ax.pcolormesh(bins, bins, histogram.T, cmap="viridis", shading="flat")
        populations = ", ".join(f"{k} {100 * v:.0f}%" for k, v in result["populations"].items())
        ax.set_title(f"{label}: {result['simulated_ps']:.0f} ps\n{populations}", fontsize=9)
        ax.set_xlabel("phi (degrees)")
        ax.set_xlim(-180, 180)
        ax.set_ylim(-180, 180)
        ax.set_xticks(range(-180, 181, 90))
        ax.set_yticks(range(-180, 181, 90))
        fig.colorbar(image, ax=ax, fraction=0.046)
    np.atleast_1d(axes)[0].set_ylabel("psi (degrees)")
    fig.suptitle("Alanine dipeptide in TIP3P, 300 K", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=90)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", required=True, help="summary.json and ramachandran.png go here")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="modelPath for MLPotential('openmmnnp')")
    parser.add_argument("--time-ps", type=float, default=10.0, help="length of the MM and of the ML/MM run")
    parser.add_argument("--equilibration-ps", type=float, default=5.0, help="MM equilibration before both runs")
    parser.add_argument("--minimize-iterations", type=int, default=500, help="energy minimisation before the equilibration")
    parser.add_argument("--interpolate-ps", type=float, default=1.0, help="MD at each of 5 lambda_interpolate values")
    parser.add_argument("--timestep-fs", type=float, default=None,
                        help="default 2 fs (X-H bonds constrained), 1 fs with --flexible-solute")
    parser.add_argument("--flexible-solute", action="store_true",
                        help="createMixedSystem(removeConstraints=True): the NNP also moves the solute's X-H bonds")
    parser.add_argument("--sample-fs", type=float, default=100.0, help="phi/psi sampling interval")
    parser.add_argument("--temperature", type=float, default=300.0, help="K")
    parser.add_argument("--platform", default=None, help="OpenMM platform (default: CUDA, else CPU)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch and the CPU platform")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.timestep_fs is None:
        args.timestep_fs = 1.0 if args.flexible_solute else 2.0
    if min(args.time_ps, args.interpolate_ps, args.timestep_fs, args.sample_fs, args.temperature) <= 0 or args.equilibration_ps < 0:
        parser.error("times, the time step, the sampling interval and the temperature must be positive")
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    platform = best_platform(args.platform)
    if platform.getName() == "CPU":
        platform.setPropertyDefaultValue("Threads", str(args.threads))

    from openmmml import MLPotential

    explicit = solvated_system()  # ff96 + TIP3P, PME, rigid water, H-bond constraints
    topology, mm_system = explicit.topology, explicit.system
    solute = [a.index for a in topology.atoms() if a.residue.name != "HOH"]
    potential = MLPotential("openmmnnp", modelPath=args.model)
    remove = args.flexible_solute
    mixed = potential.createMixedSystem(topology, mm_system, solute, removeConstraints=remove)
    interpolated = potential.createMixedSystem(topology, mm_system, solute, removeConstraints=remove, interpolate=True)
    print(f"{topology.getNumAtoms()} atoms, ML region: the {len(solute)} solute atoms; platform {platform.getName()}", flush=True)

    # One MM-equilibrated start for every run.
    context, integrator = make_context(mm_system, platform, args.temperature, args.timestep_fs, args.seed)
    context.setPositions(explicit.positions)
    openmm.LocalEnergyMinimizer.minimize(context, 10.0, args.minimize_iterations)
    context.setVelocitiesToTemperature(args.temperature * unit.kelvin, args.seed)
    integrator.step(int(round(args.equilibration_ps * 1000 / args.timestep_fs)))
    start_state = context.getState(getPositions=True, getVelocities=True)
    del context, integrator

    dihedrals = backbone_dihedrals(topology)
    runs = {"MM (ff96)": run("MM", mm_system, start_state, platform, args, dihedrals),
            "ML/MM (NNP solute)": run("ML/MM", mixed, start_state, platform, args, dihedrals)}
    interpolation = interpolate_run(interpolated, mm_system, mixed, start_state, platform, args)
    plot_ramachandran(output / "ramachandran.png", runs)
    summary = {"model": args.model, "platform": platform.getName(), "threads": args.threads,
               "atoms": topology.getNumAtoms(), "ml_atoms": len(solute), "timestep_fs": args.timestep_fs,
               "solute_constraints": "none (flexible)" if remove else "X-H bonds constrained",
               "temperature_K": args.temperature,
               "runs": {label: {k: v for k, v in result.items() if k not in ("phi", "psi", "final_state")}
                        for label, result in runs.items()},
               "interpolate": interpolation}
    write_text(output / "summary.json", json.dumps(summary, indent=2) + "\n")
    for label, result in runs.items():
        populations = ", ".join(f"{k} {100 * v:.1f}%" for k, v in result["populations"].items())
        print(f"{label}: {result['simulated_ps']:.1f} ps, {result['ns_per_day']:.2f} ns/day, "
              f"<T> {result['mean_temperature_K']:.1f} K; {populations}")
    for name, check in interpolation["end_point_checks"].items():
        print(f"interpolate: lambda end point {name}: E = {check['energy']:.4f} kJ/mol, "
              f"the {name} System gives {check['reference_energy']:.4f} (difference {check['difference']:.2e})")
    print(f"interpolate: {interpolation['ns_per_day']:.2f} ns/day; wrote {output / 'ramachandran.png'} and {output / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
