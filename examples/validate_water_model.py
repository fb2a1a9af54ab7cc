"""Measures the numbers of docs/models.md for a water model against its teacher (flexible TIP3P).

1. Energy and force RMSE on held-out reference frames (``openmm-nnp data water --seed 2``).
2. Energy drift in NVE (velocity Verlet, 0.5 fs) from an equilibrated 300 K frame.
3. Density and O-O RDF in NPT (300 K, 1 bar, Monte Carlo barostat) for the NNP and the teacher.

    python examples/validate_water_model.py --test-data data/water_test.npz --output-dir runs/validation
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from water_md_tools import PositionSampler, best_platform, first_peak, nnp_system, oxygen_rdf, plot_rdfs  # noqa: E402

import openmmnnp  # noqa: E402
from openmmnnp import units  # noqa: E402
from openmmnnp.data import load_frames  # noqa: E402
from openmmnnp.data.water import FRICTION_PER_PS, TIMESTEP_FS, reference_water_box  # noqa: E402


def test_set_errors(model_path: str, test_data: str) -> dict:
    """RMSE of energy per atom (meV/atom) and force components (meV/Å) on the frames."""
    model = torch.jit.load(model_path)
    frames = load_frames(test_data)
    to_a = 1.0 / units.length_factor(model.length_unit)
    to_ev = 1.0 / units.energy_factor(model.energy_unit)
    dtype = next(model.parameters()).dtype
    types = torch.from_numpy(frames.types)
    de, df = [], []
    for k in range(len(frames)):
        pos = torch.from_numpy(frames.positions[k].astype(np.float64) * to_a).to(dtype).requires_grad_(True)
        # An all-zero box means no periodic boundaries (data/frames.py).
        box = torch.from_numpy(frames.box[k].astype(np.float64) * to_a).to(dtype) if frames.box[k].any() else None
        energy = model(pos, box, types)
        (grad,) = torch.autograd.grad(energy, pos)
        de.append((float(energy) - frames.energy[k] * to_ev) / len(types))
        df.append(((-grad.double().numpy() - frames.forces[k] * to_ev / to_a) ** 2).mean())
    de = np.array(de)
    return {"frames": len(frames), "energy_rmse_meV_per_atom": 1000 * float(np.sqrt(np.mean(de**2))),
            "energy_rmse_meV_per_atom_after_removing_mean_offset": 1000 * float(np.std(de)),
            "force_rmse_meV_per_A": 1000 * float(np.sqrt(np.mean(df))),
            "force_rms_of_reference_meV_per_A": 1000 * float(np.sqrt(np.mean((frames.forces * to_ev / to_a) ** 2)))}


def nve_drift(system, positions, box, platform, steps: int) -> dict:
    """Linear drift and RMS fluctuation of the total energy per atom (kJ/mol/atom)."""
    integrator = openmm.VerletIntegrator(TIMESTEP_FS * unit.femtosecond)
    context = openmm.Context(system, integrator, platform)
    context.setPeriodicBoxVectors(*box)
    context.setPositions(positions)
    context.setVelocitiesToTemperature(300 * unit.kelvin, 7)
    n = system.getNumParticles()
    times, totals = [], []
    for k in range(steps // 20):
        integrator.step(20)
        state = context.getState(getEnergy=True)
        times.append((k + 1) * 20 * TIMESTEP_FS * 1e-6)  # ns
        totals.append((state.getPotentialEnergy() + state.getKineticEnergy()).value_in_unit(unit.kilojoule_per_mole) / n)
    slope = np.polyfit(times, totals, 1)[0]
    return {"steps": steps, "timestep_fs": TIMESTEP_FS, "drift_kJ_per_mol_per_atom_per_ns": float(slope),
            "total_energy_rms_fluctuation_kJ_per_mol_per_atom": float(np.std(totals))}


def npt(system, topology, positions, platform, steps: int, label: str) -> dict:
    system = system.__copy__()
    system.addForce(openmm.MonteCarloBarostat(1 * unit.bar, 300 * unit.kelvin, 25))
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, FRICTION_PER_PS / unit.picosecond, TIMESTEP_FS * unit.femtosecond)
    integrator.setRandomNumberSeed(11)
    simulation = app.Simulation(topology, system, integrator, platform)
    simulation.context.setPositions(positions)
    simulation.minimizeEnergy(maxIterations=50)
    simulation.context.setVelocitiesToTemperature(300 * unit.kelvin, 11)
    sampler = PositionSampler(interval=20, start=steps // 2)  # first half: equilibration
    simulation.reporters.append(sampler)
    start = time.time()
    simulation.step(steps)
    elapsed = time.time() - start
    mass = sum(system.getParticleMass(i).value_in_unit(unit.dalton) for i in range(system.getNumParticles()))
    volumes = np.array([np.prod(np.diag(b)) for b in sampler.boxes])  # nm^3
    density = mass * 1.66053906660e-27 / (volumes * 1e-27) / 1000.0  # g/cm^3
    oxygen = np.array([a.index for a in topology.atoms() if a.element.symbol == "O"])
    r, g = oxygen_rdf(np.array(sampler.positions), np.array(sampler.boxes), oxygen, 0.5 * min(np.diag(sampler.boxes[0]).min(), 1.3))
    peak_r, peak_g = first_peak(r, g)
    after = r > peak_r
    minimum = int(np.argmin(np.where(after & (r < 0.45), g, np.inf)))
    print(f"{label}: {steps} NPT steps in {elapsed:.0f} s", flush=True)
    return {"steps": steps, "density_g_per_cm3": float(density.mean()), "density_std": float(density.std()),
            "first_peak_A": 10 * peak_r, "first_peak_height": peak_g, "first_minimum_A": 10 * float(r[minimum]),
            "first_minimum_height": float(g[minimum]), "ns_per_day": steps * TIMESTEP_FS * 1e-6 / (elapsed / 86400), "rdf": (r, g)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="TorchScript model (default: the shipped water-se_e2_a)")
    parser.add_argument("--test-data", required=True, help="held-out frame file from `openmm-nnp data water --seed 2`")
    parser.add_argument("--nve-steps", type=int, default=4000)
    parser.add_argument("--npt-steps", type=int, default=4000)
    parser.add_argument("--platform", default=None)
    parser.add_argument("--output-dir", default="water_validation")
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = args.model or str(openmmnnp.pretrained_path("water-se_e2_a"))
    platform = best_platform(args.platform)
    results = {"model": model, "platform": platform.getName(), "test_set": test_set_errors(model, args.test_data)}
    print(json.dumps(results, indent=1), flush=True)

    frames = load_frames(args.test_data)
    edge = float(frames.box[0, 0, 0])
    system, topology, start = reference_water_box(edge)
    nnp = nnp_system(system, topology, model)
    at_300 = int(np.nonzero(frames.temperature == 300.0)[0][-1])  # an equilibrated 300 K configuration
    results["nve"] = nve_drift(nnp, frames.positions[at_300].astype(np.float64), frames.box[at_300].astype(np.float64),
                               platform, args.nve_steps)
    print(json.dumps(results["nve"], indent=1), flush=True)
    results["npt_nnp"] = npt(nnp, topology, start, platform, args.npt_steps, "NNP")
    results["npt_reference"] = npt(system, topology, start, platform, args.npt_steps, "reference")
    plot_rdfs(str(out / "rdf_oo_npt.png"), {"NNP se_e2_a": results["npt_nnp"].pop("rdf"),
                                            "flexible TIP3P (teacher)": results["npt_reference"].pop("rdf")},
              f"O-O RDF, NPT 300 K, {topology.getNumResidues()} waters")
    (out / "validation.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
