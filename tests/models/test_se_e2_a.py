"""se_e2_a: forces, invariances, periodic images, smoothness, TorchScript, sel overflow."""

import pytest
import torch

from openmmnnp import checks


def energy_and_forces(model, positions, box, types):
    positions = positions.clone().requires_grad_(True)
    energy = model(positions, box, types)
    (grad,) = torch.autograd.grad(energy, positions)
    return energy.detach(), -grad


def random_rotation(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    return q if torch.det(q) > 0 else -q


def cluster(water, frame: int = 0, molecules: int = 12):
    """A non-periodic cluster: the first molecules of a frame, made whole around their oxygen."""
    positions, box, types, _ = water
    pos = positions[frame, : 3 * molecules].clone()
    b = box[frame]
    for m in range(molecules):
        for h in (1, 2):
            d = pos[3 * m + h] - pos[3 * m]
            pos[3 * m + h] = pos[3 * m] + d - torch.round(d / torch.diagonal(b)) * torch.diagonal(b)
    return pos, types[: 3 * molecules]


def test_forces_are_minus_finite_difference_gradient(model, water):
    assert_forces_are_minus_finite_difference_gradient(model, water, atol=1e-7)


def assert_forces_are_minus_finite_difference_gradient(model, water, atol: float) -> None:
    """Autograd forces of six atoms of a water frame against central differences (shared by the models)."""
    positions, box, types, _ = water
    pos, b = positions[1], box[1]
    _, forces = energy_and_forces(model, pos, b, types)
    h = 1e-5
    for atom in (0, 1, 2, 50, 101, 194):
        for axis in range(3):
            plus, minus = pos.clone(), pos.clone()
            plus[atom, axis] += h
            minus[atom, axis] -= h
            fd = -(model(plus, b, types) - model(minus, b, types)) / (2 * h)
            assert float(forces[atom, axis]) == pytest.approx(float(fd), rel=1e-6, abs=atol)
    assert float(forces.abs().max()) > 1e-3  # the test would be empty with zero forces


def test_energy_invariant_under_rotation_and_translation(model, water):
    pos, types = cluster(water)
    energy, forces = energy_and_forces(model, pos, None, types)
    rotation = random_rotation(3)
    moved = pos @ rotation.T + torch.tensor([3.0, -7.5, 11.0], dtype=torch.float64)
    energy2, forces2 = energy_and_forces(model, moved, None, types)
    assert float(energy2) == pytest.approx(float(energy), rel=1e-12, abs=1e-10)
    torch.testing.assert_close(forces2, forces @ rotation.T, rtol=1e-9, atol=1e-10)


def test_periodic_translation_and_permutation_of_same_type_atoms(model, water):
    positions, box, types, _ = water
    pos, b = positions[2], box[2]
    energy, forces = energy_and_forces(model, pos, b, types)
    shifted = pos + torch.tensor([4.1, -2.3, 9.7], dtype=torch.float64)
    shifted = shifted - torch.floor(shifted / torch.diagonal(b)) * torch.diagonal(b)  # wrap into the box
    assert float(model(shifted, b, types)) == pytest.approx(float(energy), rel=1e-12)
    order = torch.arange(pos.shape[0])
    order[[0, 3, 1, 5]] = order[[3, 0, 5, 1]]  # swap two oxygens and two hydrogens of different molecules
    energy_p, forces_p = energy_and_forces(model, pos[order], b, types[order])
    assert float(energy_p) == pytest.approx(float(energy), rel=1e-12)
    torch.testing.assert_close(forces_p, forces[order], rtol=1e-9, atol=1e-10)
    # Swapping an oxygen with a hydrogen (types fixed) is a different configuration.
    order[[0, 1]] = order[[1, 0]]
    assert abs(float(model(pos[order], b, types)) - float(energy)) > 1e-4


def test_cpu_fitting_batches_and_masked_fitting_agree(model, water):
    """The CPU fit (atoms grouped by type, batches of fit_batch) equals the masked all-atoms form
    used on other devices, whatever the batch size and the order of the atoms."""
    positions, box, types, _ = water
    pos, b = positions[1], box[1]
    pairs, shifts, num = model.neighbors(pos, b)
    t = model.contracted_environment(pos, b, types, pairs, shifts, num)
    masked = model.energy_bias.index_select(0, types).to(t.dtype)
    d = model.descriptor(t)
    for k, net in enumerate(model.fittings):
        masked = masked + net(model.fitting_input(d, k)).squeeze(1) * (types == k).to(t.dtype)
    for batch in (1024, 7, 1):
        model.fit_batch = batch
        torch.testing.assert_close(model.fit(t, types), masked, rtol=1e-12, atol=1e-12)
    mixed = torch.randperm(types.shape[0], generator=torch.Generator().manual_seed(3))
    model.fit_batch = 5
    torch.testing.assert_close(model.fit(t[mixed], types[mixed]), masked[mixed], rtol=1e-12, atol=1e-12)


def test_wrapped_and_unwrapped_configurations_agree(model, water):
    positions, box, types, _ = water
    pos, b = positions[3], box[3]
    g = torch.Generator().manual_seed(5)
    images = torch.randint(-2, 3, (pos.shape[0], 3), generator=g).to(torch.float64)
    unwrapped = pos + images @ b
    e, f = energy_and_forces(model, pos, b, types)
    e2, f2 = energy_and_forces(model, unwrapped, b, types)
    assert float(e2) == pytest.approx(float(e), rel=1e-12)
    torch.testing.assert_close(f2, f, rtol=1e-9, atol=1e-10)


def test_energy_is_smooth_where_a_neighbour_crosses_rcut(model_factory):
    model = model_factory()
    types = torch.tensor([0, 1, 0])
    base = torch.tensor([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)

    def energy(distance: float) -> float:
        pos = base.clone()
        pos[2, 1] = distance
        return float(model(pos, None, types))

    inside, outside = energy(model.rcut - 1e-6), energy(model.rcut + 1e-6)
    assert abs(inside - outside) < 1e-9
    assert abs(energy(model.rcut - 0.3) - outside) > 1e-7  # the third atom does interact inside rcut


def test_torchscript_export_and_reload_give_identical_results(model, water, tmp_path):
    positions, box, types, _ = water
    scripted = torch.jit.script(model)
    path = tmp_path / "model.pt"
    scripted.save(str(path))
    loaded = torch.jit.load(str(path))
    assert loaded.type_map == ["O", "H"] and loaded.length_unit == "angstrom" and loaded.energy_unit == "eV"
    for k in range(2):
        e, f = energy_and_forces(model, positions[k], box[k], types)
        e1, f1 = energy_and_forces(scripted, positions[k], box[k], types)
        e2, f2 = energy_and_forces(loaded, positions[k], box[k], types)
        # Exported and reloaded: bitwise identical; eager vs TorchScript: same to round-off.
        assert float(e2) == float(e1) and torch.equal(f2, f1)
        assert float(e1) == pytest.approx(float(e), rel=1e-13)
        torch.testing.assert_close(f1, f, rtol=1e-11, atol=1e-13)


def test_exceeding_sel_is_reported(model_factory, water):
    positions, box, types, _ = water
    from openmmnnp.models import SeE2A

    # Raw models: the statistics themselves run the descriptor, so they would stop at the same check.
    per_type = SeE2A(["O", "H"], sel=[5, 200]).double()  # capacity N * 205 is ample; oxygens see ~30 oxygens
    with pytest.raises(RuntimeError, match=r"neighbours of type O within rcut 6.0 but sel\[0\] = 5"):
        per_type(positions[0], box[0], types)
    capacity = SeE2A(["O", "H"], sel=[3, 6]).double()
    with pytest.raises(RuntimeError, match=r"exceed the capacity .* = N \* sum\(sel\)"):
        capacity(positions[0], box[0], types)
    ample = model_factory(sel=[46, 92])
    ample(positions[0], box[0], types)  # no error with the default sel


def test_bad_configuration_is_rejected():
    from openmmnnp.models import SeE2A
    with pytest.raises(ValueError, match="sel needs one entry per type"):
        SeE2A(["O", "H"], sel=[46])
    with pytest.raises(ValueError, match="rcut_smth < rcut"):
        SeE2A(["O", "H"], rcut=3.0, rcut_smth=4.0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_sel_excess_is_recorded_on_cuda_and_raised_at_the_check(model_factory, water):
    positions, box, types, _ = water
    model = model_factory(sel=[5, 200]).cuda()
    model(positions[0].cuda(), box[0].cuda(), types.cuda())  # no host read: only recorded
    assert float(model.overflow_flags[checks.slot("sel_excess")]) > 0
    model.check_frequency = 2
    with pytest.raises(RuntimeError, match="more than sel"):
        model(positions[0].cuda(), box[0].cuda(), types.cuda())
