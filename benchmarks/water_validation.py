"""Validates shipped water models against their teacher (flexible TIP3P) as a user would read it.

For each model, and for the teacher, on the 65-water box at 300 K (LangevinMiddle, 1/ps, 0.5 fs):
- NVT: temperature and potential energy over time, O-O / O-H / H-H RDFs, the closest
  intermolecular contact and any overflow-check warning, all after the equilibration;
- on-policy force error: the teacher's forces on frames of the model's own NVT trajectory;
- NPT (1 bar, Monte Carlo barostat): density;
- NVE (velocity Verlet 0.5 fs) from the end of the NVT run: total-energy drift;
- held-out teacher frames: energy and force RMSE.
Writes validation.json, validation.md (tables and the acceptance checks of issue #15) and
figures (rdf.png, temperature_energy.png, density.png) into --output-dir, atomically.

    python benchmarks/water_validation.py --output-dir runs/validation --test-data data/water_test.npz
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

SHIPPED = ["water-se_e2_a-compressed", "water-se_e2_a", "water-se3"]
TEACHER = "teacher"
TIMESTEP_PS = 0.0005


@dataclasses.dataclass
class Job:
    name: str  # a shipped model name, a model file, or TEACHER
    kind: str  # "nvt", "npt" or "nve"
    steps: int
    equilibration_steps: int
    seed: int


def run_job(job: Job, box_edge: float, on_policy_frames: int) -> dict:
    """One MD run in this (worker) process; returns plain data (no OpenMM objects)."""
    import os

    os.environ.setdefault("OPENMM_CPU_THREADS", "1")
    import openmm
    import openmm.unit as unit
    import torch

    import openmmnnp
    from openmmnnp.analysis import closest_contact, radial_distribution
    from openmmnnp.data.teacher import Teacher
    from openmmnnp.data.water import reference_water_box
    from openmmnnp.md import density, langevin
    from openmmnnp.systems import nnp_system
    from openmmnnp.training.deviation import force_errors

    torch.set_num_threads(1)
    system, topology, positions = reference_water_box(box_edge)
    model_path = None if job.name == TEACHER else (job.name if Path(job.name).is_file() else str(openmmnnp.pretrained_path(job.name)))
    run_system = system if model_path is None else nnp_system(system, topology, model_path)
    platform = openmm.Platform.getPlatformByName("CPU")
    start = time.time()
    if job.kind == "nve":
        return run_nve(job, run_system, topology, positions, platform)
    run = langevin(f"{job.name} {job.kind}", run_system, topology, positions, platform, job.steps, 300.0,
                   1.0 if job.kind == "npt" else None, job.seed, job.equilibration_steps, sample_interval=40, progress=False)
    result = {"name": job.name, "kind": job.kind, "steps": job.steps, "wall_s": time.time() - start,
              "ns_per_day": run.ns_per_day, "time_ps": run.time_ps.tolist(), "temperature": run.temperature.tolist(),
              "potential_energy": run.potential_energy.tolist(), "warnings": sorted(set(run.warnings)),
              "equilibration_ps": run.equilibration_ps}
    if job.kind == "npt":
        result["density"] = density(run, system).tolist()
        return result
    symbols = np.array([a.element.symbol for a in topology.atoms()])
    molecule = np.array([a.residue.index for a in topology.atoms()])
    pick = {"O": np.nonzero(symbols == "O")[0], "H": np.nonzero(symbols == "H")[0]}
    r_max = 0.5 * float(np.diag(run.boxes[0]).min())
    result["rdf"] = {f"{a}-{b}": [x.tolist() for x in radial_distribution(run.positions, run.boxes, pick[a], pick[b],
                                                                               molecule, r_max, bins=130)]
                     for a, b in (("O", "O"), ("O", "H"), ("H", "H"))}
    distance, frame, i, j = closest_contact(run.positions, run.boxes, molecule)
    result["closest_contact_A"] = 10 * distance
    result["closest_contact_atoms"] = [symbols[i] + str(i), symbols[j] + str(j)]
    result["final_positions"] = run.positions[-1].tolist()
    result["final_box"] = run.boxes[-1].tolist()
    if model_path is not None:  # on-policy: the teacher's forces on the model's own frames
        picks = np.linspace(0, len(run.positions) - 1, min(on_policy_frames, len(run.positions))).astype(int)
        teacher = Teacher(system, topology, ["O", "H"])
        _, reference = teacher.label(run.positions[picks], run.boxes[picks])
        result["on_policy"] = force_errors(torch.jit.load(model_path), run.positions[picks], run.boxes[picks],
                                           teacher.types, reference)
    return result


def run_nve(job: Job, system, topology, positions: np.ndarray, platform) -> dict:
    """Velocity Verlet from a 300 K Langevin-equilibrated state: drift of the total energy per atom."""
    import openmm
    import openmm.unit as unit

    from openmmnnp.md import langevin

    warm = langevin("nve start", system, topology, positions, platform, job.equilibration_steps, 300.0, None, job.seed,
                    job.equilibration_steps - 100, sample_interval=100, progress=False)
    integrator = openmm.VerletIntegrator(TIMESTEP_PS * unit.picosecond)
    context = openmm.Context(system, integrator, platform)
    context.setPeriodicBoxVectors(*warm.boxes[-1])
    context.setPositions(warm.positions[-1])
    context.setVelocitiesToTemperature(300 * unit.kelvin, job.seed)
    n = system.getNumParticles()
    times, totals = [], []
    for k in range(job.steps // 20):
        integrator.step(20)
        state = context.getState(getEnergy=True)
        times.append((k + 1) * 20 * TIMESTEP_PS)
        totals.append((state.getPotentialEnergy() + state.getKineticEnergy()).value_in_unit(unit.kilojoule_per_mole) / n)
    slope = float(np.polyfit(times, totals, 1)[0])  # kJ/mol/atom/ps
    return {"name": job.name, "kind": "nve", "steps": job.steps, "drift_kJ_per_mol_per_atom_per_ns": 1000 * slope,
            "total_energy_rms_kJ_per_mol_per_atom": float(np.std(totals))}


def held_out_errors(name: str, test_data: str) -> dict:
    import torch

    import openmmnnp
    from openmmnnp.data import load_frames
    from openmmnnp.training.deviation import force_errors

    frames = load_frames(test_data)
    path = name if Path(name).is_file() else str(openmmnnp.pretrained_path(name))
    return force_errors(torch.jit.load(path), frames.positions, frames.box, frames.types, frames.forces)


# ----- summary --------------------------------------------------------------------------------
def rdf_features(rdf: list) -> dict:
    from openmmnnp.analysis import first_minimum, first_peak

    r, g = np.array(rdf[0]), np.array(rdf[1])
    peak_r, peak_g = first_peak(r, g)
    minimum_r, minimum_g = first_minimum(r, g)
    return {"peak_A": 10 * peak_r, "peak_height": peak_g, "minimum_A": 10 * minimum_r, "minimum_height": minimum_g}


def production(result: dict, key: str) -> np.ndarray:
    t = np.array(result["time_ps"])
    return np.array(result[key])[t > result["equilibration_ps"]]


def acceptance(results: Dict[str, Dict[str, dict]], models: List[str]) -> List[dict]:
    """The checks of issue #15 for each model: (model, check, value, limit, pass)."""
    teacher_nvt = results[TEACHER]["nvt"]
    teacher_rdf = rdf_features(teacher_nvt["rdf"]["O-O"])
    checks = []

    def check(model: str, what: str, value: float, limit: str, ok: bool) -> None:
        checks.append({"model": model, "check": what, "value": value, "limit": limit, "pass": bool(ok)})

    for model in models:
        nvt = results[model]["nvt"]
        temperature = production(nvt, "temperature")
        span = (len(temperature) * (nvt["time_ps"][1] - nvt["time_ps"][0]))
        check(model, f"mean T over {span:.1f} ps after {nvt['equilibration_ps']:g} ps (K)", float(temperature.mean()),
              "300 ± 5", abs(temperature.mean() - 300) <= 5 and span >= 8)
        check(model, "closest intermolecular contact (Å)", nvt["closest_contact_A"], ">= 1.2", nvt["closest_contact_A"] >= 1.2)
        extrapolated = [w for w in nvt["warnings"] if "table" in w or "extrapolat" in w]
        check(model, "table-extrapolation warnings", float(len(extrapolated)), "0", not extrapolated)
        features = rdf_features(nvt["rdf"]["O-O"])
        check(model, "O-O first peak position vs teacher (Å)", features["peak_A"] - teacher_rdf["peak_A"], "± 0.05",
              abs(features["peak_A"] - teacher_rdf["peak_A"]) <= 0.05 + 1e-9)
        check(model, "O-O first peak height vs teacher (relative)", features["peak_height"] / teacher_rdf["peak_height"] - 1,
              "± 10 %", abs(features["peak_height"] / teacher_rdf["peak_height"] - 1) <= 0.10)
        check(model, "O-O first minimum vs teacher (Å)", features["minimum_A"] - teacher_rdf["minimum_A"], "± 0.1",
              abs(features["minimum_A"] - teacher_rdf["minimum_A"]) <= 0.1 + 1e-9)
        on_policy = nvt["on_policy"]
        ratio = on_policy["force_rmse"] / on_policy["reference_force_rms"]
        check(model, "on-policy force RMSE / teacher RMS force", ratio, "<= 10 %", ratio <= 0.10)
        if "npt" in results[model] and "npt" in results[TEACHER]:
            rho = production(results[model]["npt"], "density").mean()
            rho_teacher = production(results[TEACHER]["npt"], "density").mean()
            check(model, "NPT density vs teacher (relative)", rho / rho_teacher - 1, "± 2 %", abs(rho / rho_teacher - 1) <= 0.02)
    return checks


