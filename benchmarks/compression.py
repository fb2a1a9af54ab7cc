"""Compressed vs original se_e2_a on the CPU: energy + forces, and the embedding contraction alone.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compression.py [--threads 1] [--repeat 5]
Prints one table, all timings measured side by side in this run (median of --repeat).

With --water-boxes 2.0 3.0 5.0 6.3 it instead compares the shipped water-se_e2_a and
water-se_e2_a-compressed models (float32) on openmmtools WaterBox systems of those edges (nm):
median energy+forces time and peak memory, each model and size in a fresh subprocess
(peak RSS during the evaluations minus RSS before the first one, Linux VmHWM).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

import openmmnnp
from openmmnnp import units
from openmmnnp.compression import compress
from openmmnnp.data import load_frames
from openmmnnp.models import SeE2A
from openmmnnp.training.statistics import frame_neighbors, set_statistics

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median_time, reset_peak_rss, rss_mb, water_box  # noqa: E402

FRAMES = Path(__file__).resolve().parents[1] / "tests" / "data" / "water_frames.npz"


def water_box_worker(model_name: str, edge_nm: float, repeat: int) -> dict:
    """Times energy+forces of a shipped model on a WaterBox; returns atoms, median s, peak MB."""
    data = np.load(water_box(edge_nm))
    to_a = 1.0 / units.length_factor("angstrom")
    x = torch.tensor(data["positions"] * to_a, dtype=torch.float32)
    box = torch.tensor(data["box"] * to_a, dtype=torch.float32)
    types = torch.tensor([0 if symbol == "O" else 1 for symbol in data["elements"]])
    model = torch.jit.load(str(openmmnnp.pretrained_path(model_name)))
    before = rss_mb("VmRSS")
    reset_peak_rss()

    def run():
        y = x.clone().requires_grad_(True)
        model(y, box, types).backward()

    seconds = median_time(run, repeat)
    return {"atoms": int(x.shape[0]), "seconds": seconds, "peak_mb": rss_mb("VmHWM") - before}


def water_box_table(edges: list[float], threads: int, repeat: int) -> None:
    print(f"shipped water models, float32, energy + forces, {threads} thread(s), median of {repeat}")
    print(f"{'edge nm':>7} {'atoms':>6} {'original ms':>12} {'compressed ms':>14} {'speed-up':>9} {'original MB':>12} {'compressed MB':>14} {'memory ratio':>13}")
    for edge in edges:
        results = []
        for name in ("water-se_e2_a", "water-se_e2_a-compressed"):
            out = subprocess.run([sys.executable, __file__, "--worker", name, str(edge), "--threads", str(threads), "--repeat", str(repeat)],
                                 capture_output=True, text=True, check=True)
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        o, c = results
        print(f"{edge:7.1f} {o['atoms']:6d} {1e3 * o['seconds']:12.1f} {1e3 * c['seconds']:14.1f} {o['seconds'] / c['seconds']:9.2f} "
              f"{o['peak_mb']:12.0f} {c['peak_mb']:14.0f} {o['peak_mb'] / max(c['peak_mb'], 1.0):13.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--water-boxes", type=float, nargs="*", help="WaterBox edges in nm: compare the shipped models")
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "EDGE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(water_box_worker(args.worker[0], float(args.worker[1]), args.repeat)))
        return
    if args.water_boxes:
        water_box_table(args.water_boxes, args.threads, args.repeat)
        return
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
