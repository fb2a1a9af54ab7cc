"""No low-energy holes at short range: pushing two water molecules together only raises the energy.

From real liquid configurations (tests/data/water_frames.npz) we take hydrogen-bonded pairs of
molecules as isolated dimers and translate the donor molecule rigidly towards the acceptor:
- along the acceptor-O ... donor-H line, from an intermolecular O-H distance of 1.6 A to 0.6 A;
- along the O-O line, from an O-O distance of 2.4 A to 0.6 A, with each molecule's hydrogens
  reflected to the side facing away from the other molecule, so that every intermolecular distance
  shrinks as the molecules approach (in the hydrogen-bonded geometry the donor's H sits on the O-O
  line and passes through the acceptor's O near O-O = 1 A, after which the energy rightly falls).
Every step of 0.01 A inward must raise the model's energy (float32 models: by more than
-1e-5 eV, their rounding). Intramolecular geometry stays that of the liquid. Run for every
shipped water model, for a model compressed now from the shipped se_e2_a, and after a
save/load round trip (the prior must survive both).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

import openmmnnp
from openmmnnp.compression.compress import compress
from openmmnnp.data import load_frames
from openmmnnp.pretrained import available_models

FRAMES = Path(__file__).resolve().parents[1] / "data" / "water_frames.npz"
WATER_MODELS = [name for name in available_models() if name.startswith("water-")]
STEP = 0.01  # angstrom
ROUNDING = 1e-5  # eV: float32 energies of a dimer (|E| ~ 1 eV) differ by this much from rounding alone


def hydrogen_bonded_dimers(count: int) -> list[tuple[np.ndarray, int]]:
    """(positions [6, 3] angstrom: acceptor O, H, H then donor O, H, H; index of the donating H) of the
    ``count`` shortest intermolecular O...H contacts, taken from different frames and molecules."""
    frames = load_frames(FRAMES)
    dimers = []
    for k in range(len(frames)):
        positions = frames.positions[k].astype(np.float64) * 10.0
        edge = np.diag(frames.box[k]).astype(np.float64) * 10.0
        oxygens = np.nonzero(frames.types == 0)[0]  # each followed by its two hydrogens
        best = None
        for a in oxygens:
            for b in oxygens:
                if a == b:
                    continue
                for h in (b + 1, b + 2):
                    d = positions[h] - positions[a]
                    d -= edge * np.round(d / edge)
                    if best is None or np.linalg.norm(d) < best[0]:
                        best = (np.linalg.norm(d), a, b, h)
        _, a, b, h = best
        atoms = positions[[a, a + 1, a + 2, b, b + 1, b + 2]]
        # Everything as the image nearest the acceptor O (a dimer spans a few angstrom, the box 13).
        dimers.append((atoms[0] + _minimum_image(atoms - atoms[0], edge), 3 + (h - b)))
    return dimers[:count]


def _minimum_image(vectors: np.ndarray, edge: np.ndarray) -> np.ndarray:
    return vectors - edge * np.round(vectors / edge)


def push_energies(model: torch.nn.Module, dimer: np.ndarray, moving: int, start: float, stop: float) -> np.ndarray:
    """Energies (eV) as the donor molecule is translated rigidly so that |r_moving - r_O(acceptor)| goes
    from ``start`` to ``stop`` angstrom in steps of STEP."""
    direction = dimer[moving] - dimer[0]
    direction /= np.linalg.norm(direction)
    types = torch.tensor([0, 1, 1, 0, 1, 1])
    dtype = next(t.dtype for t in model.parameters())
    energies = []
    for distance in np.arange(start, stop - 1e-9, -STEP):
        positions = dimer.copy()
        positions[3:] += (distance - np.dot(dimer[moving] - dimer[0], direction)) * direction
        with torch.no_grad():
            energies.append(float(model(torch.from_numpy(positions).to(dtype), None, types)))
    return np.array(energies)


def hydrogens_turned_away(dimer: np.ndarray) -> np.ndarray:
    """The dimer with each H reflected through the plane through its own O perpendicular to the O-O axis,
    where it pointed towards the other molecule (the reflection keeps bond lengths and the H-O-H angle)."""
    axis = dimer[3] - dimer[0]
    axis /= np.linalg.norm(axis)  # from the acceptor O to the donor O
    turned = dimer.copy()
    for oxygen, hydrogens, away in ((0, (1, 2), -axis), (3, (4, 5), axis)):
        for h in hydrogens:
            along = np.dot(turned[h] - turned[oxygen], away)
            if along < 0:
                turned[h] -= 2 * along * away
    return turned


def load(name: str) -> torch.jit.ScriptModule:
    return torch.jit.load(str(openmmnnp.pretrained_path(name)))


def round_trip(model: torch.nn.Module) -> torch.jit.ScriptModule:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(model), buffer)
    buffer.seek(0)
    return torch.jit.load(buffer)


MODELS = {name: (lambda name=name: load(name)) for name in WATER_MODELS}
MODELS["water-se_e2_a compressed now"] = lambda: torch.jit.script(compress(load("water-se_e2_a")))
MODELS["water-se_e2_a-compressed round trip"] = lambda: round_trip(load("water-se_e2_a-compressed"))
MODELS["water-se3 round trip"] = lambda: round_trip(load("water-se3"))


@pytest.fixture(scope="module")
def dimers():
    return hydrogen_bonded_dimers(3)


# Issue 15: the se_e2_a water model is not yet smooth here (its energy falls by 5 meV at O-H 1.55 A
# and by 11 meV at O-O 2.25 A, where the network, not the prior, decides); strict, so a fix shows.
SE_E2_A_NOT_MONOTONIC = pytest.mark.xfail(strict=True, reason="issue 15: se_e2_a water model's energy is not monotonic")
NAMES = [pytest.param(name, marks=SE_E2_A_NOT_MONOTONIC) if "se_e2_a" in name else name for name in sorted(MODELS)]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("pair", ["O-H", "O-O"])
def test_pushing_molecules_together_raises_the_energy(name, pair, dimers):
    model = MODELS[name]()
    for dimer, hydrogen in dimers:
        moving, start = (hydrogen, 1.6) if pair == "O-H" else (3, 2.4)
        if pair == "O-O":
            dimer = hydrogens_turned_away(dimer)
        energies = push_energies(model, dimer, moving, start, 0.6)
        rises = np.diff(energies)  # inward steps
        worst = int(np.argmin(rises))
        assert rises[worst] > -ROUNDING, (
            f"{name}: pushing {pair} from {start} A inward, the energy falls by {-rises[worst]:.4g} eV between "
            f"{start - worst * STEP:.2f} and {start - (worst + 1) * STEP:.2f} A")
        assert energies[-1] - energies[0] > 1.0, f"{name}: {pair} at 0.6 A only {energies[-1] - energies[0]:.3g} eV above {start} A"
