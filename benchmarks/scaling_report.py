"""Fitted scaling exponents and log-log plots of a scaling study (rows of benchmarks/scaling.py).

    python benchmarks/scaling_report.py docs/figures/scaling-cpu/scaling.csv   # redo table and plots from a CSV
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import numpy as np

from openmmnnp.atomic_write import atomic_path

NUMERIC = ("edge_nm", "waters", "atoms", "median_s", "peak_mb", "resident_mb", "energy_kj_mol", "calls")


def exponent(waters: list[float], values: list[float]) -> float:
    """Least-squares slope of log(value) against log(waters) over the larger half of the points (at least 2)."""
    points = sorted((w, v) for w, v in zip(waters, values) if w > 0 and v > 0 and math.isfinite(v))
    if len(points) < 2:
        return math.nan
    tail = points[-max(2, math.ceil(len(points) / 2)):]
    x, y = np.log([w for w, _ in tail]), np.log([v for _, v in tail])
    return float(np.polyfit(x, y, 1)[0])


def series(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """Rows grouped by (potential, mode), in order of size."""
    out: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        out.setdefault((row["potential"], row["mode"]), []).append(row)
    return out


def exponent_table(rows: list[dict]) -> str:
    lines = ["| potential | mode | points | largest waters | time exponent | memory exponent | points not ok |", "|---|---|---|---|---|---|---|"]
    for (name, mode), group in series(rows).items():
        ok = [r for r in group if r["status"] == "ok"]
        waters = [float(r["waters"]) for r in ok]
        t = exponent(waters, [float(r["median_s"]) for r in ok])
        m = exponent(waters, [float(r["peak_mb"]) for r in ok])
        failed = [r for r in group if r["status"] != "ok"]
        stop = ", ".join(f"{r['status']} at {float(r['edge_nm']):g} nm" for r in failed) or "-"
        largest = f"{max(waters):.0f}" if waters else "-"
        lines.append(f"| {name} | {mode} | {len(ok)} | {largest} | {t:.2f} | {m:.2f} | {stop} |")
    return "\n".join(lines)


def plot(rows: list[dict], column: str, ylabel: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    colours: dict[str, str] = {}
    for (name, mode), group in series(rows).items():
        colour = colours.setdefault(name, f"C{len(colours)}")
        ok = [r for r in group if r["status"] == "ok" and float(r[column]) > 0]
        style = "-" if mode == "forward+backward" else "--"
        label = f"{name}, {mode}"
        oom = [r for r in group if r["status"] == "oom"]
        if oom:
            label += f" (OOM at {float(oom[0]['edge_nm']):g} nm)"
        if ok:
            ax.plot([float(r["waters"]) for r in ok], [float(r[column]) for r in ok], style, marker="o", ms=3, color=colour, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("water molecules")
    ax.set_ylabel(ylabel)
    devices = sorted({r["device"] for r in rows})
    ax.set_title(f"{ylabel.split(' (')[0]} vs system size, {', '.join(devices)}")
    ax.grid(True, which="both", lw=0.3)
    ax.legend(fontsize=6)
    fig.tight_layout()
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=100)
    plt.close(fig)


def report(rows: list[dict], out: Path) -> None:
    """Prints the exponent table and writes scaling_time.png and scaling_memory.png into ``out``."""
    print(exponent_table(rows))
    cpu = all(r["device"] == "cpu" for r in rows)
    plot(rows, "median_s", "time per call (s)", out / "scaling_time.png")
    plot(rows, "peak_mb", "peak memory (MB, " + ("RSS delta" if cpu else "CUDA allocated delta") + ")", out / "scaling_memory.png")
    print(f"wrote {out / 'scaling.csv'}, {out / 'scaling_time.png'}, {out / 'scaling_memory.png'}")


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: (float(v) if k in NUMERIC and v != "" else v) for k, v in row.items()} for row in csv.DictReader(f)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path)
    args = parser.parse_args()
    report(read_csv(args.csv), args.csv.parent)


if __name__ == "__main__":
    main()
