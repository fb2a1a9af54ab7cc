"""benchmarks/equivariant.py in CI-sized mode (one small box, lmax 1): every implementation runs in
its worker and the table has one row with a time and a memory cell (and ratios) for each."""

from __future__ import annotations

import os
import subprocess
import sys

from benchmark_modules import BENCHMARKS


def test_equivariant_benchmark_prints_one_row_per_box():
    result = subprocess.run([sys.executable, str(BENCHMARKS / "equivariant.py"), "--edges", "1.0", "--repeat", "1",
                             "--lmax", "1", "--channels", "8", "--rcut", "4.0"],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = [line.split() for line in result.stdout.splitlines() if line.strip() and line.split()[0].isdigit()]
    assert len(rows) == 1
    row = rows[0]
    assert int(row[0]) > 50 and int(row[1]) > int(row[0])  # atoms, and a full pair list has more pairs
    assert len(row) == 2 + 2 + 3 * 2 * 2  # reference: ms MB; the others: "ms (x)" "MB (x)" as two tokens each
    ratios = [float(token.strip("()x")) for token in row[4:] if token.startswith("(")]
    assert len(ratios) == 6 and all(r > 0 for r in ratios)