def write_report(out: Path, results: dict, held_out: dict, checks: List[dict], models: List[str], command: str) -> None:
    from openmmnnp.atomic_write import write_text

    lines = [f"Command: `{command}`", "",
             "| run | mean T (K) | closest contact (Å) | O-O peak (Å / height) | O-O min (Å) | density (g/cm³) | "
             "held-out force RMSE (kJ/mol/nm) | on-policy force RMSE (kJ/mol/nm) | NVE drift (kJ/mol/atom/ns) | ns/day |",
             "|" + "---|" * 10]
    for name in models + [TEACHER]:
        nvt = results[name]["nvt"]
        features = rdf_features(nvt["rdf"]["O-O"])
        rho = f"{production(results[name]['npt'], 'density').mean():.3f}" if "npt" in results[name] else "–"
        held = f"{held_out[name]['force_rmse']:.1f} ({100 * held_out[name]['force_rmse'] / held_out[name]['reference_force_rms']:.1f} %)" \
            if name in held_out else "–"
        on = nvt.get("on_policy")
        on_text = f"{on['force_rmse']:.1f} ({100 * on['force_rmse'] / on['reference_force_rms']:.1f} %)" if on else "–"
        drift = f"{results[name]['nve']['drift_kJ_per_mol_per_atom_per_ns']:.3f}" if "nve" in results[name] else "–"
        lines.append(f"| {name} | {production(nvt, 'temperature').mean():.1f} | {nvt['closest_contact_A']:.2f} "
                     f"| {features['peak_A']:.2f} / {features['peak_height']:.2f} | {features['minimum_A']:.2f} | {rho} "
                     f"| {held} | {on_text} | {drift} | {nvt['ns_per_day']:.2f} |")
    lines += ["", "| model | check | value | limit | result |", "|---|---|---|---|---|"]
    for c in checks:
        lines.append(f"| {c['model']} | {c['check']} | {c['value']:.4g} | {c['limit']} | {'pass' if c['pass'] else 'FAIL'} |")
    write_text(out / "validation.md", "\n".join(lines) + "\n")


