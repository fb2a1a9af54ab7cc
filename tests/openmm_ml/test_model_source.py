"""MLPotential("openmmnnp", modelPath=DeePMD-kit file, compress=...): import, compression, cache."""

from __future__ import annotations

import os
import shutil

import numpy as np
import openmm
import openmm.app as app
import pytest
import torch
from openmm_ml.water_region import energies_forces
from openmmml import MLPotential

from openmmnnp import NNPForce, units
from openmmnnp.compression import SeE2ACompressed
from openmmnnp.convert.deepmd import convert_deepmd
from openmmnnp.openmm_ml import model_source

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "convert", "deepmd")
# The compression tolerance of the imported fixtures (tests/convert/test_deepmd.py): 1e-10 eV in the
# energy, 1e-7 of the largest force component.
COMPRESSED_ENERGY_ABS_EV = 1e-10
COMPRESSED_FORCE_REL = 1e-7


def _fixture(name: str) -> str:
    return os.path.join(FIXTURES, name)


def _water_frame(name: str):
    """(topology, positions nm, DeePMD-kit's energy eV) of model ``name``'s first reference frame: 64 periodic waters."""
    reference = np.load(_fixture(name + "_reference.npz"))
    nm = units.length_factor("angstrom")
    topology = app.Topology()
    chain = topology.addChain()
    for k in range(0, len(reference["types"]), 3):
        residue = topology.addResidue("HOH", chain)
        for t in reference["types"][k:k + 3]:
            element = app.Element.getBySymbol(["O", "H"][int(t)])
            topology.addAtom(element.symbol, element, residue)
    box = reference["box_0"] * nm
    topology.setPeriodicBoxVectors([openmm.Vec3(*row) for row in box])
    return topology, reference["coords_0"] * nm, float(reference["energy"][0])


def _reference_energy_forces(model: torch.nn.Module, topology, positions):
    system = openmm.System()
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    system.setDefaultPeriodicBoxVectors(*topology.getPeriodicBoxVectors())
    system.addForce(NNPForce(model, topology))
    return energies_forces(system, positions)


@pytest.mark.parametrize("name, extension", [("se_e2_a_two_side", ".pth"), ("se_e2_a_two_side", ".pt"),
                                             ("se_e2_a_two_side", ".dp"), ("se_e2_a_one_side", ".pth")])
def test_deepmd_file_compressed(tmp_path, name, extension):
    topology, positions, deepmd_energy_ev = _water_frame(name)
    path = _fixture(name + extension)
    potential = MLPotential("openmmnnp", modelPath=path, compress=True, cacheDir=tmp_path)
    energy, forces = energies_forces(potential.createSystem(topology), positions)
    imported = torch.jit.script(convert_deepmd(path))
    expected_energy, expected_forces = _reference_energy_forces(imported, topology, positions)
    kj = units.energy_factor("eV")
    assert abs(energy - expected_energy) < COMPRESSED_ENERGY_ABS_EV * kj * 10  # + float64 rounding of ~1e4 kJ/mol
    np.testing.assert_allclose(forces, expected_forces, rtol=0, atol=COMPRESSED_FORCE_REL * np.abs(expected_forces).max())
    assert energy == pytest.approx(deepmd_energy_ev * kj, rel=1e-8)  # and DeePMD-kit's own number
    cached = list(tmp_path.iterdir())
    assert len(cached) == 1 and isinstance(torch.jit.load(str(cached[0])), torch.jit.ScriptModule)
    assert hasattr(torch.jit.load(str(cached[0])), "table")  # the compressed form


def test_deepmd_file_uncompressed(tmp_path):
    topology, positions, deepmd_energy_ev = _water_frame("se_e2_a_one_side")
    path = _fixture("se_e2_a_one_side.dp")
    energy, _ = energies_forces(MLPotential("openmmnnp", modelPath=path, cacheDir=tmp_path).createSystem(topology), positions)
    assert energy == pytest.approx(deepmd_energy_ev * units.energy_factor("eV"), rel=1e-8)
    assert not hasattr(torch.jit.load(str(next(tmp_path.iterdir()))), "table")


def test_cache_is_reused_and_keyed_on_content(tmp_path, monkeypatch):
    source = tmp_path / "model.pth"
    shutil.copy(_fixture("se_e2_a_two_side.pth"), source)
    cache = tmp_path / "cache"
    first = model_source.resolve_model(source, compress=True, cache_dir=cache)

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the cached model should have been used")

    monkeypatch.setattr(model_source, "_build", no_rebuild)
    assert model_source.resolve_model(source, compress=True, cache_dir=cache) == first
    monkeypatch.undo()
    # Other options or other content: another file.
    plain = model_source.resolve_model(source, compress=False, cache_dir=cache)
    shutil.copy(_fixture("se_e2_a_one_side.pth"), source)
    other = model_source.resolve_model(source, compress=True, cache_dir=cache)
    assert len({first, plain, other}) == 3 and all(p.parent == cache for p in (first, plain, other))


def test_damaged_cache_entry_is_rebuilt(tmp_path):
    first = model_source.resolve_model(_fixture("se_e2_a_one_side.pth"), compress=True, cache_dir=tmp_path)
    first.write_bytes(first.read_bytes()[:1000])  # truncated
    again = model_source.resolve_model(_fixture("se_e2_a_one_side.pth"), compress=True, cache_dir=tmp_path)
    assert again == first and hasattr(torch.jit.load(str(again)), "table")


def test_cache_folder_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENMMNNP_CACHE_DIR", str(tmp_path / "env-cache"))
    path = model_source.resolve_model(_fixture("se_e2_a_one_side.pth"))
    assert path.parent == tmp_path / "env-cache" and path.is_file()


def test_cache_next_to_the_input(tmp_path):
    source = tmp_path / "frozen.pth"
    shutil.copy(_fixture("se_e2_a_one_side.pth"), source)
    path = model_source.resolve_model(source, compress=True, cache_dir=source.parent)
    assert path.parent == tmp_path and path.name.startswith("frozen-compressed-")


def test_failed_compression_leaves_no_file(tmp_path):
    with pytest.raises(ValueError, match="cannot be compressed"):
        model_source.resolve_model("water-se3", compress=True, cache_dir=tmp_path)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_shipped_torchscript_is_used_in_place():
    path = model_source.resolve_model("water-se_e2_a")
    assert path.parent.name == "pretrained"


def test_compress_shipped_se_e2_a(tmp_path):
    """compress=True also tabulates an uncompressed openmm-nnp se_e2_a file, equal within the table tolerance."""
    path = model_source.resolve_model("water-se_e2_a", compress=True, cache_dir=tmp_path)
    compressed = torch.jit.load(str(path))
    assert isinstance(compressed, torch.jit.ScriptModule) and hasattr(compressed, "table")
    assert SeE2ACompressed.__name__ in compressed.original_name
