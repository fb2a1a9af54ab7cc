"""Scaling laws: time and peak memory of each potential against the number of water molecules.

For each potential of ``potentials.REGISTRY`` whose model is shipped and each openmmtools WaterBox
edge (nm, ascending), times the forward pass (energy under ``torch.no_grad``) and the forward +
backward pass (energy, then ``backward()`` to the positions: what openmm-torch does every MD step),
through the model as ``NNPForce`` wraps it (``OpenMMPotential``: float64 positions and box in nm, the
model's own float32 inside). Each point runs in a fresh subprocess: median wall time of up to
``--repeats`` calls after 3 warm-up calls, and peak memory:

- CPU: peak RSS (Linux VmHWM) during the timed calls minus the RSS before them, after the heap was
  trimmed (``malloc_trim``): the memory the evaluation itself needs, not the model or libraries.
  ``resident_mb`` is then the whole process's RSS before the calls (libraries, model, inputs).
- CUDA: ``torch.cuda.max_memory_allocated()`` during the timed calls minus the memory allocated before
  them (model and inputs, reported as ``resident_mb``).

A potential stops growing after a point slower than ``--time-bound`` s per call, or one that ran out
of memory (recorded as an ``oom`` row; on the CPU the worker's address space is capped at
``--memory-bound-mb`` above its start so the machine is never pushed into swap). Writes
``scaling.csv`` and two log-log plots and prints the fitted exponents (see scaling_report.py).

    python benchmarks/scaling.py                            # full study, CPU
    python benchmarks/scaling.py --device cuda --out-dir docs/figures/scaling-h100
    python benchmarks/scaling.py --edges 1.0 1.3 --repeats 1 --potentials se_e2_a se_e2_a-dense   # seconds
    python benchmarks/scaling.py --prepare                  # only build the water boxes (needs openmmtools)
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from openmmnnp.atomic_write import atomic_path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import available_memory_mb, reset_peak_rss, rss_mb, run_worker, trim_heap, water_box  # noqa: E402
from potentials import REGISTRY, select  # noqa: E402
from scaling_report import report  # noqa: E402

MODES = ("forward", "forward+backward")
# Edges 2^(k/3) nm: each step doubles the number of waters, 33 (1 nm) to ~540k (25.4 nm, 1.6M atoms).
DEFAULT_EDGES = [round(2 ** (k / 3), 2) for k in range(15)]
FIELDS = ["potential", "mode", "device", "edge_nm", "waters", "atoms", "status", "median_s", "peak_mb",
          "resident_mb", "memory", "energy_kj_mol", "calls", "message"]


def is_oom(error: BaseException) -> bool:
    text = str(error)
    return isinstance(error, MemoryError) or any(m in text for m in ("out of memory", "can't allocate memory", "bad_alloc"))


def measure(potential: str, mode: str, edge: float, device: str, repeats: int, time_bound: float) -> dict:
    """One point, in this (fresh) process: median time, peak memory, energy."""
    import torch

    from potentials import load, openmm_potential

    data = np.load(water_box(edge))
    elements = [str(e) for e in data["elements"]]
    model = openmm_potential(load(REGISTRY[potential]), elements).to(device)
    positions = torch.tensor(data["positions"], dtype=torch.float64, device=device)
    box = torch.tensor(data["box"], dtype=torch.float64, device=device)
    cuda = device.startswith("cuda")

    def call() -> float:
        if mode == "forward":
            with torch.no_grad():
                energy = model(positions, box)
        else:
            x = positions.detach().requires_grad_(True)
            energy = model(x, box)
            energy.backward()
        if cuda:
            torch.cuda.synchronize()
        return energy.detach().item()

    # Warm-up: TorchScript's profiling executor settles after 3 calls with backward (measured), 2 without.
    start = time.perf_counter()
    energy = call()
    for _ in range(2):
        if time.perf_counter() - start < time_bound:
            call()
    gc.collect()
    if cuda:
        resident = torch.cuda.memory_allocated() / 2**20
        torch.cuda.reset_peak_memory_stats()
    else:
        trim_heap()
        resident = rss_mb("VmRSS")
        reset_peak_rss()
    times: list[float] = []
    while len(times) < repeats and (not times or sum(times) < 3 * time_bound):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if cuda else rss_mb("VmHWM")) - resident
    return {"status": "ok", "atoms": len(elements), "waters": elements.count("O"), "median_s": float(np.median(times)),
            "peak_mb": peak, "resident_mb": resident, "energy_kj_mol": energy, "calls": len(times),
            "memory": "cuda max_memory_allocated delta" if cuda else "peak RSS delta (VmHWM)"}


def worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if args.device == "cpu" and args.memory_bound_mb:
        # Cap the address space: an allocation beyond the bound fails (recorded as oom) instead of swapping.
        limit = int((rss_mb("VmSize") + args.memory_bound_mb) * 2**20)
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    potential, mode, edge = args.worker[0], args.worker[1], float(args.worker[2])
    try:
        result = measure(potential, mode, edge, args.device, args.repeats, args.time_bound)
    except Exception as error:  # noqa: BLE001 - every failure becomes a recorded point
        message = str(error).strip().splitlines()[-1][:300] if str(error).strip() else type(error).__name__
        result = {"status": "oom" if is_oom(error) else "error", "message": message}
    print(json.dumps(result))


def write_csv(rows: list[dict], path: Path) -> None:
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in FIELDS})


def study(args: argparse.Namespace) -> list[dict]:
    potentials = select(args.potentials)
    stopped: dict[tuple[str, str], str] = {}
    rows: list[dict] = []
    started = time.perf_counter()
    memory_bound = args.memory_bound_mb if args.device == "cpu" else 0.0
    print(f"device {args.device}, {args.threads} thread(s), up to {args.repeats} calls per point, time bound {args.time_bound:g} s"
          + (f", memory bound {memory_bound:.0f} MB" if memory_bound else ""), flush=True)
    print(f"| potential | mode | edge nm | waters | status | median ms | peak MB | energy kJ/mol |\n|---|---|---|---|---|---|---|---|", flush=True)
    for edge in sorted(args.edges):
        if all((p.name, m) in stopped for p in potentials for m in args.modes):
            break
        try:
            water_box(edge)  # built (or read from the cache) here, outside the timed workers
        except ImportError:
            print(f"note: no cached {edge:g} nm water box and no openmmtools to build it (see --prepare): stopping here")
            break
        for potential in potentials:
            for mode in args.modes:
                key = (potential.name, mode)
                if key in stopped:
                    continue
                if args.total_time and time.perf_counter() - started > args.total_time:
                    stopped[key] = f"total time bound {args.total_time:g} s reached before {edge:g} nm"
                    continue
                command = [__file__, "--worker", potential.name, mode, str(edge), "--device", args.device,
                           "--threads", str(args.threads), "--repeats", str(args.repeats), "--time-bound", str(args.time_bound),
                           "--memory-bound-mb", str(memory_bound)]
                result = run_worker(command, timeout=20 * args.time_bound + 300, env={"OMP_NUM_THREADS": str(args.threads)})
                row = {"potential": potential.name, "mode": mode, "device": args.device, "edge_nm": edge, **result}
                rows.append(row)
                ms = f"{1e3 * row['median_s']:.1f}" if row["status"] == "ok" else "-"
                mb = f"{row['peak_mb']:.1f}" if row["status"] == "ok" else "-"
                energy = f"{row['energy_kj_mol']:.3f}" if row["status"] == "ok" else row.get("message", "")
                print(f"| {potential.name} | {mode} | {edge:g} | {row.get('waters', '-')} | {row['status']} | {ms} | {mb} | {energy} |", flush=True)
                if row["status"] in ("oom", "timeout"):
                    stopped[key] = f"{row['status']} at {edge:g} nm"
                elif row["status"] == "ok" and row["median_s"] > args.time_bound:
                    stopped[key] = f"{row['median_s']:.1f} s per call at {edge:g} nm > time bound"
    for (name, mode), why in stopped.items():
        print(f"note: {name} {mode} stopped growing: {why}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", type=float, nargs="+", default=DEFAULT_EDGES, help="WaterBox edges, nm")
    parser.add_argument("--potentials", nargs="+", default=list(REGISTRY), help=f"registry names, default all: {list(REGISTRY)}")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per point (median), fewer if slow")
    parser.add_argument("--time-bound", type=float, default=10.0, help="stop growing a potential after a point slower than this, s per call")
    parser.add_argument("--memory-bound-mb", type=float, default=None,
                        help="CPU: cap on each worker's extra memory, MB (default half of MemAvailable)")
    parser.add_argument("--total-time", type=float, default=None, help="start no new point after this many seconds")
    parser.add_argument("--out-dir", default="scaling_output", help="where scaling.csv and the two PNG plots go")
    parser.add_argument("--prepare", action="store_true", help="only build the cached water boxes of --edges, then exit")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_bound_mb is None:
        args.memory_bound_mb = 0.5 * available_memory_mb() if args.device == "cpu" else 0.0
    if args.worker:
        worker(args)
        return 0
    if args.prepare:
        for edge in args.edges:
            print(water_box(edge), flush=True)
        return 0
    rows = study(args)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / "scaling.csv")
    report(rows, out)
    return 0 if any(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