def plot(out: Path, results: dict, models: List[str]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from openmmnnp.atomic_write import atomic_path

    names = models + [TEACHER]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for name in names:
        for ax, pair in zip(axes, ("O-O", "O-H", "H-H")):
            r, g = results[name]["nvt"]["rdf"][pair]
            ax.plot(10 * np.array(r), g, label=name, lw=1.6 if name == TEACHER else 1.0, color="k" if name == TEACHER else None)
            ax.set_title(f"g_{pair.replace('-', '')}(r), NVT 300 K")
            ax.set_xlabel("r (Å)")
    axes[0].legend(fontsize=7)
    _save(fig, out / "rdf.png", plt, atomic_path)
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    for name in names:
        nvt = results[name]["nvt"]
        axes[0].plot(nvt["time_ps"], nvt["temperature"], lw=0.6, label=name, color="k" if name == TEACHER else None)
        e = np.array(nvt["potential_energy"])
        axes[1].plot(nvt["time_ps"], e - e[-len(e) // 2:].mean(), lw=0.6, label=name, color="k" if name == TEACHER else None)
    axes[0].axhline(300, color="grey", lw=0.5)
    axes[0].set(xlabel="time (ps)", ylabel="temperature (K)", title="NVT 300 K: temperature")
    axes[1].set(xlabel="time (ps)", ylabel="potential energy - its production mean (kJ/mol)", title="potential energy")
    axes[0].legend(fontsize=7)
    _save(fig, out / "temperature_energy.png", plt, atomic_path)
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for name in names:
        if "npt" in results[name]:
            npt = results[name]["npt"]
            ax.plot(npt["time_ps"], npt["density"], lw=0.7, label=name, color="k" if name == TEACHER else None)
    ax.set(xlabel="time (ps)", ylabel="density (g/cm³)", title="NPT 300 K, 1 bar")
    ax.legend(fontsize=7)
    _save(fig, out / "density.png", plt, atomic_path)


def _save(fig, path: Path, plt, atomic_path) -> None:  # type: ignore[no-untyped-def]
    fig.tight_layout()
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=110)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=SHIPPED, help="shipped names or model files")
    parser.add_argument("--test-data", required=True, help="held-out teacher frames (openmm-nnp data water --seed 2)")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--nvt-ps", type=float, default=22.0, help="NVT length, ps (default 22: 2 + 20)")
    parser.add_argument("--npt-ps", type=float, default=22.0, help="NPT length, ps (0: no NPT)")
    parser.add_argument("--nve-ps", type=float, default=2.0, help="NVE length, ps (0: no NVE)")
    parser.add_argument("--equilibration-ps", type=float, default=2.0)
    parser.add_argument("--npt-models", nargs="*", default=None, help="models run in NPT (default: all)")
    parser.add_argument("--on-policy-frames", type=int, default=100)
    parser.add_argument("--box-edge", type=float, default=1.3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    if out.exists() and not out.is_dir():
        parser.error(f"--output-dir {args.output_dir!r} is a file")
    out.mkdir(parents=True, exist_ok=True)
    steps = lambda ps: int(round(ps / TIMESTEP_PS))  # noqa: E731
    equilibration = steps(args.equilibration_ps)
    npt_models = args.models if args.npt_models is None else args.npt_models
    jobs = [Job(name, "nvt", steps(args.nvt_ps), equilibration, args.seed) for name in args.models + [TEACHER]]
    if args.npt_ps > 0:
        jobs += [Job(name, "npt", steps(args.npt_ps), equilibration, args.seed) for name in npt_models + [TEACHER]]
    if args.nve_ps > 0:
        jobs += [Job(name, "nve", steps(args.nve_ps), 2000, args.seed) for name in args.models + [TEACHER]]
    jobs.sort(key=lambda j: -j.steps * (3 if j.name == "water-se_e2_a" else 1))  # longest first
    results: Dict[str, Dict[str, dict]] = {name: {} for name in args.models + [TEACHER]}
    print(f"{len(jobs)} runs on {args.jobs} processes", flush=True)
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(run_job, job, args.box_edge, args.on_policy_frames): job for job in jobs}
        for future in futures:
            job = futures[future]
            results[job.name][job.kind] = future.result()
            print(f"done: {job.name} {job.kind}", flush=True)
    held_out = {name: held_out_errors(name, args.test_data) for name in args.models}
    checks = acceptance(results, args.models)
    from openmmnnp.atomic_write import write_text

    for name in results:
        results[name].get("nvt", {}).pop("final_positions", None)
        results[name].get("nvt", {}).pop("final_box", None)
    write_text(out / "validation.json", json.dumps({"results": results, "held_out": held_out, "checks": checks}, indent=1))
    command = "python benchmarks/water_validation.py " + " ".join(argv if argv is not None else sys.argv[1:])
    write_report(out, results, held_out, checks, args.models, command)
    plot(out, results, args.models)
    print((out / "validation.md").read_text())
    return 0 if all(c["pass"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
