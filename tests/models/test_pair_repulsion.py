"""The short-range prior: ZBL values, its switch, forces, its window from the data, and that it is zero on data."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from openmmnnp.models import SeE2A
from openmmnnp.models.pair_repulsion import PairRepulsion
from openmmnnp.training.statistics import frame_neighbors, set_distance_statistics, shortest_pairs

WINDOW = torch.tensor([[2.35, 0.85], [0.85, 1.3]], dtype=torch.float64)  # O-O, O-H, H-H (angstrom)


def zbl_oracle(r: float, z1: int, z2: int) -> float:
    """Ziegler-Biersack-Littmark universal screened Coulomb repulsion (eV, r in angstrom), from its definition."""
    a = 0.8854 * 0.529177 / (z1**0.23 + z2**0.23)
    x = r / a
    phi = 0.1818 * np.exp(-3.2 * x) + 0.5099 * np.exp(-0.9423 * x) + 0.2802 * np.exp(-0.4029 * x) + 0.02817 * np.exp(-0.2016 * x)
    return 14.399645 * z1 * z2 / r * phi


@pytest.fixture
def prior():
    p = PairRepulsion(["O", "H"]).double()
    p.set_window(0.75 * WINDOW, WINDOW)
    return p


@pytest.mark.parametrize("a,b", [(0, 0), (0, 1), (1, 1)])
def test_full_zbl_inside_the_window_zero_from_its_edge_and_monotonic(prior, a, b):
    z = {0: 8, 1: 1}
    outer = float(WINDOW[a, b])
    inner = 0.75 * outer
    r = torch.linspace(0.3, outer + 1.0, 400, dtype=torch.float64)
    energy = prior.pair_energy(r, torch.full_like(r, a, dtype=torch.long), torch.full_like(r, b, dtype=torch.long)).numpy()
    inside = r.numpy() <= inner
    expected = np.array([zbl_oracle(x, z[a], z[b]) for x in r.numpy()[inside]])
    assert np.allclose(energy[inside], expected, rtol=1e-3)  # the oracle uses the 4-digit constants of the ZBL paper
    assert np.all(energy[r.numpy() >= outer] == 0.0)
    assert np.all(np.diff(energy) <= 0.0)  # falls with r everywhere: a pair only ever gets pushed apart


def test_forces_are_minus_the_gradient_and_pairs_count_once(prior):
    torch.manual_seed(1)
    positions = torch.tensor([[0.0, 0.0, 0.0], [0.7, 0.1, 0.0], [0.1, 1.1, 0.2], [2.0, 0.1, -0.1]], dtype=torch.float64)
    types = torch.tensor([0, 1, 1, 0])
    full = torch.tensor([[i, j] for i, j in itertools.permutations(range(4), 2)]).T
    shifts = torch.zeros(full.shape[1], 3, dtype=torch.int16)
    energy = lambda p: prior.atomic_energies(p, None, types, full, shifts).sum()  # noqa: E731
    x = positions.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(energy(x), x)
    numeric = torch.zeros_like(positions)
    for i, k in itertools.product(range(4), range(3)):
        step = torch.zeros_like(positions)
        step[i, k] = 1e-6
        numeric[i, k] = (energy(positions + step) - energy(positions - step)) / 2e-6
    assert torch.allclose(grad, numeric, rtol=1e-6, atol=1e-8)
    pair_sum = sum(float(prior.pair_energy(torch.linalg.norm(positions[j] - positions[i]).reshape(1), types[i:i + 1], types[j:j + 1]))
                   for i, j in itertools.combinations(range(4), 2))
    assert float(energy(positions)) == pytest.approx(pair_sum, rel=1e-12)


def test_window_is_the_data_shortest_pairs_and_the_prior_is_zero_on_the_data(water):
    positions, box, types, _ = water
    model = SeE2A(["O", "H"]).double()
    pairs, shifts = frame_neighbors(model, list(positions), list(box))
    set_distance_statistics(model, list(positions), list(box), pairs, shifts, types)
    brute = np.full((2, 2), np.inf)
    for pos, b in zip(positions.numpy(), box.numpy()):
        d = pos[None] - pos[:, None]
        d -= np.diag(b) * np.round(d / np.diag(b))
        r = np.linalg.norm(d, axis=-1) + np.diag(np.full(len(pos), np.inf))
        for a, c in itertools.product(range(2), range(2)):
            brute[a, c] = min(brute[a, c], r[np.ix_(types.numpy() == a, types.numpy() == c)].min())
    assert np.allclose(model.repulsion.outer.numpy(), brute, atol=1e-9)
    assert np.allclose(model.repulsion.inner.numpy(), 0.75 * brute, atol=1e-9)
    assert float(model.min_neighbor_distance) == pytest.approx(brute.min())
    assert torch.equal(shortest_pairs(list(positions), list(box), pairs, shifts, types, 2), model.repulsion.outer)
    for pos, b, pair, shift in zip(positions, box, pairs, shifts):
        assert float(model.repulsion.atomic_energies(pos, b, types, pair, shift).abs().sum()) == 0.0


def test_models_without_a_window_have_no_prior():
    prior = PairRepulsion(["O", "H"])
    assert not prior.active
    with pytest.raises(ValueError, match="symmetric non-negative"):
        prior.set_window(torch.zeros(2, 2, dtype=torch.float64), torch.tensor([[1.0, 0.5], [0.4, 1.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="inner < outer"):
        prior.set_window(torch.ones(2, 2, dtype=torch.float64), torch.ones(2, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="unknown element symbol 'Xx'"):
        PairRepulsion(["Xx"])
