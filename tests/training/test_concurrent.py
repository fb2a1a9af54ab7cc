"""Concurrent learning: a miniature run end to end, the force deviation, and every bad input's error."""

from __future__ import annotations

import contextlib
import io
import csv
from pathlib import Path

import numpy as np
import openmm
import openmm.app
import pytest
import torch

from openmmnnp.cli import main as cli
from openmmnnp.data import load_frames
from openmmnnp.data.teacher import Teacher
from openmmnnp.data.water import reference_water_box
from openmmnnp.training.concurrent import LearnConfig, learn
from openmmnnp.training.deviation import max_force_deviation
from openmmnnp.training.explore import Condition
from openmmnnp.training.trainer import TrainConfig

FIXTURE = str(Path(__file__).resolve().parents[1] / "data" / "water_frames.npz")
TINY = TrainConfig(data=[], output_dir="", neuron=[4, 8], fitting=[8, 8], axis_neuron=2, validation_fraction=0.25,
                   validate_every=10)


@pytest.fixture(scope="module")
def water_teacher():
    system, topology, positions = reference_water_box(1.3)
    return Teacher(system, topology, ["O", "H"])


def test_max_force_deviation_is_the_largest_atomic_spread():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(2, 5, 3))
    assert np.allclose(max_force_deviation([base, base, base]), 0.0)
    shifted = base.copy()
    shifted[1, 3] += [3.0, 0.0, 4.0]  # frame 1, atom 3: the two models differ by 5
    # two models: each sits 2.5 from their mean -> spread 2.5; frame 0 agrees exactly
    assert np.allclose(max_force_deviation([base, shifted]), [0.0, 2.5])
    with pytest.raises(ValueError, match="at least 2 models"):
        max_force_deviation([base])
    failed = shifted.copy()
    failed[0] = np.nan  # a model that raised on frame 0 (model_forces(..., failed_as_nan=True))
    assert max_force_deviation([base, failed]).tolist() == [np.inf, 2.5]


def test_learn_miniature_round_trains_explores_selects_and_labels(tmp_path, water_teacher):
    initial = load_frames(FIXTURE)
    config = LearnConfig(output_dir=str(tmp_path / "run"), train=TINY, conditions=[Condition(300.0), Condition(300.0, 1.0)],
                         ensemble=2, rounds=1, first_steps=20, final_steps=10, explore_steps=40, explore_interval=10,
                         trust_lo=0.0, trust_hi=1e12, max_select=3, bond_stretch=1e3, contact_fraction=1e-3, jobs=1, seed=3)
    # (tiny random models break every bond within a few steps: a wide domain keeps their frames labelled here)
    model_path = learn(config, water_teacher, initial, progress=False)
    out = tmp_path / "run"
    rows = list(csv.DictReader(open(out / "rounds.csv")))
    assert len(rows) == 1 and int(rows[0]["explored_frames"]) == 8 and int(rows[0]["labelled"]) == 3
    explored = list(csv.DictReader(open(out / "round-00" / "exploration.csv")))
    assert len(explored) == 8 and sum(int(r["selected"]) for r in explored) == 3
    assert {r["condition"] for r in explored} == {"300 K", "300 K, 1 bar"}
    labelled = load_frames(out / "data" / "round-00.npz")
    assert len(labelled) == 3 and not np.allclose(labelled.positions[0], initial.positions[0], atol=1e-3)
    energy, forces = water_teacher.label(labelled.positions, labelled.box)  # the labels are the teacher's
    # recomputed from the stored float32 positions: agreement to float32 rounding
    assert np.allclose(labelled.energy, energy, rtol=1e-6, atol=0.05) and np.allclose(labelled.forces, forces, rtol=1e-4, atol=0.1)
    for k in range(2):
        assert (out / "round-00" / f"model-{k}" / "model.pt").is_file()
    model = torch.jit.load(str(model_path))
    pos = torch.from_numpy(initial.positions[0] * 10.0).to(torch.float32)
    assert torch.isfinite(model(pos, torch.from_numpy(initial.box[0] * 10.0), torch.from_numpy(initial.types)))


