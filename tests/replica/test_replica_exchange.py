"""examples/replica_exchange.py on one process: storage, energy consistency, resume, kill, overflow.

The energies are checked against a fresh NNPForce at the stored positions and box (energy_oracle),
so the tests hold for any water model the project ships, whatever its exact numbers.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import numpy as np
import pytest

import openmmnnp
from openmmnnp.replica.mixing import read_mixing
from replica.energy_oracle import reduced_energies, stored_iterations, water_topology, worst_relative_error
from replica.example_runner import (OVERFLOW_STATE, OVERFLOW_TEMPERATURES, SMALL, command, environment, load_example,
                                    overflowing_model, run_example)

MODEL = openmmnnp.pretrained_path("water-se_e2_a-compressed")
TEMPERATURES = ["--temperatures", "300", "315", "330", "345"]
TOLERANCE = 1e-5  # relative, on every stored reduced energy


def assert_consistent(storage, iterations: int) -> np.ndarray:
    """All iterations 0..iterations stored, every reduced energy = β_state U(stored x, box); returns them."""
    assert stored_iterations(storage) == iterations
    stored, recomputed = reduced_energies(storage, MODEL, water_topology(1.0))
    assert stored.shape == (iterations + 1, 4, 4)
    assert np.all(np.isfinite(stored))
    error = worst_relative_error(stored, recomputed)
    assert error <= TOLERANCE, error
    return stored


@pytest.fixture(scope="module")
def three_iterations(tmp_path_factory):
    """4 replicas x 3 iterations, stored, with the mixing plot."""
    folder = tmp_path_factory.mktemp("replica")
    result = run_example([*SMALL, *TEMPERATURES, "--iterations", "3", "--storage", "rx.nc", "--mixing-plot", "mix.png"],
                         cwd=folder)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return folder, result


def test_four_replicas_three_iterations_store_consistent_energies(three_iterations):
    folder, result = three_iterations
    assert "rank 0 of 1 (local rank 0 of 1): platform CPU, 1 CPU thread(s)" in result.stdout
    assert "storage rx.nc holds 3 iterations" in result.stdout
    assert_consistent(folder / "rx.nc", 3)


def test_mixing_plot_shows_a_permutation_of_replicas_per_iteration(three_iterations):
    folder, _ = three_iterations
    assert (folder / "mix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    replica_in_state, temperatures = read_mixing(folder / "rx.nc")
    assert replica_in_state.shape == (4, 4)
    assert np.allclose(temperatures, [300, 315, 330, 345])
    for row in replica_in_state:
        assert sorted(row) == [0, 1, 2, 3]
    assert list(replica_in_state[0]) == [0, 1, 2, 3]  # replica i starts in state i


def test_resume_continues_to_the_requested_total(three_iterations, tmp_path):
    folder, _ = three_iterations
    storage = tmp_path / "rx.nc"
    for name in ("rx.nc", "rx_checkpoint.nc"):  # leave the fixture's storage for the other tests
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    result = run_example([*SMALL, "--iterations", "5", "--storage", "rx.nc", "--resume"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "resuming rx.nc at iteration 3" in result.stdout
    resumed = assert_consistent(storage, 5)
    # The first three iterations are untouched: same energies as the original run.
    original, _ = reduced_energies(folder / "rx.nc", MODEL, water_topology(1.0))
    assert np.array_equal(original, resumed[:4])


def test_existing_storage_needs_resume_and_resume_needs_storage(three_iterations, tmp_path, monkeypatch, capsys):
    folder, _ = three_iterations
    example = load_example()
    monkeypatch.chdir(folder)
    assert example.main([*SMALL, "--iterations", "3", "--storage", "rx.nc"]) == 1
    assert "exists: pass --resume" in capsys.readouterr().err
    assert example.main([*SMALL, "--iterations", "3", "--storage", str(tmp_path / "none.nc"), "--resume"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert example.main([*SMALL, "--iterations", "2", "--storage", "rx.nc", "--resume"]) == 1
    assert "already holds 3 iterations, more than --iterations 2" in capsys.readouterr().err
    assert stored_iterations(folder / "rx.nc") == 3  # refused runs leave the storage as it was


def start_and_kill(folder, arguments: list[str], ready) -> str:
    """Starts the example in ``folder``, SIGKILLs it once ``ready(stdout, stderr)`` holds; returns its stderr."""
    out, err = folder / "stdout.txt", folder / "stderr.txt"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        process = subprocess.Popen(command(arguments), stdout=stdout, stderr=stderr, env=environment(), cwd=folder)
        deadline = time.monotonic() + 240
        while not ready(out.read_text(errors="replace"), err.read_text(errors="replace")):
            assert process.poll() is None and time.monotonic() < deadline, err.read_text()[-3000:]
            time.sleep(0.1)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    return err.read_text(errors="replace")


def iterations_done(stderr: str) -> int:
    """The progress bar's count of stored iterations (it advances after each is written)."""
    return max((int(c) for c in re.findall(r"(\d+)/40 \[", stderr)), default=0)


def test_killed_run_is_readable_and_resumes(tmp_path):
    """SIGKILL while the storage is created, then in the middle of a run: no half-made storage is left,
    MultiStateReporter reads the killed run's storage, and --resume finishes it."""
    arguments = [*SMALL, *TEMPERATURES, "--iterations", "40", "--storage", "rx.nc"]
    start_and_kill(tmp_path, arguments, lambda out, err: "waters (96 atoms)" in out)  # creating the storage
    assert not (tmp_path / "rx.nc").exists() and not (tmp_path / "rx_checkpoint.nc").exists()

    stderr = start_and_kill(tmp_path, arguments, lambda out, err: iterations_done(err) >= 2)
    killed_at = stored_iterations(tmp_path / "rx.nc")
    assert iterations_done(stderr) <= killed_at < 40
    total = killed_at + 1
    result = run_example([*SMALL, "--iterations", str(total), "--storage", "rx.nc", "--resume"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"resuming rx.nc at iteration {killed_at}" in result.stdout
    assert_consistent(tmp_path / "rx.nc", total)


def test_overflow_stops_the_run_naming_replica_and_state(tmp_path):
    model = overflowing_model(tmp_path / "overflowing.pt")
    result = run_example([*SMALL, *OVERFLOW_TEMPERATURES, "--iterations", "6", "--storage", "ov.nc", "--model", str(model),
                          "--check-every", "1"], cwd=tmp_path)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    errors = re.findall(r"replica_exchange\.py: error on rank 0: .*", result.stderr)
    assert len(errors) == 1, result.stderr[-3000:]
    assert re.search(r"propagating replica \d in " + re.escape(OVERFLOW_STATE) + r" at iteration \d: "
                     r"NNP overflow check failed: openmm-nnp \(call \d+\): ", errors[0]), errors[0]
    assert "Traceback" not in result.stderr  # a clear one-line error, not a crash
    assert stored_iterations(tmp_path / "ov.nc") >= 0  # the storage stays readable
