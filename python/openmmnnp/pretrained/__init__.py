"""Trained models shipped with openmm-nnp (TorchScript files in this folder).

Each is documented in docs/models.md: training data, command and validation errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

_FOLDER = Path(__file__).resolve().parent


def available_models() -> List[str]:
    """Names accepted by :func:`pretrained_path`."""
    return sorted(p.stem for p in _FOLDER.glob("*.pt"))


def pretrained_path(name: str) -> Path:
    """Path of the shipped TorchScript model ``name`` (e.g. "water-se_e2_a"), for NNPForce.

    Raises:
        ValueError: an unknown name (the message lists the available ones).
    """
    path = _FOLDER / f"{name}.pt"
    if not path.is_file():
        raise ValueError(f"no pretrained model named {name!r}; available: {available_models()}")
    return path
