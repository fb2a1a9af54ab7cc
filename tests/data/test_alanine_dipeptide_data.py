"""openmm-nnp data alanine-dipeptide: vacuum frames of the ff96 teacher, no box, that the trainer reads non-periodic."""

import numpy as np
import openmm
import openmm.unit as unit
import pytest

from openmmnnp.cli import main
from openmmnnp.data import load_frames
from openmmnnp.data.alanine_dipeptide import solvated_system, vacuum_teacher
from openmmnnp.training.trainer import FrameSet, TrainConfig, model_from_config


def test_command_writes_teacher_frames(tmp_path):
    path = tmp_path / "ad.npz"
    assert main(["data", "alanine-dipeptide", "--output", str(path), "--temperatures", "300", "700",
                 "--frames-per-temperature", "2", "--interval", "20", "--equilibration", "50", "--seed", "4"]) == 0
    frames = load_frames(path)
    assert frames.positions.shape == (4, 22, 3) and frames.type_map == ["H", "C", "O", "N"]
    assert not frames.box.any()  # no periodic boundaries
    assert frames.temperature.tolist() == [300.0, 300.0, 700.0, 700.0]
    system, _, _ = vacuum_teacher()
    assert system.getNumConstraints() == 0  # flexible: the NNP has no constraints either
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    for k in range(len(frames)):
        context.setPositions(frames.positions[k].astype(np.float64))
        state = context.getState(getEnergy=True, getForces=True)
        assert frames.energy[k] == pytest.approx(state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole), abs=0.05)
        np.testing.assert_allclose(frames.forces[k], state.getForces(asNumpy=True).value_in_unit(
            unit.kilojoule_per_mole / unit.nanometer), atol=0.5, rtol=1e-4)  # float32 positions
    config = TrainConfig(data=[], output_dir="", rcut=9.0, rcut_smth=1.0, sel=[12, 6, 2, 2], type_one_side=True)
    data = FrameSet(frames, model_from_config(config, frames.type_map))
    assert data.box_of(0) is None
    # rcut 9 A: every atom sees (nearly) the whole molecule; the largest distances reach 9.5 A.
    assert all(0.97 * 22 * 21 <= p.shape[1] <= 22 * 21 for p in data.pairs)


def test_solvated_solute_has_the_teacher_force_field():
    """The solvated system's solute (ML/MM's ML region) carries the teacher's parameters exactly."""
    explicit = solvated_system(constraints=None)
    system, topology, positions = vacuum_teacher()
    solute = [a.index for a in explicit.topology.atoms() if a.residue.name != "HOH"]
    assert solute == list(range(22)) and [a.name for a in topology.atoms()] == [a.name for a in list(explicit.topology.atoms())[:22]]
    vacuum_nb = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
    solvated_nb = next(f for f in explicit.system.getForces() if isinstance(f, openmm.NonbondedForce))
    for i in solute:
        assert [q._value for q in vacuum_nb.getParticleParameters(i)] == [q._value for q in solvated_nb.getParticleParameters(i)]
    assert explicit.topology.getPeriodicBoxVectors() is not None
