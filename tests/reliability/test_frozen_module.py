"""openmm-torch freezes every model (torch.jit.freeze). Freezing deletes the methods it inlines but
the inlined nodes keep pointing at them, so an op that raised inside a frozen module made TorchScript
read freed memory while formatting the traceback: a segfault (SE3Attention) or garbage function names.
NNPForce hands openmm-torch a module whose forward is already inlined, so freezing deletes nothing
that a node still names."""

import pytest

GROUP = "md"


@pytest.mark.parametrize("model", ["water-se_e2_a-compressed", "water-se_e2_a", "water-se3"])
def test_frozen_nnpforce_module_raises_an_exception_instead_of_segfaulting(worker_results, model):
    result = worker_results[f"frozen:{model}"]
    assert result["raised"] == "RuntimeError", result
    assert "positions contain NaN or infinite values" in result["message"]
