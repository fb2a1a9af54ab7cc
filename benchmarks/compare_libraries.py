"""Two builds of the op library side by side on the CPU benchmarks: is a kernel change faster or slower?

Run: python benchmarks/compare_libraries.py BEFORE.so AFTER.so [--rounds 5] [--threads 1]

Each case is one worker of a benchmark script (compression.py: the shipped compressed se_e2_a on a
WaterBox, energy + forces; neighbors.py: openmmnnp.neighbor_pairs on a WaterBox; equivariant.py:
SE3Attention's fused and low-memory kernels, energy + forces), run in a fresh process with
OPENMMNNP_LIBRARY set to one library. The two libraries alternate, case by case and round by round
(the one that goes first alternates too), so that a busy, noisy machine slows both alike; the table
gives the median over the rounds of each and the ratio after / before (< 1: the change is faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import run_worker, water_box  # noqa: E402


def cases(threads: int) -> list[tuple[str, list[str], str]]:
    """(name, worker arguments, key of the time in seconds or ms in its JSON line)."""
    found = []
    for edge in (2.0, 4.0):
        found.append((f"compression: compressed se_e2_a, {edge:g} nm water, E+F",
                      [str(HERE / "compression.py"), "--worker", "water-se_e2_a-compressed", str(edge), "--threads", str(threads),
                       "--repeat", "5"], "seconds"))
    for edge in (3.0, 6.0):
        found.append((f"neighbors: neighbor_pairs, {edge:g} nm water", [str(HERE / "neighbors.py"), "--worker", "openmmnnp",
                                                                       str(water_box(edge)), str(threads)], "ms"))
    for name in ("fused", "low_memory"):
        for edge in (1.6,):
            found.append((f"equivariant: SE3Attention {name}, {edge:g} nm water, E+F",
                          [str(HERE / "equivariant.py"), "--worker", name, "--edge", str(edge), "--threads", str(threads),
                           "--repeat", "3"], "seconds"))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="libopenmmnnp_ops.so of the baseline")
    parser.add_argument("after", type=Path, help="libopenmmnnp_ops.so of the change")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    libraries = {"before": args.before.resolve(), "after": args.after.resolve()}
    env_threads = {"OMP_NUM_THREADS": str(args.threads)}
    todo = cases(args.threads)
    times: dict[tuple[str, str], list[float]] = {(name, which): [] for name, _, _ in todo for which in libraries}
    for round_ in range(args.rounds):
        for k, (name, worker, key) in enumerate(todo):
            order = ["before", "after"] if (round_ + k) % 2 == 0 else ["after", "before"]
            for which in order:
                result = run_worker(worker, env={**env_threads, "OPENMMNNP_LIBRARY": str(libraries[which])})
                if key not in result:
                    raise SystemExit(f"{name} with {which}: {result}")
                times[(name, which)].append(result[key] * (1e3 if key == "seconds" else 1.0))
                print(f"[compare] round {round_ + 1}/{args.rounds} {which:6} {name}: {times[(name, which)][-1]:.1f} ms",
                      file=sys.stderr, flush=True)
    print(f"CPU, {args.threads} thread(s), median of {args.rounds} alternating rounds, each a fresh process; "
          f"before = {libraries['before']}, after = {libraries['after']}")
    print("| case | before ms | after ms | after / before |")
    print("| --- | ---: | ---: | ---: |")
    for name, _, _ in todo:
        before, after = statistics.median(times[(name, "before")]), statistics.median(times[(name, "after")])
        print(f"| {name} | {before:.1f} | {after:.1f} | {after / before:.3f} |")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
