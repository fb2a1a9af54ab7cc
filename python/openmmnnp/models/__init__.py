"""Potentials that follow the openmm-nnp model contract (see :mod:`openmmnnp.force`)."""

from openmmnnp.models.se3_attention import SE3Attention
from openmmnnp.models.se_e2_a import SeE2A

__all__ = ["SE3Attention", "SeE2A"]
