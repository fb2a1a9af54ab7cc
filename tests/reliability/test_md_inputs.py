"""The inputs of a blown-up or badly set-up simulation, for each shipped model inside OpenMM (CPU
platform), each in a subprocess: an ``OpenMMException`` with a message that says what is wrong,
never a signal (SE3Attention used to segfault, exit 139, whenever it raised inside openmm-torch's
frozen module) and never a NaN energy (two atoms at distance 0 used to give one, silently)."""

import math
import re

import pytest

GROUP = "md"
MODELS = ["water-se_e2_a-compressed", "water-se_e2_a", "water-se3"]
# input -> what the message must say
EXPECTED = {
    "nan_position": r"NaN",
    "inf_position": r"NaN or infinite",
    "far_outside_box": r"more than 16000 box lengths outside the periodic box",
    "atoms_piled_on_one_point": r"on top of each other|increase sel|increase max_neighbors",
    "two_atoms_at_distance_zero": r"1 pair\(s\) of atoms lie on top of each other .* particles 0 and 1",
    "tiny_box": r"exceed the capacity .*; increase (sel|max_neighbors)",
}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("bad_input", sorted(EXPECTED))
def test_blown_up_input_raises_an_openmm_exception_not_a_signal(worker_results, model, bad_input):
    result = worker_results[f"{model}:{bad_input}"]
    assert result["raised"] == "OpenMMException", result
    assert re.search(EXPECTED[bad_input], result["message"]), result["message"][-500:]


@pytest.mark.parametrize("model", MODELS)
def test_two_atoms_at_distance_zero_raise_instead_of_giving_a_nan_energy(worker_results, model):
    message = worker_results[f"{model}:two_atoms_at_distance_zero"]["message"]
    assert "energy is NaN or infinite" in message and "on top of each other" in message


@pytest.mark.parametrize("model", MODELS)
def test_the_context_still_works_after_the_errors(worker_results, model):
    result = worker_results[f"{model}:good_input_after_errors"]
    assert result["raised"] is None, result
    energy = float(result["message"].split()[0])
    assert math.isfinite(energy) and -3000.0 < energy < -2000.0  # 65 waters: about -40 kJ/mol each
