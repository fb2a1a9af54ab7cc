"""examples/mlmm.py, short: ML/MM MD of alanine dipeptide in TIP3P through MLPotential("openmmnnp")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "mlmm.py"


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mlmm")
    result = subprocess.run([sys.executable, str(SCRIPT), "--output-dir", str(out), "--time-ps", "0.04",
                             "--equilibration-ps", "0.02", "--minimize-iterations", "20", "--interpolate-ps", "0.008", "--sample-fs", "4",
                             "--platform", "CPU", "--threads", "1"],
                            capture_output=True, text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return out, json.loads((out / "summary.json").read_text()), result.stdout


def test_runs_mm_and_mlmm_and_reports_speed(short_run):
    out, summary, stdout = short_run
    assert summary["ml_atoms"] == 22 and summary["atoms"] > 2000  # the solute in a periodic TIP3P box
    for label in ("MM (ff96)", "ML/MM (NNP solute)"):
        run = summary["runs"][label]
        assert run["ns_per_day"] > 0 and run["simulated_ps"] == pytest.approx(0.04)
        assert 100.0 < run["mean_temperature_K"] < 500.0  # Langevin at 300 K from an equilibrated start: no blow-up
        assert sum(run["populations"].values()) == pytest.approx(1.0)
    assert "ns/day" in stdout


def test_ramachandran_plot_is_written(short_run):
    out, _, _ = short_run
    assert (out / "ramachandran.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_interpolated_end_points_equal_the_two_systems(short_run):
    """lambda_interpolate 0 and 1 of the interpolate=True System, against the MM and ML/MM Systems at the
    same configuration (CPU platform: single-precision PME, ~3e4 kJ/mol in total)."""
    _, summary, _ = short_run
    interpolation = summary["interpolate"]
    assert interpolation["lambdas"][0] == 0.0 and interpolation["lambdas"][-1] == 1.0
    for name in ("mm", "mlmm"):
        check = interpolation["end_point_checks"][name]
        assert abs(check["difference"]) < 1e-6 * abs(check["reference_energy"]) + 1e-2
