"""DeePMD's learning-rate and loss-prefactor schedules."""

from __future__ import annotations

import math


def learning_rate(step: int, total_steps: int, start_lr: float, stop_lr: float) -> float:
    """Exponential decay from start_lr at step 0 to stop_lr at total_steps (smooth, not stepped)."""
    fraction = min(step / max(total_steps, 1), 1.0)
    return start_lr * math.exp(fraction * math.log(stop_lr / start_lr))


def prefactor(lr: float, start_lr: float, start_pref: float, limit_pref: float) -> float:
    """pref = limit + (start - limit) * lr / start_lr: forces dominate early, energies late."""
    return limit_pref + (start_pref - limit_pref) * lr / start_lr
