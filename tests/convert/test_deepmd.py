"""Imported DeePMD-kit se_e2_a models reproduce DeePMD-kit's own energies and forces (also compressed, and in NNPForce).

Fixtures (tests/convert/deepmd/) come from make_fixtures.py, run with DeePMD-kit 3.2.0.
"""

import os

import numpy as np
import pytest
import torch
from compression.test_compressed_in_openmm import openmm_energy_forces

from openmmnnp import units
from openmmnnp.compression import SeE2ACompressed, compress
from openmmnnp.convert.deepmd import convert_deepmd

HERE = os.path.join(os.path.dirname(__file__), "deepmd")
MODELS = ["se_e2_a_two_side", "se_e2_a_one_side"]


def _evaluate(model, reference, k):
    coords = torch.tensor(reference[f"coords_{k}"], dtype=torch.float64, requires_grad=True)
    box = torch.tensor(reference[f"box_{k}"], dtype=torch.float64) if reference["periodic"][k] else None
    types = torch.tensor(reference["types"][: coords.shape[0]], dtype=torch.long)
    energy = model(coords, box, types)
    forces = -torch.autograd.grad(energy, coords)[0]
    return float(energy.detach()), forces.numpy()


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("extension", [".pth", ".pt", ".dp"])
def test_matches_deepmd(name, extension):
    model = torch.jit.script(convert_deepmd(os.path.join(HERE, name + extension)))
    reference = np.load(os.path.join(HERE, name + "_reference.npz"))
    assert not reference["periodic"].all() and reference["periodic"].any()
    for k in range(len(reference["energy"])):
        energy, forces = _evaluate(model, reference, k)
        assert energy == pytest.approx(reference["energy"][k], rel=1e-8, abs=0.0)
        np.testing.assert_allclose(forces, reference[f"forces_{k}"], rtol=0.0,
                                   atol=1e-8 * np.abs(reference[f"forces_{k}"]).max())


# The compression table's tolerance (openmmnnp/compression/tables.py: values and derivatives of
# the embedding nets to 1e-10 at the default step 0.01), as tests/compression/test_compress.py
# turns it into energy and forces of the compressed model: 1e-10 eV absolute, 1e-7 of the largest force.
COMPRESSED_ENERGY_ABS = 1e-10
COMPRESSED_FORCE_REL = 1e-7


@pytest.mark.parametrize("name", MODELS)
def test_compressed_import_matches_deepmd(name):
    """Our compression of the imported model against DeePMD-kit's (uncompressed) reference outputs."""
    compressed = compress(convert_deepmd(os.path.join(HERE, name + ".pth")))  # default step 0.01, extrapolate 5
    assert isinstance(compressed, SeE2ACompressed)
    model = torch.jit.script(compressed)
    reference = np.load(os.path.join(HERE, name + "_reference.npz"))
    for k in range(len(reference["energy"])):
        energy, forces = _evaluate(model, reference, k)
        assert abs(energy - reference["energy"][k]) < COMPRESSED_ENERGY_ABS
        scale = np.abs(reference[f"forces_{k}"]).max()
        assert scale > 1e-3  # forces are not trivially zero
        np.testing.assert_allclose(forces, reference[f"forces_{k}"], rtol=0.0, atol=COMPRESSED_FORCE_REL * scale)


@pytest.mark.parametrize("platform", ["Reference", "CPU"])
@pytest.mark.parametrize("name", MODELS)
def test_imported_model_in_nnpforce(name, platform):
    """NNPForce (nm, kJ/mol) gives the model's own energy and forces (angstrom, eV) and DeePMD-kit's."""
    model = torch.jit.script(convert_deepmd(os.path.join(HERE, name + ".pth")))
    reference = np.load(os.path.join(HERE, name + "_reference.npz"))
    assert reference["periodic"][0]
    types = torch.tensor(reference["types"], dtype=torch.long)
    nm = units.length_factor("angstrom")
    kj = units.energy_factor("eV")
    energy, forces = openmm_energy_forces(model, types, reference["coords_0"] * nm, reference["box_0"] * nm, platform)
    direct_energy, direct_forces = _evaluate(model, reference, 0)
    scale = np.abs(direct_forces).max() * kj / nm
    assert energy == pytest.approx(direct_energy * kj, rel=1e-12, abs=0.0)
    np.testing.assert_allclose(forces, direct_forces * kj / nm, rtol=0.0, atol=1e-10 * scale)  # float64 on both platforms
    assert energy == pytest.approx(reference["energy"][0] * kj, rel=1e-8, abs=0.0)
    np.testing.assert_allclose(forces, reference["forces_0"] * kj / nm, rtol=0.0, atol=1e-8 * scale)  # the import's tolerance


def test_unsupported_descriptor(tmp_path):
    with pytest.raises(ValueError, match="unknown model file type"):
        convert_deepmd(str(tmp_path / "model.pb"))
    from openmmnnp.convert.deepmd.mapping import build_model
    with pytest.raises(ValueError, match="unsupported descriptor type 'dpa1'"):
        build_model({"type_map": ["O", "H"], "descriptor": {"type": "dpa1"}, "fitting_net": {}}, {})
    with pytest.raises(ValueError, match="exclude_types"):
        build_model({"type_map": ["O", "H"], "descriptor": {"type": "se_e2_a", "sel": [1, 1], "rcut": 4.0,
                                                            "exclude_types": [[0, 1]]}, "fitting_net": {}}, {})
