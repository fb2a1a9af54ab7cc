"""Helpers shared by the water examples: NNP system from the teacher box, O-O RDF, plots."""

from __future__ import annotations

import copy
from typing import Optional, Tuple

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit

from openmmnnp import NNPForce
from openmmnnp.atomic_write import atomic_path


def best_platform(name: Optional[str] = None) -> openmm.Platform:
    """The named platform, else the fastest available of CUDA, CPU, Reference."""
    if name:
        return openmm.Platform.getPlatformByName(name)
    available = {openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())}
    for candidate in ("CUDA", "CPU", "Reference"):
        if candidate in available:
            return openmm.Platform.getPlatformByName(candidate)
    raise RuntimeError("no OpenMM platform available")


def nnp_system(system: openmm.System, topology: app.Topology, model, properties: Optional[dict] = None) -> openmm.System:
    """A copy of ``system`` with its classical forces replaced by the NNP (masses and box kept).

    ``properties`` go to openmm-torch, e.g. {"useCUDAGraphs": "true"}.
    """
    nnp = copy.deepcopy(system)
    for index in reversed(range(nnp.getNumForces())):
        if not isinstance(nnp.getForce(index), openmm.CMMotionRemover):
            nnp.removeForce(index)
    # periodic=True: with its classical forces gone the System no longer reports periodicity.
    nnp.addForce(NNPForce(model, topology, system=nnp, periodic=True, properties=properties))
    return nnp


def oxygen_rdf(frames: np.ndarray, boxes: np.ndarray, oxygen: np.ndarray, r_max: float,
               bins: int = 100) -> Tuple[np.ndarray, np.ndarray]:
    """O-O g(r) of frames [F, N, 3] nm in cubic/orthorhombic boxes [F, 3, 3] nm -> (r [bins] nm, g [bins])."""
    edges = np.linspace(0.0, r_max, bins + 1)
    counts = np.zeros(bins)
    density_sum = 0.0
    n = len(oxygen)
    for positions, box in zip(frames, boxes):
        lengths = np.diag(box)
        o = positions[oxygen]
        d = o[None, :, :] - o[:, None, :]
        d -= lengths * np.round(d / lengths)
        r = np.linalg.norm(d, axis=-1)[np.triu_indices(n, 1)]
        counts += np.histogram(r, edges)[0]
        density_sum += n / np.prod(lengths)
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    density = density_sum / len(frames)
    g = 2.0 * counts / (len(frames) * n * density * shell)
    return 0.5 * (edges[1:] + edges[:-1]), g


def first_peak(r: np.ndarray, g: np.ndarray) -> Tuple[float, float]:
    """(position nm, height) of the first maximum of g(r)."""
    k = int(np.argmax(g))
    return float(r[k]), float(g[k])


def plot_rdfs(path: str, curves: dict, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label, (r, g) in curves.items():
        ax.plot(10 * r, g, label=label)
    ax.axhline(1.0, color="grey", lw=0.5)
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("g_OO(r)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as temporary:  # a failed run keeps the previous plot
        fig.savefig(temporary, dpi=120)
    plt.close(fig)


class PositionSampler:
    """An OpenMM reporter that keeps positions and box every ``interval`` steps after ``start``."""

    def __init__(self, interval: int, start: int = 0) -> None:
        self.interval, self.start = interval, start
        self.positions: list = []
        self.boxes: list = []

    def describeNextReport(self, simulation):
        steps = self.interval - simulation.currentStep % self.interval
        return {"steps": steps, "periodic": True, "include": ["positions"]}

    def report(self, simulation, state):
        if simulation.currentStep > self.start:
            self.positions.append(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
            self.boxes.append(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer))
