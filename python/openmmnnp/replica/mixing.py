"""How well the replicas mix: which replica held each temperature at each iteration, from the storage."""

from __future__ import annotations

import os
from typing import Union

import numpy as np
import openmm.unit as unit

from openmmnnp.atomic_write import atomic_path

PathLike = Union[str, os.PathLike]


def read_mixing(storage: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(replica_in_state [iterations + 1, states] int, temperatures [states] K) from a sampler's .nc file.

    ``replica_in_state[i, s]`` is the replica that held state ``s`` at iteration ``i`` (0: the start).
    """
    from openmmtools.multistate import MultiStateReporter

    reporter = MultiStateReporter(str(storage), open_mode="r")
    try:
        last = reporter.read_last_iteration(last_checkpoint=False)
        state_of_replica = np.asarray(reporter.read_replica_thermodynamic_states(slice(0, last + 1)), dtype=int)
        states, _ = reporter.read_thermodynamic_states()
        temperatures = np.array([s.temperature.value_in_unit(unit.kelvin) for s in states])
    finally:
        reporter.close()
    replica_in_state = np.argsort(state_of_replica, axis=1)  # a permutation: invert it
    return replica_in_state, temperatures


def plot_mixing(storage: PathLike, png: PathLike) -> None:
    """Writes (atomically) one panel per temperature: the replica in it against the iteration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    replica_in_state, temperatures = read_mixing(storage)
    iterations = np.arange(replica_in_state.shape[0])
    n_states = len(temperatures)
    fig, axes = plt.subplots(n_states, 1, sharex=True, figsize=(6.0, 0.9 + 0.75 * n_states), squeeze=False)
    for state, ax in zip(range(n_states - 1, -1, -1), axes[:, 0]):  # hottest on top
        ax.step(iterations, replica_in_state[:, state], where="post", lw=1.2)
        ax.set_ylim(-0.5, n_states - 0.5)
        ax.set_yticks(range(n_states))
        ax.set_ylabel(f"{temperatures[state]:.0f} K", rotation=0, ha="right", va="center")
        ax.grid(axis="y", lw=0.3)
    axes[-1, 0].set_xlabel("iteration")
    axes[0, 0].set_title("replica index at each temperature")
    fig.tight_layout()
    with atomic_path(png) as temporary:
        fig.savefig(temporary, dpi=110)
    plt.close(fig)
