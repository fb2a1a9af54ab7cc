"""Scaling laws of the shipped potentials: time and memory against the number of waters.

Runs benchmarks/scaling.py (all options pass through; see its --help): forward and forward +
backward of each potential on WaterBox systems from 1 nm upward, until a time or memory bound,
with a CSV, two log-log plots and the fitted exponents in --out-dir.

    python examples/scaling_laws.py                                  # CPU, full study (tens of minutes)
    python examples/scaling_laws.py --device cuda --out-dir scaling-gpu
    python examples/scaling_laws.py --edges 1.0 1.2 --repeats 1      # seconds
"""

import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "scaling.py"
    sys.argv[0] = str(script)
    runpy.run_path(str(script), run_name="__main__")
