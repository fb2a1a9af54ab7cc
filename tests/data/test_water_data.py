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


def test_frame_file_errors_say_what_the_file_is(tmp_path):
    """A folder used to be reported as "does not exist"; a file that is not a .npz archive as numpy's
    pickle advice; a truncated archive with a BadZipFile traceback."""
    with pytest.raises(IsADirectoryError, match="is a folder, not a file"):
        load_frames(tmp_path)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"\x00\x01 not a zip archive" * 50)
    with pytest.raises(ValueError, match=r"is not an openmm-nnp frame file \(not a .npz archive\)"):
        load_frames(garbage)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(FIXTURE.read_bytes()[: FIXTURE.stat().st_size // 2])
    with pytest.raises(ValueError, match="is not an openmm-nnp frame file"):
        load_frames(truncated)


def test_frames_with_nan_are_refused_when_written_and_when_read(tmp_path):
    frames = load_frames(FIXTURE)
    frames.forces[1, 7, 2] = np.nan
    with pytest.raises(ValueError, match="forces holds NaN or infinite values"):
        save_frames(tmp_path / "nan.npz", frames)
    np.savez(tmp_path / "nan.npz", positions=frames.positions, box=frames.box, energy=frames.energy, forces=frames.forces,
             types=frames.types, type_map=np.array(frames.type_map), temperature=frames.temperature)
    with pytest.raises(ValueError, match="forces holds NaN or infinite values"):
        load_frames(tmp_path / "nan.npz")


def test_save_frames_writes_exactly_the_path_given(tmp_path):
    """numpy appends ".npz" to a path without it; the frame writer writes where it is told (atomically)."""
    save_frames(tmp_path / "frames.data", load_frames(FIXTURE))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames.data"]
    assert len(load_frames(tmp_path / "frames.data")) == 4


def test_sampling_without_frames_fails_before_any_md():
    """--frames-per-temperature 0 used to run the whole MD, then fail with "not enough values to unpack"."""
    with pytest.raises(ValueError, match="at least one temperature, one frame per temperature"):
        sample_water(1.3, [300.0], frames_per_temperature=0, progress=False)
