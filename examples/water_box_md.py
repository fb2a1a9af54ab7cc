"""Liquid water with the shipped se_e2_a potential, next to the force field it learned from.

Builds an openmmtools WaterBox (flexible TIP3P, the teacher of the training data), replaces
its classical forces with the NNP through NNPForce, runs Langevin NVT at 300 K on the best
available platform, reports energies, progress and ns/day, and plots the O-O radial
distribution function of the NNP against the same run of the reference force field.

    python examples/water_box_md.py                 # ~1-2 minutes on 2 CPU cores
    python examples/water_box_md.py --steps 20000 --box-edge 1.9 --platform CUDA
"""

from __future__ import annotations

import argparse
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
from openmmnnp.data.water import FRICTION_PER_PS, TIMESTEP_FS, reference_water_box  # noqa: E402


def run(system, topology, positions, platform, steps, temperature, report_interval, output: Path, label: str, seed: int,
        check_every: int = 0):
    """Minimise, run Langevin NVT, return (O-O RDF, ns/day). Energies go to stdout and a CSV."""
    integrator = openmm.LangevinMiddleIntegrator(temperature * unit.kelvin, FRICTION_PER_PS / unit.picosecond,
                                                 TIMESTEP_FS * unit.femtosecond)
    integrator.setRandomNumberSeed(seed)
    simulation = app.Simulation(topology, system, integrator, platform)
    simulation.context.setPositions(positions)
    simulation.minimizeEnergy(maxIterations=50)
    simulation.context.setVelocitiesToTemperature(temperature * unit.kelvin, seed)
    reporter_args = dict(step=True, time=True, potentialEnergy=True, kineticEnergy=True, temperature=True,
                         speed=True, progress=True, remainingTime=True, totalSteps=steps)
    simulation.reporters.append(app.StateDataReporter(sys.stdout, report_interval, separator="  ", **reporter_args))
    simulation.reporters.append(app.StateDataReporter(str(output / f"{label}_energies.csv"), report_interval, **reporter_args))
    sampler = PositionSampler(interval=20, start=steps // 5)  # first fifth: equilibration
    simulation.reporters.append(sampler)
    if check_every > 0:  # compression-table range and neighbour capacity (docs/checks.md)
        simulation.reporters.append(openmmnnp.NNPCheckReporter(check_every))
    start = time.time()
    simulation.step(steps)
    elapsed = time.time() - start
    ns_per_day = steps * TIMESTEP_FS * 1e-6 / (elapsed / 86400.0)
    oxygen = np.array([a.index for a in topology.atoms() if a.element.symbol == "O"])
    box_edge = float(np.diag(sampler.boxes[0]).min())
    rdf = oxygen_rdf(np.array(sampler.positions), np.array(sampler.boxes), oxygen, 0.5 * box_edge)
    return rdf, ns_per_day


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500, help="MD steps of 0.5 fs for each run (default 1500 = 0.75 ps)")
    parser.add_argument("--box-edge", type=float, default=1.3, help="cubic box edge in nm (default 1.3: 65 waters; >= 1.25)")
    parser.add_argument("--model", default=None,
                        help="TorchScript model file or shipped model name, e.g. water-se3 (default: water-se_e2_a-compressed)")
    parser.add_argument("--platform", default=None, help="OpenMM platform (default: CUDA, else CPU, else Reference)")
    parser.add_argument("--output-dir", default="water_box_md_output", help="where energies and the RDF plot go")
    parser.add_argument("--temperature", type=float, default=300.0, help="K")
    parser.add_argument("--report-interval", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--check-every", type=int, default=100,
                        help="check the NNP's table range and neighbour capacity every N steps (0: off; docs/checks.md)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: on a busy 2-core machine more threads made MD 10x slower)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    model = args.model or "water-se_e2_a-compressed"
    if not Path(model).is_file():
        model = str(openmmnnp.pretrained_path(model))  # a shipped name; unknown names raise, listing the shipped ones
    platform = best_platform(args.platform)
    system, topology, positions = reference_water_box(args.box_edge)
    print(f"{topology.getNumResidues()} waters in a {args.box_edge} nm box, model {model}, platform {platform.getName()}")

    print(f"\n== NNP ({Path(model).stem}) ==")
    nnp_rdf, nnp_speed = run(nnp_system(system, topology, model), topology, positions, platform, args.steps,
                             args.temperature, args.report_interval, output, "nnp", args.seed, args.check_every)
    print("\n== reference force field (flexible TIP3P) ==")
    ref_rdf, ref_speed = run(system, topology, positions, platform, args.steps, args.temperature,
                             args.report_interval, output, "reference", args.seed)

    png = output / "rdf_oo.png"
    plot_rdfs(str(png), {"NNP se_e2_a": nnp_rdf, "flexible TIP3P (teacher)": ref_rdf},
              f"O-O RDF, {topology.getNumResidues()} waters, {args.temperature:.0f} K, {args.steps * TIMESTEP_FS / 1000:.1f} ps")
    for label, rdf, speed in (("NNP", nnp_rdf, nnp_speed), ("reference", ref_rdf, ref_speed)):
        r, g = first_peak(*rdf)
        print(f"{label:>9}: {speed:8.2f} ns/day, first O-O peak at {10 * r:.2f} Å, height {g:.2f}")
    print(f"wrote {png} and energy logs in {output}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
