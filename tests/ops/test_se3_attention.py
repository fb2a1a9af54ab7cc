"""The fused SE(3) attention kernels torch.ops.openmmnnp.se3_attention_scores/_messages (CPU and CUDA):
forward against a dense torch expression, gradients by gradcheck, both weight modes, bad input, CUDA
against the CPU."""

from typing import List

import pytest
import torch

from openmmnnp.models.kv_convolution import KeyValueConvolution
from openmmnnp.ops import se3_attention_messages, se3_attention_scores

N, C, LMAX, E, HEADS, B, HIDDEN = 7, 4, 2, 25, 2, 5, 6


def problem(dtype=torch.float64, seed: int = 0):
    """Random inputs of one layer's edge part: a dict of tensors (float64 unless dtype says)."""
    g = torch.Generator().manual_seed(seed)
    conv = KeyValueConvolution(LMAX, C)
    D, P = conv.dim, conv.num_paths

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)

    return {
        "x": rand(N, C, D), "q": rand(N, C, D), "y": rand(E, D), "w": rand(E, P * C), "r": rand(E, B),
        "attention": rand(E, HEADS).abs(),
        "mlp": [rand(HIDDEN, B), rand(HIDDEN), rand(P * C, HIDDEN), rand(P * C)],
        "center": torch.randint(0, N, (E,), generator=g), "neighbor": torch.randint(0, N, (E,), generator=g),
        "cg_index": conv.entry_index, "cg_value": conv.entry_value.to(dtype), "conv": conv,
    }


def dense_edges(p, w: torch.Tensor) -> torch.Tensor:
    """Oracle of the per-edge keys/values [E, C, D] from a dense coupling tensor [D, D, D, P]."""
    conv = p["conv"]
    D, P = conv.dim, conv.num_paths
    dense = torch.zeros(D, D, D, P, dtype=w.dtype)
    for (a, f, o, path), value in zip(p["cg_index"].tolist(), p["cg_value"].tolist()):
        dense[a, f, o, path] += value
    xj = p["x"].index_select(0, p["neighbor"])
    return torch.einsum("afop,epc,eca,ef->eco", dense, w.view(E, P, C), xj, p["y"])


def mlp_weights(p) -> torch.Tensor:
    w1, b1, w2, b2 = p["mlp"]
    return torch.nn.functional.silu(p["r"] @ w1.T + b1) @ w2.T + b2


def dense_scores(p, w):
    return (p["q"].index_select(0, p["center"]) * dense_edges(p, w)).view(E, HEADS, -1).sum(2)


