"""openmmnnp.se_a_descriptor (the fused D = T T[:axis]^T of compressed se_e2_a) against torch's bmm, CPU and CUDA."""

from __future__ import annotations

import pytest
import torch

import openmmnnp  # noqa: F401  (loads the op library)
from openmmnnp.ops.descriptor import se_a_descriptor


def reference(t: torch.Tensor, axis: int) -> torch.Tensor:
    """SeE2A.descriptor's bmm form (the twice-differentiable one the trainer uses)."""
    return torch.bmm(t, t[:, :axis, :].transpose(1, 2)).reshape(t.shape[0], t.shape[1] * axis)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-13), (torch.float32, 1e-5)])
@pytest.mark.parametrize("atoms, m, axis", [(7, 10, 4), (5, 6, 6), (3, 9, 1), (0, 8, 2), (300, 100, 16)])
def test_forward_and_gradient_equal_bmm(device, dtype, tol, atoms, m, axis):
    """The op on `device` against the bmm form on the CPU (float64 sums for the float32 cases)."""
    torch.manual_seed(atoms * 100 + m * 10 + axis)
    t = torch.randn(atoms, m, 4, dtype=dtype)
    grad = torch.randn(atoms, m * axis, dtype=dtype)
    x = t.to(device).requires_grad_(True)
    d = se_a_descriptor(x, axis)
    assert d.shape == (atoms, m * axis) and d.device.type == device
    (g,) = torch.autograd.grad(d, x, grad.to(device))
    y = t.double().requires_grad_(True)
    expected_d = reference(y, axis)
    (expected_g,) = torch.autograd.grad(expected_d, y, grad.double())
    torch.testing.assert_close(d.cpu(), expected_d.detach().to(dtype), rtol=tol, atol=tol)
    torch.testing.assert_close(g.cpu(), expected_g.to(dtype), rtol=tol, atol=tol)


def test_non_contiguous_input():
    torch.manual_seed(1)
    t = torch.randn(6, 4, 8, dtype=torch.float64).transpose(1, 2)  # [6, 8, 4], not contiguous
    assert not t.is_contiguous()
    torch.testing.assert_close(se_a_descriptor(t, 3), reference(t, 3), rtol=1e-13, atol=1e-13)


def test_gradcheck():
    torch.manual_seed(2)
    t = torch.randn(3, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: se_a_descriptor(x, 2), (t,))


def test_double_backward_raises():
    t = torch.randn(2, 5, 4, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(se_a_descriptor(t, 2).sum(), t, create_graph=True)


@pytest.mark.parametrize("t, axis, message", [
    (torch.zeros(2, 5, 3), 2, r"\[N, M, 4\]"),
    (torch.zeros(2, 5, 4, dtype=torch.long), 2, "float32 or float64"),
    (torch.zeros(2, 5, 4), 0, "axis_neuron must be in 1..M"),
    (torch.zeros(2, 5, 4), 6, "axis_neuron must be in 1..M"),
])
def test_bad_input_raises(t, axis, message):
    with pytest.raises(RuntimeError, match=message):
        se_a_descriptor(t, axis)


def test_bad_grad_output_raises():
    t = torch.zeros(2, 5, 4, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="grad_output must be"):
        torch.ops.openmmnnp.se_a_descriptor_backward(t, torch.zeros(2, 9, dtype=torch.float64), 2)
    with pytest.raises(RuntimeError, match="dtype and device"):
        torch.ops.openmmnnp.se_a_descriptor_backward(t, torch.zeros(2, 10, dtype=torch.float32), 2)


def test_meta_shapes():
    t = torch.empty(11, 7, 4, device="meta")
    assert se_a_descriptor(t, 3).shape == (11, 21)
    assert torch.ops.openmmnnp.se_a_descriptor_backward(t, torch.empty(11, 21, device="meta"), 3).shape == (11, 7, 4)
