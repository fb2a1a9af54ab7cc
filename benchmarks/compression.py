"""Compressed vs original se_e2_a on the CPU: energy + forces, and the embedding contraction alone.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compression.py [--threads 1] [--repeat 5]
Prints one table, all timings measured side by side in this run (median of --repeat).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import openmmnnp  # noqa: F401
from openmmnnp import units
from openmmnnp.compression import compress
from openmmnnp.data import load_frames
from openmmnnp.models import SeE2A
from openmmnnp.training.statistics import frame_neighbors, set_statistics

FRAMES = Path(__file__).resolve().parents[1] / "tests" / "data" / "water_frames.npz"


def median_time(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    frames = load_frames(FRAMES)
    to_a = 1.0 / units.length_factor("angstrom")
    positions = torch.from_numpy(frames.positions.astype(np.float64) * to_a)
    box = torch.from_numpy(frames.box.astype(np.float64) * to_a)
    types = torch.from_numpy(frames.types)
    energy = torch.from_numpy(frames.energy / units.energy_factor("eV"))
    torch.manual_seed(0)
    model = SeE2A(["O", "H"], neuron=[25, 50, 100], axis_neuron=16, fitting=[64, 64, 64]).double()
    pairs, shifts = frame_neighbors(model, list(positions), list(box))
    set_statistics(model, list(positions), list(box), pairs, shifts, types, energy)
    compressed = compress(model)
    pos, b = positions[0], box[0]

    p, s, num = model.neighbors(pos, b)
    center, neighbor, valid = p[0].clamp(min=0), p[1].clamp(min=0), p[0] >= 0
    print(f"water, {pos.shape[0]} atoms, {int(num[0])} pairs within rcut (capacity {p.shape[1]}), neuron [25, 50, 100], "
          f"{args.threads} thread(s), median of {args.repeat}")
    print(f"{'dtype':8} {'what':34} {'original ms':>12} {'compressed ms':>14} {'speed-up':>9}")
    for dtype in (torch.float64, torch.float32):
        m, c = model.to(dtype), compressed.to(dtype)
        x, bx = pos.to(dtype), b.to(dtype)
        s_hat, r_hat = m.normalized_environment(x, bx, types, center, neighbor, s, valid)
        ct, nt = types[center], types[neighbor]

        def energy_forces(net):
            def run():
                y = x.clone().requires_grad_(True)
                net(y, bx, types).backward()
            return run

        def contraction(net):
            def run():
                sh, rh = s_hat.detach().requires_grad_(True), r_hat.detach().requires_grad_(True)
                net.embedding_contract(sh, rh, center, ct, nt, valid, x.shape[0]).sum().backward()
            return run

        for what, make in (("energy + forces (whole model)", energy_forces), ("embedding G^T R, forward+backward", contraction)):
            t0 = median_time(make(m), args.repeat)
            t1 = median_time(make(c), args.repeat)
            print(f"{str(dtype).split('.')[-1]:8} {what:34} {1e3 * t0:12.2f} {1e3 * t1:14.2f} {t0 / t1:9.2f}")


if __name__ == "__main__":
    main()
