"""Reference water data: generator output matches the teacher; the frame format round-trips."""

from pathlib import Path

import numpy as np
import openmm
import openmm.unit as unit
import pytest

from openmmnnp.data import load_frames, save_frames
from openmmnnp.data.water import reference_water_box, sample_water

FIXTURE = Path(__file__).resolve().parent / "water_frames.npz"


def test_generated_frames_match_the_teacher(tmp_path):
    frames = sample_water(1.3, [300.0, 380.0], frames_per_temperature=2, interval_steps=20,
                          equilibration_steps=20, seed=3, progress=False)
    path = tmp_path / "water.npz"
    save_frames(path, frames)
    loaded = load_frames(path)
    assert len(loaded) == 4 and loaded.type_map == ["O", "H"]
    assert loaded.types.tolist()[:6] == [0, 1, 1, 0, 1, 1]
    assert loaded.temperature.tolist() == [300.0, 300.0, 380.0, 380.0]
    assert not np.allclose(loaded.positions[0], loaded.positions[1])  # frames move
    system, _, _ = reference_water_box(1.3)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    for k in range(len(loaded)):
        context.setPeriodicBoxVectors(*loaded.box[k].astype(np.float64))
        context.setPositions(loaded.positions[k].astype(np.float64))
        state = context.getState(getEnergy=True, getForces=True)
        energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
        # Stored positions are float32 and PME differs slightly between platforms.
        assert loaded.energy[k] == pytest.approx(energy, abs=0.5)
        np.testing.assert_allclose(loaded.forces[k], forces, atol=5.0, rtol=1e-3)


def test_teacher_rejects_a_box_smaller_than_its_cutoff():
    with pytest.raises(ValueError, match="too small"):
        reference_water_box(1.0)


def test_committed_fixture_is_a_valid_frame_file():
    frames = load_frames(FIXTURE)
    assert frames.positions.shape == (4, 195, 3)
    assert np.all(np.isfinite(frames.forces)) and np.all(frames.energy < 0)


def test_bad_frame_files_are_rejected(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, positions=np.zeros((1, 3, 3)))
    with pytest.raises(ValueError, match="missing"):
        load_frames(bad)
    with pytest.raises(FileNotFoundError):
        load_frames(tmp_path / "absent.npz")
