"""The reference smoke-test op openmmnnp::scale (CPU and CUDA): the library loads, y = factor * x and
its gradient on every device, its meta kernel and errors; and every device op has a CUDA kernel exactly
when the library was built with them (what openmmnnp.cuda_ops_available reports)."""

import pytest
import torch

import openmmnnp
from openmmnnp.ops.reference import scale

# The ops with device kernels (the flag registry's ops are host bookkeeping, one kernel for all devices).
DEVICE_OPS = ["scale", "neighbor_pairs", "tabulate_fusion", "tabulate_fusion_backward", "env_tabulate",
              "env_tabulate_backward", "se_a_descriptor", "se_a_descriptor_backward", "se3_attention_scores",
              "se3_attention_scores_backward", "se3_attention_messages", "se3_attention_messages_backward"]


def test_library_is_loaded_and_op_has_gradient():
    assert openmmnnp.load_library().name == "libopenmmnnp_ops.so"
    x = torch.randn(7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: torch.ops.openmmnnp.scale(t, -1.5), (x,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_values_and_gradient(device, dtype):
    x = torch.randn(5, 300, dtype=dtype).t().to(device)  # not contiguous
    y = scale(x, -2.5)
    assert y.device.type == device and y.dtype == dtype
    torch.testing.assert_close(y.cpu(), -2.5 * x.cpu(), rtol=0, atol=0)
    x64 = torch.randn(9, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: scale(t, 0.75), (x64,))


def test_meta_shape_and_bad_input():
    assert scale(torch.empty(4, 3, device="meta"), 2.0).shape == (4, 3)
    with pytest.raises(RuntimeError, match="floating-point"):
        scale(torch.arange(3), 2.0)


def test_every_device_op_has_cuda_kernels_exactly_when_the_library_has_them():
    expected = openmmnnp.cuda_ops_available()
    for name in DEVICE_OPS:
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"openmmnnp::{name}", "CPU"), name
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"openmmnnp::{name}", "CUDA") == expected, name
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"openmmnnp::{name}", "Meta"), name
