"""SE3Attention on CUDA (skipped without one): padded static pair lists, every implementation ==
the CPU in float64, and the accuracy of float32 with TF32 matmuls against float64."""

import pytest
import torch

from models.test_se3_attention import make_se3
from models.test_se_e2_a import energy_and_forces

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_cuda_matches_cpu_and_reference(water):
    positions, box, types, _ = water
    model = make_se3(water, lmax=2)
    energy, forces = energy_and_forces(model, positions[0], box[0], types)
    cuda = model.to("cuda")  # on CUDA the pair list keeps its padded static capacity
    args = (positions[0].cuda(), box[0].cuda(), types.cuda())
    energy_gpu, forces_gpu = energy_and_forces(cuda, *args)
    assert float(energy_gpu) == pytest.approx(float(energy), rel=1e-11)
    torch.testing.assert_close(forces_gpu.cpu(), forces, rtol=1e-9, atol=1e-10)
    cuda.eval()
    for implementation in ("low_memory", "torch", "reference"):
        cuda.implementation = implementation
        torch.testing.assert_close(energy_and_forces(cuda, *args)[1].cpu(), forces, rtol=1e-9, atol=1e-10)
    assert int(cuda.capacity_overflow[0]) == 0


def test_tf32_accuracy(water):
    """Documented check: float32 with TF32 matmuls stays within 1e-2 relative force RMS of float64."""
    positions, box, types, _ = water
    model = make_se3(water, lmax=2).to("cuda")
    args = (positions[0].cuda(), box[0].cuda(), types.cuda())
    _, forces64 = energy_and_forces(model, *args)
    model32 = model.float()
    previous = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = True
        _, forces32 = energy_and_forces(model32, args[0].float(), args[1].float(), args[2])
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    error = (forces32.double() - forces64).pow(2).mean().sqrt() / forces64.pow(2).mean().sqrt()
    assert float(error) < 1e-2
