"""SE3Attention: harmonics and couplings, fused == low-memory == torch == reference, E(3)
invariance, exact forces, smoothness at the cutoff, TorchScript round trip, capacity errors."""

import io

import pytest
import torch

from models.test_se_e2_a import (assert_forces_are_minus_finite_difference_gradient, cluster, energy_and_forces,
                                  random_rotation)
from openmmnnp.models import SE3Attention
from openmmnnp.models.clebsch_gordan import coupling, parity_paths, wigner_d
from openmmnnp.models.spherical_harmonics import degree_slice, spherical_harmonics
from openmmnnp.training.statistics import set_energy_bias


def make_se3(water, lmax: int = 2, channels: int = 8, rcut: float = 4.0, seed: int = 7, **kwargs) -> SE3Attention:
    """A float64 model with random weights and the energy bias of the water frames."""
    _, _, types, energy = water
    torch.manual_seed(seed)
    model = SE3Attention(["O", "H"], rcut=rcut, lmax=lmax, channels=channels, **kwargs).double()
    set_energy_bias(model, types, energy)
    return model


def unit_vectors(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=torch.float64), dim=1)


def test_harmonics_are_normalised_and_rotate_by_orthogonal_wigner_matrices():
    u = unit_vectors(50, 1)
    y = spherical_harmonics(u, 3)
    rotation = random_rotation(11)
    y_rot = spherical_harmonics(u @ rotation.T, 3)
    for l in range(4):
        block = y[:, degree_slice(l)]
        torch.testing.assert_close((block ** 2).sum(1), torch.full((50,), 2.0 * l + 1, dtype=torch.float64))
        d = wigner_d(l, rotation)
        torch.testing.assert_close(d @ d.T, torch.eye(2 * l + 1, dtype=torch.float64), rtol=0, atol=1e-12)
        torch.testing.assert_close(y_rot[:, degree_slice(l)], block @ d.T, rtol=0, atol=1e-12)


def test_couplings_are_rotation_invariant_and_nonzero():
    rotation = random_rotation(5)
    paths = parity_paths(3)
    assert (1, 1, 1) not in paths and (1, 1, 2) in paths and (3, 3, 0) in paths
    for a, f, b in paths:
        c = coupling(a, f, b)
        d = [wigner_d(l, rotation) for l in (a, f, b)]
        torch.testing.assert_close(torch.einsum("abc,ia,jb,kc->ijk", c, *d), c, rtol=0, atol=1e-12)
        assert float(c.abs().max()) > 0.05
    with pytest.raises(ValueError):
        coupling(1, 1, 1)


@pytest.mark.parametrize("lmax", [0, 1, 2, 3])
@pytest.mark.parametrize("implementation", ["fused", "low_memory", "torch"])
def test_implementations_equal_reference(water, lmax, implementation):
    positions, box, types, _ = water
    model = make_se3(water, lmax=lmax).eval()
    model.implementation = "reference"
    energy_ref, forces_ref = energy_and_forces(model, positions[2], box[2], types)
    model.implementation = implementation
    energy, forces = energy_and_forces(model, positions[2], box[2], types)
    assert float(energy) == pytest.approx(float(energy_ref), rel=1e-13, abs=1e-11)
    torch.testing.assert_close(forces, forces_ref, rtol=1e-11, atol=1e-12)
    assert float(forces.abs().max()) > 1e-3


def test_fused_is_the_default_and_bad_implementations_raise(water):
    positions, box, types, _ = water
    model = make_se3(water, lmax=1)
    assert model.implementation == "fused"
    model.implementation = "low_memory"  # still in training mode: the radial MLP would get no gradients
    with pytest.raises(RuntimeError, match="low_memory implementation is for inference"):
        model(positions[0], box[0], types)
    model.implementation = "fast"
    with pytest.raises(ValueError, match="implementation must be one of"):
        model(positions[0], box[0], types)


def test_force_loss_trains_with_torch_and_refuses_double_backward_in_the_kernels(water):
    """Training differentiates the forces (create_graph): the torch implementation does; the fused
    kernels give first derivatives only and say so instead of returning wrong second derivatives."""
    positions, box, types, _ = water
    model = make_se3(water, lmax=1)
    pos = positions[0].clone().requires_grad_(True)
    model.implementation = "torch"
    (grad,) = torch.autograd.grad(model(pos, box[0], types), pos, create_graph=True)
    grad.pow(2).sum().backward()
    assert float(model.layers[0].radial.layers[0].weight.grad.abs().sum()) > 0
    model.implementation = "fused"
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(model(pos, box[0], types), pos, create_graph=True)


