"""The compressed se_e2_a model reproduces the original (energy and forces) and the CLI writes it."""

import pytest
import torch

import openmmnnp  # noqa: F401
from openmmnnp.cli import main
from openmmnnp.compression import SeE2ACompressed, compress
from compression.small_se_e2_a import energy_and_forces, small_model, small_system


@pytest.mark.parametrize("type_one_side", [False, True])
def test_compressed_model_reproduces_energy_and_forces(type_one_side):
    positions, box, types = small_system()
    model = small_model(type_one_side, positions, box)
    compressed = compress(model, stride=0.01, extrapolate=5.0)
    assert isinstance(compressed, SeE2ACompressed)
    for b in (box, None):
        e_ref, f_ref = energy_and_forces(model, positions, b, types)
        e, f = energy_and_forces(compressed, positions, b, types)
        scale = float(f_ref.abs().max())
        assert scale > 1e-5  # forces are not trivially zero
        print("errors", abs(float(e - e_ref)), float((f - f_ref).abs().max()) / scale)
        assert abs(float(e - e_ref)) < 1e-10
        assert (f - f_ref).abs().max() < 1e-7 * scale


def test_compressed_forces_match_finite_differences():
    positions, box, types = small_system(seed=1)
    compressed = compress(small_model(False, positions, box), stride=0.01, extrapolate=5.0)
    _, forces = energy_and_forces(compressed, positions, box, types)
    h = 1e-5
    for atom, axis in [(0, 0), (4, 2), (9, 1)]:
        plus, minus = positions.clone(), positions.clone()
        plus[atom, axis] += h
        minus[atom, axis] -= h
        with torch.no_grad():
            fd = -(compressed(plus, box, types) - compressed(minus, box, types)) / (2 * h)
        assert abs(float(fd - forces[atom, axis])) < 1e-6 * float(forces.abs().max())


def test_cli_writes_a_scripted_compressed_model(tmp_path, capsys):
    positions, box, types = small_system()
    model = small_model(False, positions, box)
    torch.jit.script(model).save(str(tmp_path / "model.pt"))
    assert main(["compress", "-i", str(tmp_path / "model.pt"), "-o", str(tmp_path / "c.pt"), "-s", "0.02", "-e", "3"]) == 0
    assert "compressed" in capsys.readouterr().out
    loaded = torch.jit.load(str(tmp_path / "c.pt"))
    assert loaded.table_info[3].item() == pytest.approx(0.02)
    e_ref, f_ref = energy_and_forces(model, positions, box, types)
    e, f = energy_and_forces(loaded, positions, box, types)
    assert abs(float(e - e_ref)) < 1e-7 and (f - f_ref).abs().max() < 1e-6


def test_check_frequency_warns_outside_table():
    positions, box, types = small_system()
    model = small_model(False, positions, box)
    model.min_neighbor_distance.fill_(2.0)  # pretend training never saw pairs closer than 2 Å
    compressed = compress(model, stride=0.02, extrapolate=5.0, check_frequency=2)
    compressed(positions, box, types)  # call 1: not checked
    with pytest.warns(UserWarning, match="outside the accurate compression table"):
        compressed(positions, box, types)


def test_compress_rejects_models_without_statistics():
    positions, box, _ = small_system()
    model = small_model(False, positions, box)
    model.min_neighbor_distance.fill_(0.0)
    with pytest.raises(ValueError, match="min_neighbor_distance"):
        compress(model)
    with pytest.raises(ValueError, match="already compressed"):
        compressed_model = small_model(False, positions, box)
        compress(compress(compressed_model, stride=0.05, extrapolate=2.0))


def test_min_neighbor_distance_beyond_the_cutoff_is_refused_not_tabulated_into_a_wrong_model():
    """A table from r_min >= rcut covers no neighbour (s = 0 there): every pair would be extrapolated.
    (convert-deepmd --min-distance 100 made such models; compress built them, 1363 kJ/mol off.)"""
    positions, box, _ = small_system()
    model = small_model(False, positions, box)
    for bad in (float(model.rcut), 100.0, -1.0, float("nan")):
        model.min_neighbor_distance.fill_(bad)
        with pytest.raises(ValueError, match="must lie between 0 and its cutoff"):
            compress(model)


def test_a_table_of_millions_of_intervals_is_refused_before_it_is_built():
    """min_neighbor_distance 1e-4 A would need ~1e7 intervals per net (gigabytes, minutes)."""
    positions, box, _ = small_system()
    model = small_model(False, positions, box)
    model.min_neighbor_distance.fill_(1e-4)
    with pytest.raises(ValueError, match=r"would have \d+ intervals each \(at most 100000\)"):
        compress(model)
    model.min_neighbor_distance.fill_(1.0)
    with pytest.raises(ValueError, match="would have"):
        compress(model, stride=1e-6)
    for stride, extrapolate, frequency in ((0.0, 5.0, -1), (float("inf"), 5.0, -1), (0.01, float("inf"), -1), (0.01, 5.0, 0)):
        with pytest.raises(ValueError, match="step|extrapolate|check_frequency"):
            compress(model, stride, extrapolate, frequency)


def test_float32_compressed_model_is_as_accurate_as_float32_original():
    positions, box, types = small_system()
    model = small_model(False, positions, box)
    _, f_ref = energy_and_forces(model, positions, box, types)
    compressed32 = compress(model, stride=0.01, extrapolate=5.0).float()
    original32 = small_model(False, positions, box).float()
    p32, b32 = positions.float(), box.float()
    _, f_c = energy_and_forces(compressed32, p32, b32, types)
    _, f_o = energy_and_forces(original32, p32, b32, types)
    assert compressed32.table.dtype == torch.float32
    error_compressed = float((f_c.double() - f_ref).abs().max())
    error_original = float((f_o.double() - f_ref).abs().max())
    assert error_compressed < 3.0 * error_original + 1e-6 * float(f_ref.abs().max())


def test_cli_reports_bad_input_clearly(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["compress", "-i", str(tmp_path / "missing.pt"), "-o", str(tmp_path / "c.pt")])
    assert "missing.pt' does not exist" in capsys.readouterr().err
    positions, box, _ = small_system()
    model = small_model(False, positions, box)
    model.min_neighbor_distance.fill_(0.0)
    torch.jit.script(model).save(str(tmp_path / "model.pt"))
    with pytest.raises(SystemExit, match="min_neighbor_distance"):
        main(["compress", "-i", str(tmp_path / "model.pt"), "-o", str(tmp_path / "c.pt")])
    assert not (tmp_path / "c.pt").exists()


def test_empty_system_has_zero_energy():
    """Zero atoms run through every stage (neighbour list, fused ops, batched fitting): energy 0."""
    positions, box, types = small_system()
    model = small_model(False, positions, box)
    none = torch.zeros(0, 3, dtype=torch.float64)
    for m in (model, compress(model)):
        assert float(m(none, box, types[:0])) == 0.0
