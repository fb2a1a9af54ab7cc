"""SE3Attention: reference vs torch vs fused vs low-memory layers, energy + forces on water boxes.

Run: OMP_NUM_THREADS=1 python benchmarks/equivariant.py [--edges 1.6 2.4 3.2] [--threads 1] [--repeat 3]
     [--lmax 2] [--channels 16] [--rcut 5.0] [--device cpu|cuda] [--tf32] [--implementations ...]

Each (implementation, box) pair runs in a fresh subprocess: median energy+forces time (after three
warm-up calls, which TorchScript's profiling executor uses to optimise the graph) and peak memory
(CPU: peak RSS during the evaluations minus RSS before them; CUDA: torch.cuda.max_memory_allocated
minus the allocation before them). All implementations share the
same random float32 model in inference mode (eval, parameters without gradients, forces by
autograd.grad with respect to the positions: what TorchForce computes), so the table compares the
implementations only. Ratios are the reference's time or memory over each implementation's.
Water boxes come from benchmarks/common.py (openmmtools WaterBox, cached: a GPU machine without
openmmtools uses boxes prepared elsewhere).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from common import median_time, reset_peak_rss, rss_mb, run_worker, trim_heap, water_box
from openmmnnp import units
from openmmnnp.models import SE3Attention

IMPLEMENTATIONS = ["reference", "torch", "fused", "low_memory"]


def load_box(edge_nm: float, device: str):
    """(positions [N, 3] angstrom, box [3, 3] angstrom, types [N]) of the cached water box, float32."""
    data = np.load(water_box(edge_nm))
    to_a = 1.0 / units.length_factor("angstrom")
    x = torch.tensor(data["positions"] * to_a, dtype=torch.float32, device=device)
    box = torch.tensor(data["box"] * to_a, dtype=torch.float32, device=device)
    types = torch.tensor([0 if e == "O" else 1 for e in data["elements"]], device=device)
    return x, box, types


def worker(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    if args.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
    x, box, types = load_box(args.edge, args.device)
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

    for _ in range(3):  # TorchScript's profiling executor specialises and optimises the graph over the first calls
        run()
    trim_heap()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() / 2**20
    else:
        reset_peak_rss()
        before = rss_mb("VmRSS")
    seconds = median_time(run, args.repeat, warmup=0)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else rss_mb("VmHWM")
    return {"atoms": int(x.shape[0]), "pairs": pairs, "seconds": seconds, "peak_mb": peak - before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--edges", type=float, nargs="+", default=[1.6, 2.4, 3.2], help="WaterBox edges, nm")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lmax", type=int, default=2)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--rcut", type=float, default=5.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tf32", action="store_true", help="allow TF32 matmuls (CUDA)")
    parser.add_argument("--implementations", nargs="+", default=IMPLEMENTATIONS, choices=IMPLEMENTATIONS)
    parser.add_argument("--worker", choices=IMPLEMENTATIONS, dest="implementation", help=argparse.SUPPRESS)
    parser.add_argument("--edge", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.implementation:
        print(json.dumps(worker(args)))
        return
    names = [name for name in IMPLEMENTATIONS if name in args.implementations]
    print(f"SE3Attention lmax {args.lmax}, {args.channels} channels, rcut {args.rcut} A, 2 layers, float32"
          f"{' + TF32' if args.tf32 else ''}, {args.device}, {args.threads} thread(s), energy + forces, "
          f"median of {args.repeat}")
    print("time ms / peak MB per implementation; (x) = reference / implementation")
    print(f"{'atoms':>6} {'pairs':>7} " + " ".join(f"{name + ' ms':>15} {name + ' MB':>15}" for name in names))
    common = ["--threads", str(args.threads), "--repeat", str(args.repeat), "--lmax", str(args.lmax),
              "--channels", str(args.channels), "--rcut", str(args.rcut), "--device", args.device]
    common += ["--tf32"] if args.tf32 else []
    for edge in args.edges:
        results = {}
        for name in names:
            print(f"[equivariant] {edge} nm box, {name} ...", file=sys.stderr, flush=True)
            results[name] = run_worker([__file__, "--worker", name, "--edge", str(edge)] + common)
            if "seconds" not in results[name]:
                raise SystemExit(f"{name} at {edge} nm: {results[name]}")
        ref = results.get("reference")
        cells = []
        for name in names:
            r = results[name]
            time_cell, mem_cell = f"{1e3 * r['seconds']:.0f}", f"{r['peak_mb']:.0f}"
            if ref is not None and name != "reference":
                time_cell += f" ({ref['seconds'] / r['seconds']:.1f}x)"
                mem_cell += f" ({ref['peak_mb'] / max(r['peak_mb'], 1.0):.1f}x)"
            cells.append(f"{time_cell:>15} {mem_cell:>15}")
        first = results[names[0]]
        print(f"{first['atoms']:6d} {first['pairs']:7d} " + " ".join(cells), flush=True)


if __name__ == "__main__":
    main()
