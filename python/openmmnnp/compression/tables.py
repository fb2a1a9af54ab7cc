"""Fifth-order polynomial tables of embedding nets (DeePMD-kit's "tabulated inference").

An embedding net maps one scalar ŝ to M outputs. On each interval [x0, x0 + h] every output
is replaced by y(t) = a + b t + c t² + d t³ + e t⁴ + f t⁵ with t = ŝ - x0, the quintic Hermite
polynomial that matches the net's value, first and second derivative at both interval ends
(so the tabulated function is C² across interval boundaries).

Table layout (shared with the fused op ``torch.ops.openmmnnp.tabulate_fusion``):

- ``table`` [num_tables, num_intervals, M, 6]: coefficients (a, b, c, d, e, f) of output m on
  interval k of net (type pair) n, innermost so that one interval's M outputs are contiguous.
- ``table_info`` [5] float64: (lower, upper, upper2, stride, stride2). Intervals 0 .. n1-1 with
  n1 = round((upper - lower) / stride) start at lower + k·stride (the first table, covering the
  range seen in the data); intervals n1 .. num_intervals-1 start at upper + (k - n1)·stride2 (the
  extrapolation table, up to upper2 = extrapolate·upper, with stride2 = 10·stride).

Look-up rule for an input x (``locate``): x < upper uses the first table (x < lower evaluates
interval 0's polynomial, i.e. polynomial extrapolation); upper <= x < upper2 the second table;
x >= upper2 is clamped to the value at upper2 (derivative 0); NaN propagates.

Accuracy (checked by tests/compression/test_tables.py on a random DeePMD-like tanh net with
residual connections, float64): with stride 0.01 values and first derivatives agree with the net
to 1e-10 (absolute, outputs of order 1) inside the first table; with stride2 = 0.1 to 1e-6
(values) and 1e-5 (derivatives) in the extrapolation table. The error of a quintic Hermite
interpolant scales as h⁶ (values) and h⁵ (first derivatives).
"""

from __future__ import annotations

import math
from typing import Callable, Tuple

import torch

EmbeddingNet = Callable[[torch.Tensor], torch.Tensor]


def table_bounds(lower: float, upper: float, stride: float, extrapolate: float) -> Tuple[torch.Tensor, int, int]:
    """The grid of the two tables: (table_info [5] float64, n1, n2).

    ``upper`` is rounded up to a whole number of ``stride`` above ``lower`` and upper2 to a whole
    number of ``10·stride`` above upper, so that every interval has exactly its nominal width.
    No extrapolation table is built (n2 = 0) when extrapolate·upper <= upper.
    """
    if not (math.isfinite(lower) and math.isfinite(upper) and upper > lower):
        raise ValueError(f"table range must satisfy lower < upper (finite), got [{lower}, {upper}]")
    if not (stride > 0 and math.isfinite(stride)):
        raise ValueError(f"stride must be positive, got {stride}")
    stride2 = 10.0 * stride
    n1 = max(1, math.ceil((upper - lower) / stride - 1e-9))
    upper = lower + n1 * stride
    n2 = max(0, math.ceil((extrapolate * upper - upper) / stride2 - 1e-9))
    upper2 = upper + n2 * stride2
    info = torch.tensor([lower, upper, upper2, stride, stride2], dtype=torch.float64)
    return info, n1, n2


