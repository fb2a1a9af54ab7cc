"""SE3Attention: fused vs reference key/value convolution, energy + forces on water boxes.

Run: OMP_NUM_THREADS=1 python benchmarks/equivariant.py [--edges 1.2 1.6 2.0] [--threads 1] [--repeat 3]
     [--lmax 2] [--channels 16] [--rcut 5.0] [--device cpu|cuda]

Each (implementation, box) pair runs in a fresh subprocess: median energy+forces time (after one
warm-up) and peak memory (CPU: peak RSS during the evaluations minus RSS before them; CUDA:
torch.cuda.max_memory_allocated minus the allocation before them). Both implementations share
the same random float32 model, so the table compares the implementations only.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch

from openmmnnp import units
from openmmnnp.models import SE3Attention


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def water_box(edge_nm: float, device: str):
    """(positions [N, 3] angstrom, box [3, 3] angstrom, types [N]) of an openmmtools WaterBox, float32."""
    import openmm.unit as unit
    from openmmtools.testsystems import WaterBox

    water = WaterBox(box_edge=edge_nm * unit.nanometer, cutoff=0.5 * unit.nanometer)
    to_a = 1.0 / units.length_factor("angstrom")
    x = torch.tensor(water.positions.value_in_unit(unit.nanometer) * to_a, dtype=torch.float32, device=device)
    vectors = water.system.getDefaultPeriodicBoxVectors()
    box = torch.tensor([[v[k].value_in_unit(unit.nanometer) * to_a for k in range(3)] for v in vectors],
                       dtype=torch.float32, device=device)
    types = torch.tensor([0 if a.element.symbol == "O" else 1 for a in water.topology.atoms()], device=device)
    return x, box, types


def worker(args: argparse.Namespace) -> dict:
    x, box, types = water_box(args.edge, args.device)
    torch.manual_seed(0)
    model = SE3Attention(["O", "H"], rcut=args.rcut, lmax=args.lmax, channels=args.channels).to(args.device)
    model.fused = args.implementation == "fused"
    scripted = torch.jit.script(model)
    pairs = int(model.neighbors(x, box)[2][0])
    cuda = args.device == "cuda"

    def run() -> None:
        y = x.clone().requires_grad_(True)
        scripted(y, box, types).backward()
        if cuda:
            torch.cuda.synchronize()

    if cuda:
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() / 2**20
    else:
        before = rss_mb()
    run()  # warm-up (and the peak: every run allocates the same)
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {"atoms": int(x.shape[0]), "pairs": pairs, "seconds": float(np.median(times)), "peak_mb": peak - before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--edges", type=float, nargs="+", default=[1.2, 1.6, 2.0], help="WaterBox edges, nm")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lmax", type=int, default=2)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--rcut", type=float, default=5.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--worker", choices=["fused", "reference"], dest="implementation", help=argparse.SUPPRESS)
    parser.add_argument("--edge", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.implementation:
        print(json.dumps(worker(args)))
        return
    print(f"SE3Attention lmax {args.lmax}, {args.channels} channels, rcut {args.rcut} A, 2 layers, float32, {args.device}, "
          f"{args.threads} thread(s), energy + forces, median of {args.repeat}")
    print(f"{'edge nm':>7} {'atoms':>6} {'pairs':>7} {'reference ms':>13} {'fused ms':>9} {'speed-up':>9} "
          f"{'reference MB':>13} {'fused MB':>9} {'memory ratio':>13}")
    common = ["--threads", str(args.threads), "--repeat", str(args.repeat), "--lmax", str(args.lmax),
              "--channels", str(args.channels), "--rcut", str(args.rcut), "--device", args.device]
    for edge in args.edges:
        results = {}
        for implementation in ("reference", "fused"):
            out = subprocess.run([sys.executable, __file__, "--worker", implementation, "--edge", str(edge)] + common,
                                 capture_output=True, text=True, check=True)
            results[implementation] = json.loads(out.stdout.strip().splitlines()[-1])
        r, f = results["reference"], results["fused"]
        print(f"{edge:7.1f} {f['atoms']:6d} {f['pairs']:7d} {1e3 * r['seconds']:13.1f} {1e3 * f['seconds']:9.1f} "
              f"{r['seconds'] / f['seconds']:9.2f} {r['peak_mb']:13.0f} {f['peak_mb']:9.0f} "
              f"{r['peak_mb'] / max(f['peak_mb'], 1.0):13.1f}", flush=True)


if __name__ == "__main__":
    main()
