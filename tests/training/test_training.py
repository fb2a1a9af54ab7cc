"""Training: schedules, learning reduces the errors, seeded runs repeat, resume continues exactly."""

import csv
from pathlib import Path

import pytest
import torch

from openmmnnp.data import load_frames
from openmmnnp.training import TrainConfig, train
from openmmnnp.training.schedule import learning_rate, prefactor
from openmmnnp.training.trainer import FrameSet, evaluate

FIXTURE = str(Path(__file__).resolve().parents[1] / "data" / "water_frames.npz")
SMALL = dict(neuron=[4, 8], fitting=[16, 16], axis_neuron=2, threads=1, validation_fraction=0.25)


def test_schedules_run_from_start_to_limit():
    assert learning_rate(0, 100, 1e-3, 1e-5) == pytest.approx(1e-3)
    assert learning_rate(50, 100, 1e-3, 1e-5) == pytest.approx(1e-4)
    assert learning_rate(100, 100, 1e-3, 1e-5) == pytest.approx(1e-5)
    assert prefactor(1e-3, 1e-3, 1000.0, 1.0) == pytest.approx(1000.0)
    assert prefactor(1e-8, 1e-3, 1000.0, 1.0) == pytest.approx(1.0 + 999.0 * 1e-5)


def test_training_reduces_force_error_and_writes_its_outputs(tmp_path):
    default_size = dict(threads=1, validation_fraction=0.25)  # the shipped model's sizes learn fast enough to see
    config = TrainConfig(data=[FIXTURE], output_dir=str(tmp_path), steps=60, validate_every=30, start_lr=5e-3, stop_lr=1e-3, **default_size)
    model = train(config, progress=False)
    for name in ("checkpoint.pt", "model.pt", "learning_curve.csv", "learning_curve.png"):
        assert (tmp_path / name).is_file()
    rows = list(csv.DictReader(open(tmp_path / "learning_curve.csv")))
    assert [int(r["step"]) for r in rows] == [30, 60]
    data = FrameSet(load_frames(FIXTURE), model)
    trained = evaluate(model, data, [0, 1, 2, 3])
    fresh = TrainConfig(data=[FIXTURE], output_dir=str(tmp_path / "zero"), steps=0, **default_size)
    untrained = evaluate(train(fresh, progress=False), data, [0, 1, 2, 3])
    assert trained["rmse_f"] < 0.95 * untrained["rmse_f"]  # 60 steps: 0.85 -> 0.76 eV/A measured
    scripted = torch.jit.load(str(tmp_path / "model.pt"))
    assert scripted.type_map == ["O", "H"] and float(scripted.min_neighbor_distance) > 0.5


def test_seeded_runs_repeat_and_resume_continues_exactly(tmp_path):
    constant = dict(start_lr=2e-3, stop_lr=2e-3, validate_every=3, **SMALL)  # resume must not change the schedule
    straight = train(TrainConfig(data=[FIXTURE], output_dir=str(tmp_path / "a"), steps=6, **constant), progress=False)
    again = train(TrainConfig(data=[FIXTURE], output_dir=str(tmp_path / "b"), steps=6, **constant), progress=False)
    train(TrainConfig(data=[FIXTURE], output_dir=str(tmp_path / "c"), steps=3, **constant), progress=False)
    resumed = train(TrainConfig(data=[FIXTURE], output_dir=str(tmp_path / "c"), steps=6, **constant), resume=True, progress=False)
    for p, q, r in zip(straight.parameters(), again.parameters(), resumed.parameters()):
        assert torch.equal(p, q)
        torch.testing.assert_close(r, p, rtol=1e-6, atol=1e-7)
    assert not torch.equal(straight.fittings[0].layers[0].weight,
                           train(TrainConfig(data=[FIXTURE], output_dir=str(tmp_path / "d"), steps=0, **SMALL), progress=False).fittings[0].layers[0].weight)


def test_se3_trains_with_the_torch_implementation_and_exports_the_fused_one(tmp_path):
    """The force loss needs double backward, which the fused kernels refuse: the trainer trains the SE(3)
    model with its pure-torch implementation and exports the fused one, with the same weights."""
    config = TrainConfig(data=[FIXTURE], output_dir=str(tmp_path), model="se3", rcut=4.0, se3_lmax=1, se3_channels=8,
                         se3_layers=1, se3_max_neighbors=64, steps=4, validate_every=2, threads=1, validation_fraction=0.25)
    model = train(config, progress=False)
    assert model.implementation == "fused"
    scripted = torch.jit.load(str(tmp_path / "model.pt"))
    assert scripted.implementation == "fused" and not scripted.training
    untrained = train(TrainConfig(**{**config.__dict__, "output_dir": str(tmp_path / "zero"), "steps": 0}), progress=False)
    assert not torch.equal(model.readout.layers[0].weight, untrained.readout.layers[0].weight)  # the steps did learn
    data = FrameSet(load_frames(FIXTURE), model)
    fused = evaluate(model, data, [0])
    model.implementation = "reference"
    assert evaluate(model, data, [0])["rmse_f"] == pytest.approx(fused["rmse_f"], rel=1e-5)


def test_a_new_run_refuses_to_overwrite_an_earlier_one_and_resume_needs_a_checkpoint(tmp_path):
    """A run without --resume used to overwrite an earlier run's model.pt and checkpoint.pt, and
    --resume without a checkpoint silently started from scratch. Both now stop before any work."""
    config = dict(data=[FIXTURE], output_dir=str(tmp_path / "run"), steps=2, validate_every=1, **SMALL)
    train(TrainConfig(**config), progress=False)
    before = {name: (tmp_path / "run" / name).read_bytes() for name in ("model.pt", "checkpoint.pt", "learning_curve.csv")}
    with pytest.raises(FileExistsError, match="already holds an earlier run .*--resume"):
        train(TrainConfig(**config), progress=False)
    assert {name: (tmp_path / "run" / name).read_bytes() for name in before} == before
    with pytest.raises(FileNotFoundError, match="cannot resume: .*checkpoint.pt' does not exist"):
        train(TrainConfig(**{**config, "output_dir": str(tmp_path / "empty")}), resume=True, progress=False)
    assert not (tmp_path / "empty").exists()
    resumed = train(TrainConfig(**{**config, "steps": 3}), resume=True, progress=False)  # continuing is fine
    rows = list(csv.DictReader(open(tmp_path / "run" / "learning_curve.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3] and resumed is not None
    with pytest.raises(ValueError, match="written with another model configuration"):
        train(TrainConfig(**{**config, "steps": 4, "neuron": [4, 4]}), resume=True, progress=False)
