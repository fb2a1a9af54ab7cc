"""Runs a group of worker.py's crash-prone inputs in one subprocess (one torch + OpenMM start-up for
the whole group) and hands the tests one result per input.

The subprocess has a time limit (nothing may hang) and its exit status is checked: a signal (a
segfault, exit 139; an abort, exit 134) fails every test of the group and names the input that was
running. MALLOC_PERTURB_ makes glibc fill freed memory with a pattern, so that a use of freed memory
crashes at once instead of sometimes reading stale data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest

WORKER = Path(__file__).resolve().parent / "worker.py"
TIMEOUT_S = 300


def run_group(group: str, work: Path) -> Dict[str, dict]:
    env = dict(os.environ, OPENMM_CPU_THREADS="1", OMP_NUM_THREADS="1", MALLOC_PERTURB_="165", PYTHONWARNINGS="ignore")
    try:
        done = subprocess.run([sys.executable, str(WORKER), group, str(work)], capture_output=True, text=True,
                              timeout=TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"worker group {group!r} hung (more than {TIMEOUT_S} s); it was running: "
                    f"{(expired.stderr or b'')[-300:]!r}")
    started = [line[len("[worker] "):] for line in done.stderr.splitlines() if line.startswith("[worker] ")]
    if done.returncode != 0:
        pytest.fail(f"worker group {group!r} died with exit status {done.returncode} during the input "
                    f"{started[-1] if started else '(none started)'!r}:\n{done.stderr[-2000:]}")
    results = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            result = json.loads(line)
            results[result["case"]] = result
    return results


_results: Dict[str, Dict[str, dict]] = {}


@pytest.fixture
def worker_results(request, tmp_path_factory):
    """Results of the worker group named by the test module's GROUP (run once per session)."""
    group = request.module.GROUP
    if group not in _results:
        _results[group] = run_group(group, tmp_path_factory.mktemp(group))
    return _results[group]
