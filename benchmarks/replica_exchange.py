"""Replica exchange throughput: iterations/s of examples/replica_exchange.py on 1 and 2 MPI ranks.

Runs the example once per (ranks, threads per rank) configuration, one after the other, each in a
fresh storage, and reads the rate it prints: iterations after the first (which also creates the
Contexts and warms TorchScript up) per second of wall time. Ratios are against the first row.

    python benchmarks/replica_exchange.py                        # 1x1, 1x2, 2x1 on the CPU platform
    python benchmarks/replica_exchange.py --configs 1x1 2x1 4x1 --platform CUDA --box-edge 3.0
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "replica_exchange.py"
RATE = re.compile(r"then ([0-9.]+) iterations/s")


def run(ranks: int, threads: int, args: argparse.Namespace, folder: Path) -> float:
    """iterations/s of one configuration (raises with the example's output on failure)."""
    line = [sys.executable, str(EXAMPLE), "--box-edge", str(args.box_edge), "--iterations", str(args.iterations),
            "--steps-per-iteration", str(args.steps_per_iteration), "--threads", str(threads),
            "--storage", str(folder / f"bench-{ranks}x{threads}.nc"), "--temperatures", *map(str, args.temperatures)]
    if args.platform:
        line += ["--platform", args.platform]
    if ranks > 1:
        mpiexec = Path(sys.executable).parent / "mpiexec"
        line = [str(mpiexec) if mpiexec.is_file() else "mpiexec", "-n", str(ranks), *line]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENMM_CPU_THREADS": str(threads)}
    result = subprocess.run(line, capture_output=True, text=True, env=env)
    match = RATE.search(result.stdout)
    if result.returncode != 0 or match is None:
        raise RuntimeError(f"{ranks}x{threads} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return float(match.group(1))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["1x1", "1x2", "2x1"], help="RANKSxTHREADS per rank")
    parser.add_argument("--box-edge", type=float, default=1.3, help="nm (default 1.3: 65 waters)")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[300.0, 315.0, 330.0, 345.0])
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument("--steps-per-iteration", type=int, default=100)
    parser.add_argument("--platform", default=None)
    args = parser.parse_args(argv)
    configs = [tuple(int(x) for x in c.split("x")) for c in args.configs]
    print(f"{len(args.temperatures)} replicas, {args.box_edge} nm water box, {args.steps_per_iteration} steps per "
          f"iteration, {args.iterations} iterations (the first not timed), platform {args.platform or 'default'}")
    print(f"{'ranks':>5} {'threads/rank':>12} {'iterations/s':>12} {'ratio':>6}")
    rates = []
    with tempfile.TemporaryDirectory() as folder:
        for ranks, threads in configs:
            rates.append(run(ranks, threads, args, Path(folder)))
            print(f"{ranks:>5} {threads:>12} {rates[-1]:>12.3f} {rates[-1] / rates[0]:>6.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