def _value_and_derivatives(net: EmbeddingNet, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """y, dy/dx, d²y/dx² of ``net`` at the points x [K] (float64): three [K, M] tensors.

    Rows of the net are independent, so d(Σ_k y[k, m])/dx[k] = dy[k, m]/dx[k]: one reverse pass
    per output (two for the second derivative). Reverse mode also works for TorchScript nets.
    """
    x = x.detach().to(torch.float64).reshape(-1, 1).requires_grad_(True)
    with torch.enable_grad():
        y = net(x)
        if y.dim() != 2 or y.shape[0] != x.shape[0]:
            raise ValueError(f"the embedding net must map [K, 1] to [K, M], got {tuple(y.shape)}")
        first, second = [], []
        for m in range(y.shape[1]):
            (dy,) = torch.autograd.grad(y[:, m].sum(), x, create_graph=True)
            (d2y,) = torch.autograd.grad(dy.sum(), x, retain_graph=True)
            first.append(dy.detach()[:, 0])
            second.append(d2y.detach()[:, 0])
    return y.detach(), torch.stack(first, dim=1), torch.stack(second, dim=1)


def hermite_coefficients(
    y0: torch.Tensor, dy0: torch.Tensor, d2y0: torch.Tensor,
    y1: torch.Tensor, dy1: torch.Tensor, d2y1: torch.Tensor, h: float,
) -> torch.Tensor:
    """Coefficients [..., 6] of the quintic matching (y, y', y'') at t = 0 and t = h."""
    a, b, c = y0, dy0, 0.5 * d2y0
    # Residuals that d t³ + e t⁴ + f t⁵ must supply at t = h (value, slope, curvature).
    r0 = y1 - (a + b * h + c * h * h)
    r1 = dy1 - (b + 2.0 * c * h)
    r2 = d2y1 - 2.0 * c
    d = (20.0 * r0 - 8.0 * r1 * h + r2 * h * h) / (2.0 * h**3)
    e = (-30.0 * r0 + 14.0 * r1 * h - 2.0 * r2 * h * h) / (2.0 * h**4)
    f = (12.0 * r0 - 6.0 * r1 * h + r2 * h * h) / (2.0 * h**5)
    return torch.stack([a, b, c, d, e, f], dim=-1)


def build_table(
    net: EmbeddingNet, lower: float, upper: float, stride: float = 0.01, extrapolate: float = 5.0
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Tabulate one embedding net: (coefficients [num_intervals, M, 6] float64, table_info [5]).

    Args:
        net: callable mapping x [K, 1] float64 to [K, M] (must accept float64 input).
        lower, upper: range of ŝ seen in the data (first table, step ``stride``).
        stride: interval width of the first table; the second uses 10·stride.
        extrapolate: the second table reaches extrapolate·upper.
    """
    info, n1, n2 = table_bounds(lower, upper, stride, extrapolate)
    lo, up, _, h1, h2 = info.tolist()
    nodes1 = lo + h1 * torch.arange(n1 + 1, dtype=torch.float64)
    nodes2 = up + h2 * torch.arange(n2 + 1, dtype=torch.float64)
    coeffs = []
    for nodes, h in ((nodes1, h1), (nodes2, h2)):
        if nodes.numel() < 2:
            continue
        y, dy, d2y = _value_and_derivatives(net, nodes)
        coeffs.append(hermite_coefficients(y[:-1], dy[:-1], d2y[:-1], y[1:], dy[1:], d2y[1:], h))
    return torch.cat(coeffs, dim=0), info


def build_tables(
    nets: list[EmbeddingNet], lower: float, upper: float, stride: float = 0.01, extrapolate: float = 5.0
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Tabulate several nets on one grid: (table [len(nets), num_intervals, M, 6], table_info [5])."""
    built = [build_table(net, lower, upper, stride, extrapolate) for net in nets]
    return torch.stack([t for t, _ in built]), built[0][1]


def locate(x: torch.Tensor, table_info: torch.Tensor, num_intervals: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Interval index [K] int64, offset t [K] and clamp mask [K] bool of the points x [K].

    Same rule as the compiled op (see the module docstring); never out of range, NaN-safe.
    """
    lower, upper, upper2, stride, stride2 = [float(v) for v in table_info.tolist()]
    n1 = min(max(int(round((upper - lower) / stride)), 1), num_intervals)
    f1 = torch.nan_to_num(torch.floor((x - lower) / stride), nan=0.0).clamp(0, n1 - 1)
    f2 = torch.nan_to_num(torch.floor((x - upper) / stride2), nan=0.0).clamp(0, max(num_intervals - n1 - 1, 0))
    in_second = x >= upper
    clamped = x >= upper2
    idx = torch.where(in_second, n1 + f2, f1).to(torch.int64)
    idx = torch.where(clamped, torch.full_like(idx, num_intervals - 1), idx)
    t = torch.where(in_second, x - (upper + f2 * stride2), x - (lower + f1 * stride))
    last_width = stride2 if num_intervals > n1 else stride
    t = torch.where(clamped, torch.full_like(t, last_width), t)
    return idx, t, clamped


def evaluate_table(
    table: torch.Tensor, table_info: torch.Tensor, x: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Pure-torch evaluation of one net's table (the test reference of the fused op).

    Args:
        table: [num_intervals, M, 6] coefficients.
        table_info: [5] (lower, upper, upper2, stride, stride2).
        x: [K] points.
    Returns:
        (values [K, M], derivatives d/dx [K, M]) in x's dtype.
    """
    idx, t, clamped = locate(x, table_info, table.shape[0])
    c = table.to(x.dtype)[idx]  # [K, M, 6]
    t = t.unsqueeze(1)
    a, b, c2, d, e, f = c.unbind(-1)
    value = a + t * (b + t * (c2 + t * (d + t * (e + t * f))))
    deriv = b + t * (2.0 * c2 + t * (3.0 * d + t * (4.0 * e + t * 5.0 * f)))
    deriv = torch.where(clamped.unsqueeze(1), torch.zeros_like(deriv), deriv)
    return value, deriv
