"""SE3Attention: reference vs torch vs fused vs low-memory layers, energy + forces on water boxes.

Run: OMP_NUM_THREADS=1 python benchmarks/equivariant.py [--edges 1.6 2.4 3.2] [--threads 1] [--repeat 3]
     [--lmax 2] [--channels 16] [--rcut 5.0] [--device cpu|cuda] [--implementations ...]

Each (implementation, box) pair runs in a fresh subprocess: median energy+forces time (after one
warm-up) and peak memory (CPU: peak RSS during the evaluations minus RSS before them; CUDA:
torch.cuda.max_memory_allocated minus the allocation before them). All implementations share the
same random float32 model in inference mode (eval, parameters without gradients, forces by
autograd.grad with respect to the positions: what TorchForce computes), so the table compares the
implementations only. Ratios are the reference's time or memory over each implementation's.
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
    model.implementation = args.implementation
    model.eval().requires_grad_(False)
    scripted = torch.jit.script(model)
    pairs = int(model.neighbors(x, box)[2][0])
    cuda = args.device == "cuda"

    def run() -> None:
        y = x.clone().requires_grad_(True)
        torch.autograd.grad(scripted(y, box, types), y)
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


IMPLEMENTATIONS = ["reference", "torch", "fused", "low_memory"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--edges", type=float, nargs="+", default=[1.6, 2.4, 3.2], help="WaterBox edges, nm")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lmax", type=int, default=2)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--rcut", type=float, default=5.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--implementations", nargs="+", default=IMPLEMENTATIONS, choices=IMPLEMENTATIONS)
    parser.add_argument("--worker", choices=IMPLEMENTATIONS, dest="implementation", help=argparse.SUPPRESS)
    parser.add_argument("--edge", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.implementation:
        print(json.dumps(worker(args)))
        return
    names = [name for name in IMPLEMENTATIONS if name in args.implementations]
    print(f"SE3Attention lmax {args.lmax}, {args.channels} channels, rcut {args.rcut} A, 2 layers, float32, {args.device}, "
          f"{args.threads} thread(s), energy + forces, median of {args.repeat}")
    print("time ms / peak MB per implementation; x = reference / implementation")
    header = f"{'atoms':>6} {'pairs':>7} " + " ".join(f"{name + ' ms':>15} {name + ' MB':>15}" for name in names)
    print(header)
    common = ["--threads", str(args.threads), "--repeat", str(args.repeat), "--lmax", str(args.lmax),
              "--channels", str(args.channels), "--rcut", str(args.rcut), "--device", args.device]
    for edge in args.edges:
        results = {}
        for name in names:
            print(f"[equivariant] {edge} nm box, {name} ...", file=sys.stderr, flush=True)
            out = subprocess.run([sys.executable, __file__, "--worker", name, "--edge", str(edge)] + common,
                                 capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(f"{name} at {edge} nm failed:\n{out.stderr[-2000:]}")
            results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        first = results[names[0]]
        ref = results.get("reference")
        cells = []
        for name in names:
            r = results[name]
            time_cell, mem_cell = f"{1e3 * r['seconds']:.0f}", f"{r['peak_mb']:.0f}"
            if ref is not None and name != "reference":
                time_cell += f" ({ref['seconds'] / r['seconds']:.1f}x)"
                mem_cell += f" ({ref['peak_mb'] / max(r['peak_mb'], 1.0):.1f}x)"
            cells.append(f"{time_cell:>15} {mem_cell:>15}")
        print(f"{first['atoms']:6d} {first['pairs']:7d} " + " ".join(cells), flush=True)


if __name__ == "__main__":
    main()
