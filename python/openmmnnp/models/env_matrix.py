"""DeePMD's smooth environment matrix, one row per edge (neighbour pair)."""


import torch


def smooth_weight(r: torch.Tensor, rcut_smth: float, rcut: float) -> torch.Tensor:
    """s(r): 1/r below rcut_smth, smoothly switched to 0 at rcut (C2: value, slope, curvature).

    s(r) = 1/r * (u^3 (-6u^2 + 15u - 10) + 1) with u = (r - rcut_smth) / (rcut - rcut_smth).
    """
    return torch.where(r < rcut, smooth_switch(r, rcut_smth, rcut) / r, torch.zeros_like(r))


def smooth_switch(r: torch.Tensor, rcut_smth: float, rcut: float) -> torch.Tensor:
    """1 below rcut_smth, u^3 (-6u^2 + 15u - 10) + 1 between, 0 from rcut on (C2 at both ends)."""
    return switch_polynomial(((r - rcut_smth) / (rcut - rcut_smth)).clamp(0.0, 1.0))


def switch_polynomial(u: torch.Tensor) -> torch.Tensor:
    """u^3 (-6u^2 + 15u - 10) + 1 for u in [0, 1]: from 1 at u = 0 to 0 at u = 1, first and second
    derivatives zero at both ends. The one switch of openmm-nnp (env matrix, envelopes, prior)."""
    return u * u * u * (-6.0 * u * u + 15.0 * u - 10.0) + 1.0


def environment_rows(vectors: torch.Tensor, rcut_smth: float, rcut: float) -> torch.Tensor:
    """vectors [E, 3] (r_j - r_i, nonzero) -> R [E, 4] = (s, s x/r, s y/r, s z/r)."""
    r = torch.linalg.vector_norm(vectors, dim=1)
    s = smooth_weight(r, rcut_smth, rcut)
    return torch.cat([s.unsqueeze(1), (s / r).unsqueeze(1) * vectors], dim=1)
