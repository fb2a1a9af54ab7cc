"""Runs examples/replica_exchange.py as a user would: one process, or under the environment's mpiexec."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Optional

import torch

import openmmnnp
from openmmnnp.compression import compress

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "replica_exchange.py"
# A small system and short iterations: 32 waters (96 atoms), 20 steps of 0.5 fs, one thread per rank.
SMALL = ["--box-edge", "1.0", "--steps-per-iteration", "20", "--threads", "1"]
MPI_EXTRA_MISSING = "the mpi extra is not installed (pip install 'openmm-nnp[mpi]': mpi4py and the mpich wheel)"
# An overflow test must end by itself well within this; a hang is killed and fails the test.
HANG_LIMIT_S = 300


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def environment() -> dict[str, str]:
    """One thread per process for OpenMM, OpenMP and torch, whatever the machine."""
    return {**os.environ, "OPENMM_CPU_THREADS": "1", "OMP_NUM_THREADS": "1"}


def mpiexec() -> Optional[str]:
    """The mpiexec of this environment (the mpich wheel puts it next to python), else one on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.is_file() else shutil.which("mpiexec")


def command(args: list[str], ranks: int = 1) -> list[str]:
    line = [sys.executable, str(EXAMPLE), *args]
    if ranks == 1:
        return line
    launcher = mpiexec()
    assert launcher is not None, MPI_EXTRA_MISSING
    return [launcher, "-n", str(ranks), *line]


def run_example(args: list[str], ranks: int = 1, timeout: float = HANG_LIMIT_S, cwd: Optional[Path] = None) -> Result:
    """Runs to the end, or kills the whole process group (mpiexec and its ranks) after ``timeout`` s."""
    start = time.monotonic()
    process = subprocess.Popen(command(args, ranks), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=environment(), cwd=cwd, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(f"the run hung: killed after {timeout} s\n{stdout[-3000:]}\n{stderr[-3000:]}") from None
    return Result(process.returncode, stdout, stderr, time.monotonic() - start)


def load_example() -> ModuleType:
    """The example as a module, to call its main() in this process."""
    spec = importlib.util.spec_from_file_location("replica_exchange_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def overflowing_model(path: Path) -> Path:
    """The shipped se_e2_a compressed with a short extrapolated table (-e 2) that checks every call (-f 1).

    Water near room temperature stays inside it; a replica at 100000 K drives atoms closer than
    the table reaches (about 0.4 Å) within a few steps, and the model's check raises. A coarse
    first table (-s 0.1) keeps the file, and so the System the sampler stores, small.
    """
    original = torch.jit.load(str(openmmnnp.pretrained_path("water-se_e2_a")))
    torch.jit.script(compress(original, stride=0.1, extrapolate=2.0, check_frequency=1)).save(str(path))
    return path


OVERFLOW_TEMPERATURES = ["--temperatures", "300", "310", "320", "100000"]  # state 3 overflows
OVERFLOW_STATE = "state 3 (100000 K)"