@pytest.mark.parametrize("lmax", [1, 3])
def test_energy_invariant_and_forces_rotate(water, lmax):
    pos, types = cluster(water)
    model = make_se3(water, lmax=lmax, rcut=5.0)
    energy, forces = energy_and_forces(model, pos, None, types)
    for seed in (3, 4):
        rotation = random_rotation(seed)
        moved = pos @ rotation.T + torch.tensor([3.0, -7.5, 11.0], dtype=torch.float64)
        energy2, forces2 = energy_and_forces(model, moved, None, types)
        assert float(energy2) == pytest.approx(float(energy), rel=1e-12, abs=1e-11)
        torch.testing.assert_close(forces2, forces @ rotation.T, rtol=1e-9, atol=1e-10)
    inverted = -pos  # even-parity paths: the energy is E(3) invariant
    assert float(energy_and_forces(model, inverted, None, types)[0]) == pytest.approx(float(energy), rel=1e-12)
    assert float(forces.abs().max()) > 1e-3


def test_forces_are_minus_finite_difference_gradient(water):
    assert_forces_are_minus_finite_difference_gradient(make_se3(water, lmax=2), water, atol=1e-8)


def test_smooth_at_cutoff(water):
    """A trimer whose third atom leaves atom 0's cutoff (it is beyond rcut of atom 1 throughout):
    the energy goes continuously to its value without that edge, the force on the leaving atom
    vanishes, and finite differences agree just inside rcut."""
    model = make_se3(water, lmax=2, rcut=4.0)
    types = torch.tensor([0, 1, 1])
    base = torch.tensor([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)

    def at(distance: float):
        pos = base.clone()
        pos[2] = torch.tensor([0.0, distance, 0.0], dtype=torch.float64)
        return pos

    far_energy, far_forces = energy_and_forces(model, at(4.5), None, types)
    assert float(far_forces[2].abs().max()) == 0.0
    previous = None
    for d in (3.9, 3.95, 3.99, 3.999):
        energy, forces = energy_and_forces(model, at(d), None, types)
        gap = abs(float(energy) - float(far_energy))
        if previous is not None:
            assert gap < previous  # approaches the far value monotonically in this range
        previous = gap
    assert previous < 1e-8
    pos = at(3.98)
    _, forces = energy_and_forces(model, pos, None, types)
    # Central difference with h = 1e-4: its rounding error (eps |E| / h ~ 1e-12 for |E| ~ 0.4 eV) and its
    # truncation error (h^2 F'' / 6 ~ 1e-12) both stay below the force tolerance; h = 1e-6 made the rounding
    # error (~4e-11) larger than the 1e-11 tolerance for this force of ~1e-6.
    h = 1e-4
    plus, minus = pos.clone(), pos.clone()
    plus[2, 1] += h
    minus[2, 1] -= h
    fd = -(model(plus, None, types) - model(minus, None, types)) / (2 * h)
    assert float(forces[2, 1]) == pytest.approx(float(fd), rel=1e-5, abs=1e-11)


def test_torchscript_round_trip(water):
    positions, box, types, _ = water
    model = make_se3(water, lmax=2)
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(model), buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    assert list(loaded.type_map) == ["O", "H"] and loaded.length_unit == "angstrom" and loaded.energy_unit == "eV"
    energy, forces = energy_and_forces(model, positions[0], box[0], types)
    energy2, forces2 = energy_and_forces(loaded, positions[0], box[0], types)
    assert float(energy2) == float(energy)
    # The scripted graph may order float64 reductions differently: equal to rounding, not bitwise.
    torch.testing.assert_close(forces2, forces, rtol=1e-12, atol=0)
    loaded.implementation = "reference"
    torch.testing.assert_close(energy_and_forces(loaded, positions[0], box[0], types)[1], forces, rtol=1e-11, atol=1e-12)


def test_capacity_and_argument_errors(water):
    positions, box, types, _ = water
    model = make_se3(water, max_neighbors=4)
    with pytest.raises(RuntimeError, match="max_neighbors"):
        model(positions[0], box[0], types)
    with pytest.raises(ValueError, match="lmax"):
        SE3Attention(["O", "H"], lmax=4)
    with pytest.raises(ValueError, match="divisible"):
        SE3Attention(["O", "H"], channels=9, heads=2)


def test_frozen_script_gives_finite_forces(water):
    """TorchForce freezes the module; freezing drops .detach(), which once made every force NaN."""
    positions, box, types, _ = water
    model = make_se3(water, lmax=2)
    frozen = torch.jit.freeze(torch.jit.script(model).eval())
    energy, forces = energy_and_forces(model, positions[0], box[0], types)
    energy2, forces2 = energy_and_forces(frozen, positions[0], box[0], types)
    assert float(energy2) == pytest.approx(float(energy), rel=1e-12)
    assert bool(torch.isfinite(forces2).all())
    torch.testing.assert_close(forces2, forces, rtol=1e-10, atol=1e-12)
