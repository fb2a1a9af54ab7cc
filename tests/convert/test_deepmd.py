"""Imported DeePMD-kit se_e2_a models reproduce DeePMD-kit's own energies and forces.

Fixtures (tests/convert/deepmd/) come from make_fixtures.py, run with DeePMD-kit 3.2.0.
"""

import os

import numpy as np
import pytest
import torch

from openmmnnp.convert.deepmd import convert_deepmd

HERE = os.path.join(os.path.dirname(__file__), "deepmd")
MODELS = ["se_e2_a_two_side", "se_e2_a_one_side"]


def _evaluate(model, reference, k):
    coords = torch.tensor(reference[f"coords_{k}"], dtype=torch.float64, requires_grad=True)
    box = torch.tensor(reference[f"box_{k}"], dtype=torch.float64) if reference["periodic"][k] else None
    types = torch.tensor(reference["types"][: coords.shape[0]], dtype=torch.long)
    energy = model(coords, box, types)
    forces = -torch.autograd.grad(energy, coords)[0]
    return float(energy), forces.numpy()


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


def test_unsupported_descriptor(tmp_path):
    with pytest.raises(ValueError, match="unknown model file type"):
        convert_deepmd(str(tmp_path / "model.pb"))
    from openmmnnp.convert.deepmd.mapping import build_model
    with pytest.raises(ValueError, match="unsupported descriptor type 'dpa1'"):
        build_model({"type_map": ["O", "H"], "descriptor": {"type": "dpa1"}, "fitting_net": {}}, {})
    with pytest.raises(ValueError, match="exclude_types"):
        build_model({"type_map": ["O", "H"], "descriptor": {"type": "se_e2_a", "sel": [1, 1], "rcut": 4.0,
                                                            "exclude_types": [[0, 1]]}, "fitting_net": {}}, {})