def dense_messages(p, w):
    values = dense_edges(p, w) * p["attention"].repeat_interleave(C // HEADS, dim=1).unsqueeze(2)
    return torch.zeros_like(p["x"]).index_add(0, p["center"], values)


def scores(p, weights, mlp: List[torch.Tensor]):
    return se3_attention_scores(p["q"], p["x"], p["y"], weights, mlp, p["center"], p["neighbor"], p["cg_index"],
                                p["cg_value"], HEADS)


def messages(p, weights, mlp: List[torch.Tensor]):
    return se3_attention_messages(p["attention"], p["x"], p["y"], weights, mlp, p["center"], p["neighbor"],
                                  p["cg_index"], p["cg_value"])


@pytest.mark.parametrize("low_memory", [False, True])
def test_forward_matches_dense_expression(low_memory):
    p = problem()
    weights, mlp = (p["r"], p["mlp"]) if low_memory else (p["w"], [])
    w = mlp_weights(p) if low_memory else p["w"]
    torch.testing.assert_close(scores(p, weights, mlp), dense_scores(p, w), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(messages(p, weights, mlp), dense_messages(p, w), rtol=1e-12, atol=1e-12)
    assert float(dense_scores(p, w).abs().max()) > 0.1


def test_float32_matches_float64():
    p64, p32 = problem(), problem(torch.float32)
    torch.testing.assert_close(scores(p32, p32["w"], []).double(), scores(p64, p64["w"], []), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(messages(p32, p32["r"], p32["mlp"]).double(), messages(p64, p64["r"], p64["mlp"]),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("low_memory", [False, True])
def test_gradients_by_gradcheck(low_memory):
    p = problem()
    mlp = p["mlp"] if low_memory else []
    q, x, y = (p[k].clone().requires_grad_(True) for k in ("q", "x", "y"))
    weights = (p["r"] if low_memory else p["w"]).clone().requires_grad_(True)
    attention = p["attention"].clone().requires_grad_(True)
    args = (p["center"], p["neighbor"], p["cg_index"], p["cg_value"])

    def both(q, x, y, weights, attention):
        s = se3_attention_scores(q, x, y, weights, mlp, *args, HEADS)
        m = se3_attention_messages(attention, x, y, weights, mlp, *args)
        return s, m

    assert torch.autograd.gradcheck(both, (q, x, y, weights, attention), eps=1e-6, atol=1e-8)


def test_bad_input_raises_clear_errors():
    p = problem()
    with pytest.raises(RuntimeError, match="heads must divide"):
        se3_attention_scores(p["q"], p["x"], p["y"], p["w"], [], p["center"], p["neighbor"], p["cg_index"],
                             p["cg_value"], 3)
    bad = p["neighbor"].clone()
    bad[3] = N
    with pytest.raises(RuntimeError, match="out of range"):
        se3_attention_scores(p["q"], p["x"], p["y"], p["w"], [], p["center"], bad, p["cg_index"], p["cg_value"], HEADS)
    with pytest.raises(RuntimeError, match="P C values"):
        messages(p, p["w"][:, 1:], [])
    with pytest.raises(RuntimeError, match="dtype"):
        messages(p, p["w"].float(), [])
    with pytest.raises(RuntimeError, match="radial features"):
        messages(p, p["w"], p["mlp"])
    trainable = [t.clone().requires_grad_(True) for t in p["mlp"]]
    with pytest.raises(RuntimeError, match="no gradients with respect to the radial MLP"):
        messages(p, p["r"], trainable)
    x = p["x"].clone().requires_grad_(True)
    out = se3_attention_messages(p["attention"], x, p["y"], p["w"], [], p["center"], p["neighbor"], p["cg_index"],
                                 p["cg_value"])
    with pytest.raises(RuntimeError, match="double backward"):  # create_graph: the backward itself would be differentiated
        torch.autograd.grad(out.pow(2).sum(), x, create_graph=True)


@pytest.mark.gpu
@pytest.mark.parametrize("low_memory", [False, True])
def test_kernels_on_cuda_match_cpu_forward_and_backward(cuda_device, low_memory):
    """The CUDA kernels (one thread per edge and channel, atomics) against the CPU ones, float64."""
    p = problem()
    mlp = p["mlp"] if low_memory else []
    names = ("q", "x", "y")
    results = []
    for device in ("cpu", cuda_device):
        q, x, y = (p[k].to(device).requires_grad_(True) for k in names)
        weights = (p["r"] if low_memory else p["w"]).to(device).requires_grad_(True)
        attention = p["attention"].to(device).requires_grad_(True)
        args = [t.to(device) for t in (p["center"], p["neighbor"], p["cg_index"], p["cg_value"])]
        dev_mlp = [t.to(device) for t in mlp]
        s = torch.ops.openmmnnp.se3_attention_scores(q, x, y, weights, dev_mlp, *args, HEADS)
        m = torch.ops.openmmnnp.se3_attention_messages(attention, x, y, weights, dev_mlp, *args)
        loss = (s * torch.linspace(-1, 1, s.numel(), dtype=s.dtype, device=device).view_as(s)).sum() + m.pow(2).sum()
        grads = torch.autograd.grad(loss, (q, x, y, weights, attention))
        results.append([t.detach().cpu() for t in (s, m) + grads])
    for cpu, cuda in zip(*results):
        torch.testing.assert_close(cuda, cpu, rtol=1e-10, atol=1e-12)
