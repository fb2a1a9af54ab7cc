"""Real spherical harmonics of degrees 0..3 as explicit polynomials (component normalisation).

Y_l(u) for a unit vector u = (x, y, z): sum_m Y_lm(u)^2 = 2l + 1. Packed layout: degree l
occupies columns l^2 .. (l+1)^2 - 1, m = -l..l. Coupling coefficients are derived from these
functions numerically (:mod:`openmmnnp.models.clebsch_gordan`), so only self-consistency matters.
"""

from typing import List

import torch

MAX_DEGREE = 3


def spherical_harmonics(u: torch.Tensor, lmax: int) -> torch.Tensor:
    """u [E, 3] unit vectors -> Y [E, (lmax+1)^2], degrees 0..lmax packed."""
    if lmax < 0 or lmax > 3:  # MAX_DEGREE (TorchScript reads no globals)
        raise ValueError("spherical_harmonics: lmax must be in 0..3, got " + str(lmax))
    x, y, z = u[:, 0], u[:, 1], u[:, 2]
    cols: List[torch.Tensor] = [torch.ones_like(x)]
    if lmax >= 1:
        s3 = 3.0 ** 0.5
        cols += [s3 * y, s3 * z, s3 * x]
    if lmax >= 2:
        s15 = 15.0 ** 0.5
        x2, y2, z2 = x * x, y * y, z * z
        cols += [s15 * x * y, s15 * y * z, 0.5 * 5.0 ** 0.5 * (3.0 * z2 - 1.0), s15 * x * z, 0.5 * s15 * (x2 - y2)]
    if lmax >= 3:
        x2, y2, z2 = x * x, y * y, z * z
        a, b, c = 0.25 * 70.0 ** 0.5, 105.0 ** 0.5, 0.25 * 42.0 ** 0.5
        cols += [a * y * (3.0 * x2 - y2), b * x * y * z, c * y * (5.0 * z2 - 1.0), 0.5 * 7.0 ** 0.5 * z * (5.0 * z2 - 3.0),
                 c * x * (5.0 * z2 - 1.0), 0.5 * b * z * (x2 - y2), a * x * (x2 - 3.0 * y2)]
    return torch.stack(cols, dim=1)


def degree_slice(l: int) -> slice:
    """Columns of degree l in the packed layout."""
    return slice(l * l, (l + 1) * (l + 1))
