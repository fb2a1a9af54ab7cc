"""Real coupling (Clebsch-Gordan / Wigner-3j) coefficients, derived once from our own harmonics.

Numerically, in float64, at model construction (then stored as buffers):
  * C^{l1 l2 l3} (l1 + l2 + l3 even): the Gaunt integral of Y_l1 Y_l2 Y_l3 over the sphere by an
    exact product quadrature; it is the unique rotation-invariant tensor of l1 (x) l2 (x) l3;
  * Wigner D^l(R) (used by the tests): least-squares solution of Y_l(R x) = D^l(R) Y_l(x).
Being built from the same polynomials as the edge harmonics, the coefficients match their
conventions exactly, so no external table or library is needed.
"""

from typing import List, Tuple

import torch

from openmmnnp.models.spherical_harmonics import degree_slice, spherical_harmonics


def wigner_d(l: int, rotation: torch.Tensor) -> torch.Tensor:
    """[2l+1, 2l+1] matrix D with Y_l(R u) = D Y_l(u) (float64)."""
    g = torch.Generator().manual_seed(1234)
    points = torch.nn.functional.normalize(torch.randn(64, 3, generator=g, dtype=torch.float64), dim=1)
    before = spherical_harmonics(points, l)[:, degree_slice(l)]
    after = spherical_harmonics(points @ rotation.T, l)[:, degree_slice(l)]
    return torch.linalg.lstsq(before, after).solution.T


def _sphere_quadrature() -> Tuple[torch.Tensor, torch.Tensor]:
    """Points [K, 3] and weights [K] integrating polynomials of degree <= 15 exactly over the sphere."""
    import numpy as np
    nodes, weights = np.polynomial.legendre.leggauss(8)
    phi = torch.arange(16, dtype=torch.float64) * (2.0 * torch.pi / 16)
    z = torch.from_numpy(nodes).unsqueeze(1).expand(8, 16)
    rho = (1.0 - z * z).sqrt()
    points = torch.stack([rho * torch.cos(phi), rho * torch.sin(phi), z], dim=2).reshape(-1, 3)
    w = (torch.from_numpy(weights).unsqueeze(1) * (2.0 * torch.pi / 16)).expand(8, 16).reshape(-1)
    return points, w


def coupling(l1: int, l2: int, l3: int) -> torch.Tensor:
    """C [2l1+1, 2l2+1, 2l3+1] with sum_abc C_abc x_a y_b z_c rotation invariant; float64.

    For l1 + l2 + l3 even the invariant is unique up to scale and equals the Gaunt integral
    of Y_l1 Y_l2 Y_l3 over the sphere (exact quadrature, degree <= 9 < 15), normalised to
    unit Frobenius norm.
    """
    if not abs(l1 - l2) <= l3 <= l1 + l2 or (l1 + l2 + l3) % 2 == 1:
        raise ValueError(f"coupling: ({l1}, {l2}, {l3}) needs the triangle condition and an even sum")
    points, w = _sphere_quadrature()
    y = spherical_harmonics(points, max(l1, l2, l3))
    c = torch.einsum("k,ka,kb,kc->abc", w, y[:, degree_slice(l1)], y[:, degree_slice(l2)], y[:, degree_slice(l3)])
    return c / torch.linalg.vector_norm(c)


def parity_paths(lmax: int) -> List[Tuple[int, int, int]]:
    """(l_in, l_filter, l_out), all <= lmax, triangle and l_in + l_filter + l_out even.

    Even sums keep features true tensors of parity (-1)^l, so the energy is also invariant
    under inversion (E(3)), as a physical energy is.
    """
    return [(a, f, b) for a in range(lmax + 1) for f in range(lmax + 1) for b in range(lmax + 1)
            if abs(a - f) <= b <= a + f and (a + f + b) % 2 == 0]
