"""MD throughput through OpenMM: steps/s and ns/day of each potential, and the TorchForce overhead.

For each potential of ``potentials.REGISTRY`` (shipped models only) and each water box, a fresh
subprocess builds the System with ``NNPForce`` (openmmnnp.systems.nnp_system), runs Langevin
NVT (LangevinMiddleIntegrator, 300 K, 1/ps, 0.5 fs) after warm-up steps, and times whole steps for
about ``--seconds`` s. It then times the model called directly, wrapped as NNPForce wraps it
(energy + backward on the Context's positions, same device), and reports

    overhead = (time per MD step - time per direct call) / time per MD step

the share of a step spent outside the model: openmm-torch's copies, the integrator, the Python-free
C++ plumbing (goal on CUDA: <= 10%). On CUDA each case runs with useCUDAGraphs off and on.

    python benchmarks/md_throughput.py --edges 1.5 2.0 2.5                 # CPU platform
    python benchmarks/md_throughput.py --platform CUDA --edges 3 5 6.3 10  # 6.3 nm: ~24k atoms
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

from openmmnnp.atomic_write import atomic_path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import median_time, run_worker, water_box, water_topology  # noqa: E402
from potentials import REGISTRY, select  # noqa: E402

TEMPERATURE_K = 300.0
FIELDS = ["potential", "edge_nm", "atoms", "platform", "cuda_graphs", "status", "steps", "steps_per_s", "ns_per_day",
          "step_ms", "model_ms", "overhead", "message"]


def measure(potential: str, edge: float, platform_name: str, graphs: bool, seconds: float) -> dict:
    """One case, in this (fresh) process."""
    import openmm
    import openmm.unit as unit
    import torch

    from openmmnnp.data.water import FRICTION_PER_PS, TIMESTEP_FS
    from openmmnnp.systems import nnp_system
    from potentials import load, openmm_potential

    data = np.load(water_box(edge))
    elements = [str(e) for e in data["elements"]]
    bare, topology = water_topology(np.asarray(elements), data["box"])
    model = load(REGISTRY[potential])
    cuda = platform_name == "CUDA"
    properties = {"useCUDAGraphs": "true" if graphs else "false"} if cuda else None
    system = nnp_system(bare, topology, model, properties)
    integrator = openmm.LangevinMiddleIntegrator(TEMPERATURE_K * unit.kelvin, FRICTION_PER_PS / unit.picosecond,
                                                 TIMESTEP_FS * unit.femtosecond)
    integrator.setRandomNumberSeed(1)
    platform = openmm.Platform.getPlatformByName(platform_name)
    platform_properties = {"Precision": "mixed"} if cuda else ({"Threads": str(torch.get_num_threads())} if platform_name == "CPU" else {})
    context = openmm.Context(system, integrator, platform, platform_properties)
    context.setPositions(data["positions"])
    context.setVelocitiesToTemperature(TEMPERATURE_K * unit.kelvin, 1)

    def sync() -> None:  # CUDA steps are asynchronous; downloading positions waits for them (energy would recompute forces)
        context.getState(getPositions=True)

    integrator.step(20 if cuda else 3)  # warm-up: TorchScript profiling runs, CUDA graph capture
    sync()
    steps, elapsed, chunk = 0, 0.0, 1
    while elapsed < seconds:
        start = time.perf_counter()
        integrator.step(chunk)
        sync()
        elapsed += time.perf_counter() - start
        steps += chunk
        chunk *= 2
    step_s = elapsed / steps

    device = "cuda" if cuda else "cpu"
    direct = openmm_potential(model, elements).to(device)
    state = context.getState(getPositions=True)
    positions = torch.tensor(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer), dtype=torch.float64, device=device)
    box = torch.tensor(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer), dtype=torch.float64, device=device)

    def call() -> None:
        x = positions.detach().requires_grad_(True)
        direct(x, box).backward()
        if cuda:
            torch.cuda.synchronize()

    model_s = median_time(call, repeat=max(3, min(50, steps)), warmup=3)
    return {"status": "ok", "atoms": len(elements), "steps": steps, "steps_per_s": 1.0 / step_s,
            "ns_per_day": TIMESTEP_FS * 1e-6 * 86400.0 / step_s, "step_ms": 1e3 * step_s, "model_ms": 1e3 * model_s,
            "overhead": (step_s - model_s) / step_s}


def worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    potential, edge, graphs = args.worker[0], float(args.worker[1]), args.worker[2] == "on"
    try:
        result = measure(potential, edge, args.platform, graphs, args.seconds)
    except Exception as error:  # noqa: BLE001 - every failure becomes a recorded row
        result = {"status": "error", "message": (str(error).strip().splitlines() or [type(error).__name__])[-1][:300]}
    print(json.dumps(result))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", type=float, nargs="+", default=[1.5, 2.0, 2.5], help="WaterBox edges, nm")
    parser.add_argument("--potentials", nargs="+", default=list(REGISTRY), help=f"registry names, default all: {list(REGISTRY)}")
    parser.add_argument("--platform", default="CPU", help="OpenMM platform: CPU or CUDA (CUDA: graphs off and on)")
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenMM CPU threads")
    parser.add_argument("--seconds", type=float, default=5.0, help="time MD for about this long per case")
    parser.add_argument("--csv", type=Path, default=None, help="also write the rows to this CSV file")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    graph_settings = ["off", "on"] if args.platform == "CUDA" else ["n/a"]
    potentials = select(args.potentials)
    print(f"platform {args.platform}, {args.threads} thread(s), LangevinMiddle 300 K 0.5 fs, ~{args.seconds:g} s of MD per case")
    print("| potential | edge nm | atoms | CUDA graphs | steps/s | ns/day | MD step ms | model call ms | overhead |\n|---|---|---|---|---|---|---|---|---|", flush=True)
    rows = []
    for potential in potentials:
        for edge in args.edges:
            water_box(edge)  # built here (needs openmmtools) unless cached, outside the timed workers
            for graphs in graph_settings:
                result = run_worker([__file__, "--worker", potential.name, str(edge), graphs, "--platform", args.platform,
                                     "--threads", str(args.threads), "--seconds", str(args.seconds)],
                                    timeout=600, env={"OMP_NUM_THREADS": str(args.threads)})
                row = {"potential": potential.name, "edge_nm": edge, "platform": args.platform, "cuda_graphs": graphs, **result}
                rows.append(row)
                if row["status"] == "ok":
                    print(f"| {potential.name} | {edge:g} | {row['atoms']} | {graphs} | {row['steps_per_s']:.2f} | {row['ns_per_day']:.3f} | "
                          f"{row['step_ms']:.1f} | {row['model_ms']:.1f} | {100 * row['overhead']:.1f}% |", flush=True)
                else:
                    print(f"| {potential.name} | {edge:g} | - | {graphs} | {row['status']}: {row.get('message', '')} | | | | |", flush=True)
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(args.csv) as temporary, open(temporary, "w", newline="") as f:
            writer = csv.DictWriter(f, FIELDS)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: row.get(k, "") for k in FIELDS})
    return 0 if rows and all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
