"""The overflow checks on OpenMM's CUDA platform, with CUDA graphs off (the model checks itself)
and on (only NNPCheckReporter can check: the replayed graph runs no host code)."""

import openmm
import pytest
from test_checks import STEPS, drift_simulation, events, first_check_at_or_after, narrow_model  # noqa: F401 (fixture)
from gpu.test_nnpforce_cuda import cuda_platform_available

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not cuda_platform_available(), reason="needs CUDA and OpenMM's CUDA platform")]


def test_in_model_check_raises_on_cuda_without_graphs(narrow_model):
    _, beyond = events(narrow_model)
    simulation = drift_simulation(narrow_model, check_frequency=5, platform="CUDA", properties={"useCUDAGraphs": "false"})
    for step in range(1, STEPS + 1):
        try:
            simulation.step(1)
        except openmm.OpenMMException as error:
            assert "beyond the compression tables" in str(error)
            break
    else:
        pytest.fail("no error on CUDA")
    assert step == first_check_at_or_after(beyond, 5)


@pytest.mark.parametrize("graphs", ["false", "true"])
def test_reporter_raises_on_cuda(narrow_model, graphs):
    _, beyond = events(narrow_model)
    simulation = drift_simulation(narrow_model, check_frequency=-1, reporter_interval=10, platform="CUDA",
                                  properties={"useCUDAGraphs": graphs})
    with pytest.raises(openmm.OpenMMException, match="beyond the compression tables"):
        with pytest.warns(RuntimeWarning, match="outside the accurate compression table"):
            simulation.step(STEPS)
    assert simulation.currentStep == first_check_at_or_after(beyond, 10)