def test_teacher_labels_atom_wrapped_frames_like_whole_molecules(water_teacher):
    frames = load_frames(FIXTURE)
    box = frames.box[0].astype(np.float64)
    whole = frames.positions[0].astype(np.float64)
    wrapped = whole - np.diag(box) * np.floor(whole / np.diag(box))  # atom by atom, as an NNP System wraps
    assert np.abs(wrapped - whole).max() > 0.5  # some molecules really are split
    e_whole, f_whole = water_teacher.label(whole[None], box[None])
    e_wrapped, f_wrapped = water_teacher.label(wrapped[None], box[None])
    assert e_wrapped[0] == pytest.approx(e_whole[0], abs=1e-3)
    assert np.allclose(f_wrapped, f_whole, atol=1e-2)


def learn_cli(*arguments: str) -> str:
    """Runs `openmm-nnp learn` in this process; returns its error message ('' when it succeeded): the
    SystemExit text, or what argparse printed for an argument it refused."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            cli(["learn", *arguments])
    except SystemExit as stop:
        return stderr.getvalue() if stop.code == 2 else str(stop.code)
    return ""


def write_teacher(tmp_path: Path, drop_atom: bool = False) -> tuple[str, str]:
    system, topology, positions = reference_water_box(1.3)
    if drop_atom:
        system.addParticle(1.0)
    xml = tmp_path / "system.xml"
    xml.write_text(openmm.XmlSerializer.serialize(system))
    pdb = tmp_path / "start.pdb"
    with open(pdb, "w") as f:
        openmm.app.PDBFile.writeFile(topology, positions * openmm.unit.nanometer, f)
    return str(xml), str(pdb)


def test_teacher_whose_particle_count_differs_from_the_topology(tmp_path):
    xml, pdb = write_teacher(tmp_path, drop_atom=True)
    message = learn_cli("--output-dir", str(tmp_path / "out"), "--teacher-system", xml, "--teacher-pdb", pdb)
    assert "the System has 196 particles but the Topology has 195 atoms" in message
    assert not (tmp_path / "out").exists()


def test_element_missing_from_the_type_map(tmp_path):
    message = learn_cli("--output-dir", str(tmp_path / "out"), "--type-map", "O")
    assert "element(s) ['H'] that are not in the type map ['O']" in message


def test_empty_trust_window(tmp_path):
    message = learn_cli("--output-dir", str(tmp_path / "out"), "--trust-lo", "500", "--trust-hi", "500")
    assert "trust window [500.0, 500.0) kJ/mol/nm is empty" in message


def test_output_folder_that_is_a_file(tmp_path):
    target = tmp_path / "out"
    target.write_text("keep me")
    message = learn_cli("--output-dir", str(target))
    assert "is a file" in message and target.read_text() == "keep me"


def test_a_refused_run_changes_no_existing_file(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "rounds.csv").write_text("round\n0\n")
    (out / "model.pt").write_bytes(b"an earlier model")
    message = learn_cli("--output-dir", str(out), "--initial-data", FIXTURE)
    assert "already holds a concurrent-learning run" in message
    assert (out / "rounds.csv").read_text() == "round\n0\n" and (out / "model.pt").read_bytes() == b"an earlier model"
    message = learn_cli("--output-dir", str(tmp_path / "new"), "--initial-data", str(tmp_path / "missing.npz"))
    assert "does not exist" in message and not (tmp_path / "new").exists()


def test_teacher_files_that_are_not_what_they_claim(tmp_path):
    xml, pdb = write_teacher(tmp_path)
    (tmp_path / "bad.xml").write_text("<not a system/>")
    assert "cannot read" in learn_cli("--output-dir", str(tmp_path / "o1"), "--teacher-system", str(tmp_path / "bad.xml"),
                                      "--teacher-pdb", pdb)
    assert "go together" in learn_cli("--output-dir", str(tmp_path / "o2"), "--teacher-system", xml)


def test_another_teacher_given_as_system_xml_and_pdb_runs_the_same_command(tmp_path):
    import warnings

    from openmmnnp._import_noise import quiet_openmmtools

    with warnings.catch_warnings(), quiet_openmmtools():
        warnings.simplefilter("ignore")
        from openmmtools.testsystems import WaterBox
    spce = WaterBox(box_edge=1.25 * openmm.unit.nanometer, cutoff=0.6 * openmm.unit.nanometer, model="spce", constrained=False)
    xml, pdb = tmp_path / "spce.xml", tmp_path / "spce.pdb"
    xml.write_text(openmm.XmlSerializer.serialize(spce.system))
    with open(pdb, "w") as f:
        openmm.app.PDBFile.writeFile(spce.topology, spce.positions, f)
    out = tmp_path / "run"
    message = learn_cli("--output-dir", str(out), "--teacher-system", str(xml), "--teacher-pdb", str(pdb),
                        "--initial-temperatures", "300", "--initial-frames-per-temperature", "4", "--initial-interval", "10",
                        "--initial-equilibration", "20", "--ensemble", "2", "--rounds", "1", "--first-steps", "10",
                        "--final-steps", "0", "--explore-steps", "20", "--explore-interval", "10", "--explore-temperatures",
                        "300", "--explore-npt-temperatures", "--trust-lo", "0", "--trust-hi", "1e12", "--max-select", "1", "--bond-stretch", "1e3", "--contact-fraction", "1e-3",
                        "--jobs", "1", "--neuron", "4", "8", "--fitting", "8", "8", "--axis-neuron", "2", "--validate-every", "5")
    assert message == ""
    initial = load_frames(out / "data" / "initial.npz")
    assert len(initial) == 4 and initial.type_map == ["O", "H"] and initial.positions.shape[1] == spce.topology.getNumAtoms()
    energy, _ = Teacher(spce.system, spce.topology).label(initial.positions[:1], initial.box[:1])
    assert initial.energy[0] == pytest.approx(energy[0], abs=0.05)  # labelled by the SPC/E teacher, not TIP3P
    assert len(load_frames(out / "data" / "round-00.npz")) == 1 and (out / "model.pt").is_file()


def test_perturbed_frames_move_a_fraction_of_the_atoms_and_carry_teacher_labels(water_teacher):
    from openmmnnp.data.teacher import perturbed_frames

    source = load_frames(FIXTURE)
    frames = perturbed_frames(water_teacher, source, 5, 0.05, 0.012, seed=4)
    assert len(frames) == 5
    moved = [int((np.linalg.norm(frames.positions[k] - source.positions[j], axis=-1) > 1e-6).sum())
             for k in range(5) for j in [int(np.argmin([np.abs(frames.positions[k] - s).sum() for s in source.positions]))]]
    assert moved == [10] * 5  # 5 % of 195 atoms, the rest untouched
    energy, forces = water_teacher.label(frames.positions, frames.box)
    assert np.allclose(frames.energy, energy, rtol=1e-6, atol=0.05)
    with pytest.raises(ValueError, match="atom_fraction"):
        perturbed_frames(water_teacher, source, 5, 0.0, 0.012, seed=4)


def test_frames_outside_the_teachers_domain_are_flagged(water_teacher):
    frames = load_frames(FIXTURE)
    domain = water_teacher.domain(frames, 1.3, 0.9)
    assert set(domain.bonds) == {"H-O"} and 0.13 < domain.bonds["H-O"] < 0.15  # 1.3 x the longest O-H (nm)
    positions, boxes = frames.positions.astype(np.float64), frames.box.astype(np.float64)
    shortest = water_teacher.shortest_contacts(positions, boxes)
    assert set(shortest) == {"H-H", "H-O", "O-O"} and domain.contacts["H-O"] == pytest.approx(0.9 * shortest["H-O"])
    assert 0.13 < shortest["H-O"] < 0.18  # hydrogen bonds: 1.3-1.8 A
    assert not water_teacher.outside(positions, boxes, domain).any()
    hopped = positions.copy()
    hopped[2, 4] = hopped[2, 3] + [0.2, 0.0, 0.0]  # frame 2: the first hydrogen of molecule 1 is 2 A from its oxygen
    hopped[1, 7] = hopped[1, 0] + [0.1, 0.0, 0.0]  # frame 1: a hydrogen of molecule 2 at 1 A from the oxygen of molecule 0
    assert water_teacher.outside(hopped, boxes, domain).tolist() == [False, True, True, False]


def test_perturbed_frames_stay_inside_the_domain(water_teacher):
    from openmmnnp.data.teacher import perturbed_frames

    source = load_frames(FIXTURE)
    domain = water_teacher.domain(source, 1.3, 0.9)
    frames = perturbed_frames(water_teacher, source, 6, 0.1, 0.02, seed=2, domain=domain)
    assert len(frames) == 6
    assert not water_teacher.outside(frames.positions.astype(np.float64), frames.box.astype(np.float64), domain).any()
