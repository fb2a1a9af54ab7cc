"""Polynomial tables reproduce the embedding net (values and first derivatives).

Tolerances (float64, stride 0.01, outputs of order 1): 1e-10 for values and first derivatives
inside the first table; 1e-6 (values) and 1e-5 (derivatives) in the extrapolation table
(step 0.1). A quintic Hermite interpolant has errors O(h^6) in values and O(h^5) in slopes.
"""

import math

import pytest
import torch

from compression.embedding_nets import embedding_net
from openmmnnp.compression import build_table, build_tables, evaluate_table, table_bounds
from openmmnnp.compression.tables import hermite_coefficients


def net_value_and_slope(net, x):
    x = x.clone().reshape(-1, 1).requires_grad_(True)
    y = net(x)
    slopes = torch.stack([torch.autograd.grad(y[:, m].sum(), x, retain_graph=True)[0][:, 0] for m in range(y.shape[1])], 1)
    return y.detach(), slopes


def test_hermite_coefficients_match_end_conditions():
    gen = torch.Generator().manual_seed(1)
    y0, dy0, d2y0, y1, dy1, d2y1 = torch.randn(6, 7, generator=gen, dtype=torch.float64)
    h = 0.3
    a, b, c, d, e, f = hermite_coefficients(y0, dy0, d2y0, y1, dy1, d2y1, h).unbind(-1)
    assert torch.allclose(a, y0) and torch.allclose(b, dy0) and torch.allclose(2 * c, d2y0)
    assert torch.allclose(a + b * h + c * h**2 + d * h**3 + e * h**4 + f * h**5, y1, atol=1e-12)
    assert torch.allclose(b + 2 * c * h + 3 * d * h**2 + 4 * e * h**3 + 5 * f * h**4, dy1, atol=1e-12)
    assert torch.allclose(2 * c + 6 * d * h + 12 * e * h**2 + 20 * f * h**3, d2y1, atol=1e-11)


def test_table_bounds_round_to_whole_intervals():
    info, n1, n2 = table_bounds(-0.23, 1.0, 0.01, 5.0)
    lower, upper, upper2, stride, stride2 = info.tolist()
    assert n1 == 123 and math.isclose(upper, -0.23 + 123 * 0.01)
    assert stride2 == pytest.approx(0.1) and math.isclose(upper2, upper + n2 * stride2)
    assert upper2 >= 5.0 * upper > upper2 - stride2
    with pytest.raises(ValueError):
        table_bounds(1.0, 0.5, 0.01, 5.0)


@pytest.mark.parametrize("widths", [[4, 8, 16], [8, 8]])
def test_table_reproduces_net(widths):
    net = embedding_net(widths, seed=len(widths))
    lower, upper = -0.4, 1.3
    table, info = build_table(net, lower, upper, stride=0.01, extrapolate=5.0)
    _, n1, n2 = table_bounds(lower, upper, 0.01, 5.0)
    assert table.shape == (n1 + n2, widths[-1], 6)
    upper_adj, upper2 = info[1].item(), info[2].item()
    gen = torch.Generator().manual_seed(3)
    # First table: random points plus the grid nodes themselves (interval boundaries).
    x1 = torch.cat([lower + (upper_adj - lower) * torch.rand(500, generator=gen, dtype=torch.float64),
                    lower + 0.01 * torch.arange(n1, dtype=torch.float64)])
    value, slope = evaluate_table(table, info, x1)
    ref_value, ref_slope = net_value_and_slope(net, x1)
    assert (value - ref_value).abs().max() < 1e-10
    assert (slope - ref_slope).abs().max() < 1e-10
    # Extrapolation table.
    x2 = upper_adj + (upper2 - upper_adj) * torch.rand(500, generator=gen, dtype=torch.float64)
    value, slope = evaluate_table(table, info, x2)
    ref_value, ref_slope = net_value_and_slope(net, x2)
    assert (value - ref_value).abs().max() < 1e-6
    assert (slope - ref_slope).abs().max() < 1e-5
    # The tolerance is not vacuous: the interpolant is not exact between nodes of the second table.
    assert (value - ref_value).abs().max() > 0


def test_outside_range_extrapolates_below_and_clamps_above():
    net = embedding_net([4, 8], seed=5)
    table, info = build_table(net, 0.0, 1.0, stride=0.01, extrapolate=2.0)
    upper2 = info[2].item()
    # Slightly below lower: interval 0's polynomial extrapolates the net smoothly.
    x = torch.tensor([-0.005], dtype=torch.float64)
    value, _ = evaluate_table(table, info, x)
    assert torch.allclose(value, net_value_and_slope(net, x)[0], atol=1e-9)
    # Above upper2: clamped to the value at upper2, zero slope.
    value, slope = evaluate_table(table, info, torch.tensor([upper2 + 3.0, 1e30], dtype=torch.float64))
    at_end, _ = net_value_and_slope(net, torch.tensor([upper2], dtype=torch.float64))
    assert torch.allclose(value, at_end.expand(2, -1), atol=1e-6)
    assert torch.all(slope == 0)
    # NaN propagates, infinities do not index out of range.
    value, _ = evaluate_table(table, info, torch.tensor([math.nan, -math.inf, math.inf], dtype=torch.float64))
    assert torch.isnan(value[0]).all() and torch.isfinite(value[2]).all()


def test_build_tables_stacks_nets_on_one_grid():
    nets = [embedding_net([4, 8], seed=s) for s in range(3)]
    table, info = build_tables(nets, 0.0, 0.5, stride=0.05, extrapolate=3.0)
    assert table.shape[0] == 3
    x = torch.linspace(0.0, 0.5, 11, dtype=torch.float64)
    for k, net in enumerate(nets):
        assert torch.allclose(evaluate_table(table[k], info, x)[0], net(x.reshape(-1, 1)).detach(), atol=1e-6)
