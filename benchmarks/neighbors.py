"""Neighbour search on CPU: openmmnnp.neighbor_pairs vs a dense torch search vs vesin.

Systems: openmmtools WaterBox, 2 to 10 nm edge, cutoff 0.6 nm, half list, float64, outputs
(i, j, integer shift) for all three. Each measurement runs in a fresh subprocess: median wall
time over repeats after one warm-up call, and peak memory = peak RSS (ru_maxrss) minus the RSS
just before the first call (inputs loaded, libraries imported).

Usage: python benchmarks/neighbors.py [--edges 2 3 4 6 8 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import reset_peak_rss, rss_mb, water_box

CUTOFF = 0.6  # nm
DENSE_MAX_ATOMS = 3000  # beyond this the N^2 search needs GBs and minutes


def worker(method: str, path: str, threads: int) -> None:
    """Time one method on one system; prints a JSON line."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    data = np.load(path)
    positions_np, box_np = np.ascontiguousarray(data["positions"]), np.ascontiguousarray(data["box"])
    positions, box = torch.from_numpy(positions_np), torch.from_numpy(box_np)
    if method == "openmmnnp":
        import openmmnnp

        def call():
            return openmmnnp.neighbor_pairs(positions, CUTOFF, box)

    elif method == "dense":
        from openmmnnp.ops.reference import dense_neighbor_pairs

        def call():
            return dense_neighbor_pairs(positions, CUTOFF, box)

    else:
        import vesin

        calculator = vesin.NeighborList(cutoff=CUTOFF, full_list=False)

        def call():
            return calculator.compute(points=positions_np, box=box_np, periodic=True, quantities="ijS")

    before = rss_mb("VmRSS")
    reset_peak_rss()
    result = call()
    count = len(result[0]) if method == "vesin" else int(result[2])
    del result
    repeats = 3 if len(positions) > 20000 or method == "dense" else 7
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
        del result
    peak = rss_mb("VmHWM")
    print(json.dumps({"ms": 1000 * statistics.median(times), "mb": peak - before, "pairs": count}))


def measure(method: str, path: Path, threads: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", method, str(path), str(threads)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", type=float, nargs="+", default=[2.0, 3.0, 4.0, 6.0, 8.0, 10.0])
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], int(args.worker[2]))
        return
    import numpy as np

    all_threads = os.cpu_count() or 1
    print(f"cutoff {CUTOFF} nm, half list, float64; CPU threads: 1 and {all_threads}; time = median ms, mem = peak RSS delta MB")
    header = f"| edge nm | atoms | pairs | threads | openmmnnp ms | vesin ms | dense ms | openmmnnp MB | vesin MB | dense MB | time ours/vesin | mem ours/vesin |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for edge in args.edges:
        path = water_box(edge)
        atoms = len(np.load(path)["positions"])
        for threads in sorted({1, all_threads}):
            ours = measure("openmmnnp", path, threads)
            ves = measure("vesin", path, threads)
            assert ours["pairs"] == ves["pairs"], (ours, ves)
            dense = measure("dense", path, threads) if atoms <= DENSE_MAX_ATOMS else None
            dms = f"{dense['ms']:.1f}" if dense else "skipped (N^2)"
            dmb = f"{dense['mb']:.0f}" if dense else "skipped"
            print(
                f"| {edge:g} | {atoms} | {ours['pairs']} | {threads} | {ours['ms']:.1f} | {ves['ms']:.1f} | {dms} | "
                f"{ours['mb']:.0f} | {ves['mb']:.0f} | {dmb} | {ours['ms'] / ves['ms']:.2f} | {ours['mb'] / max(ves['mb'], 1e-9):.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
