"""Helpers shared by the benchmark scripts: cached water boxes, peak memory, timing, worker subprocesses.

Water boxes are openmmtools ``WaterBox`` systems saved as .npz (positions and box in nm, element
symbols) in ``$OPENMMNNP_BENCH_CACHE`` (default ``$TMPDIR/openmmnnp_bench``), so a machine without
openmmtools (a bare GPU machine) can run the benchmarks on boxes prepared elsewhere.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

CACHE = Path(os.environ.get("OPENMMNNP_BENCH_CACHE", Path(os.environ.get("TMPDIR", "/tmp")) / "openmmnnp_bench"))


def water_box(edge: float) -> Path:
    """Path of the cached .npz of an openmmtools WaterBox of ``edge`` nm: positions [N, 3], box [3, 3], elements [N]."""
    path = CACHE / f"water_{edge:g}nm.npz"
    if not path.exists():
        import warnings

        from openmm import unit

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from openmmtools.testsystems import WaterBox
        # The cutoff only shapes the classical System, which is discarded; it must fit in small boxes.
        water = WaterBox(box_edge=edge * unit.nanometer, cutoff=min(0.9, 0.45 * edge) * unit.nanometer)
        box = [v.value_in_unit(unit.nanometer) for v in water.system.getDefaultPeriodicBoxVectors()]
        elements = np.array([atom.element.symbol for atom in water.topology.atoms()])
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.npz")
        np.savez(partial, positions=water.positions.value_in_unit(unit.nanometer), box=np.array(box), elements=elements)
        partial.rename(path)  # atomic: parallel runs never read half a file
    return path


def water_topology(elements: np.ndarray, box_nm: np.ndarray):
    """(System with masses and box, Topology) of the waters of a cached box, for MD without openmmtools."""
    import openmm
    import openmm.app as app

    if len(elements) % 3 or any(list(elements[k : k + 3]) != ["O", "H", "H"] for k in range(0, len(elements), 3)):
        raise ValueError("water_topology: expected atoms ordered O, H, H per water")
    topology = app.Topology()
    chain = topology.addChain()
    system = openmm.System()
    for k in range(0, len(elements), 3):
        residue = topology.addResidue("HOH", chain)
        for name, symbol in (("O", "O"), ("H1", "H"), ("H2", "H")):
            element = app.Element.getBySymbol(symbol)
            topology.addAtom(name, element, residue)
            system.addParticle(element.mass)
    vectors = [openmm.Vec3(*row) for row in box_nm]
    topology.setPeriodicBoxVectors(vectors)
    system.setDefaultPeriodicBoxVectors(*vectors)
    return system, topology


def rss_mb(field: str) -> float:
    """VmRSS (current), VmHWM (peak since the last reset) or VmSize of this process, in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def trim_heap() -> None:
    """Returns freed heap pages to the OS (glibc), so that the next peak RSS counts live memory only."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the peak then also counts cached free memory
        pass


def available_memory_mb() -> float:
    """MemAvailable of /proc/meminfo, MB."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("MemAvailable not in /proc/meminfo")


def median_time(fn: Callable[[], object], repeat: int, warmup: int = 1) -> float:
    """Median wall time (s) of ``repeat`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(statistics.median(times))


def run_worker(args: list[str], timeout: Optional[float] = None, env: Optional[dict] = None, python: Optional[str] = None) -> dict:
    """Runs ``python args...`` (default: this interpreter), which must print one JSON object as its last stdout line.

    A crash or timeout comes back as {"status": ...} instead of an exception, so that a benchmark
    records the point and goes on: "oom" when killed by SIGKILL (the kernel's OOM killer), else "error".
    """
    try:
        out = subprocess.run([python or sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                             env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "message": f"no result within {timeout:g} s"}
    lines = out.stdout.strip().splitlines()
    if out.returncode == 0 and lines:
        try:
            return json.loads(lines[-1])
        except json.JSONDecodeError:
            pass
    if out.returncode == -signal.SIGKILL:
        return {"status": "oom", "message": "killed by SIGKILL (out of memory)"}
    tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
    return {"status": "error", "message": f"exit {out.returncode}: {tail}"}
