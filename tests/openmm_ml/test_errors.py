"""Bad input to MLPotential("openmmnnp") gets a clear error that names the problem."""

from __future__ import annotations

import re

import pytest
from openmm_ml.water_region import central_waters, water_box
from openmmml import MLPotential

from openmmnnp.data.alanine_dipeptide import vacuum_teacher
from openmmnnp.pretrained import available_models


@pytest.fixture(scope="module")
def box():
    return water_box()


def test_unknown_model_name_lists_the_shipped_models():
    with pytest.raises(ValueError) as error:
        MLPotential("openmmnnp", modelPath="water-se_e2_b")
    message = str(error.value)
    assert "'water-se_e2_b'" in message
    assert all(name in message for name in available_models())


def test_missing_model_file(tmp_path):
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "absent.pt")) + ".*shipped models"):
        MLPotential("openmmnnp", modelPath=tmp_path / "absent.pt")


def test_no_model_path():
    with pytest.raises(ValueError, match="needs modelPath"):
        MLPotential("openmmnnp")


def test_file_that_is_not_a_model(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a model")
    with pytest.raises(ValueError, match="not a TorchScript model file"):
        MLPotential("openmmnnp", modelPath=path)


def test_broken_deepmd_file(tmp_path):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="cannot import .*broken.pth.* as a DeePMD-kit model"):
        MLPotential("openmmnnp", modelPath=path, cacheDir=tmp_path)


def test_model_lacking_an_element_names_the_atom_and_the_element():
    _, topology, _ = vacuum_teacher()
    potential = MLPotential("openmmnnp", modelPath="water-se_e2_a")
    with pytest.raises(ValueError, match=r"atom 1 \(CH3 of residue ACE 1\) is element C.*type map is \['O', 'H'\]"):
        potential.createSystem(topology)


def test_empty_ml_region(box):
    mm, topology, _ = box
    with pytest.raises(ValueError, match="atoms is empty"):
        MLPotential("openmmnnp", modelPath="water-se_e2_a").createMixedSystem(topology, mm, [])


@pytest.mark.parametrize("interpolate", [False, True])
def test_out_of_range_ml_region(box, interpolate):
    mm, topology, _ = box
    n = topology.getNumAtoms()
    with pytest.raises(ValueError, match=rf"atom indices \[{n}\] are out of range for a system of {n} particles"):
        MLPotential("openmmnnp", modelPath="water-se_e2_a").createMixedSystem(topology, mm, [0, 1, 2, n],
                                                                              interpolate=interpolate)


def test_duplicate_ml_atoms(box):
    mm, topology, positions = box
    atoms = central_waters(topology, positions)
    with pytest.raises(ValueError, match="duplicate"):
        MLPotential("openmmnnp", modelPath="water-se_e2_a").createMixedSystem(topology, mm, atoms + atoms[:1])


@pytest.mark.parametrize("model, reason", [("water-se3", "not an se_e2_a model"),
                                           ("water-se_e2_a-compressed", "already compressed")])
def test_compress_a_model_that_cannot_be_compressed(tmp_path, model, reason):
    with pytest.raises(ValueError, match=f"compress=True, but .*{model}.* cannot be compressed: compress: .*{reason}"):
        MLPotential("openmmnnp", modelPath=model, compress=True, cacheDir=tmp_path)


def test_unknown_arguments(box):
    mm, topology, _ = box
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['modelpath'\]"):
        MLPotential("openmmnnp", modelPath="water-se_e2_a", modelpath="x")
    potential = MLPotential("openmmnnp", modelPath="water-se_e2_a")
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['check_frequency'\].*checkFrequency"):
        potential.createSystem(topology, check_frequency=5)


def test_bad_check_frequency(box):
    _, topology, _ = box
    with pytest.raises(ValueError, match="check_frequency must be a positive integer or -1"):
        MLPotential("openmmnnp", modelPath="water-se_e2_a").createSystem(topology, checkFrequency=0)


def test_system_and_topology_disagree(box):
    mm, topology, positions = box
    _, other_topology, _ = vacuum_teacher()
    with pytest.raises(ValueError, match="has .* particles but the Topology has 22 atoms"):
        MLPotential("openmmnnp", modelPath="water-se_e2_a").createMixedSystem(other_topology, mm, [0, 1, 2])
