"""Liquid water with the shipped NNP, next to the force field it learned from, on the CPU.

Builds an openmmtools WaterBox (flexible TIP3P: the NNP's teacher), runs Langevin MD at 300 K
with the NNP in place of the force field and then with the force field itself, and ends with a
verdict table (mean temperature, O-O RDF first peak and minimum, density with --npt, ns/day) and
a figure: temperature over time beside the RDFs.

    python examples/water_box_md.py                     # 65 waters, 7 ps each, a few minutes
    python examples/water_box_md.py --npt --steps 40000 # NPT: densities too
    python examples/water_box_md.py --model water-se_e2_a-compressed --platform CUDA --box-edge 2.5
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import openmm
import torch

import openmmnnp
from openmmnnp.analysis import first_minimum, first_peak, radial_distribution
from openmmnnp.atomic_write import atomic_path, write_text
from openmmnnp.data.water import reference_water_box
from openmmnnp.md import Run, best_platform, density, langevin
from openmmnnp.systems import nnp_system


def rdfs(run: Run, topology) -> dict:
    """O-O, O-H and H-H intermolecular g(r) of the run's frames: {name: (r nm, g)}."""
    symbols = np.array([a.element.symbol for a in topology.atoms()])
    molecule = np.array([a.residue.index for a in topology.atoms()])
    r_max = 0.5 * float(np.diag(run.boxes[0]).min())
    pick = {"O": np.nonzero(symbols == "O")[0], "H": np.nonzero(symbols == "H")[0]}
    return {f"{a}-{b}": radial_distribution(run.positions, run.boxes, pick[a], pick[b], molecule, r_max)
            for a, b in (("O", "O"), ("O", "H"), ("H", "H"))}


def plot(path: Path, runs: dict, structure: dict, title: str) -> None:
    """Temperature over time beside the three RDFs, NNP and teacher overlaid (written atomically)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for label, run in runs.items():
        axes[0].plot(run.time_ps, run.temperature, lw=0.8, label=label)
        for ax, (name, (r, g)) in zip(axes[1:], structure[label].items()):
            ax.plot(10 * r, g, label=label)
            ax.set_title(f"g_{name.replace('-', '')}(r), intermolecular")
            ax.set_xlabel("r (Å)")
    axes[0].axvline(next(iter(runs.values())).equilibration_ps, color="grey", lw=0.5)
    axes[0].set_xlabel("time (ps)")
    axes[0].set_ylabel("temperature (K)")
    axes[0].set_title("temperature")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=110)
    plt.close(fig)


def verdict(runs: dict, structure: dict, system: openmm.System, npt: bool) -> str:
    """The table printed at the end: one row per run."""
    lines = ["| run | mean T (K) | O-O peak (Å) | peak height | O-O minimum (Å) | density (g/cm³) | ns/day |",
             "|---|---|---|---|---|---|---|"]
    for label, run in runs.items():
        r, g = structure[label]["O-O"]
        peak_r, peak_g = first_peak(r, g)
        minimum_r, _ = first_minimum(r, g)
        rho = f"{density(run, system)[run.time_ps > run.equilibration_ps].mean():.3f}" if npt else "(NVT)"
        lines.append(f"| {label} | {run.after_equilibration(run.temperature).mean():.1f} | {10 * peak_r:.2f} | {peak_g:.2f} "
                     f"| {10 * minimum_r:.2f} | {rho} | {run.ns_per_day:.2f} |")
    return "\n".join(lines)


def write_series(path: Path, run: Run) -> None:
    text = io.StringIO()
    text.write("time_ps,temperature_K,potential_energy_kJ_per_mol,volume_nm3\n")
    for row in zip(run.time_ps, run.temperature, run.potential_energy, run.volume):
        text.write(",".join(f"{v:.6g}" for v in row) + "\n")
    write_text(path, text.getvalue())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="water-se3",
                        help="TorchScript model file or shipped model name (default water-se3, the water model that holds "
                             "300 K; water-se_e2_a-compressed is faster but not yet stable, docs/models.md)")
    parser.add_argument("--steps", type=int, default=14000, help="MD steps of 0.5 fs for each run (default 14000 = 7 ps)")
    parser.add_argument("--equilibration", type=float, default=2.0, help="ps left out of the averages (default 2)")
    parser.add_argument("--box-edge", type=float, default=1.3, help="cubic box edge in nm (default 1.3: 65 waters; >= 1.25)")
    parser.add_argument("--temperature", type=float, default=300.0, help="K (default 300)")
    parser.add_argument("--npt", action="store_true", help="constant pressure (1 bar, Monte Carlo barostat): densities too")
    parser.add_argument("--platform", default=None, help="OpenMM platform (default: CUDA, else CPU, else Reference)")
    parser.add_argument("--output-dir", default="water_box_md_output", help="where the figure and energy logs go")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: on a busy 2-core machine more threads made MD 10x slower)")
    args = parser.parse_args(argv)
    if args.steps < 1000 or not 0 <= args.equilibration < args.steps * 0.0005:
        parser.error("need --steps >= 1000 and 0 <= --equilibration < the run's length")
    torch.set_num_threads(args.threads)
    output = Path(args.output_dir)
    if output.exists() and not output.is_dir():
        parser.error(f"--output-dir {args.output_dir!r} is a file")
    model = args.model if Path(args.model).is_file() else str(openmmnnp.pretrained_path(args.model))
    platform = best_platform(args.platform)
    system, topology, positions = reference_water_box(args.box_edge)
    output.mkdir(parents=True, exist_ok=True)
    ensemble = "NPT 1 bar" if args.npt else "NVT"
    print(f"{topology.getNumResidues()} waters in a {args.box_edge} nm box, {ensemble} {args.temperature:g} K, "
          f"{args.steps * 0.0005:g} ps per run, platform {platform.getName()}; NNP {Path(model).stem}", flush=True)

    protocol = dict(steps=args.steps, temperature=args.temperature, pressure=1.0 if args.npt else None, seed=args.seed,
                    equilibration_steps=int(round(args.equilibration / 0.0005)))
    label = f"NNP {Path(model).stem}"
    runs = {label: langevin(label, nnp_system(system, topology, model), topology, positions, platform, **protocol),
            "teacher (flexible TIP3P)": langevin("teacher", system, topology, positions, platform, **protocol)}
    structure = {name: rdfs(run, topology) for name, run in runs.items()}
    for name, run in runs.items():
        write_series(output / f"{'nnp' if name == label else 'teacher'}_series.csv", run)
        for warning in sorted(set(run.warnings)):
            print(f"{name}: {warning}")
    png = output / "water_md.png"
    plot(png, runs, structure, f"{topology.getNumResidues()} waters, {ensemble} {args.temperature:g} K, "
         f"{args.steps * 0.0005:g} ps per run")
    print("\n" + verdict(runs, structure, system, args.npt))
    print(f"\nwrote {png} (temperature and RDFs) and the time series in {output}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
