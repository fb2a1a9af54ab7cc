"""Structure of MD frames: radial distribution functions, their peaks, closest contacts.

Frames are positions [F, N, 3] nm in orthorhombic periodic boxes [F, 3, 3] nm (minimum image);
``molecule`` [N] gives each atom's molecule, and pairs within one molecule are left out of the
RDFs and contact searches (g_OH and g_HH of water are intermolecular by convention).
"""

from __future__ import annotations

from typing import Tuple

import numpy as np


def _minimum_image(vectors: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    return vectors - lengths * np.round(vectors / lengths)


def radial_distribution(frames: np.ndarray, boxes: np.ndarray, first: np.ndarray, second: np.ndarray,
                        molecule: np.ndarray, r_max: float, bins: int = 100) -> Tuple[np.ndarray, np.ndarray]:
    """g(r) between atoms ``first`` and ``second`` (index arrays) of different molecules, up to ``r_max`` nm.

    Returns (bin centres [bins] nm, g [bins]), normalised by the ideal-gas count of pairs of different
    molecules at the frames' mean density.
    """
    if len(frames) == 0:
        raise ValueError("radial_distribution: no frames")
    edges = np.linspace(0.0, r_max, bins + 1)
    counts = np.zeros(bins)
    different = molecule[first][:, None] != molecule[second][None, :]  # [A, B]
    ideal_pairs = 0.0
    for positions, box in zip(frames, boxes):
        lengths = np.diag(box)
        d = _minimum_image(positions[second][None, :, :] - positions[first][:, None, :], lengths)
        r = np.linalg.norm(d, axis=-1)[different]
        counts += np.histogram(r, edges)[0]
        ideal_pairs += different.sum() / np.prod(lengths)  # pairs per volume
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    g = counts / (ideal_pairs * shell)
    return 0.5 * (edges[1:] + edges[:-1]), g


def first_peak(r: np.ndarray, g: np.ndarray) -> Tuple[float, float]:
    """(position, height) of the highest maximum of g(r): the first shell of a liquid."""
    k = int(np.argmax(g))
    return float(r[k]), float(g[k])


def first_minimum(r: np.ndarray, g: np.ndarray) -> Tuple[float, float]:
    """(position, height) of the lowest g between the first peak and 1.6 times its distance."""
    peak = int(np.argmax(g))
    window = np.nonzero((np.arange(len(r)) > peak) & (r < 1.6 * r[peak]))[0]
    if len(window) == 0:
        raise ValueError("first_minimum: no bins after the first peak")
    k = int(window[np.argmin(g[window])])
    return float(r[k]), float(g[k])


def closest_contact(frames: np.ndarray, boxes: np.ndarray, molecule: np.ndarray) -> Tuple[float, int, int, int]:
    """(distance nm, frame, atom i, atom j) of the closest pair of atoms of different molecules over the frames."""
    best = (np.inf, -1, -1, -1)
    different = molecule[:, None] != molecule[None, :]
    for k, (positions, box) in enumerate(zip(frames, boxes)):
        d = np.linalg.norm(_minimum_image(positions[None, :, :] - positions[:, None, :], np.diag(box)), axis=-1)
        d = np.where(different, d, np.inf)
        flat = int(np.argmin(d))
        if d.flat[flat] < best[0]:
            best = (float(d.flat[flat]), k, flat // d.shape[1], flat % d.shape[1])
    return best
